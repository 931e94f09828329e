"""Who owns the firewall (owners.detect) on real dumps, Docker routing, dispatch, owner lint —
the pure halves, on the corpora's real-world iptables-save dumps (read in place)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustwall.cli.main import main
from trustwall.errors import BadInput
from trustwall.firewall.analysis.lint import lint
from trustwall.firewall.iptables.live import read_file
from trustwall.firewall.owners import detect, dispatch, docker
from trustwall.firewall.owners.base import Request
from trustwall.firewall.owners.lint import owner_lint
from trustwall.lab.corpora import REAL_RULESETS

NET = REAL_RULESETS / "net-network"
UFW_SERVER = NET / "configs_srvs_ufw" / "server1-iptables-save"
DOCKER_8080 = NET / "configs_serverfault" / "758088.txt"  # Docker publishes 8080 -> :3000
FIREWALLD = (REAL_RULESETS / "netfilter-iptables-tests" / "iptables" / "tests" / "shell"
             / "testcases" / "firewalld-restore" / "dumps" / "ipt-save-completed.txt")

pytestmark = pytest.mark.skipif(not UFW_SERVER.exists(), reason="corpora not available")


def owners(path: Path, **facts: object) -> detect.Ownership:
    return detect.classify(detect.HostFacts(chains=detect.chains_of([read_file(path)]),
                                            **facts))  # type: ignore[arg-type]


def test_a_real_ufw_server_is_owned_by_ufw_chain_by_chain():
    found = owners(UFW_SERVER)
    assert found.host == "ufw"
    assert found.owner_of("filter", "ufw-user-input") == "ufw"
    assert found.owner_of("filter", "INPUT") == "ufw"  # the built-ins it hooks
    assert set(found.chains.values()) == {"ufw"}


def test_a_real_docker_host_keeps_docker_chains_read_only():
    found = owners(DOCKER_8080)
    assert found.host == "none"
    assert found.owner_of("nat", "DOCKER") == "docker"
    assert found.owner_of("filter", "DOCKER-ISOLATION") == "docker"
    assert found.owner_of("filter", "INPUT") == "none"
    assert "docker chains/tables present (read only)" in found.evidence


def test_firewalld_iptables_backend_chains_when_firewalld_runs():
    found = owners(FIREWALLD, firewalld_running=True)
    assert found.host == "firewalld"
    assert found.owner_of("filter", "IN_public_allow") == "firewalld"
    assert found.owner_of("nat", "POSTROUTING_ZONES") == "firewalld"
    # Without firewalld running, the same names are nobody's (a user may call a chain IN_x).
    assert owners(FIREWALLD).owner_of("filter", "IN_public_allow") == "none"


@pytest.mark.parametrize(("name", "owner"), [
    ("KUBE-SERVICES", "kube-proxy"), ("LIBVIRT_INP", "libvirt"), ("f2b-sshd", "fail2ban"),
    ("DOCKER-USER", "docker"), ("DOCKER-ISOLATION-STAGE-1", "docker"), ("ufw6-user-input", "ufw"),
    ("MYCHAIN", "none"), ("INPUT", "none"),
])
def test_chain_names(name, owner):
    assert detect.chain_owner(name, "none") == owner


@pytest.mark.parametrize(("table", "owner"), [
    (("inet", "firewalld"), "firewalld"), (("ip", "kube-proxy"), "kube-proxy"),
    (("ip", "docker-bridges"), "docker"), (("inet", "f2b-table"), "fail2ban"),
    (("ip", "libvirt_network"), "libvirt"), (("ip", "filter"), "none"),
])
def test_nft_table_names(table, owner):
    facts = detect.HostFacts(nft_tables=(table,))
    assert detect.classify(facts).owner_of_nft_table(*table) == owner


def test_the_host_writer_is_the_most_specific_manager():
    assert detect.host_writer(detect.HostFacts(firewalld_running=True, ufw_enabled=True))[0] \
        == "firewalld"
    assert detect.host_writer(detect.HostFacts(nft_tables=(("inet", "firewalld"),)))[0] \
        == "firewalld"
    assert detect.host_writer(detect.HostFacts(ufw_enabled=True,
                                               boot_files=("/etc/iptables/rules.v4",)))[0] \
        == "ufw"
    conf = detect.HostFacts(nftables_conf="/etc/nftables.conf",
                            nftables_declared=(("inet", "filter"),),
                            nft_tables=(("inet", "filter"),))
    assert detect.host_writer(conf)[0] == "nftables"
    # A conf whose tables are not loaded and no enabled service: nftables is not the writer.
    idle = detect.HostFacts(nftables_conf="/etc/nftables.conf",
                            nftables_declared=(("inet", "filter"),))
    assert detect.host_writer(idle)[0] == "none"
    assert detect.host_writer(detect.HostFacts(boot_files=("/etc/iptables/rules.v4",)))[0] \
        == "iptables"


def test_nftables_conf_includes_are_followed_safely(tmp_path):
    etc = tmp_path / "etc"
    (etc / "nftables.d").mkdir(parents=True)
    (etc / "nftables.conf").write_text(
        'flush ruleset\ninclude "/etc/nftables.d/*.nft"\ninclude "./local.nft" # own\n'
        'include "/etc/nftables.conf"\ntable inet filter {\n}\n')
    (etc / "nftables.d" / "a.nft").write_text("table ip nat {\n}\n")
    (etc / "nftables.d" / "b.nft").write_text('include "/etc/nftables.d/a.nft"\n'
                                              "add table ip6 extra\n")
    (etc / "local.nft").write_text("table bridge br0 { }\n")
    (etc / "ufw").mkdir()
    (etc / "ufw" / "ufw.conf").write_text("# comment\nENABLED=yes\n")
    conf = detect.nftables_conf(str(tmp_path))
    assert conf == etc / "nftables.conf"
    files = detect.conf_files(conf, str(tmp_path))  # a loop back to itself is read once
    assert files == [conf, etc / "nftables.d" / "a.nft", etc / "nftables.d" / "b.nft",
                     etc / "local.nft"]
    assert detect.declared_tables(files) == (("inet", "filter"), ("ip", "nat"), ("ip6", "extra"),
                                             ("bridge", "br0"))
    assert detect.ufw_enabled(str(tmp_path))
    assert not detect.nftables_service_enabled(str(tmp_path))


def test_an_input_plan_for_a_docker_published_port_is_refused_or_moved():
    ruleset = read_file(DOCKER_8080)
    ownership = owners(DOCKER_8080)
    [pub] = docker.published_ports(ruleset, ownership)
    assert (pub.proto, pub.port, pub.to, pub.owner) == ("tcp", "8080", "172.17.0.4:3000",
                                                         "docker")
    request = Request("deny", proto="tcp", dport="8080", chain="INPUT")
    refused = dispatch.plan(request, ruleset=ruleset, ownership=ownership, explicit_chain=True)
    assert refused.owner == "docker" and "never pass INPUT" in refused.refused
    assert "--chain DOCKER-USER" in refused.next
    # This (old) Docker has no DOCKER-USER: nowhere to put it that Docker keeps.
    moved = dispatch.plan(Request("deny", proto="tcp", dport="8080"), ruleset=ruleset,
                          ownership=ownership)
    assert moved.refused and "no DOCKER-USER chain" in moved.refused
    # A port nobody publishes is an ordinary INPUT rule.
    plain = dispatch.plan(Request("allow", proto="tcp", dport="22"), ruleset=ruleset,
                          ownership=ownership)
    assert plain.refused is None and plain.owner == "none"


def test_read_only_chains_are_never_written():
    ruleset = read_file(DOCKER_8080)
    plan = dispatch.plan(Request("allow", proto="tcp", dport="3000", chain="DOCKER"),
                         ruleset=ruleset, ownership=owners(DOCKER_8080), explicit_chain=True)
    assert plan.owner == "docker" and "never writes there" in plan.refused
    code = main(["fw", "allow", "-f", str(DOCKER_8080), "--chain", "DOCKER", "-p", "tcp",
                 "--dport", "3000", "--plan"])
    assert code == 1


def test_a_missing_owner_module_is_not_supported_yet(monkeypatch):
    monkeypatch.setitem(dispatch.MODULES, "ufw", "trustwall.firewall.owners.no_such_owner")
    with pytest.raises(BadInput, match="owned by ufw is not supported yet"):
        dispatch.owner_module("ufw")


def test_plan_json_carries_owner_commands_persistence_and_effect(capsys):
    assert main(["fw", "allow", "-f", str(DOCKER_8080), "-p", "tcp", "--dport", "22",
                 "--plan", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["owner"] == "none" and data["persistent"] is False
    assert data["commands"][0].startswith(("iptables -I INPUT", "iptables -A INPUT"))
    assert data["effect"] and data["position"] >= 1


def test_owner_lint_hides_ufw_structure_but_keeps_the_operators_rules():
    ruleset = read_file(UFW_SERVER)
    ownership = owners(UFW_SERVER)
    report = lint(ruleset)
    seen = owner_lint(report, ruleset, ownership)
    everything = owner_lint(report, ruleset, ownership, show_all=True)
    assert len(everything.findings) == len(report.findings) > len(seen.findings)
    assert len(seen.hidden) == len(report.findings) - len(seen.findings)
    assert all(h.owner == "ufw" and h.kept_on_purpose for h in seen.hidden)
    assert {h.finding.kind for h in seen.hidden} >= {"empty_chain"}
    for kept in seen.findings:  # what is left is about the operator's own ufw rules
        assert kept.finding.chain.startswith("ufw-user-") and "ufw" in kept.next
    assert any("not reported" in p for p in seen.partial)  # no files: hand_added unchecked


def test_lint_json_names_every_findings_owner(capsys):
    main(["fw", "lint", "-f", str(DOCKER_8080), "--json", "--all"])
    data = json.loads(capsys.readouterr().out)
    assert data["findings"] and all("owner" in f for f in data["findings"])


def test_show_json_and_text_name_the_owner(capsys):
    assert main(["fw", "show", "-f", str(UFW_SERVER), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["owner"] == "ufw" and {c["owner"] for c in data["chains"]} == {"ufw"}
    assert main(["fw", "show", "-f", str(DOCKER_8080), "-t", "nat"]) == 0
    out = capsys.readouterr().out
    assert "#   docker: DOCKER" in out


def test_trace_steps_carry_their_owner(capsys):
    assert main(["fw", "trace", "-f", str(DOCKER_8080), "--src", "192.0.2.1", "--dst",
                 "198.51.100.1", "--dport", "8080", "--in", "eth0", "--local-addr",
                 "198.51.100.1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    owners_seen = {(s["table"], s["chain"]): s["owner"] for s in data["path"] if s["table"]}
    assert owners_seen[("nat", "DOCKER")] == "docker"
    assert owners_seen[("nat", "PREROUTING")] == "none"


def test_an_include_never_leads_out_of_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "outside.nft").write_text("table ip outside {\n}\n")
    (root / "etc" / "nftables.conf").write_text('include "../../outside.nft"\n'
                                                'include "/../outside.nft"\ntable inet a {\n}\n')
    files = detect.conf_files(root / "etc" / "nftables.conf", str(root))
    assert detect.declared_tables(files) == (("inet", "a"),)


def test_nft_rule_text_and_statements():
    from trustwall.firewall.owners.nftables_conf import NftRule, rule_text, without_rule

    text = rule_text(Request("allow", proto="tcp", dport="18745", src="198.18.0.0/24",
                             in_iface="eth0", name="jmx"), "inet")
    assert text == ('iifname "eth0" ip saddr 198.18.0.0/24 tcp dport 18745 ct state != invalid '
                    'accept comment "tw:jmx"')
    assert rule_text(Request("deny", proto="udp", dport="53,5353"), "ip") == \
        "udp dport { 53, 5353 } drop"
    # A removal describes the rule the allow added (same INVALID guard).
    assert rule_text(Request("delete", proto="tcp", dport="80", removes="allow"), "inet") == \
        "tcp dport 80 ct state != invalid accept"
    for hostile in ('eth0" accept', "a;b", "x\ny"):
        with pytest.raises(BadInput):
            rule_text(Request("allow", proto="tcp", dport="1", in_iface=hostile), "inet")
    with pytest.raises(BadInput):
        rule_text(Request("allow", comment='x" drop #'), "inet")
    top = NftRule("inet", "filter", "input", 0, "tcp dport 1 accept")
    assert top.statement == "insert rule inet filter input tcp dport 1 accept"
    assert NftRule("inet", "filter", "input", 2, "x").statement == \
        "insert rule inet filter input index 2 x"
    conf = "table inet filter {\n}\n"
    added = conf + "\n# trustwall: rule added now\n" + top.statement + "\n"
    assert without_rule(added, top) == conf
    other = NftRule("inet", "filter", "forward", 0, "tcp dport 1 accept")
    assert without_rule(added, other) == added


def test_iptables_owner_plans_on_a_fresh_host_without_any_table() -> None:
    """A host whose kernel holds no iptables table at all (the filter table appears with the
    first rule): the plan reads its built-in chains as the apply does, instead of failing
    with "no chain INPUT"; their ACCEPT policy already lets the port in."""
    from trustwall.firewall.iptables.model import Ruleset
    from trustwall.firewall.owners import iptables_files

    plan = iptables_files.plan(Request("allow", proto="tcp", dport="18745"),
                               Ruleset(family=4, tables=()))
    assert plan.refused is None and plan.commands == ()
    assert "no change needed: the policy gives every such packet ACCEPT already" in plan.notes
