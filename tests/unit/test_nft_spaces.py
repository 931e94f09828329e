"""Packet spaces of the nft conditions (unfold.FIELDS: nfproto, proto_set, ct_status, set) and
lint over native nft tables, on hand-written ``nft -j`` JSON. The kernel oracle for the same
claims (counters after a packet sweep) is tests/e2e/test_nft_lint_plan.py."""

from __future__ import annotations

import json

from trustwall.firewall import ir
from trustwall.firewall.analysis.lint import lint_all
from trustwall.firewall.nftables import compile as nft_compile
from trustwall.firewall.nftables import parse
from trustwall.firewall.semantics.space import Space, Universe
from trustwall.firewall.semantics.unfold import rule_space


def _payload(proto: str, field: str) -> dict:
    return {"payload": {"protocol": proto, "field": field}}


def _match(left, right, op="==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _ruleset(*rules: list, sets: tuple = (), extra: tuple = ()) -> ir.Ruleset:
    objs: list[dict] = [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
                        {"table": {"family": "inet", "name": "t", "handle": 1}},
                        {"chain": {"family": "inet", "table": "t", "name": "input", "handle": 2,
                                   "type": "filter", "hook": "input", "prio": 0,
                                   "policy": "drop"}}]
    objs += [{"set": {"family": "inet", "table": "t", **s}} for s in sets]
    objs += [{"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 10 + i,
                       "expr": expr}} for i, expr in enumerate(rules)]
    objs += list(extra)
    return nft_compile.compile_ruleset(parse.loads(json.dumps({"nftables": objs})))


ALLOWED = {"name": "allowed", "handle": 3, "type": "ipv4_addr", "flags": ["interval"],
           "elem": [{"prefix": {"addr": "10.0.0.0", "len": 8}}, "192.168.1.1"]}
PAIRS = {"name": "pairs", "handle": 4, "type": ["ipv4_addr", "inet_service"],
         "elem": [{"concat": ["10.0.0.1", 22]}, {"concat": ["10.0.0.2", 80]}]}


def _findings(rs: ir.Ruleset) -> dict[int | None, str]:
    return {f.handle: f.kind for f in lint_all(rs).findings}


def test_a_set_of_prefixes_is_a_union_and_covers_what_it_lists():
    rs = _ruleset(
        [_match(_payload("ip", "saddr"), "@allowed"), {"accept": None}],
        [_match(_payload("ip", "saddr"), {"prefix": {"addr": "10.1.0.0", "len": 16}}),
         {"accept": None}],
        [_match(_payload("ip", "saddr"), "172.16.0.1"), {"accept": None}],
        sets=(ALLOWED,))
    assert _findings(rs) == {11: "shadowed"}  # 172.16.0.1 is not in the set


def test_a_concatenation_is_a_union_of_products():
    rs = _ruleset(
        [_match({"concat": [_payload("ip", "saddr"), _payload("tcp", "dport")]}, "@pairs"),
         {"drop": None}],
        [_match(_payload("ip", "saddr"), "10.0.0.1"), _match(_payload("tcp", "dport"), 22),
         {"accept": None}],
        [_match(_payload("ip", "saddr"), "10.0.0.1"), _match(_payload("tcp", "dport"), 80),
         {"accept": None}],
        sets=(PAIRS,))
    found = lint_all(rs).findings
    assert [(f.handle, f.kind, f.different_verdict) for f in found] == [(11, "shadowed", True)]
    u = Universe(4)
    lookup = rs.tables[0].chain("input").rules[0]
    space = Space(u, rule_space(lookup, u).may)
    assert len(space.cubes) == 2  # one cube per element, not their hull


def test_negated_anonymous_set_and_protocol_sets():
    rs = _ruleset(
        [_match(_payload("tcp", "dport"), {"set": [22, {"range": [80, 90]}]}, "!="),
         {"drop": None}],
        [_match(_payload("tcp", "dport"), 8080), {"accept": None}],  # dropped above
        [_match({"meta": {"key": "l4proto"}}, {"set": ["tcp", "udp"]}),
         _match(_payload("th", "dport"), 53), {"accept": None}],
        [_match(_payload("udp", "dport"), 53), {"accept": None}],  # covered by the th rule
    )
    assert _findings(rs) == {11: "shadowed", 13: "shadowed"}


def test_inet_rules_for_one_ip_version_do_not_shadow_the_other():
    rs = _ruleset(
        [_match(_payload("tcp", "dport"), 22), _match({"meta": {"key": "nfproto"}}, "ipv4"),
         {"accept": None}],
        [_match(_payload("tcp", "dport"), 22), {"accept": None}],  # still takes IPv6
        [_match(_payload("ip6", "saddr"), "::1"), _match(_payload("tcp", "dport"), 22),
         {"accept": None}],  # IPv6 ::1 port 22: rule 2 takes it first
    )
    assert _findings(rs) == {12: "shadowed"}


def test_ct_status_is_not_modelled_so_no_claim_leans_on_it():
    rs = _ruleset(
        [_match({"ct": {"key": "status"}}, "dnat", "in"), {"accept": None}],
        [_match({"ct": {"key": "status"}}, "dnat", "in"), {"accept": None}],
    )
    assert _findings(rs) == {}


def test_structure_and_equal_priorities_between_tables():
    extra = ({"table": {"family": "ip", "name": "o", "handle": 5}},
             {"chain": {"family": "ip", "table": "o", "name": "in", "handle": 6,
                        "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
             {"chain": {"family": "inet", "table": "t", "name": "lonely", "handle": 7}},
             {"chain": {"family": "inet", "table": "t", "name": "hollow", "handle": 8}})
    rs = _ruleset([{"jump": {"target": "hollow"}}], [{"jump": {"target": "gone"}}],
                  extra=extra)
    kinds = sorted((f.kind, f.chain) for f in lint_all(rs).findings)
    assert kinds == [("empty_chain", "hollow"), ("equal_priority", "input"),
                     ("missing_chain", "input"), ("unreachable_chain", "lonely")]
    assert all(f.backend == "nft" for f in lint_all(rs).findings)
