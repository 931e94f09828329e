"""``trustwall why URL`` and ``trustwall why-in PORT``: the connectivity doctor's ladders.

Exit 0 when every rung passes, 1 at the first broken rung, 2 for bad input, 3 when the tool
cannot run. Only argument parsing and rendering live here (:mod:`trustwall.doctor`)."""

from __future__ import annotations

import click

from trustwall.cli.options import port_and_proto, single_port
from trustwall.cli.output import console, emit, json_option, styled
from trustwall.clients import CLIENTS

_MARK = {"ok": "ok", "broken": "BROKEN", "skipped": "skipped", "warning": "warning"}
_STYLE = {"ok": "green", "broken": "bold red", "skipped": "dim", "warning": "yellow"}


def _show(ladder) -> None:  # type: ignore[no-untyped-def]
    out = console()
    out.print(ladder.target, style="bold", soft_wrap=True)
    skipped = [r.name for r in ladder.rungs if r.status == "skipped" and
               r.found.startswith("not checked: the ")]
    for rung in ladder.rungs:
        if rung.name in skipped:
            continue
        style = _STYLE[rung.status]
        out.print(styled((f"{_MARK[rung.status]:>8}", style), "  ", (rung.name, "bold"),
                         f": {rung.found}"), soft_wrap=True)
        if rung.status != "skipped":
            out.print(f"{'':>10}checked: {rung.checked}", style="dim", soft_wrap=True)
        if rung.next_command and rung.status in ("broken", "warning"):
            out.print(f"{'':>10}next: {rung.next_command}", soft_wrap=True)
    if skipped:
        out.print(f"{'skipped':>8}  {', '.join(skipped)}: not checked, they depend on "
                  "the broken rung", style="dim", soft_wrap=True)
    if ladder.broken:
        out.print(styled("broken at: ", (ladder.broken, "bold red")), soft_wrap=True)
    else:
        out.print("every rung passes", style="green")


@click.command()
@click.argument("url")
@click.option("--client", type=click.Choice(CLIENTS), default="curl",
    show_default=True, help="Whose view: its proxy variables and its trust store.")
@click.option("--proxy", "proxy_url", metavar="URL",
              help="Use this HTTP proxy instead of the client's environment.")
@click.option("--timeout", type=click.FloatRange(0.1, 120), default=5.0, show_default=True,
              help="Seconds for each connection attempt.")
@json_option
@click.pass_context
def why(ctx: click.Context, url: str, client: str, proxy_url: str | None, timeout: float,
        as_json: bool) -> None:
    """Why can't this host reach URL? DNS, route, TCP, proxy, TLS, trust, HTTP: the first
    broken rung and the command that fixes it."""
    from trustwall.doctor.outbound import why as climb

    ladder = climb(url, client=client, proxy_url=proxy_url, timeout=timeout)
    emit(ladder, _show)
    ctx.exit(ladder.exit_code)


@click.command(name="why-in")
@click.argument("port")
@click.option("--proto", "-p", type=click.Choice(["tcp", "udp"]), default=None,
              help="[default: tcp]")
@click.option("--from", "--src", "-s", "source", metavar="IP",
              help="The remote address (default: any remote, tested as 192.0.2.10).")
@json_option
@click.pass_context
def why_in(ctx: click.Context, port: str, proto: str | None, source: str | None,
           as_json: bool) -> None:
    """Why can't others reach PORT on this host? Listening socket, bind address, host name
    (the JMX 127.0.1.1 trap), firewall INPUT, replies: the first broken rung and its fix.

    PORT is a number, a service name (ssh) or PORT/PROTO (18745/tcp)."""
    from trustwall.doctor.inbound import why_in as climb

    number, proto = port_and_proto(port, proto, "PORT")
    if proto not in ("tcp", "udp"):
        raise click.BadParameter(f"{port!r}: why-in checks tcp or udp", param_hint="PORT")
    ladder = climb(single_port(number or "", "PORT"), proto=proto, source=source)
    emit(ladder, _show)
    ctx.exit(ladder.exit_code)
