"""Policy files: validation with line numbers, groups, deterministic compile, import round trip."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from trustwall.errors import ParseError
from trustwall.firewall.change.policy import (
    compile_policy,
    compile_text,
    expand_groups,
    import_policy,
    load_policy,
    merge_unmanaged,
    rule_changes,
    rule_expiry,
    rule_name,
    strip_names,
)
from trustwall.firewall.iptables.model import Ruleset
from trustwall.firewall.iptables.parse import parse_save
from trustwall.lab.corpora import REAL_RULESETS

CORPUS = REAL_RULESETS

SEED = textwrap.dedent("""\
    version: 1
    groups:
      admins: [198.18.0.0/24, 198.18.9.9]
      web: [80, 443]
    ipv4:
      filter:
        unmanaged: [DOCKER]
        INPUT:
          policy: ACCEPT
          rules:
            - name: established
              rule: -m state --state RELATED,ESTABLISHED -j ACCEPT
              reason: replies to connections we opened
              owner: netops
            - name: web
              rule: -p tcp -m multiport --dports @web -j ACCEPT
              reason: public web
              owner: netops
            - name: jmx
              rule: -p tcp -s @admins -m state --state NEW -m tcp --dport 18745 -j ACCEPT
              reason: JConsole from the admin network
              owner: app-team
              ticket: OPS-1234
              expires: 2026-12-01T00:00:00Z
            - name: rest
              rule: -j REJECT --reject-with icmp-host-prohibited
              reason: default deny
              owner: netops
    """)


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_compiles_to_restore_text_with_named_comments(tmp_path):
    text = compile_text(load_policy(write(tmp_path, SEED)))[4]
    rules = [line for line in text.splitlines() if line.startswith("-A INPUT")]
    assert rules == [
        '-A INPUT -m state --state RELATED,ESTABLISHED -m comment --comment "tw:established" '
        "-j ACCEPT",
        '-A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment "tw:web" -j ACCEPT',
        "-A INPUT -s 198.18.0.0/24 -p tcp -m state --state NEW -m tcp --dport 18745 -m comment "
        '--comment "tw:jmx expires=2026-12-01T00:00:00Z" -j ACCEPT',
        "-A INPUT -s 198.18.9.9/32 -p tcp -m state --state NEW -m tcp --dport 18745 -m comment "
        '--comment "tw:jmx expires=2026-12-01T00:00:00Z" -j ACCEPT',
        '-A INPUT -m comment --comment "tw:rest" -j REJECT --reject-with icmp-host-prohibited',
    ]
    assert ":DOCKER - [0:0]" in text


def test_compile_is_deterministic(tmp_path):
    path = write(tmp_path, SEED)
    assert compile_text(load_policy(path)) == compile_text(load_policy(path))


def test_live_rules_map_back_to_names_and_expiry(tmp_path):
    ruleset = compile_policy(load_policy(write(tmp_path, SEED)))[4]
    rules = ruleset.chain("filter", "INPUT").rules
    assert [rule_name(r) for r in rules] == ["established", "web", "jmx", "jmx", "rest"]
    assert rule_expiry(rules[2]).isoformat() == "2026-12-01T00:00:00+00:00"
    assert rule_expiry(rules[0]) is None


def test_group_in_list_option_joins_elsewhere_expands():
    groups = {"web": ("80", "443"), "nets": ("198.18.0.0/24", "198.18.1.0/24")}
    assert expand_groups("-p tcp -m multiport --dports @web -j ACCEPT", groups) == [
        "-p tcp -m multiport --dports 80,443 -j ACCEPT"]
    assert expand_groups("-s @nets -p tcp --dport @web -j ACCEPT", groups) == [
        "-s 198.18.0.0/24 -p tcp --dport 80 -j ACCEPT",
        "-s 198.18.0.0/24 -p tcp --dport 443 -j ACCEPT",
        "-s 198.18.1.0/24 -p tcp --dport 80 -j ACCEPT",
        "-s 198.18.1.0/24 -p tcp --dport 443 -j ACCEPT",
    ]


@pytest.mark.parametrize(
    ("mutation", "line", "message"),
    [
        (("          owner: app-team\n", ""), 19, "needs `owner`"),
        (("--dport 18745", "--dport 99999"), 19, "99999"),
        (("@admins", "@nobody"), 19, "unknown group @nobody"),
        (("policy: ACCEPT", "policy: MAYBE"), 9, "ACCEPT or DROP"),
        (("  filter:", "  filtre:"), 6, "unknown table"),
        (("expires: 2026-12-01T00:00:00Z", "expires: soon"), 19, "ISO 8601"),
        (("name: web", "name: established"), None, "used twice"),
        (("-j REJECT --reject-with", "-j NOWHERE --reject-with"), 25, "NOWHERE"),
    ],
)
def test_broken_policies_give_file_and_line(tmp_path, mutation, line, message):
    old, new = mutation
    assert old in SEED
    path = write(tmp_path, SEED.replace(old, new, 1))
    with pytest.raises(ParseError) as info:
        load_policy(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    if line is not None:
        assert info.value.line == line, str(info.value)


@pytest.mark.parametrize("text", ["", "version: 1\nipv4: [1, 2]\n", "version: 2\n",
                                  "ipv4:\n  filter: {}\n", "version: 1\n  bad: indent\n"])
def test_malformed_files_are_parse_errors(tmp_path, text):
    with pytest.raises(ParseError):
        load_policy(write(tmp_path, text))


def test_missing_and_directory_paths(tmp_path):
    with pytest.raises(ParseError, match="no such policy file"):
        load_policy(tmp_path / "nope.yaml")
    with pytest.raises(ParseError, match="directory"):
        load_policy(tmp_path)


def test_includes_merge_and_loops_are_refused(tmp_path):
    write(tmp_path, "groups:\n  admins: [198.18.0.1]\n", "groups.yaml")
    main = write(tmp_path, "version: 1\ninclude: [groups.yaml]\nipv4:\n  filter:\n    INPUT:\n"
                 "      rules:\n        - {name: a, rule: -s @admins -j ACCEPT, reason: r, "
                 "owner: o}\n")
    assert "-A INPUT -s 198.18.0.1/32" in compile_text(load_policy(main))[4]
    write(tmp_path, "version: 1\ninclude: [b.yaml]\n", "a.yaml")
    write(tmp_path, "version: 1\ninclude: [a.yaml]\n", "b.yaml")
    with pytest.raises(ParseError, match="include loop"):
        load_policy(tmp_path / "a.yaml")


def test_unmanaged_chains_keep_their_live_rules_and_jumps(tmp_path):
    policy = load_policy(write(tmp_path, SEED))
    live = parse_save(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        ":DOCKER - [0:0]\n-A INPUT -j DOCKER\n-A INPUT -p tcp --dport 22 -j ACCEPT\n"
        "-A DOCKER -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n", family=4)
    merged = merge_unmanaged(compile_policy(policy)[4], live, policy)
    assert [r.target_name for r in merged.chain("filter", "INPUT").rules][:2] == [
        "DOCKER", "ACCEPT"]
    assert len(merged.chain("filter", "INPUT").rules) == 6  # docker jump + 5 managed
    assert merged.chain("filter", "DOCKER").rules == live.chain("filter", "DOCKER").rules


def strip_tw(ruleset: Ruleset) -> Ruleset:
    return replace(ruleset, tables=tuple(
        replace(t, chains=tuple(replace(c, rules=tuple(strip_names(r) for r in c.rules))
                                for c in t.chains)) for t in ruleset.tables))


def corpus_files() -> list[Path]:
    picks = [
        "net-network/configs_corny_docker",
        "net-network/config_home_router",
        "net-network/configs_srvs_ufw",
        "net-network/configs_openlab",
    ]
    files = []
    for pick in picks:
        folder = CORPUS / pick
        if folder.is_dir():
            files.extend(sorted(p for p in folder.rglob("*") if p.is_file()
                                and "*filter" in p.read_text(errors="replace"))[:3])
    return files


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpora not present")
def test_import_round_trips_real_rulesets(tmp_path):
    checked = 0
    for source in corpus_files():
        try:
            original = parse_save(source.read_text(errors="replace"), source=str(source))
        except ParseError:
            continue  # files the parser rejects are the conformance tests' business
        policy_path = write(tmp_path, import_policy([original]), "imported.yaml")
        compiled = compile_policy(load_policy(policy_path))[original.family]
        assert strip_tw(compiled).tables == strip_tw(original).tables, source
        checked += 1
    assert checked >= 3


def test_rule_changes_by_name(tmp_path):
    policy = load_policy(write(tmp_path, SEED))
    compiled = compile_policy(policy)[4]
    unnamed = strip_tw(compiled)
    assert rule_changes(unnamed, compiled) == [
        "= 5 running rule(s) now named by the policy (filter INPUT)"]
    edited = load_policy(write(tmp_path, SEED.replace("--dports @web", "--dports 8443")
                               .replace("name: jmx", "name: jconsole"), "b.yaml"))
    assert rule_changes(compiled, compile_policy(edited)[4]) == [
        "+ jconsole (filter INPUT)", "- jmx (filter INPUT)", "~ web (filter INPUT)"]
    assert rule_changes(compiled, compiled) == []


def test_fw_lint_and_show_read_a_policy_file(tmp_path):
    path = write(tmp_path, SEED.replace("expires: 2026-12-01T00:00:00Z",
                                        "expires: 2020-01-01T00:00:00Z"))
    argv = [sys.executable, "-m", "trustwall"]
    shown = subprocess.run([*argv, "fw", "show", "--file", str(path)], capture_output=True,
                           text=True)
    assert shown.returncode == 0, shown.stderr
    assert "tw:jmx" in shown.stdout and "18745" in shown.stdout
    linted = subprocess.run([*argv, "fw", "lint", "--file", str(path), "--json"],
                            capture_output=True, text=True)
    assert linted.returncode == 1, linted.stderr
    kinds = {f["kind"] for f in json.loads(linted.stdout)["findings"]}
    assert "expired" in kinds


def test_errors_in_an_included_file_name_that_file(tmp_path):
    write(tmp_path, "version: 1\nipv4:\n  filter:\n    INPUT:\n      rules:\n"
          "        - {name: a, rule: '-s @nobody -j ACCEPT', reason: r, owner: o}\n",
          "part.yaml")
    main = write(tmp_path, "version: 1\ninclude: [part.yaml]\n")
    with pytest.raises(ParseError) as info:
        load_policy(main)
    assert info.value.source == str(tmp_path / "part.yaml") and info.value.line == 6


@pytest.mark.parametrize(("table", "chain", "rule"), [
    ("mangle", "FORWARD", "-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu"),
    ("mangle", "POSTROUTING", "-p udp -m udp --dport 68 -j CHECKSUM --checksum-fill"),
    ("raw", "PREROUTING", "-j CT --notrack"),
    ("raw", "PREROUTING", "-j NOTRACK"),
    ("raw", "PREROUTING", "-p tcp -m tcp --dport 21 -j CT --helper ftp"),
    ("mangle", "PREROUTING", "-p tcp -j TPROXY --on-port 1 --on-ip 0.0.0.0 --tproxy-mark 0x1"),
    ("filter", "INPUT", "-p tcp -j SYNPROXY --mss 1460"),
])
def test_targets_the_parser_accepts_are_accepted_by_the_policy(tmp_path, table, chain, rule):
    """A stock home-router, Fedora or libvirt dump imported and loaded again (issue 13)."""
    text = f"*{table}\n:{chain} ACCEPT [0:0]\n-A {chain} {rule}\nCOMMIT\n"
    original = parse_save(text)
    policy = load_policy(write(tmp_path, import_policy([original])))
    assert strip_tw(compile_policy(policy)[4]).tables == original.tables


def test_a_jump_to_a_missing_chain_is_still_refused(tmp_path):
    text = SEED.replace("-j REJECT --reject-with icmp-host-prohibited", "-j NO-SUCH-CHAIN")
    with pytest.raises(ParseError, match="neither a chain"):
        load_policy(write(tmp_path, text))


def test_import_names_rules_of_chains_with_odd_characters(tmp_path):
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:good~stuff - [0:0]\n:_x - [0:0]\n"
            "-A INPUT -j good~stuff\n-A good~stuff -j ACCEPT\n-A _x -j DROP\nCOMMIT\n")
    original = parse_save(text)
    policy = load_policy(write(tmp_path, import_policy([original])))
    names = [rule.name for _, _, rule in policy.rules()]
    assert names == ["input-1", "good-stuff-1", "x-1"]
    assert strip_tw(compile_policy(policy)[4]).tables == original.tables
