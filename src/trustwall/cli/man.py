"""``trustwall man``: the manual page, generated from the command tree itself.

Every command's help, arguments and options come from the click definitions, so the page
cannot drift from the program. ``trustwall man | man -l -`` reads it; ``trustwall man >
/usr/local/share/man/man1/trustwall.1`` installs it.
"""

from __future__ import annotations

import datetime as _dt
import inspect

import click

from trustwall import __version__


def roff(text: str) -> str:
    """Text safe in a roff body: backslashes doubled, no line starting with a control dot."""
    lines = text.replace("\\", "\\e").splitlines()
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in lines)


def _walk(group: click.Group, ctx: click.Context, prefix: list[str]
          ) -> list[tuple[list[str], click.Command, click.Context]]:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=name, parent=ctx)
        found.append(([*prefix, name], command, sub))
        if isinstance(command, click.Group):
            found.extend(_walk(command, sub, [*prefix, name]))
    return found


def _section(path: list[str], command: click.Command, ctx: click.Context) -> list[str]:
    usage = " ".join(command.collect_usage_pieces(ctx))
    out = [f'.SS "trustwall {" ".join(path)}"', f".B trustwall {' '.join(path)}",
           roff(usage), ".PP", roff(inspect.cleandoc(command.help or "").replace("\b\n", ""))]
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        term, help_text = record
        out += [".TP", f".B {roff(term)}", roff(help_text)]
    return out


def man_page() -> str:
    """The whole manual (section 1) as roff text."""
    from trustwall.cli.app import cli
    from trustwall.cli.main import DESCRIPTION, TOP_OPTIONS

    ctx = click.Context(cli, info_name="trustwall")
    date = _dt.date.today().isoformat()
    lines = [f'.TH TRUSTWALL 1 "{date}" "trustwall {__version__}" "User Commands"',
             ".SH NAME", "trustwall \\- " + roff(DESCRIPTION[0].split(" — ", 1)[-1]),
             ".SH SYNOPSIS", ".B trustwall", "[OPTIONS] COMMAND [ARGS]...",
             ".SH DESCRIPTION", roff(DESCRIPTION[0]), ".PP", roff(DESCRIPTION[1]),
             ".SH OPTIONS"]
    for term, help_text in TOP_OPTIONS:
        lines += [".TP", f".B {roff(term)}", roff(help_text)]
    lines.append(".SH COMMANDS")
    for path, command, sub in _walk(cli, ctx, []):
        lines += _section(path, command, sub)
    lines += [".SH ENVIRONMENT", ".TP", ".B TRUSTWALL_STATE_DIR",
              "Journal directory (default /var/lib/trustwall).", ".TP", ".B NO_COLOR",
              "No colours.", ".TP", ".B TRUSTWALL_DEBUG=1", "Tracebacks for errors.",
              ".SH SEE ALSO", "iptables(8), iptables-save(8), update-ca-certificates(8), "
              "keytool(1), certutil(1)"]
    return "\n".join(lines) + "\n"


@click.command("man")
def man() -> None:
    """Print the manual page (roff); read it with: trustwall man | man -l -"""
    click.echo(man_page(), nl=False)
