"""``trustwall fw trace``: which rule decides a described packet, and by which path.

Exit status: 0 whenever the trace ran, whatever the verdict (a DROP is an answer, not an
error); 2 for bad input; 3 when the live firewall cannot be read.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from importlib import import_module
from typing import Any

import click

from trustwall.cli.options import port_and_proto, single_port
from trustwall.cli.output import console, dumps, emit, json_option, print_table, styled
from trustwall.errors import BadInput
from trustwall.firewall.ir import CT_STATES as STATES
from trustwall.firewall.protocols import icmp_type_code


def _icmp(text: str | None, family: int = 4) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    try:
        return icmp_type_code(text, family)
    except ValueError:
        raise BadInput(f"--icmp-type {text!r}: give a number, TYPE/CODE or a name such as "
                       "echo-request") from None


@click.command()
@click.option("--file", "-f", "file", type=click.Path(dir_okay=False),
              help="Trace against a saved ruleset instead of the running firewall: "
                   "iptables-save text, `nft -j list ruleset` JSON or an nft text file.")
@click.option("--live", is_flag=True,
              help="Trace against the running firewall (the default): native nftables, "
                   "iptables-nft and iptables-legacy rules, every base chain by priority.")
@click.option("-6", "--ipv6", "ipv6", is_flag=True,
              help="Trace an IPv6 packet (implied by IPv6 addresses).")
@click.option("--local-addr", "local_addrs", multiple=True, metavar="ADDR[/LEN]",
              help="An address of the host (repeatable). Decides INPUT vs FORWARD; live "
                   "default: `ip -j addr`. Without it, a file trace follows both paths.")
@click.option("--proto", "-p", default=None,
              help="tcp, udp, icmp, or a protocol name/number [default: tcp].")
@click.option("--src", "-s", help="Source address.")
@click.option("--sport", metavar="PORT", help="Source port (a number or service name).")
@click.option("--dst", "-d", help="Destination address.")
@click.option("--dport", metavar="PORT",
              help="Destination port: a number, a service name (ssh) or PORT/PROTO.")
@click.option("--in", "-i", "in_iface", help="Interface the packet arrives on.")
@click.option("--out", "-o", "out_iface",
              help="Interface it would leave by (FORWARD/OUTPUT).")
@click.option("--state", default="NEW", show_default=True,
              type=click.Choice(STATES, case_sensitive=False), help="Conntrack state.")
@click.option("--icmp-type", help="ICMP type (8, 8/0, echo-request…).")
@click.option("--mark", default="0", show_default=True, help="Packet mark (0x… or decimal).")
@click.option("--outgoing", is_flag=True, help="The host itself sends it (OUTPUT chain).")
@click.option("--batch", type=click.File("r"), metavar="FILE",
              help="One JSON packet per line ({\"src\":…, \"dst\":…, \"dport\":…}); '-' for "
                   "stdin. Prints one JSON result per line.")
@json_option
def trace(file: str | None, live: bool, ipv6: bool, local_addrs: tuple[str, ...],
          proto: str | None, src: str | None, sport: str | None, dst: str | None,
          dport: str | None,
          in_iface: str | None, out_iface: str | None, state: str, icmp_type: str | None,
          mark: str, outgoing: bool, batch: Any, as_json: bool) -> None:
    """Trace a packet through the ruleset to the rule that decides it.

    Follows the kernel's order (raw, conntrack, mangle, nat, routing, INPUT or FORWARD,
    POSTROUTING), user chains, RETURN, goto, policies, MARK and NAT. Where a rule uses a match
    trustwall does not model, both outcomes are shown instead of a guess.
    """
    tr = import_module("trustwall.firewall.semantics.trace")
    ipv6 = ipv6 or ":" in (src or "") + (dst or "")  # an IPv6 packet needs ip6tables
    family = 6 if ipv6 else 4
    loaded, locals_ = _ruleset_and_locals(file, live, ipv6, local_addrs)
    for warning in loaded.warnings:
        click.echo(f"trustwall: warning: {warning}", err=True)
    ruleset = loaded.ruleset
    if batch is not None:
        _run_batch(tr, ruleset, locals_, family, batch, loaded.ownership)
        return
    if file is None and not outgoing:
        src, dst, in_iface = _live_defaults(locals_, src, dst, in_iface, 6 if ipv6 else 4)
    if not src or not dst:
        raise click.UsageError("give --src and --dst (or --batch FILE)")
    itype, icode = _icmp(icmp_type, 6 if ipv6 else 4)
    try:
        mark_value = int(mark, 0)
    except ValueError:
        raise BadInput(f"--mark {mark!r} is not a number") from None
    dport, proto = port_and_proto(dport, proto)
    sport, proto = port_and_proto(sport, proto, "--sport")
    packet = tr.Packet(src=src, dst=dst, proto=(proto or "tcp").lower(),
                       sport=None if sport is None else single_port(sport, "--sport"),
                       dport=None if dport is None else single_port(dport),
                       in_iface=in_iface, out_iface=out_iface, state=state.upper(),
                       icmp_type=itype, icmp_code=icode, mark=mark_value, local=outgoing)
    result = tr.trace(ruleset, packet, locals_)
    ownership = loaded.ownership
    emit(with_owners(result, ownership, family),
         lambda _: _render(result, ownership.host))


def with_owners(result: Any, ownership: Any, family: int) -> dict[str, Any]:
    """The trace's JSON with ``"owner"`` on every step and on each deciding rule (who
    wrote that chain or nft table: the place to change it)."""
    from trustwall.jsonable import to_jsonable

    data = to_jsonable(result)

    def mark(item: Any) -> None:
        if not (isinstance(item, dict) and "chain" in item):
            return
        if not item.get("table"):  # routing: nobody's chain
            item["owner"] = None
        elif item.get("backend") == "nft":
            item["owner"] = ownership.owner_of_nft_table(item["family"], item["table"])
        else:
            item["owner"] = ownership.owner_of(item["table"], item["chain"], family)

    for step in data.get("path", []):
        mark(step)
    mark(data.get("decided_by"))
    for outcome in data.get("outcomes", []):
        mark(outcome.get("decided_by"))
    data["owner"] = ownership.host
    return data


class _Loaded:
    """The ruleset to trace, what to warn about, and who owns it."""

    def __init__(self, ruleset: Any, warnings: tuple[str, ...], ownership: Any) -> None:
        self.ruleset, self.warnings, self.ownership = ruleset, warnings, ownership


def _version(address: str, default: int) -> int:
    return 6 if ":" in str(address) else 4 if "." in str(address) else default


def _ruleset_and_locals(file: str | None, live: bool, ipv6: bool,
                        local_addrs: tuple[str, ...]) -> tuple[_Loaded, Any]:
    """The ruleset to trace: a saved file (iptables-save, nft JSON or text), or the live
    host's whole picture (native nft, iptables-nft, legacy; IPv4 and IPv6)."""
    routing = import_module("trustwall.firewall.semantics.routing")
    detect = import_module("trustwall.firewall.owners.detect")
    if file is not None and live:
        raise click.UsageError("give either --file or --live, not both")
    if file is not None:
        locals_ = routing.from_args(list(local_addrs))
        if import_module("trustwall.firewall.nftables.show").is_nft_file(file):
            nft_live = import_module("trustwall.firewall.nftables.live")
            ruleset = nft_live.file_ir(file)
            ownership = detect.classify(detect.HostFacts(nft_tables=tuple(
                (t.family, t.name) for t in ruleset.tables if t.backend == "nft")))
            return _Loaded(ruleset, (), ownership), locals_
        ruleset = import_module("trustwall.firewall.iptables.live").read_file(file)
        ownership = import_module("trustwall.cli.fw").owners_of(ruleset, file)
        return _Loaded(ruleset, (), ownership), locals_
    family = 6 if ipv6 else 4
    found = import_module("trustwall.firewall.nftables.live").traceable(family)
    locals_ = routing.from_args(list(local_addrs)) if local_addrs else routing.read_live()
    ownership = detect.detect(rulesets=found.iptables())
    # equal priorities are said by each trace that meets them
    warnings = tuple(w for w in found.warnings if "same priority" not in w)
    return _Loaded(found.ruleset, warnings, ownership), locals_


