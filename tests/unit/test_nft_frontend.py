"""The nftables frontend on hand-written ``nft -j list ruleset`` JSON: parse (tolerant and
hostile-proof), named priorities, compile to the IR, render nft syntax, and the IR's nft
condition values. The kernel oracles are in tests/e2e/test_nft_live.py."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustwall.errors import BadInput
from trustwall.firewall import ir
from trustwall.firewall.nftables import compile as nft_compile
from trustwall.firewall.nftables import parse, render
from trustwall.firewall.nftables.model import priority_text, resolve_priority


def tcp(field: str) -> dict:
    return {"payload": {"protocol": "tcp", "field": field}}


def ip(field: str) -> dict:
    return {"payload": {"protocol": "ip", "field": field}}


def match(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def listing(*objects: dict) -> str:
    meta = {"metainfo": {"version": "1.0.6", "json_schema_version": 1}}
    return json.dumps({"nftables": [meta, *objects]})


def table(family="inet", name="fw", **extra):
    return {"table": {"family": family, "name": name, "handle": 1, **extra}}


def chain(name, family="inet", tbl="fw", **base):
    return {"chain": {"family": family, "table": tbl, "name": name, "handle": 2, **base}}


def rule(chain_name, *expr, family="inet", tbl="fw", handle=10, **extra):
    return {"rule": {"family": family, "table": tbl, "chain": chain_name, "handle": handle,
                     "expr": list(expr), **extra}}


def compiled(*expr, family="inet", sets=()):
    text = listing(table(family), chain("c", family), *sets, rule("c", *expr, family=family))
    model = parse.loads(text)
    return nft_compile.compile_ruleset(model).tables[0].chains[0].rules


def conditions(*expr, family="inet", sets=()):
    rules = compiled(*expr, family=family, sets=sets)
    assert len(rules) == 1
    return {c.field: c.value for c in rules[0].conditions}, rules[0].action


# --- priorities ----------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "hook", "text", "number"), [
    ("inet", "input", "filter + 10", 10), ("ip", "prerouting", "dstnat", -100),
    ("ip6", "postrouting", "srcnat - 5", 95), ("inet", "input", "-150", -150),
    ("bridge", "input", "filter", -200), ("bridge", "postrouting", "srcnat", 300),
    ("ip", "input", 7, 7), ("ip", "input", "bogus + 1", None), ("ip", "input", True, None),
])
def test_named_priorities_resolve_per_family(family, hook, text, number):
    assert resolve_priority(family, hook, text) == number


@pytest.mark.parametrize(("family", "hook", "number", "text"), [
    ("inet", "input", 10, "filter + 10"), ("ip", "output", -150, "mangle"),
    ("ip", "prerouting", -100, "dstnat"), ("ip", "output", -100, "-100"),  # dstnat: prerouting
    ("ip", "input", 40, "security - 10"), ("ip", "input", 500, "500"),
    ("bridge", "input", -200, "filter"),
])
def test_priorities_print_as_nft_lists_them(family, hook, number, text):
    assert priority_text(family, hook, number) == text


# --- parse -----------------------------------------------------------------------------------


def test_parse_keeps_tables_chains_rules_sets_and_handles():
    text = listing(
        table(),
        {"set": {"family": "inet", "table": "fw", "name": "allowed", "type": "ipv4_addr",
                 "handle": 4, "flags": ["interval"],
                 "elem": ["1.2.3.4", {"prefix": {"addr": "10.0.0.0", "len": 8}},
                          {"range": ["192.168.1.1", "192.168.1.9"]}]}},
        {"map": {"family": "inet", "table": "fw", "name": "vm", "type": "inet_service",
                 "map": "verdict", "elem": [[22, {"accept": None}]]}},
        chain("input", type="filter", hook="input", prio=10, policy="drop"),
        rule("input", match(tcp("dport"), 22), {"accept": None}, comment="ssh"))
    model = parse.loads(text)
    (t,) = model.tables
    assert (t.family, t.name, t.iptables_nft) == ("inet", "fw", "")
    (c,) = t.chains
    assert (c.hook, c.priority, c.policy, c.type) == ("input", 10, "drop", "filter")
    assert (c.rules[0].handle, c.rules[0].position, c.rules[0].comment) == (10, 1, "ssh")
    assert t.set("allowed").flags == ("interval",) and len(t.set("allowed").elements) == 3
    assert t.set("vm").is_verdict_map


@pytest.mark.parametrize("bad", [b"", b"[]", b'{"nftables": 3}', b"{" * 100000, b"\xff"])
def test_parse_refuses_what_is_not_a_listing_in_one_line(bad):
    with pytest.raises(BadInput):
        parse.loads(bad)


def test_parse_skips_hostile_objects_and_keeps_the_rest():
    deep: object = 1
    for _ in range(200):
        deep = [deep]
    text = listing(
        table(), chain("c"),
        table(name="bad\x1bname"), table(family="evil"), table(name="x" * 300),
        {"unknown-kind": {"family": "inet"}}, ["not", "an", "object"],
        rule("c", {"accept": None}),
        rule("c", {"match": {"op": "==", "left": deep, "right": 1}}),
        rule("nochain", {"drop": None}),
        {"rule": {"family": "inet", "table": "fw", "chain": "c", "expr": "accept"}})
    model = parse.loads(text)
    assert [t.name for t in model.tables] == ["fw"]
    assert len(model.tables[0].chains[0].rules) == 1
    assert len(model.skipped) == 8


def test_xt_rules_mark_the_table_as_iptables_nfts():
    text = listing(table("ip", "filter"), chain("INPUT", "ip", "filter", type="filter",
                                                hook="input", prio=0, policy="accept"),
                   rule("INPUT", {"xt": {"type": "match", "name": "recent"}}, {"drop": None},
                        family="ip", tbl="filter"),
                   table("ip", "mine"), chain("INPUT", "ip", "mine", type="filter",
                                              hook="input", prio=0))
    model = parse.loads(text)
    assert "xt" in model.table("ip", "filter").iptables_nft
    assert model.table("ip", "mine").iptables_nft == ""
    assert [t.name for t in model.native_tables] == ["mine"]
    assert [t.name for t in nft_compile.compile_ruleset(model).tables] == ["mine"]


def test_iptables_tables_without_xt_are_recognised_by_their_builtin_chains():
    text = listing(table("ip6", "nat"),
                   chain("PREROUTING", "ip6", "nat", type="nat", hook="prerouting", prio=-100),
                   chain("POSTROUTING", "ip6", "nat", type="nat", hook="postrouting", prio=100),
                   rule("POSTROUTING", {"counter": {"packets": 0, "bytes": 0}},
                        {"masquerade": None}, family="ip6", tbl="nat"))
    assert parse.loads(text).tables[0].iptables_nft


@pytest.mark.parametrize("stmts", [
    [match(ip("saddr"), "@s"), {"counter": None}, {"drop": None}],  # a named set
    [match(tcp("dport"), {"set": [22, 80]}), {"counter": None}, {"accept": None}],
    [match(tcp("dport"), 22), {"accept": None}],  # iptables-nft counts every rule
])
def test_an_iptables_table_holding_nft_only_rules_stays_native(stmts):
    """iptables-nft-save misreads such rules (``ip saddr @s drop`` saves as ``-A INPUT -j
    DROP``): nft's listing is the faithful reading."""
    text = listing(table("ip", "filter"),
                   chain("INPUT", "ip", "filter", type="filter", hook="input", prio=0),
                   rule("INPUT", *stmts, family="ip", tbl="filter"))
    model = parse.loads(text)
    assert model.tables[0].iptables_nft == "" and parse.iptables_shaped(model.tables[0])


