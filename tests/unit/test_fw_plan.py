"""fw allow/deny/reject/delete --plan and fw diff: position, semantic effect, difference."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustwall.cli.main import main
from trustwall.firewall.analysis.plan import build_rule, diff, plan_delete, plan_insert
from trustwall.firewall.iptables.parse import parse_save
from trustwall.firewall.protocols import TCP_FLAGS
from trustwall.firewall.semantics import space as sp
from trustwall.firewall.semantics.routing import LocalAddresses
from trustwall.firewall.semantics.trace import Packet, Tracer
from trustwall.firewall.semantics.unfold import universe_for
from trustwall.lab.corpora import REAL_RULESETS

# A typical RHEL INPUT chain (the seed's): rule 10 is the catch-all REJECT.
SEED = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 443 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 8080 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 9090 -j ACCEPT
-A INPUT -p udp -m state --state NEW -m udp --dport 161 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
COMMIT
"""

TUM = REAL_RULESETS
TUM_ORIG = TUM / ("net-network/configs_chair_for_Network_Architectures_and_Services/"
                  "iptables-save-2015-05-15_15-23-41")
TUM_CHEAT = TUM / ("iptables-semantics/thy/Iptables_Semantics/Examples/TUM_Net_Firewall/"
                   "iptables-save-2015-05-15_15-23-41_cheating")


def test_insert_before_catch_all_reject() -> None:
    plan = plan_insert(parse_save(SEED), build_rule("ACCEPT", proto="tcp", dport="18745",
                                                    state="NEW"))
    assert plan.position == 10
    assert plan.commands == (
        "iptables -I INPUT 10 -p tcp -m state --state NEW -m tcp --dport 18745 -j ACCEPT",)
    assert [str(c) for c in plan.effect] == [
        "tcp dport 18745 state NEW in not lo from any: REJECT → ACCEPT"]
    assert plan.feasible


def test_rule_already_in_effect_needs_no_command() -> None:
    plan = plan_insert(parse_save(SEED), build_rule("ACCEPT", proto="tcp", dport="22",
                                                    state="NEW"))
    assert plan.commands == () and plan.effect == ()
    assert "no change needed" in plan.explanation


def test_deny_without_state_must_precede_established() -> None:
    plan = plan_insert(parse_save(SEED), build_rule("DROP", proto="tcp", dport="22",
                                                    src="203.0.113.0/24"))
    assert plan.position == 1
    befores = {c.before for c in plan.effect}
    assert befores == {"ACCEPT", "REJECT"}  # INVALID/UNTRACKED ones reached rule 10
    assert {c.after for c in plan.effect} == {"DROP"}


def test_position_counts_rules_in_jumped_chains() -> None:
    rules = parse_save("*filter\n:INPUT DROP [0:0]\n:SERVICES - [0:0]\n"
                       "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n"
                       "-A INPUT -p udp -j ACCEPT\n"
                       "-A INPUT -j SERVICES\n"
                       "-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT\n"
                       "-A SERVICES -p tcp -m tcp --dport 22 -j ACCEPT\n"
                       "-A SERVICES -p tcp -j DROP\nCOMMIT\n")
    plan = plan_insert(rules, build_rule("ACCEPT", proto="tcp", dport="8443", state="NEW"))
    assert plan.position == 3  # before the jump: SERVICES drops tcp
    assert [(c.before, c.after) for c in plan.effect] == [("DROP", "ACCEPT")]


def test_upstream_drop_makes_every_position_useless() -> None:
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A PREROUTING -p tcp -m tcp --dport 18745 -j DROP\nCOMMIT\n") + SEED
    plan = plan_insert(parse_save(text), build_rule("ACCEPT", proto="tcp", dport="18745",
                                                    state="NEW"))
    assert not plan.feasible
    assert plan.in_the_way and "raw PREROUTING rule 1" in plan.in_the_way[0]


def test_delete_reports_what_loses_its_verdict() -> None:
    rs = parse_save(SEED)
    plan = plan_delete(rs, "INPUT", 4)
    assert plan.commands == ("iptables -D INPUT 4",)
    assert [str(c) for c in plan.effect] == [
        "tcp dport 22 state NEW in not lo from any: ACCEPT → REJECT"]
    by_spec = plan_delete(rs, "INPUT", spec="-p tcp -m state --state NEW --dport 22 -j ACCEPT")
    assert by_spec.position == 4 and by_spec.effect == plan.effect


# --------------------------------------------------------------------------- diff