ANY_REMOTE = {4: "192.0.2.10", 6: "2001:db8::10"}  # TEST-NET: "someone out there"


def _live_defaults(locals_: Any, src: str | None, dst: str | None, in_iface: str | None,
                   family: int) -> tuple[str, str | None, str | None]:
    """On the live host a packet coming in needs less spelling out: from any remote (a
    TEST-NET address) unless --src; arriving by the route back to its source (where the
    kernel's reverse path says it comes from) unless --in; to this host's address on that
    interface unless --dst. Each assumption is said on stderr."""
    said = []
    if src is None:
        src = ANY_REMOTE[family]
        said.append(f"from {src} (any remote; give --src)")
    if in_iface is None:
        try:
            local = locals_.is_local(ipaddress.ip_address(src))
        except ValueError:
            raise BadInput(f"--src {src!r} is not an IP address") from None
        in_iface = "lo" if local else locals_.out_interface(src)
        said.append(f"in {in_iface} (the route to {src}; give --in)" if in_iface else
                    f"on an unknown interface (no route to {src}; give --in)")
    if dst is None:
        mine = locals_.primary(in_iface, family) if in_iface else None
        if mine is None:
            mine = next((a for addrs in locals_.by_interface.values() for a in addrs
                         if a.version == family and not a.is_loopback), None)
        if mine is not None:
            dst = str(mine)
            said.append(f"to {dst} (this host; give --dst)")
    if said:
        click.echo("trustwall: tracing a packet " + ", ".join(said), err=True)
    return src, dst, in_iface


