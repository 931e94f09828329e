"""The tracer's reading of the nft conditions (``trace.index.FIELDS``: nfproto, proto_set,
ct_status, set lookups): what is certain, what is unknown (both outcomes), and that the
indexed and cached paths answer as the plain rule-by-rule walk does. The kernel oracle is in
tests/e2e/test_nft_trace_kernel.py."""

from __future__ import annotations

import ipaddress
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from trustwall.firewall import ir
from trustwall.firewall.semantics.routing import from_args
from trustwall.firewall.semantics.trace import Packet, Tracer

LOCAL = "192.0.2.10"


def rule(position: int, *conditions: ir.Condition, action: str = "accept",
         chain: str = "input", handle: int | None = None, **kw: object) -> ir.Rule:
    return ir.Rule(tuple(conditions), ir.Action(action, **kw),  # type: ignore[arg-type]
                   ir.Source("nft", "inet", "t", chain, position, handle or 100 + position,
                             render=lambda: f"rule {position}"))


def ruleset(*rules: ir.Rule, policy: str = "drop", extra: tuple[ir.Chain, ...] = (),
            tables: tuple[ir.Table, ...] = ()) -> ir.Ruleset:
    chain = ir.Chain("input", rules, ir.Hook("input", 10, policy=policy))
    return ir.Ruleset((ir.Table("nft", "inet", "t", (chain, *extra)), *tables))


def c(field: str, value: object) -> ir.Condition:
    return ir.Condition(field, value)


def addr(text: str) -> int:
    return int(ipaddress.ip_address(text))


def lookup(keys: tuple[str, ...], *elements: tuple[object, ...], negated: bool = False
           ) -> ir.Condition:
    return c("set", ir.SetLookup(keys, tuple(elements), negated))  # type: ignore[arg-type]


def span(a: int, b: int | None = None) -> ir.KeySpan:
    return ir.KeySpan(a, a if b is None else b)


def trace(rs: ir.Ruleset, packet: Packet):  # type: ignore[no-untyped-def]
    return Tracer(rs, from_args([LOCAL]), family=4).trace(packet)


def pkt(src: str = "10.0.0.1", **kw: object) -> Packet:
    kw.setdefault("sport", 40000)
    kw.setdefault("dport", 22)
    kw.setdefault("in_iface", "eth0")
    return Packet(src, LOCAL, **kw)  # type: ignore[arg-type]


def test_concatenation_lookup_accepts_only_its_pairs():
    rs = ruleset(rule(1, lookup(("src", "dport"), (span(addr("10.0.0.1")), span(22)),
                                (span(addr("10.0.0.0"), addr("10.0.0.255")), span(80, 90)))))
    assert trace(rs, pkt()).verdict == "ACCEPT"
    assert trace(rs, pkt(dport=85, src="10.0.0.7")).verdict == "ACCEPT"
    assert trace(rs, pkt(dport=23)).verdict == "DROP"
    assert trace(rs, pkt(src="10.0.0.2")).verdict == "DROP"


def test_negated_port_lookup_never_matches_a_packet_without_ports():
    rs = ruleset(rule(1, lookup(("dport",), (span(22),), negated=True), action="drop"),
                 policy="accept")
    assert trace(rs, pkt(dport=80)).verdict == "DROP"
    assert trace(rs, pkt(dport=22)).verdict == "ACCEPT"
    # nft's payload load fails on ICMP: the rule does not match, negated or not
    assert trace(rs, pkt(proto="icmp", sport=None, dport=None, icmp_type=8)).verdict == "ACCEPT"


def test_missing_port_makes_a_lookup_unknown_not_a_guess():
    rs = ruleset(rule(1, lookup(("src", "dport"), (span(addr("10.0.0.1")), span(22)))))
    result = trace(rs, pkt(dport=None))
    assert not result.certain and result.verdict == "UNKNOWN"
    assert {o.verdict for o in result.outcomes} == {"ACCEPT", "DROP"}
    assert "dport" in result.unknown[0].reason


def test_interface_and_state_lookups():
    rs = ruleset(rule(1, lookup(("iif", "ct_state"), (ir.Interface("eth", prefix=True),
                                                       "ESTABLISHED"))))
    assert trace(rs, pkt(state="ESTABLISHED")).verdict == "ACCEPT"
    assert trace(rs, pkt(state="NEW")).verdict == "DROP"
    assert trace(rs, pkt(state="ESTABLISHED", in_iface="wlan0")).verdict == "DROP"


def test_nfproto_and_protocol_sets():
    v6 = c("nfproto", ir.IpVersion(frozenset({6})))
    udp_or_tcp = c("proto_set", ir.ProtocolSet(frozenset({6, 17})))
    rs = ruleset(rule(1, v6), rule(2, udp_or_tcp))
    result = trace(rs, pkt())
    assert result.verdict == "ACCEPT" and result.decided_by.rule == 2
    assert trace(rs, pkt(proto="icmp", sport=None, dport=None, icmp_type=8)).verdict == "DROP"


