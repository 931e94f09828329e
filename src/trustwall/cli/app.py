"""The click application: the top-level group and its global options."""

from __future__ import annotations

import click

from trustwall import __version__
from trustwall.cli.lazy import LazyGroup
from trustwall.cli.main import COMMANDS, DESCRIPTION


@click.group(cls=LazyGroup, lazy=COMMANDS, help="\n\n".join(DESCRIPTION),
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="trustwall")
@click.option("--json", "json_output", is_flag=True, help="JSON output for read commands.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, json_output: bool, debug: bool) -> None:
    ctx.ensure_object(dict)
    ctx.obj["json"] = json_output
    ctx.obj["debug"] = debug