_BATCH_KEYS = {"in": "in_iface", "out": "out_iface", "outgoing": "local"}


def _run_batch(tr: Any, ruleset: Any, local: Any, family: int, stream: Any,
               ownership: Any = None) -> None:
    packets = []
    for number, line in enumerate(stream, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(line)
            fields = {_BATCH_KEYS.get(k, k): v for k, v in data.items()}
            if "icmp_type" in fields and isinstance(fields["icmp_type"], str):
                fields["icmp_type"], code = _icmp(fields["icmp_type"], _version(
                    fields.get("src", ""), family))
                fields.setdefault("icmp_code", code)
            if isinstance(fields.get("mark"), str):
                fields["mark"] = int(fields["mark"], 0)
            if fields.get("tcp_flags") is not None:
                fields["tcp_flags"] = frozenset(f.upper() for f in fields["tcp_flags"])
            packets.append(tr.Packet(**fields))
        except (ValueError, TypeError, AttributeError) as exc:
            raise BadInput(f"--batch line {number}: {exc}") from None
    write = sys.stdout.write
    for result in tr.trace_many(ruleset, packets, local):
        full = result.to_json() if ownership is None else \
            with_owners(result, ownership, _version(result.packet.src, family))
        row = {k: full[k] for k in ("packet", "verdict", "certain", "decided_by", "unknown")}
        if "outcomes" in full:
            row["outcomes"] = full["outcomes"]
        if "warnings" in full:
            row["warnings"] = full["warnings"]
        write(json.dumps(json.loads(dumps(row)), separators=(",", ":")) + "\n")


def _describe(p: Any) -> str:
    where = " ".join(x for x in (f"in {p.in_iface}" if p.in_iface else "",
                                 f"out {p.out_iface}" if p.out_iface else "") if x)
    ports = f":{p.sport}" if p.sport is not None else ""
    dports = f":{p.dport}" if p.dport is not None else ""
    icmp = f" type {p.icmp_type}" if p.icmp_type is not None else ""
    origin = "sent by this host" if p.local else (where or "interface not given")
    return f"{p.proto} {p.src}{ports} -> {p.dst}{dports}{icmp}, {p.state}, {origin}"


def _render(result: Any, owner: str = "none") -> None:
    out = console()
    out.print(styled(("Packet", "bold"), f"  {_describe(result.packet)}"), soft_wrap=True)
    if result.final_packet != result.packet:
        out.print(styled(("After NAT/MARK", "bold"), f"  {_describe(result.final_packet)}"),
                  soft_wrap=True)
    out.print(styled(("Hooks", "bold"), f"   {' -> '.join(result.hooks)}"), soft_wrap=True)
    print_table(out, ["table", "chain", "#", "action", "rule"],
                [[step.table or "-", step.chain, "" if step.rule is None else str(step.rule),
                  step.action, step.text] for step in result.path], keep=5)
    colour = {"ACCEPT": "green", "DROP": "red", "REJECT": "red"}.get(result.verdict, "yellow")
    if result.certain:
        d = result.decided_by
        by = "no rule (no table filters this path)" if d is None else (
            f"the routing decision: {d.text}" if d.chain == "routing" else
            f"{d.table_words} {d.chain} policy" if d.rule is None else
            f"{d.table_words} {d.chain} rule {d.rule}"
            + (f" (handle {d.handle})" if d.handle is not None else "") + f": {d.text}")
        mine = "" if owner in ("none", "iptables") else f" (this firewall belongs to {owner})"
        out.print(styled((result.verdict, f"bold {colour}"), f"  decided by {by}{mine}"),
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
    for warning in result.warnings:
        out.print(styled(("warning", "bold yellow"), f"  {warning}"), soft_wrap=True)