def test_ct_status_dnat_is_known_from_the_path():
    """firewalld's ``ct status dnat accept``: a NEW packet nobody DNATed does not match; after
    a DNAT on its way it does; an INVALID packet has no connection, so neither does the
    negation; an ESTABLISHED one's NAT history is unknown."""
    dnat = c("ct_status", ir.CtStatus(frozenset({"dnat"})))
    not_dnat = c("ct_status", ir.CtStatus(frozenset({"dnat"}), negated=True))
    rs = ruleset(rule(1, dnat), policy="drop")
    assert trace(rs, pkt()).verdict == "DROP"
    assert trace(rs, pkt(state="INVALID")).verdict == "DROP"
    assert not trace(rs, pkt(state="ESTABLISHED")).certain
    rs_neg = ruleset(rule(1, not_dnat), policy="drop")
    assert trace(rs_neg, pkt()).verdict == "ACCEPT"
    assert trace(rs_neg, pkt(state="INVALID")).verdict == "DROP"
    seen = ruleset(rule(1, c("ct_status", ir.CtStatus(frozenset({"seen-reply"})))))
    assert trace(seen, pkt(state="ESTABLISHED")).verdict == "ACCEPT"
    nat = ir.Chain("pre", (ir.Rule(
        (c("dport", ir.PortSet((ir.PortRange(8080, 8080),))),),
        ir.Action("nat", rewrite=ir.Nat("dnat", LOCAL, 22), name="dnat"),
        ir.Source("nft", "inet", "t", "pre", 1, 7)),), ir.Hook("prerouting", -100, "nat"))
    with_nat = ruleset(rule(1, dnat), extra=(nat,))
    result = trace(with_nat, pkt(dport=8080))
    assert result.verdict == "ACCEPT" and result.decided_by.rule == 1


def test_vmap_elements_report_the_nft_rule_position():
    """A verdict map is several IR rules of one nft rule: the trace names the nft position."""
    rs = ruleset(rule(1, c("proto", ir.Protocol(17))),
                 rule(2, lookup(("dport",), (span(22),)), action="accept"),
                 rule(2, lookup(("dport",), (span(23),)), action="drop"))
    result = trace(rs, pkt(dport=23))
    assert result.verdict == "DROP" and result.decided_by.rule == 2
    assert result.decided_by.handle == 102


def test_accept_is_named_by_the_filter_chain_nearest_priority_zero():
    rs = ruleset(rule(1, lookup(("dport",), (span(22),))))
    result = trace(rs, pkt())
    assert result.verdict == "ACCEPT" and result.decided_by is not None
    assert (result.decided_by.table, result.decided_by.rule) == ("t", 1)


SRCS = ["10.0.0.1", "10.0.0.7", "10.0.1.1", "10.9.9.9", "172.16.0.1", "203.0.113.9"]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_indexed_cached_and_plain_walks_agree(seed: int):
    rng = random.Random(seed)

    def element() -> tuple[object, ...]:
        a = addr(rng.choice(SRCS))
        return (span(a, a + rng.choice([0, 0, 255])), span(rng.choice([22, 80]),
                                                           rng.choice([22, 90])))

    rules = []
    for i in range(1, 8):
        conds = []
        if rng.random() < 0.5:
            a = addr(rng.choice(SRCS))
            conds.append(lookup(("src",), (span(a, a + rng.choice([0, 255])),),
                                negated=rng.random() < 0.3))
        if rng.random() < 0.4:
            conds.append(lookup(("dport",), (span(22),), (span(80, 90),),
                                negated=rng.random() < 0.3))
        if rng.random() < 0.3:
            conds.append(lookup(("src", "dport"), *(element() for _ in range(3))))
        rules.append(rule(i, *conds, action=rng.choice(["accept", "drop", "continue"])))
    rs = ruleset(*rules)
    packets = [pkt(rng.choice(SRCS), dport=rng.choice([22, 23, 80, 85, 90, 91]))
               for _ in range(20)]
    tracer = Tracer(rs, from_args([LOCAL]), family=4)
    plain = [tracer.trace(p) for p in packets]
    cached = Tracer(rs, from_args([LOCAL]), family=4).trace_many(packets + packets)
    for p, a, b in zip(packets + packets, plain + plain, cached, strict=True):
        assert (a.verdict, a.decided_by) == (b.verdict, b.decided_by), p
        # the same rules, read one by one (no index): every SetLookup by its own matches()
        hit = next((r for r in rules if all(
            cond.value.matches(tuple(
                {"src": addr(p.src), "dport": p.dport}[k] for k in cond.value.keys))
            for cond in r.conditions) and r.action.kind != "continue"), None)
        expected = "DROP" if hit is None else hit.action.kind.upper()
        assert a.verdict == expected
