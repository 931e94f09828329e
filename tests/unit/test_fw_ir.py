"""The firewall IR as the analyses' only input: iptables compiles to it (rewrites read once
from the registry), and the trace and packet spaces walk any IR ruleset — base chains of
several tables by priority, accept ending only its base chain, unknown condition fields
followed both ways, equal priorities reported."""

from __future__ import annotations

from trustwall.firewall import ir
from trustwall.firewall.analysis.lint import lint
from trustwall.firewall.iptables.parse import parse_save
from trustwall.firewall.semantics.routing import from_args
from trustwall.firewall.semantics.trace import Packet, Tracer
from trustwall.firewall.semantics.unfold import rule_space, unfold, universe_for

IPT = ("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
       "-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n")
SSH = Packet(src="192.0.2.1", dst="192.0.2.2", proto="tcp", sport=40000, dport=22,
             in_iface="eth0")
HOST = from_args(["192.0.2.2"])
WEB = Packet(src="192.0.2.1", dst="192.0.2.2", proto="tcp", sport=40000, dport=80,
             in_iface="eth0")


def _nft_table(priority: int, *rules: ir.Rule, policy: str = "accept") -> ir.Table:
    return ir.Table("nft", "inet", "fw", (ir.Chain("input", rules, ir.Hook(
        "input", priority, "filter", policy, f"policy {policy}")),))


def _rule(*conditions: ir.Condition, kind: str = "accept", position: int = 1) -> ir.Rule:
    return ir.Rule(conditions, ir.Action(kind), ir.Source("nft", "inet", "fw", "input",
                                                          position, handle=position + 3,
                                                          render=lambda: f"rule {position}"))


def _dport(port: int) -> ir.Condition:
    return ir.Condition("dport", ir.PortSet((ir.PortRange(port, port),)))


def _with_nft(table: ir.Table) -> ir.Ruleset:
    return ir.Ruleset((table, *parse_save(IPT).to_ir().tables))


def test_iptables_compiles_to_base_chains_and_is_cached() -> None:
    rs = parse_save(IPT + "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n"
                    ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
                    "-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.9:8080\n"
                    "-A POSTROUTING -o eth1 -j MASQUERADE\nCOMMIT\n")
    compiled = rs.to_ir()
    assert rs.to_ir() is compiled  # repeated traces and analyses do not recompile
    at_input = [(t.name, c.base.priority, c.base.type)
                for t, c in compiled.base_chains(4, "input")]  # type: ignore[union-attr]
    assert at_input == [("filter", 0, "filter"), ("nat", 100, "nat")]
    dnat = compiled.tables[1].chain("PREROUTING").rules[0]  # type: ignore[union-attr]
    assert dnat.action == ir.Action("nat", rewrite=ir.Nat("dnat", "10.0.0.9", 8080),
                                    name="DNAT")
    assert dnat.source.text == "-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.9:8080"
    masq = compiled.tables[1].chain("POSTROUTING").rules[0]  # type: ignore[union-attr]
    assert masq.conditions == (ir.Condition("oif", ir.Interface("eth1")),)


def test_mark_and_connmark_rewrites_come_from_the_registry() -> None:
    rs = parse_save("*mangle\n:PREROUTING ACCEPT [0:0]\n"
                    "-A PREROUTING -j MARK --set-mark 0x10/0xf0\n"
                    "-A PREROUTING -j CONNMARK --save-mark\n"
                    "-A PREROUTING -j MARK --or-mark 0x1\nCOMMIT\n")
    rewrites = [r.action.rewrite for r in rs.to_ir().tables[0].chains[0].rules]
    assert rewrites == [ir.SetMark(0x10, 0xF0), ir.MarkCopy(True), ir.SetMark(1, 1)]


def test_accept_ends_only_its_base_chain() -> None:
    """An nft table at priority -10 accepts ssh; iptables' filter (0) still drops it."""
    rs = _with_nft(_nft_table(-10, _rule(_dport(22))))
    result = Tracer(rs, HOST, family=4).trace(SSH)
    assert result.verdict == "DROP"
    assert result.decided_by is not None and result.decided_by.backend == "iptables"
    assert result.decided_by.text == "-P INPUT DROP"
    assert [s.table for s in result.path] == ["", "fw", "filter"]  # routing, then both
    assert not result.warnings


