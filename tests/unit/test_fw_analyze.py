"""fw lint: shadowing by the union of earlier rules, redundancy, structure, bypass, expiry."""

from __future__ import annotations

import datetime as dt

from trustwall.cli.main import main
from trustwall.firewall.analysis.lint import Finding, lint
from trustwall.firewall.iptables.parse import parse_save

SEED_INPUT = """\
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
"""


def ruleset(rules: str, *, chains: str = "", policy: str = "ACCEPT", nat: str = ""):  # type: ignore[no-untyped-def]
    text = (f"*filter\n:INPUT {policy} [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            f"{chains}{rules}COMMIT\n")
    if nat:
        text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                f":POSTROUTING ACCEPT [0:0]\n{nat}COMMIT\n") + text
    return parse_save(text)


def findings(rules: str, **kw) -> list[Finding]:  # type: ignore[no-untyped-def]
    return list(lint(ruleset(rules, **kw)).findings)


def by_rule(found: list[Finding], kind: str) -> dict[int | None, Finding]:
    return {f.rule: f for f in found if f.kind == kind}


def test_seed_accept_after_catch_all_reject_is_reported() -> None:
    late = "-A INPUT -p tcp -m state --state NEW -m tcp --dport 18745 -j ACCEPT\n"
    found = findings(SEED_INPUT + late)
    f = by_rule(found, "after_terminal")[11]
    assert f.blocked_by == (10,) and f.different_verdict
    assert [x.kind for x in found] == ["after_terminal"]


def test_accept_after_conditional_reject_is_shadowed_with_different_verdict() -> None:
    rules = ("-A INPUT -p tcp -j REJECT --reject-with tcp-reset\n"
             "-A INPUT -p tcp -m tcp --dport 18745 -j ACCEPT\n")
    f = by_rule(findings(rules), "shadowed")[2]
    assert f.blocked_by == (1,) and f.different_verdict
    assert "above rule 1" in f.explanation


def test_shadowed_only_by_the_union_of_two_rules() -> None:
    rules = ("-A INPUT -s 10.0.0.0/9 -j DROP\n"
             "-A INPUT -s 10.128.0.0/9 -p tcp -j DROP\n"
             "-A INPUT -s 10.128.0.0/9 -p udp -j ACCEPT\n"
             "-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT\n"
             "-A INPUT -s 10.0.0.0/8 -p udp -j DROP\n")
    found = findings(rules)
    shadowed = by_rule(found, "shadowed")
    assert shadowed[4].blocked_by == (1, 2) and shadowed[4].different_verdict
    assert shadowed[5].blocked_by == (1, 3)
    assert set(shadowed) == {4, 5}


def test_blockers_are_irredundant() -> None:
    rules = ("-A INPUT -p tcp -m tcp --dport 1:100 -j DROP\n"
             "-A INPUT -p tcp -m tcp --dport 50:200 -j DROP\n"
             "-A INPUT -p tcp -m tcp --dport 60:70 -j ACCEPT\n")
    assert by_rule(findings(rules), "shadowed")[3].blocked_by in ((1,), (2,))


def test_non_terminating_targets_never_shadow() -> None:
    rules = ("-A INPUT -p tcp -j LOG --log-prefix \"tcp \"\n"
             "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
             "-A INPUT -p tcp -m tcp --dport 22 -j MARK --set-xmark 0x1/0xffffffff\n"
             "-A INPUT -p tcp -m tcp --dport 22 -j DROP\n")
    shadowed = by_rule(findings(rules), "shadowed")
    assert 2 not in shadowed
    assert set(shadowed) == {3, 4}  # a LOG/MARK rule can itself be unreachable