# --- compile ---------------------------------------------------------------------------------


def test_ports_and_anonymous_sets_compile_with_the_implied_protocol():
    conds, action = conditions(match(tcp("dport"), {"set": [22, {"range": [80, 90]}]}),
                               {"accept": None})
    assert conds["proto"] == ir.Protocol(6)
    assert conds["dport"] == ir.PortSet((ir.PortRange(22, 22), ir.PortRange(80, 90)))
    assert action == ir.Action("accept", name="accept")


def test_ip_fields_in_an_inet_table_imply_ipv4():
    conds, _ = conditions(match(ip("saddr"), {"prefix": {"addr": "10.0.0.0", "len": 8}},
                                "!="), {"drop": None})
    assert conds["nfproto"] == ir.IpVersion(frozenset({4}))
    assert conds["src"] == ir.AddressMask(4, 0x0A000000, 0xFF000000, negated=True)
    conds, _ = conditions(match(ip("saddr"), "10.0.0.1"), family="ip")
    assert "nfproto" not in conds  # an ip table sees IPv4 only


def test_named_set_with_prefix_range_and_value_is_a_set_lookup():
    named = {"set": {"family": "inet", "table": "fw", "name": "allowed", "type": "ipv4_addr",
                     "elem": ["1.2.3.4", {"prefix": {"addr": "10.0.0.0", "len": 8}},
                              {"range": ["192.168.1.1", "192.168.1.9"]}]}}
    conds, _ = conditions(match(ip("saddr"), "@allowed", "!="), {"drop": None}, sets=[named])
    lookup = conds["set"]
    assert lookup.keys == ("src",) and lookup.name == "@allowed" and lookup.negated
    as_int = lambda a: int(ipaddress.ip_address(a))  # noqa: E731
    assert not lookup.matches((as_int("10.200.0.1"),))
    assert not lookup.matches((as_int("192.168.1.9"),))
    assert lookup.matches((as_int("192.168.1.10"),))