def test_drop_in_an_earlier_base_chain_is_final() -> None:
    rs = _with_nft(_nft_table(-10, _rule(_dport(80), kind="drop")))
    result = Tracer(rs, HOST, family=4).trace(WEB)
    assert result.verdict == "DROP"
    d = result.decided_by
    assert d is not None and (d.backend, d.family, d.table, d.chain, d.rule, d.handle,
                              d.text) == ("nft", "inet", "fw", "input", 1, 4, "rule 1")
    assert result.to_json()["decided_by"] == d


def test_equal_priorities_are_reported_not_guessed() -> None:
    rs = _with_nft(_nft_table(0, _rule(_dport(80))))
    result = Tracer(rs, HOST, family=4).trace(WEB)
    assert result.verdict == "ACCEPT"
    assert result.warnings and "undefined" in result.warnings[0]
    assert result.to_json()["warnings"] == list(result.warnings)


def test_an_unknown_condition_field_is_opaque_not_a_crash() -> None:
    """A field no analysis knows (a frontend ahead of them) behaves as an opaque condition:
    the trace follows both outcomes and the packet space is "may match" only."""
    odd = ir.Condition("ct_helper", "ftp")
    rs = ir.Ruleset((_nft_table(0, _rule(odd, kind="drop"), policy="accept"),))
    result = Tracer(rs, HOST).trace(WEB)
    assert not result.certain and {o.verdict for o in result.outcomes} == {"ACCEPT", "DROP"}
    u = universe_for(rs)
    space = rule_space(rs.tables[0].chains[0].rules[0], u)
    assert space.may and not space.must and space.unknown == ("ct_helper",)
    flat = unfold(rs, "fw", "input", u)
    assert [f.action for f in flat.rules] == ["DROP"] and flat.policy == "ACCEPT"


def test_lint_reads_an_ir_ruleset() -> None:
    rs = ir.Ruleset((_nft_table(0, _rule(_dport(80)), _rule(_dport(80), position=2)),))
    findings = lint(rs).findings
    assert [(f.kind, f.rule, f.blocked_by) for f in findings] == [("shadowed", 2, (1,))]


def test_equal_priorities_that_change_the_answer_make_it_unknown() -> None:
    """nft rejects port 80 and iptables' filter drops it, both at priority 0: which one
    decides depends on an order the kernel leaves undefined, so the answer says UNKNOWN."""
    ipt = parse_save("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                     ":OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 80 -j DROP\nCOMMIT\n")
    rs = ir.Ruleset((_nft_table(0, _rule(_dport(80), kind="reject")), *ipt.to_ir().tables))
    result = Tracer(rs, HOST, family=4).trace(WEB)
    assert result.verdict == "UNKNOWN" and not result.certain
    assert {(o.verdict, o.decided_by.backend) for o in result.outcomes  # type: ignore[union-attr]
            } == {("REJECT", "nft"), ("DROP", "iptables")}
    assert result.unknown[0].chain == "priority" and "undefined" in result.unknown[0].reason
    assert Tracer(rs, HOST, family=4).trace(SSH).certain  # port 22: no order matters


def test_an_ir_ruleset_with_both_versions_is_traced_per_packet_version() -> None:
    """An inet table feeds IPv4 and IPv6; trace() picks the packet's own version."""
    from trustwall.firewall.semantics.trace import trace, trace_many

    rs = ir.Ruleset((_nft_table(0, _rule(_dport(80), kind="drop")),
                     *parse_save(IPT).to_ir().tables))
    v6 = Packet(src="2001:db8::1", dst="2001:db8::2", proto="tcp", sport=40000, dport=80,
                in_iface="eth0")
    assert trace(rs, v6, from_args(["2001:db8::2"])).verdict == "DROP"
    both = trace_many(rs, [WEB, v6], from_args(["192.0.2.2", "2001:db8::2"]))
    assert [r.verdict for r in both] == ["DROP", "DROP"]