def test_return_from_user_chain() -> None:
    chains = ":CHECK - [0:0]\n"
    rules = ("-A INPUT -j CHECK\n"
             "-A INPUT -s 10.1.0.0/16 -j ACCEPT\n"
             "-A INPUT -s 192.168.0.0/16 -j ACCEPT\n"
             "-A CHECK -s 10.0.0.0/8 -j RETURN\n"
             "-A CHECK -s 10.1.0.0/16 -j DROP\n"
             "-A CHECK -j DROP\n")
    found = findings(rules, chains=chains)
    shadowed = by_rule([f for f in found if f.chain == "CHECK"], "shadowed")
    assert shadowed[2].blocked_by == (1,)  # the RETURN in rule 1 took every packet it matches
    input_shadowed = by_rule([f for f in found if f.chain == "INPUT"], "shadowed")
    assert 2 not in input_shadowed  # 10.1/16 came back from CHECK
    assert input_shadowed[3].blocked_by == (1,)  # CHECK's final DROP, via the jump (rule 1)
    assert input_shadowed[3].different_verdict


def test_negations_and_interfaces() -> None:
    rules = ("-A INPUT ! -s 10.0.0.0/8 -j DROP\n"
             "-A INPUT -s 10.0.0.0/8 -i eth+ -j ACCEPT\n"
             "-A INPUT -i eth0 -p tcp -j ACCEPT\n"
             "-A INPUT -i wlan0 -p tcp -j ACCEPT\n"
             "-A INPUT ! -i eth+ -s 10.2.0.0/16 -j DROP\n")
    shadowed = by_rule(findings(rules), "shadowed")
    assert shadowed[3].blocked_by == (1, 2)
    assert 4 not in shadowed and 5 not in shadowed


def test_port_ranges_and_multiport() -> None:
    rules = ("-A INPUT -p tcp -m multiport --dports 20:30,80 -j ACCEPT\n"
             "-A INPUT -p tcp -m tcp --dport 25 -j DROP\n"
             "-A INPUT -p tcp -m tcp --dport 25:31 -j DROP\n"
             "-A INPUT -p tcp -m multiport --ports 80 -j DROP\n")
    shadowed = by_rule(findings(rules), "shadowed")
    assert shadowed[2].blocked_by == (1,)
    assert 3 not in shadowed and 4 not in shadowed  # port 31; --ports also covers sport 80


def test_unmodelled_matches_are_conservative() -> None:
    rules = ("-A INPUT -m recent --update --seconds 60 --name x --rsource -j DROP\n"
             "-A INPUT -p tcp -j ACCEPT\n"
             "-A INPUT -p tcp -m recent --rcheck --name y --rsource -j DROP\n")
    shadowed = by_rule(findings(rules), "shadowed")
    assert 2 not in shadowed  # rule 1 may not match: it cannot block
    assert shadowed[3].blocked_by == (2,)  # whatever -m recent says, rule 2 took them


def test_redundant_rule_is_covered_by_a_later_rule_with_the_same_verdict() -> None:
    rules = ("-A INPUT -s 10.1.0.0/16 -p tcp -j ACCEPT\n"
             "-A INPUT -s 10.0.0.0/8 -p tcp -j ACCEPT\n"
             "-A INPUT -s 10.1.2.0/24 -p udp -j DROP\n")
    found = findings(rules, policy="DROP")
    red = by_rule(found, "redundant")
    assert red[1].blocked_by == (2,)
    assert red[3].blocked_by == ()  # the DROP policy decides the same
    assert 2 not in red


def test_structure_findings() -> None:
    chains = ":EMPTY - [0:0]\n:ORPHAN - [0:0]\n"
    rules = ("-A INPUT -j EMPTY\n"
             "-A INPUT -p tcp -j NOSUCHCHAIN\n"
             "-A OUTPUT -i eth0 -j ACCEPT\n"
             "-A ORPHAN -j ACCEPT\n")
    found = findings(rules, chains=chains)
    kinds = {(f.kind, f.chain, f.rule) for f in found}
    assert ("empty_chain", "EMPTY", None) in kinds
    assert ("unreachable_chain", "ORPHAN", None) in kinds
    assert ("missing_chain", "INPUT", 2) in kinds
    assert ("invalid", "OUTPUT", 1) in kinds