def test_concatenated_lookup_needs_every_component():
    named = {"set": {"family": "inet", "table": "fw", "name": "pairs",
                     "type": ["ipv4_addr", "inet_service"],
                     "elem": [{"concat": ["1.2.3.4", 22]},
                              {"concat": [{"prefix": {"addr": "10.0.0.0", "len": 8}},
                                          {"range": [80, 90]}]}]}}
    conds, _ = conditions(match({"concat": [ip("saddr"), tcp("dport")]}, "@pairs"),
                          {"accept": None}, sets=[named])
    lookup = conds["set"]
    assert lookup.keys == ("src", "dport")
    assert lookup.matches((0x01020304, 22)) and lookup.matches((0x0A0000FF, 85))
    assert not lookup.matches((0x01020304, 80)) and not lookup.matches((0x0A000001, 22))
    assert conds["proto"] == ir.Protocol(6)


def test_verdict_map_becomes_one_rule_per_element_catch_all_last():
    vmap = {"vmap": {"key": tcp("dport"), "data": {"set": [
        ["*", {"drop": None}], [22, {"accept": None}], [80, {"jump": {"target": "web"}}]]}}}
    rules = compiled(vmap)
    assert [r.action.kind for r in rules] == ["accept", "jump", "drop"]
    assert rules[1].action.chain == "web"
    assert all(r.source.handle == 10 and r.source.position == 1 for r in rules)
    lookups = [c.value for r in rules[:2] for c in r.conditions if c.field == "set"]
    assert [lk.matches((22,)) for lk in lookups] == [True, False]
    assert not any(c.field == "set" for c in rules[2].conditions)


def test_interfaces_wildcards_states_status_marks_and_flags():
    conds, _ = conditions(
        match({"meta": {"key": "iifname"}}, "eth*"),
        match({"meta": {"key": "oifname"}}, "br\\*", "!="),
        match({"ct": {"key": "state"}}, ["established", "related"], "in"),
        match({"ct": {"key": "status"}}, "dnat", "in"),
        match({"&": [{"meta": {"key": "mark"}}, 0xFF]}, 1),
        match({"&": [tcp("flags"), ["syn", "ack"]]}, "syn"),
        {"accept": None})
    assert conds["iif"] == ir.Interface("eth", prefix=True)
    assert conds["oif"] == ir.Interface("br*", prefix=False, negated=True)
    assert conds["ct_state"] == ir.StateSet(frozenset({"ESTABLISHED", "RELATED"}))
    assert conds["ct_status"].matches(frozenset({"dnat", "confirmed"}))
    assert conds["mark"] == ir.MarkMatch(1, 0xFF)
    assert conds["tcp_flags"] == ir.TcpFlags(frozenset({"SYN", "ACK"}), frozenset({"SYN"}))


def test_tcp_flag_bits_any_and_none():
    any_of, _ = conditions(match(tcp("flags"), ["fin", "rst"], "in"))
    assert any_of["tcp_flags"].matches(frozenset({"RST", "ACK"}))
    assert not any_of["tcp_flags"].matches(frozenset({"SYN"}))
    none_of, _ = conditions(match(tcp("flags"), "syn", "!"))
    assert none_of["tcp_flags"].matches(frozenset({"ACK"}))
    assert not none_of["tcp_flags"].matches(frozenset({"SYN", "ACK"}))


def test_protocol_sets_icmp_and_th():
    conds, _ = conditions(match({"meta": {"key": "l4proto"}}, {"set": ["tcp", "udp"]}),
                          match({"payload": {"protocol": "th", "field": "dport"}}, 53))
    assert conds["proto_set"] == ir.ProtocolSet(frozenset({6, 17}))
    assert conds["dport"].matches(53) and "opaque" not in conds
    bare, _ = conditions(match({"payload": {"protocol": "th", "field": "dport"}}, 53))
    assert "opaque" in bare  # th without a protocol also reads an ICMP checksum
    icmp6, _ = conditions(match({"payload": {"protocol": "icmpv6", "field": "type"}},
                                "nd-neighbor-solicit"))
    assert icmp6["icmp"] == ir.IcmpMatch(135) and icmp6["proto"] == ir.Protocol(58)
    assert icmp6["nfproto"] == ir.IpVersion(frozenset({6}))