_POOL = [
    "-m state --state RELATED,ESTABLISHED -j ACCEPT",
    "-p tcp -m tcp --dport 22 -j ACCEPT",
    "-p tcp -m tcp --dport 20:30 -j DROP",
    "-s 10.0.0.0/8 -j DROP",
    "! -s 10.1.0.0/16 -p udp -j REJECT",
    "-i eth+ -p tcp -j REJECT",
    "-i eth0 -j ACCEPT",
    "-p tcp -m multiport --dports 80,443 -j ACCEPT",
    "-p icmp -m icmp --icmp-type 8 -j ACCEPT",
    "-d 198.18.0.1 -p udp -m udp --sport 53 -j ACCEPT",
    "-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j LOG",
    "-j CHK",
]
_CHK = ["-s 10.0.0.0/9 -j RETURN", "-p tcp -m tcp --dport 25 -j DROP", "-p udp -j ACCEPT"]


def _ruleset(inp: list[int], chk: list[int], policy: str):  # type: ignore[no-untyped-def]
    lines = [f"*filter\n:INPUT {policy} [0:0]\n:CHK - [0:0]"]
    lines += [f"-A INPUT {_POOL[i]}" for i in inp]
    lines += [f"-A CHK {_CHK[i]}" for i in chk]
    return parse_save("\n".join(lines) + "\nCOMMIT\n")


rulesets = st.tuples(st.lists(st.integers(0, len(_POOL) - 1), max_size=7),
                     st.lists(st.integers(0, len(_CHK) - 1), max_size=3),
                     st.sampled_from(["ACCEPT", "DROP"]))

_LOCAL = LocalAddresses(known=True, addresses=frozenset({ipaddress.ip_address("198.18.0.1")}))


@st.composite
def packets(draw) -> Packet:  # type: ignore[no-untyped-def]
    proto = draw(st.sampled_from(["tcp", "udp", "icmp"]))
    return Packet(
        src=draw(st.sampled_from(["10.0.0.5", "10.1.2.3", "10.200.0.1", "192.0.2.7"])),
        dst="198.18.0.1", proto=proto,
        sport=draw(st.sampled_from([53, 1024])) if proto != "icmp" else None,
        dport=draw(st.sampled_from([22, 25, 443, 5000])) if proto != "icmp" else None,
        in_iface=draw(st.sampled_from(["eth0", "eth1", "wlan0"])),
        state=draw(st.sampled_from(["NEW", "ESTABLISHED", "INVALID"])),
        icmp_type=draw(st.sampled_from([0, 8])) if proto == "icmp" else None,
        icmp_code=0 if proto == "icmp" else None,
        tcp_flags=draw(st.sampled_from([frozenset({"SYN"}), frozenset({"ACK"})]))
        if proto == "tcp" else None)


def _point(u: sp.Universe, p: Packet) -> sp.Point:
    proto = {"tcp": 6, "udp": 17, "icmp": 1}[p.proto]
    flags = sum(1 << TCP_FLAGS.index(f) for f in p.tcp_flags or ())
    return (int(ipaddress.ip_address(p.src)), int(ipaddress.ip_address(p.dst)), proto,
            p.sport or 0, p.dport or 0, u.iface_class(p.in_iface or ""), len(u.ifaces),
            sp.STATES.index(p.state), (p.icmp_type or 0) * 256 + (p.icmp_code or 0), flags, 0)


@settings(max_examples=40, deadline=None)
@given(rulesets)
def test_diff_of_a_ruleset_with_itself_is_empty(spec) -> None:  # type: ignore[no-untyped-def]
    a = _ruleset(*spec)
    assert not diff(a, a).different
    assert not diff(a, _ruleset(*spec)).different  # equal values, other objects


@settings(max_examples=40, deadline=None)
@given(rulesets, rulesets, st.lists(packets(), min_size=12, max_size=12))
def test_diff_agrees_with_tracing_packets(spec_a, spec_b, pkts) -> None:  # type: ignore[no-untyped-def]
    a, b = _ruleset(*spec_a), _ruleset(*spec_b)
    result = diff(a, b, lines=10_000)
    u = universe_for(a, b)
    cubes = [c._cube for h in result.hooks if h.hook == "INPUT" for c in h.changes]
    ta, tb = Tracer(a, _LOCAL), Tracer(b, _LOCAL)
    for p in pkts:
        va, vb = ta.trace(p).verdict, tb.trace(p).verdict
        point = _point(u, p)
        in_diff = any(sp.cube_contains(c, point) for c in cubes if c is not None)
        assert (va != vb) == in_diff, (p, va, vb)