def test_targets_in_tables_that_refuse_them_are_invalid() -> None:
    # both refused by iptables-restore 1.8.9 (nft), checked in a lab namespace
    nat = ("-A PREROUTING -p tcp -m tcp --dport 25 -j DROP\n"
           "-A OUTPUT -p tcp -j REJECT --reject-with icmp-port-unreachable\n")
    invalid = {(f.table, f.chain, f.rule) for f in findings("", nat=nat) if f.kind == "invalid"}
    assert invalid == {("nat", "PREROUTING", 1), ("nat", "OUTPUT", 1)}


def test_docker_published_port_bypasses_input() -> None:
    nat = "-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\n"
    rules = "-A INPUT -p tcp -m tcp --dport 8080 -j DROP\n"
    found = findings(rules, nat=nat)
    f = by_rule(found, "bypass")[1]
    assert f.table == "nat" and f.blocked_by == (1,)
    assert "FORWARD" in f.explanation


def test_expired_rules() -> None:
    rules = ('-A INPUT -p tcp -m tcp --dport 18745 -m comment '
             '--comment "tw:vendor expires=2026-01-01T00:00Z" -j ACCEPT\n'
             '-A INPUT -p tcp -m tcp --dport 18746 -m comment '
             '--comment "tw:later expires=2030-01-01T00:00Z" -j ACCEPT\n')
    report = lint(ruleset(rules, policy="DROP"),
                  now=dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc))
    assert [(f.kind, f.rule) for f in report.findings] == [("expired", 1)]


def test_cli_lint_json_and_exit_code(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    path = tmp_path / "rules.v4"
    path.write_text("*filter\n:INPUT ACCEPT [0:0]\n" + SEED_INPUT
                    + "-A INPUT -p tcp -m tcp --dport 18745 -j ACCEPT\nCOMMIT\n")
    assert main(["fw", "lint", "--file", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    (f,) = data["findings"]
    assert {k: f[k] for k in ("kind", "table", "chain", "rule", "blocked_by",
                              "different_verdict")} == {
        "kind": "after_terminal", "table": "filter", "chain": "INPUT", "rule": 11,
        "blocked_by": [10], "different_verdict": True}
    clean = tmp_path / "clean.v4"
    clean.write_text("*filter\n:INPUT ACCEPT [0:0]\n" + SEED_INPUT + "COMMIT\n")
    assert main(["fw", "lint", "--file", str(clean)]) == 0


def test_rules_behind_a_return_name_the_return_rules():
    text = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:SVC - [0:0]
-A INPUT -p tcp -j SVC
-A SVC -s 10.0.0.0/9 -j RETURN
-A SVC -s 192.168.0.0/16 -j RETURN
-A SVC -s 10.128.0.0/9 -j RETURN
-A SVC -s 10.1.0.0/16 -j ACCEPT
-A SVC -s 10.0.0.0/8 -j ACCEPT
-A SVC -s 10.0.0.0/7 -j ACCEPT
COMMIT
"""
    found = {(f.chain, f.rule): f for f in lint(parse_save(text)).findings
             if f.kind == "shadowed"}
    assert set(found) == {("SVC", 4), ("SVC", 5)}
    assert found["SVC", 4].blocked_by == (1,)
    assert found["SVC", 5].blocked_by == (1, 3)
    assert "RETURN in rules 1, 3" in found["SVC", 5].explanation
    assert not found["SVC", 5].different_verdict


def test_non_contiguous_masks_are_reasoned_about_soundly():
    """Packet spaces keep a non-contiguous mask as its CIDR superset, "may match" only: a rule
    it does not cover is never called shadowed by it, one inside a wider rule still is."""
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -s 10.0.0.0/255.0.255.0 -j DROP\n"
            "-A INPUT -s 10.0.0.0/16 -j DROP\n"
            "-A INPUT -s 192.168.0.0/16 -j DROP\n"
            "-A INPUT -s 192.168.0.0/255.255.0.255 -j ACCEPT\nCOMMIT\n")
    found = {(f.rule, f.kind): f for f in lint(parse_save(text)).findings}
    assert (2, "shadowed") not in found
    assert found[4, "shadowed"].blocked_by == (3,)