@pytest.mark.parametrize(("stmt", "kind", "name"), [
    ({"reject": None}, "reject", "reject"),
    ({"reject": {"type": "tcp reset"}}, "reject", "reject with tcp reset"),
    ({"reject": {"type": "icmpx", "expr": "admin-prohibited"}}, "reject",
     "reject with icmpx admin-prohibited"),
    ({"reject": {"type": "icmpv6", "expr": "no-route"}}, "reject", "reject with icmpv6 no-route"),
    ({"queue": {"num": 3}}, "queue", "queue to 3"),
    ({"goto": {"target": "x"}}, "goto", "goto x"),
    ({"return": None}, "return", "return"),
    ({"continue": None}, "continue", "continue"),
])
def test_every_verdict_form(stmt, kind, name):
    _, action = conditions(stmt)
    assert (action.kind, action.name) == (kind, name)


def test_nat_mark_and_gates():
    _, action = conditions({"dnat": {"family": "ip", "addr": "10.0.0.2", "port": 80}})
    assert action.rewrite == ir.Nat("dnat", "10.0.0.2", 80) and action.kind == "nat"
    _, action = conditions({"masquerade": None})
    assert action.rewrite == ir.Nat("masquerade")
    conds, action = conditions({"mangle": {"key": {"meta": {"key": "mark"}}, "value": 16}},
                               {"counter": None}, {"log": {"prefix": "x"}})
    assert action == ir.Action("continue", rewrite=ir.SetMark(16), name="continue")
    assert conds == {}
    conds, action = conditions({"limit": {"rate": 5, "per": "second"}}, {"accept": None})
    assert conds["opaque"].what == "limit rate 5/second" and action.kind == "accept"
    conds, _ = conditions(match({"fib": {"result": "type", "flags": ["daddr"]}}, "local"))
    assert conds["opaque"].what == "fib daddr type local"


def test_statements_after_a_verdict_do_not_run():
    _, action = conditions({"drop": None}, {"accept": None})
    assert action.kind == "drop"


def test_source_links_back_and_renders_lazily():
    (r,) = compiled(match(tcp("dport"), 22), {"accept": None})
    assert (r.source.backend, r.source.family, r.source.table, r.source.chain) == \
        ("nft", "inet", "fw", "c")
    assert (r.source.position, r.source.handle) == (1, 10)
    assert r.source.text == "tcp dport 22 accept"


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["match", "left", "right", "op", "set", "range",
                                         "prefix", "payload", "protocol", "field", "concat",
                                         "vmap", "key", "data", "meta", "ct", "&", "elem",
                                         "val", "addr", "len", "accept", "jump", "target",
                                         "dnat", "port", "reject", "type", "expr", "limit"]),
                        inner, max_size=4), max_leaves=25))
def test_no_shape_crashes_compile_or_render(stmt):
    text = listing(table(), chain("c"), rule("c", stmt, {"accept": None}))
    model = parse.loads(text)
    nft_compile.compile_ruleset(model)
    render.render_ruleset(model, handles=True)


# --- render ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("stmts", "text"), [
    ([match({"meta": {"key": "iifname"}}, "eth*"), {"accept": None}], 'iifname "eth*" accept'),
    ([match(tcp("dport"), {"set": [22, {"range": [80, 90]}]}, "!=")],
     "tcp dport != { 22, 80-90 }"),
    ([match({"&": [tcp("flags"), ["syn", "ack"]]}, "syn")], "tcp flags syn / syn,ack"),
    ([match({"&": [tcp("flags"), ["syn", "ack"]]}, 0)], "tcp flags & (syn | ack) == 0"),
    ([match({"ct": {"key": "state"}}, ["established", "related"], "in")],
     "ct state established,related"),
    ([{"vmap": {"key": tcp("dport"), "data": {"set": [[22, {"accept": None}],
                                                       ["*", {"drop": None}]]}}}],
     "tcp dport vmap { 22 : accept, * : drop }"),
    ([{"dnat": {"family": "ip", "addr": "10.0.0.2", "port": 80}}], "dnat ip to 10.0.0.2:80"),
    ([{"snat": {"family": "ip6", "addr": "::1", "port": 80}}], "snat ip6 to [::1]:80"),
    ([{"log": {"prefix": "in: ", "level": "warn"}}], 'log prefix "in: " level warn'),
    ([{"mystery": 1}], '/* json: {"mystery":1} */'),
])
def test_render_statements(stmts, text):
    model = parse.loads(listing(table(), chain("c"), rule("c", *stmts)))
    assert render.rule_text(model.rules()[0]) == text