def test_diff_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.v4", tmp_path / "b.v4"
    a.write_text(SEED)
    b.write_text(SEED.replace("--dport 8080", "--dport 8081"))
    assert main(["fw", "diff", str(a), str(a)]) == 0
    assert main(["fw", "diff", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "tcp dport 8080 state NEW in not lo from any: ACCEPT → REJECT" in out
    assert "tcp dport 8081 state NEW in not lo from any: REJECT → ACCEPT" in out


def test_allow_cli_prints_the_exact_command(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rules.v4"
    path.write_text(SEED)
    assert main(["fw", "allow", "--file", str(path), "--proto", "tcp", "--dport", "18745",
                 "--state", "NEW", "--plan"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("iptables -I INPUT 10 -p tcp -m state --state NEW -m tcp --dport 18745 "
                      "-j ACCEPT")
    assert any("REJECT → ACCEPT" in line for line in out)
    assert main(["fw", "allow", "--file", str(path), "--proto", "tcp", "--dport", "1"]) == 2


@pytest.mark.skipif(not TUM_ORIG.exists(), reason="corpus not present")
def test_cheating_variant_differs_exactly_by_the_removed_rule() -> None:
    """The `_cheating` TUM file drops one FORWARD rule; the diff must be inside that rule."""
    def load(path: Path):  # type: ignore[no-untyped-def]
        # the dumps anonymise MACs as XX:XX:…, which no parser accepts
        return parse_save(path.read_text().replace("XX:XX:XX:XX:XX:XX", "02:00:00:00:00:01"))

    orig, cheat = load(TUM_ORIG), load(TUM_CHEAT)
    result = diff(orig, cheat, limit=300, lines=300)
    assert [(h.table, h.hook) for h in result.hooks] == [("filter", "FORWARD")]
    removed = build_rule("ACCEPT", chain="FORWARD", dst="131.159.15.252", proto="udp")
    u = universe_for(orig, cheat)
    from trustwall.firewall.semantics.unfold import rule_space

    inside = sp.Space(u, rule_space(removed, u).may)
    for change in result.hooks[0].changes:
        assert change.before == "ACCEPT" and change.after != "ACCEPT"
        assert sp.Space.of(u, change._cube) <= inside
        assert "out eth1.152" in change.packets and "dport 4569,5000:65535" in change.packets


def test_alternative_keeps_a_partial_drop_guard_in_front() -> None:
    rules = parse_save("*filter\n:INPUT ACCEPT [0:0]\n"
                       "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n"
                       "-A INPUT -p tcp ! --syn -m state --state NEW -j DROP\n"
                       "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
                       "-A INPUT -j REJECT\nCOMMIT\n")
    plan = plan_insert(rules, build_rule("ACCEPT", proto="tcp", dport="18745", state="NEW"))
    assert plan.position == 2  # all its packets, even NEW without SYN
    assert plan.alternative == (
        "iptables -I INPUT 4 -p tcp -m state --state NEW -m tcp --dport 18745 -j ACCEPT",)
    assert "keeps 2 in front, which still DROP" in plan.alternative_why


BEHIND_RETURN = """\
*filter
:INPUT ACCEPT [0:0]
:guard - [0:0]
:user - [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -m state --state INVALID -j DROP
-A INPUT -j guard
-A INPUT -j user
-A INPUT -j DROP
-A guard -m addrtype --dst-type LOCAL -j RETURN
-A guard -j DROP
-A user -p tcp -m tcp --dport 18745 -j DROP
COMMIT
"""


def test_effect_follows_packets_past_a_return_it_cannot_decide() -> None:
    """NEW packets pass an unmodelled RETURN and are dropped either way: they change from DROP
    to ACCEPT for sure (they were missing from the effect), and INVALID ones stay dropped."""
    rs = parse_save(BEHIND_RETURN)
    plan = plan_insert(rs, build_rule("ACCEPT", proto="tcp", dport="18745"))
    assert [(str(c)) for c in plan.effect] == [
        "tcp dport 18745 state NEW,UNTRACKED from any: DROP → ACCEPT"]
    assert plan.commands == (
        "iptables -I INPUT 3 -p tcp -m tcp --dport 18745 -m conntrack ! --ctstate INVALID "
        "-j ACCEPT",)
    asked = plan_insert(rs, build_rule("ACCEPT", proto="tcp", dport="18745",
                                       state="NEW,INVALID"))
    assert "ctstate" not in asked.commands[0] and any("INVALID" in str(c) for c in asked.effect)
    opened = plan_insert(rs, build_rule("ACCEPT", proto="tcp", dport="18745"), open_invalid=True)
    assert [str(c) for c in opened.effect] == [
        "tcp dport 18745 state INVALID,NEW,UNTRACKED from any: DROP → ACCEPT"]


def test_a_catch_all_reject_is_not_an_invalid_guard() -> None:
    """Only a rule that drops INVALID state on purpose makes the plan add the guard."""
    plan = plan_insert(parse_save(SEED), build_rule("ACCEPT", proto="tcp", dport="18745"))
    assert plan.commands == ("iptables -I INPUT 10 -p tcp -m tcp --dport 18745 -j ACCEPT",)
    assert "INVALID" in " ".join(str(c) for c in plan.effect)
