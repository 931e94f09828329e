"""Entry point: ``trustwall``. Maps the exception hierarchy to exit codes and one-line errors."""

from __future__ import annotations

import os
import sys

import click

from trustwall import __version__
from trustwall.cli.lazy import LazyGroup
from trustwall.errors import EXIT_BAD_INPUT, TrustwallError

# Subcommands, imported on use. Order of the listing is alphabetical.
COMMANDS: dict[str, tuple[str, str]] = {
    "lab": ("trustwall.cli.lab:lab", "Build, inspect and tear down the lab; run the demo."),
    "fw": ("trustwall.cli.fw:fw", "Read, trace, lint and change the iptables firewall."),
}

EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in trustwall, not in the input.


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="trustwall")
@click.option("--json", "json_output", is_flag=True, help="JSON output for read commands.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, json_output: bool, debug: bool) -> None:
    """trustwall — get out through TLS interception, let in through iptables, safely.

    Exit codes: 0 ok, 1 problem found, 2 bad input, 3 unreachable or environment missing.
    """
    ctx.ensure_object(dict)
    ctx.obj["json"] = json_output
    ctx.obj["debug"] = debug


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("TRUSTWALL_DEBUG") == "1"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    try:
        cli.main(args=args, prog_name="trustwall", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("trustwall: aborted", err=True)
        return EXIT_BAD_INPUT
    except click.ClickException as exc:
        if debug:
            raise
        exc.show()
        return exc.exit_code
    except TrustwallError as exc:
        if debug:
            raise
        click.echo(f"trustwall: error: {exc}", err=True)
        if exc.hint:
            click.echo(f"trustwall: hint: {exc.hint}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("trustwall: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so in one line, full trace with --debug
        if debug:
            raise
        click.echo(f"trustwall: internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
                   err=True)
        return EXIT_INTERNAL
    return 0


if __name__ == "__main__":
    sys.exit(main())
