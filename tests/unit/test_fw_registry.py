"""The extension registry: every fact about an extension is in its row, and the layers agree."""

from __future__ import annotations

import pytest

from trustwall.firewall.iptables import extensions as ext
from trustwall.firewall.iptables.parse import parse_rule_spec, parse_save
from trustwall.firewall.iptables.render import listing_line
from trustwall.firewall.ir import Opaque, PortSet
from trustwall.firewall.semantics.trace import Packet, Tracer
from trustwall.firewall.semantics.unfold import rule_space, universe_for


def test_modelled_options_are_options_of_the_row_and_have_a_meaning() -> None:
    for name, row in ext.MATCH_EXTENSIONS.items():
        if row.modelled is None:
            continue
        assert row.meaning is not None, name
        assert row.spec is not None, name
        known = {o.name for o in row.spec.options}
        assert row.modelled <= known, (name, row.modelled - known)


def test_every_target_the_trace_classes_is_a_declared_target() -> None:
    classed = ext.FINAL_TARGETS | ext.CONTINUING_TARGETS | ext.NAT_TARGETS | ext.MARK_SETTERS
    assert classed <= ext.TARGET_NAMES
    assert {"ACCEPT", "DROP", "RETURN", "QUEUE", "TCPMSS", "CHECKSUM", "CT"} <= ext.TARGET_NAMES
    assert not ext.FINAL_TARGETS & ext.CONTINUING_TARGETS


def test_a_match_means_conditions_and_an_unmodelled_option_is_opaque() -> None:
    rule = parse_rule_spec("-p tcp -m tcp --dport 22 --tcp-option 2 -j ACCEPT", chain="INPUT")
    conds = ext.conditions(rule.matches[0])
    fields = [c.field for c in conds]
    assert fields == ["opaque", "dport"]
    assert isinstance(conds[0].value, Opaque) and "--tcp-option" in conds[0].value.why
    assert isinstance(conds[1].value, PortSet) and conds[1].value.matches(22)


@pytest.mark.parametrize("text", ["-m limit --limit 3/min", "-m recent --rcheck --name x"])
def test_an_opaque_match_makes_the_trace_unsure_and_the_space_may_only(text: str) -> None:
    ruleset = parse_save(f"*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp {text} -j ACCEPT\n"
                         "COMMIT\n")
    result = Tracer(ruleset).trace(Packet(src="192.0.2.1", dst="192.0.2.2", proto="tcp",
                                          dport=22, local=False, in_iface="eth0"))
    assert {o.verdict for o in result.outcomes} >= {"ACCEPT", "DROP"}
    rule = ruleset.table("filter").chain("INPUT").rules[0]
    space = rule_space(rule, universe_for(ruleset))
    assert space.unknown and not space.must and space.may


def test_the_listing_of_a_row_is_what_iptables_l_prints() -> None:
    rule = parse_rule_spec("-p tcp -m tcp --dport 22 -m comment --comment x -j ACCEPT",
                           chain="INPUT")
    line = listing_line(rule, 1)
    assert line.endswith("tcp dpt:22 /* x */")


def test_where_a_target_is_valid_is_asked_of_its_row() -> None:
    from trustwall.errors import ParseError

    with pytest.raises(ParseError, match="only valid in table"):
        parse_rule_spec("-j DNAT --to-destination 10.0.0.1", chain="INPUT", table="filter")
    parse_rule_spec("-j DNAT --to-destination 10.0.0.1", chain="PREROUTING", table="nat")