def test_render_table_with_handles_like_nft_a_list():
    model = parse.loads(listing(
        table(), chain("input", type="filter", hook="input", prio=10, policy="drop"),
        rule("input", {"accept": None}, handle=7, comment="ok")))
    text, exact = render.render_table(model.tables[0], handles=True)
    assert exact
    assert text == ("table inet fw { # handle 1\n\tchain input { # handle 2\n"
                    "\t\ttype filter hook input priority filter + 10; policy drop;\n"
                    '\t\taccept comment "ok" # handle 7\n\t}\n}\n')


# --- IR values -------------------------------------------------------------------------------


def test_ir_nft_values_match_without_a_tracer():
    assert ir.IpVersion(frozenset({6})).matches(6)
    assert ir.IpVersion(frozenset({6}), negated=True).matches(4)
    assert ir.ProtocolSet(frozenset({6, 17})).matches(17)
    assert not ir.ProtocolSet(frozenset({6}), negated=True).matches(6)
    assert not ir.CtStatus(frozenset({"snat"})).matches(frozenset({"dnat"}))
    assert ir.KeySpan(80, 90).matches(85) and not ir.KeySpan(80, 90).matches("85")
    lookup = ir.SetLookup(("iif", "pkttype"), ((ir.Interface("eth", prefix=True), "unicast"),))
    assert lookup.matches(("eth0", "UNICAST")) and not lookup.matches(("lo", "unicast"))


def test_flag_operators_follow_the_kernels_bytecode():
    """nft --debug=netlink: ``ct status dnat`` is a bit test, ``ct status != dnat`` compares
    the whole word (cmp neq 0x20): only the first is a CtStatus."""
    bit, _ = conditions(match({"ct": {"key": "status"}}, "dnat", "in"))
    assert bit["ct_status"] == ir.CtStatus(frozenset({"dnat"}))
    none, _ = conditions(match({"ct": {"key": "status"}}, ["snat", "dnat"], "!"))
    assert none["ct_status"] == ir.CtStatus(frozenset({"snat", "dnat"}), negated=True)
    word, _ = conditions(match({"ct": {"key": "status"}}, "dnat", "!="))
    assert "ct_status" not in word and "opaque" in word
    one, _ = conditions(match({"ct": {"key": "state"}}, "established", "!="))
    assert one["ct_state"] == ir.StateSet(frozenset({"ESTABLISHED"}), negated=True)
    never, _ = conditions(match({"ct": {"key": "state"}}, ["established", "related"], "=="))
    assert never["ct_state"] == ir.StateSet(frozenset())  # no connection is in both


_ANY = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.text(max_size=6), inner, max_size=3), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["table", "chain", "rule", "set", "map", "flowtable",
                                 "counter", "quota", "metainfo", "bogus"]), max_size=6),
       st.lists(st.dictionaries(st.sampled_from(
           ["family", "table", "name", "chain", "handle", "type", "hook", "prio", "policy",
            "dev", "expr", "elem", "flags", "map", "typeof", "comment", "timeout", "stmt"]),
           _ANY | st.sampled_from(["inet", "fw", "c", "input", "filter"]), max_size=10),
           max_size=6))
def test_no_object_shape_crashes_the_reader(kinds, bodies):
    objects = [table(), chain("c"), *({k: b} for k, b in zip(kinds, bodies, strict=False))]
    try:
        model = parse.loads(json.dumps({"nftables": objects}))
    except BadInput:
        return
    nft_compile.compile_ruleset(model, include_iptables_nft=True)
    render.render_ruleset(model, handles=True)


def test_a_named_set_referenced_twice_is_converted_once_and_negation_kept():
    named = {"set": {"family": "inet", "table": "fw", "name": "s", "type": "ipv4_addr",
                     "elem": ["1.2.3.4"]}}
    rules = compiled(match(ip("saddr"), "@s"), match(ip("daddr"), "@s", "!="), sets=[named])
    src, dst = (c.value for c in rules[0].conditions if c.field == "set")
    assert src.keys == ("src",) and dst.keys == ("dst",) and dst.negated and not src.negated
    assert src.matches((0x01020304,)) and not dst.matches((0x01020304,))
