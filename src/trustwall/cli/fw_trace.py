"""``trustwall fw trace``: which rule decides a described packet, and by which path.

Exit status: 0 whenever the trace ran, whatever the verdict (a DROP is an answer, not an
error); 2 for bad input; 3 when the live firewall cannot be read.
"""

from __future__ import annotations

import json
import sys
from importlib import import_module
from typing import Any

import click

from trustwall.cli.output import console, dumps, emit, json_option, print_table, styled
from trustwall.errors import BadInput

_ICMP_NAMES = {"echo-reply": 0, "destination-unreachable": 3, "redirect": 5,
               "echo-request": 8, "time-exceeded": 11, "parameter-problem": 12}
_STATES = ("NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED")


def _icmp(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    itype, _, code = text.partition("/")
    try:
        number = _ICMP_NAMES[itype] if itype in _ICMP_NAMES else int(itype)
        return number, int(code) if code else None
    except ValueError:
        raise BadInput(f"--icmp-type {text!r}: give a number, TYPE/CODE or a name such as "
                       "echo-request") from None


@click.command()
@click.option("--file", "-f", "file", type=click.Path(dir_okay=False),
              help="Trace against an iptables-save file instead of the running firewall.")
@click.option("--live", is_flag=True, help="Trace against the running firewall (the default).")
@click.option("-6", "--ipv6", "ipv6", is_flag=True,
              help="Live: read ip6tables (implied by IPv6 addresses).")
@click.option("--local-addr", "local_addrs", multiple=True, metavar="ADDR[/LEN]",
              help="An address of the host (repeatable). Decides INPUT vs FORWARD; live "
                   "default: `ip -j addr`. Without it, a file trace follows both paths.")
@click.option("--proto", "-p", default="tcp", show_default=True,
              help="tcp, udp, icmp, or a protocol name/number.")
@click.option("--src", "-s", help="Source address.")
@click.option("--sport", type=click.IntRange(0, 65535), help="Source port.")
@click.option("--dst", "-d", help="Destination address.")
@click.option("--dport", type=click.IntRange(0, 65535), help="Destination port.")
@click.option("--in", "in_iface", help="Interface the packet arrives on.")
@click.option("--out", "out_iface", help="Interface it would leave by (FORWARD/OUTPUT).")
@click.option("--state", default="NEW", show_default=True,
              type=click.Choice(_STATES, case_sensitive=False), help="Conntrack state.")
@click.option("--icmp-type", help="ICMP type (8, 8/0, echo-request…).")
@click.option("--mark", default="0", show_default=True, help="Packet mark (0x… or decimal).")
@click.option("--outgoing", is_flag=True, help="The host itself sends it (OUTPUT chain).")
@click.option("--batch", type=click.File("r"), metavar="FILE",
              help="One JSON packet per line ({\"src\":…, \"dst\":…, \"dport\":…}); '-' for "
                   "stdin. Prints one JSON result per line.")
@json_option
def trace(file: str | None, live: bool, ipv6: bool, local_addrs: tuple[str, ...], proto: str,
          src: str | None, sport: int | None, dst: str | None, dport: int | None,
          in_iface: str | None, out_iface: str | None, state: str, icmp_type: str | None,
          mark: str, outgoing: bool, batch: Any, as_json: bool) -> None:
    """Trace a packet through the ruleset to the rule that decides it.

    Follows the kernel's order (raw, conntrack, mangle, nat, routing, INPUT or FORWARD,
    POSTROUTING), user chains, RETURN, goto, policies, MARK and NAT. Where a rule uses a match
    trustwall does not model, both outcomes are shown instead of a guess.
    """
    tr = import_module("trustwall.firewall.trace")
    ipv6 = ipv6 or ":" in (src or "") + (dst or "")  # an IPv6 packet needs ip6tables
    tracer = tr.Tracer(*_ruleset_and_locals(file, live, ipv6, local_addrs))
    if batch is not None:
        _run_batch(tr, tracer, batch)
        return
    if not src or not dst:
        raise click.UsageError("give --src and --dst (or --batch FILE)")
    itype, icode = _icmp(icmp_type)
    try:
        mark_value = int(mark, 0)
    except ValueError:
        raise BadInput(f"--mark {mark!r} is not a number") from None
    packet = tr.Packet(src=src, dst=dst, proto=proto.lower(), sport=sport, dport=dport,
                       in_iface=in_iface, out_iface=out_iface, state=state.upper(),
                       icmp_type=itype, icmp_code=icode, mark=mark_value, local=outgoing)
    emit(tracer.trace(packet), _render)


def _ruleset_and_locals(file: str | None, live: bool, ipv6: bool,
                        local_addrs: tuple[str, ...]) -> tuple[Any, Any]:
    api = import_module("trustwall.firewall.live")
    routing = import_module("trustwall.firewall.routing")
    if file is not None and live:
        raise click.UsageError("give either --file or --live, not both")
    if file is not None:
        return api.read_file(file), routing.from_args(list(local_addrs))
    ruleset = api.read_live(family=6 if ipv6 else 4)
    locals_ = routing.from_args(list(local_addrs)) if local_addrs else routing.read_live()
    return ruleset, locals_


_BATCH_KEYS = {"in": "in_iface", "out": "out_iface", "outgoing": "local"}


def _run_batch(tr: Any, tracer: Any, stream: Any) -> None:
    packets = []
    for number, line in enumerate(stream, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(line)
            fields = {_BATCH_KEYS.get(k, k): v for k, v in data.items()}
            if "icmp_type" in fields and isinstance(fields["icmp_type"], str):
                fields["icmp_type"], code = _icmp(fields["icmp_type"])
                fields.setdefault("icmp_code", code)
            if isinstance(fields.get("mark"), str):
                fields["mark"] = int(fields["mark"], 0)
            if fields.get("tcp_flags") is not None:
                fields["tcp_flags"] = frozenset(f.upper() for f in fields["tcp_flags"])
            packets.append(tr.Packet(**fields))
        except (ValueError, TypeError, AttributeError) as exc:
            raise BadInput(f"--batch line {number}: {exc}") from None
    write = sys.stdout.write
    for result in tracer.trace_many(packets):
        full = result.to_json()
        row = {k: full[k] for k in ("packet", "verdict", "certain", "decided_by", "unknown")}
        if "outcomes" in full:
            row["outcomes"] = full["outcomes"]
        write(json.dumps(json.loads(dumps(row)), separators=(",", ":")) + "\n")


def _describe(p: Any) -> str:
    where = " ".join(x for x in (f"in {p.in_iface}" if p.in_iface else "",
                                 f"out {p.out_iface}" if p.out_iface else "") if x)
    ports = f":{p.sport}" if p.sport is not None else ""
    dports = f":{p.dport}" if p.dport is not None else ""
    icmp = f" type {p.icmp_type}" if p.icmp_type is not None else ""
    origin = "sent by this host" if p.local else (where or "interface not given")
    return f"{p.proto} {p.src}{ports} -> {p.dst}{dports}{icmp}, {p.state}, {origin}"


def _render(result: Any) -> None:
    out = console()
    out.print(styled(("Packet", "bold"), f"  {_describe(result.packet)}"), soft_wrap=True)
    if result.final_packet != result.packet:
        out.print(styled(("After NAT/MARK", "bold"), f"  {_describe(result.final_packet)}"),
                  soft_wrap=True)
    out.print(styled(("Hooks", "bold"), f"   {' -> '.join(result.hooks)}"), soft_wrap=True)
    print_table(out, ["table", "chain", "#", "action", "rule"],
                [[step.table or "-", step.chain, "" if step.rule is None else str(step.rule),
                  step.action, step.text] for step in result.path], keep=4)
    colour = {"ACCEPT": "green", "DROP": "red", "REJECT": "red"}.get(result.verdict, "yellow")
    if result.certain:
        d = result.decided_by
        by = "no rule (no table filters this path)" if d is None else (
            f"the routing decision: {d.text}" if d.chain == "routing" else
            f"{d.table} {d.chain} policy" if d.rule is None else
            f"{d.table} {d.chain} rule {d.rule}: {d.text}")
        out.print(styled((result.verdict, f"bold {colour}"), f"  decided by {by}"),
                  soft_wrap=True)
    else:
        out.print(styled(("UNKNOWN", "bold yellow"), "  the outcome depends on "
                         f"{len(result.unknown)} thing(s) trustwall cannot decide:"),
                  soft_wrap=True)
    for u in result.unknown:
        where = f"{u.table} {u.chain} rule {u.rule}" if u.rule is not None else u.chain
        out.print(styled(f"  ? {where}: {u.reason}", (f"  {u.text}" if u.rule else "", "dim")),
                  soft_wrap=True)
    if not result.certain:
        for o in result.outcomes:
            d = o.decided_by
            by = "-" if d is None else f"{d.table} {d.chain} " + (
                "policy" if d.rule is None else f"rule {d.rule}")
            cond = ", ".join(f"{'yes' if a.holds else 'no'}: {a.unknown.chain}"
                             + (f" {a.unknown.rule}" if a.unknown.rule else "")
                             for a in o.assuming)
            out.print(f"  -> {o.verdict} by {by}  (if {cond})", soft_wrap=True)
        if not result.complete:
            out.print("  (too many combinations: not every outcome was followed)")

