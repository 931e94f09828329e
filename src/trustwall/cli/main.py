"""Entry point: ``trustwall``. Maps the exception hierarchy to exit codes and one-line errors.

Start-up time is a goal (``trustwall --help`` within 3x of ``python -c pass``). click alone
costs more than bare Python, so this module imports nothing heavy: the top-level ``--help`` and
``--version`` are answered from the command table below, and the click application
(``trustwall.cli.app``) is imported only to run a command. A test checks that the fast help is
the exact text click would print.
"""

from __future__ import annotations

import os
import sys
import textwrap

from trustwall import __version__
from trustwall.errors import EXIT_BAD_INPUT, TrustwallError

# Subcommands, imported on use. Order of the listing is alphabetical.
COMMANDS: dict[str, tuple[str, str]] = {
    "lab": ("trustwall.cli.lab:lab", "Build, inspect and tear down the lab; run the demo."),
    "fw": ("trustwall.cli.fw:fw", "Read, trace, lint and change the iptables firewall."),
    "probe": ("trustwall.cli.probe:probe", "Show the presented TLS chain; which clients trust it."),
    "explain": ("trustwall.cli.explain:explain",
                "Explain a pasted TLS/connection error; next step."),
    "scan": ("trustwall.cli.scan:scan", "Probe many endpoints concurrently (asyncio)."),
    "cert": ("trustwall.cli.cert:cert", "Show, convert, lint and hash certificates (any format)."),
    "rehash": ("trustwall.cli.rehash:rehash", "Make OpenSSL CApath hash links, as openssl rehash."),
    "log": ("trustwall.cli.journal:log", "Show the audit journal of changes; --verify the chain."),
    "undo": ("trustwall.cli.journal:undo_cmd", "Undo a transaction (default: the latest)."),
    "recover": ("trustwall.cli.journal:recover_cmd",
                "Roll back a change a crash interrupted; log it."),
    "stores": ("trustwall.cli.stores:stores", "List the trust stores found and who reads each."),
    "ca": ("trustwall.cli.ca:ca", "Install, remove, list (and fetch) trusted CAs in every store."),
    "verify": ("trustwall.cli.verify:verify", "Run the real clients against a URL (ok/FAIL)."),
    "fix": ("trustwall.cli.fix:fix", "Fetch the CA in the way, trust it everywhere, verify."),
    "why": ("trustwall.cli.doctor:why", "Why can't this host reach URL? The broken rung, fix."),
    "why-in": ("trustwall.cli.doctor:why_in", "Why can't others reach PORT here? Broken rung."),
    "completion": ("trustwall.cli.completion:completion",
                   "Print the bash, zsh or fish completion script."),
    "man": ("trustwall.cli.man:man", "Print the manual page (trustwall man | man -l -)."),
}

EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in trustwall, not in the input.

DESCRIPTION = (
    "trustwall — get out through TLS interception, let in through iptables, safely.",
    "Exit codes: 0 ok, 1 problem found, 2 bad input, 3 unreachable or environment missing.",
)
# (option, help) of the top-level group, in click's display order.
TOP_OPTIONS = (
    ("-V, --version", "Show the version and exit."),
    ("--json", "JSON output for read commands."),
    ("--debug", "Show tracebacks for errors."),
    ("-h, --help", "Show this message and exit."),
)
HELP_WIDTH = 80  # click's default maximum width


def _definition_list(rows: list[tuple[str, str]], width: int) -> list[str]:
    """Two columns the way click's HelpFormatter.write_dl lays them out (indent 2, gap 2)."""
    first = min(max(len(term) for term, _ in rows), 30)
    lines = []
    for term, text in rows:
        prefix = "  " + term
        if len(term) <= first:
            prefix = prefix.ljust(2 + first + 2)
            wrapped = textwrap.wrap(text, max(width - len(prefix), 10)) or [""]
            lines.append(prefix + wrapped[0])
            lines.extend(" " * len(prefix) + more for more in wrapped[1:])
        else:
            lines.append(prefix)
            indent = " " * (2 + first + 2)
            lines.extend(indent + more for more in textwrap.wrap(text, width - len(indent)))
    return lines


def top_help() -> str:
    """The top-level ``--help`` text, without importing click."""
    import shutil

    width = max(min(shutil.get_terminal_size().columns, HELP_WIDTH) - 2, 50)
    lines = ["Usage: trustwall [OPTIONS] COMMAND [ARGS]...", ""]
    for para in DESCRIPTION:
        lines.extend(textwrap.wrap(para, width, initial_indent="  ", subsequent_indent="  "))
        lines.append("")
    lines.append("Options:")
    lines.extend(_definition_list(list(TOP_OPTIONS), width))
    lines.append("")
    lines.append("Commands:")
    lines.extend(_definition_list(sorted((n, h) for n, (_, h) in COMMANDS.items()), width))
    return "\n".join(lines) + "\n"


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("TRUSTWALL_DEBUG") == "1"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--help"], ["-h"]):
        sys.stdout.write(top_help())
        return 0
    if args in (["--version"], ["-V"]):
        sys.stdout.write(f"trustwall, version {__version__}\n")
        return 0
    return _run_click(args)


def _run_click(args: list[str]) -> int:
    import click

    from trustwall.cli.app import cli

    debug = _debug_requested(args)
    try:
        # With standalone_mode=False a command's ctx.exit(n) comes back as the return value.
        returned = cli.main(args=args, prog_name="trustwall", standalone_mode=False)
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
        from trustwall.cli.output import visible
        from trustwall.errors import ProblemFound

        # A finding (exit 1: untrusted chain, rulesets differ) is the answer, not a failure of
        # trustwall: it is summed up without the word "error".
        label = "" if isinstance(exc, ProblemFound) else "error: "
        click.echo(f"trustwall: {label}{visible(str(exc), one_line=True)}", err=True)
        if exc.hint:
            click.echo(f"trustwall: hint: {visible(exc.hint, one_line=True)}", err=True)
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
    return returned if isinstance(returned, int) else 0


if __name__ == "__main__":
    sys.exit(main())
