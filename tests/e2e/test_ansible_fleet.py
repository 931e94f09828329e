"""Real Ansible against three lab hosts over SSH: each host is its own network namespace with its
own trust stores (a Sandbox) and a real sshd; ansible-playbook runs in a controller namespace.

The story: the hosts cannot reach the controller's TLS site (its CA is unknown to them);
one playbook fixes that with trust_fix, applies a firewall policy (confirm-or-rollback
confirmed by a second task over a new SSH connection) and opens JMX on the app chain with
firewall_rule at the position where it works; a second run changes nothing; check + diff mode
shows a further change without making it; a policy that would cut Ansible's own SSH flow is
refused, a change nobody confirms rolls back by itself, and every host stays reachable.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from bench.ansible_fleet import ANSIBLE_BIN, Fleet  # noqa: E402

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)"),
    pytest.mark.skipif(not (ANSIBLE_BIN / "ansible-playbook").exists(),
                       reason="ansible-core not installed (.venv-ansible: scripts/setup.sh)"),
]

CALLBACK = "trustwall.core.fleet_json"
POLICY = """\
version: 1
ipv4:
  filter:
    unmanaged: [APP]
    INPUT:
      policy: DROP
      rules:
        - name: established
          rule: -m state --state RELATED,ESTABLISHED -j ACCEPT
          reason: replies
          owner: netops
        - {name: loopback, rule: -i lo -j ACCEPT, reason: local, owner: netops}
        - {name: ssh, rule: -p tcp -s 198.18.0.0/15 -m tcp --dport 2222 -j ACCEPT,
           reason: ansible, owner: netops}
%s        - {name: app, rule: -p tcp -j APP, reason: app team rules, owner: app}
"""
HTTP_RULE = ("        - {name: http, rule: -p tcp -m tcp --dport 8080 -j ACCEPT, reason: web,"
             " owner: web}\n")
# No SSH rule: new connections (Ansible's next task) would be dropped.
LOCKOUT = """\
version: 1
ipv4:
  filter:
    INPUT:
      policy: DROP
      rules:
        - name: established
          rule: -m state --state RELATED,ESTABLISHED -j ACCEPT
          reason: replies
          owner: netops
"""

SITE = """\
- hosts: fleet
  gather_facts: false
  vars:
    site_url: "https://{{ ansible_host | regex_replace('[.]2$', '.1') }}:8443/"
  tasks:
    - name: fix interception
      trustwall.core.trust_fix: {url: "{{ site_url }}", clients: [curl, python]}
      tags: [trust]
    - name: policy
      trustwall.core.firewall_policy:
        content: "{{ lookup('file', policy_file) }}"
        confirm_within: 60
      register: policy
      tags: [firewall]
    - name: confirm over a new connection
      trustwall.core.firewall_policy: {confirm: true}
      when: policy is changed and not ansible_check_mode
      tags: [firewall]
    - name: app chain rejects the JMX range
      trustwall.core.firewall_rule:
        {chain: APP, action: reject, proto: tcp, dport: "9000:9999", reject_with: tcp-reset,
         confirm_within: 0}
      tags: [firewall]
    - name: open JMX to the lab network
      trustwall.core.firewall_rule:
        {chain: APP, action: allow, proto: tcp, dport: "{{ jmx_port }}", src: 198.18.0.0/15,
         name: jmx, expires: "2099-01-01T00:00:00Z", confirm_within: 0}
      tags: [firewall]
    - name: facts
      trustwall.core.trustwall_facts: {lint: true}
"""

# The lockout policy is refused; then a change applied with an 8 s deadline and never
# confirmed rolls back by itself after Ansible's connection has gone.
LOCK = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: lockout
      trustwall.core.firewall_policy: {content: "{{ lookup('file', policy_file) }}"}
      ignore_errors: true
    - name: unconfirmed
      trustwall.core.firewall_policy:
        {content: "{{ lookup('file', other_policy) }}", confirm_within: 8}
"""

# After the lockout refusal: the hosts are reachable over new connections, and trust_ca sees
# the CA trust_fix installed (same fingerprints: ok), would remove it (check mode) and can
# verify the site with the real curl.
AFTER = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: present
      trustwall.core.trust_ca:
        content: "{{ lookup('file', ca_file) }}"
        verify_url: "https://{{ ansible_host | regex_replace('[.]2$', '.1') }}:8443/"
        verify_clients: [curl]
    - name: absent
      trustwall.core.trust_ca: {content: "{{ lookup('file', ca_file) }}", state: absent}
      check_mode: true
      diff: true
"""


def _site_server(fleet: Fleet, work: Path) -> subprocess.Popen:
    """An HTTPS site on the controller whose private CA the hosts do not trust (what a host
    behind an intercepting proxy sees); it sends leaf + root, as many proxies do."""
    from trustwall.lab.ca import issue_leaf, make_ca

    ca = make_ca("Fleet Inspection CA", org="Corp", seed=b"ansible-fleet")
    leaf = issue_leaf(ca, [f"198.18.{100 + i}.1" for i in range(1, 4)], seed=b"ansible-fleet")
    (work / "leaf.pem").write_bytes(leaf.cert_pem)
    (work / "leaf.key").write_bytes(leaf.key_pem)
    (work / "root.pem").write_bytes(ca.cert_pem)
    assert fleet.controller is not None
    server = fleet.controller.popen(
        ["openssl", "s_server", "-quiet", "-www", "-accept", "8443", "-cert",
         str(work / "leaf.pem"), "-key", str(work / "leaf.key"), "-cert_chain",
         str(work / "root.pem")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL)
    for _ in range(100):
        if fleet.controller.run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8443"],
                                check=False).returncode == 0:
            return server
        time.sleep(0.05)
    raise AssertionError("openssl s_server did not start")


def _run(fleet: Fleet, work: Path, playbook: str, *args: str) -> dict:
    """Run a playbook with the json callback; returns its document."""
    path = work / "play.yml"
    path.write_text(playbook)
    done = fleet.playbook(path, *args, check=False, env={"ANSIBLE_STDOUT_CALLBACK": CALLBACK})
    try:
        return json.loads(done.stdout[done.stdout.index("{"):])
    except ValueError:
        raise AssertionError(f"no json from ansible-playbook: {done.stdout[-2000:]}"
                             f"{done.stderr[-2000:]}") from None


def _failed(doc: dict) -> list[tuple[str, str, str]]:
    return [(task["task"]["name"], host, res.get("msg", ""))
            for play in doc["plays"] for task in play["tasks"]
            for host, res in task["hosts"].items() if res.get("failed")]


def _task(doc: dict, name: str) -> dict[str, dict]:
    for play in doc["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == name:
                return task["hosts"]
    raise KeyError(name)


def _save(fleet: Fleet) -> dict[str, str]:
    """Each host's ruleset as iptables-save prints it, without counters and timestamps."""
    return {h: "\n".join(re.sub(r" \[\d+:\d+\]$", "", line).removesuffix(" ")
                         for line in fleet.run(h, ["iptables-save"]).stdout.splitlines()
                         if not line.startswith("#")) for h in fleet.hosts}


def _rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("-A")]


def test_fleet_fix_policy_rule_idempotent_check_diff_and_lockout(tmp_path: Path) -> None:
    work = tmp_path
    (work / "policy.yaml").write_text(POLICY % "")
    (work / "policy2.yaml").write_text(POLICY % HTTP_RULE)
    (work / "lockout.yaml").write_text(LOCKOUT)
    site_vars = ("-e", f"policy_file={work / 'policy.yaml'}", "-e", "jmx_port=9010")
    (work / "fleet").mkdir()
    with Fleet(3, work / "fleet") as fleet:
        _site_server(fleet, work)
        url = {h: f"https://198.18.{100 + int(h[1:])}.1:8443/" for h in fleet.hosts}
        for h in fleet.hosts:  # untrusted CA: curl's "unable to get local issuer certificate"
            assert fleet.run(h, ["curl", "-sS", "-o", "/dev/null", url[h]], check=False
                             ).returncode == 60

        dry = _run(fleet, work, SITE, *site_vars, "--check", "--diff", "--tags", "trust")
        assert not _failed(dry), _failed(dry)
        for host, res in _task(dry, "fix interception").items():
            assert res["changed"] and not res["txn"] and res["anchors"], res
            assert "+ debian /usr/local/share/ca-certificates" in res["diff"]["prepared"], res
            assert fleet.run(host, ["curl", "-sS", "-o", "/dev/null", url[host]], check=False
                             ).returncode == 60  # check mode installed nothing

        first = _run(fleet, work, SITE, *site_vars)
        stats = first["stats"]
        assert set(stats) == {"h1", "h2", "h3"}
        assert not _failed(first), _failed(first)
        for res in _task(first, "fix interception").values():
            assert res["changed"] and not any(c["ok"] for c in res["before"]), res
            assert all(c["ok"] for c in res["after"]) and res["txn"], res
        assert all(r["changed"] and r["confirm_deadline"]
                   for r in _task(first, "policy").values())
        assert all(r["changed"] for r in _task(first, "confirm over a new connection").values())
        assert all(r["position"] == 1 for r in _task(first, "open JMX to the lab network")
                   .values())  # before the REJECT, where it takes effect (not appended)
        for host, text in _save(fleet).items():
            assert fleet.run(host, ["curl", "-sS", "-o", "/dev/null", url[host]]).returncode == 0
            app = [r for r in _rules(text) if r.startswith("-A APP")]
            assert "--dport 9010" in app[0] and "REJECT" in app[1], text
            assert '"tw:jmx expires=2099-01-01T00:00:00Z" -j ACCEPT' in app[0], text
            assert '-A INPUT -p tcp -m comment --comment "tw:app" -j APP' in text
        for res in _task(first, "facts").values():
            facts = res["ansible_facts"]["trustwall"]
            assert {"debian", "java"} <= {s["kind"] for s in facts["stores"]}, facts
            assert facts["firewall"]["backend"]["default"] == "nft"
            assert facts["firewall"]["rules"] == 6 and isinstance(facts["firewall"]["findings"],
                                                                  list)
        # confirmed: no rollback is pending, the ruleset stays
        for h in fleet.hosts:
            state = fleet.hosts[h][1].path("/var/lib/trustwall")
            assert (state / "journal.jsonl").exists() or any(state.iterdir())
            assert not list(state.glob("fw-*.json")), h

        before = _save(fleet)
        second = _run(fleet, work, SITE, *site_vars)
        assert not _failed(second), _failed(second)
        assert all(s["changed"] == 0 for s in second["stats"].values()), second["stats"]
        assert _save(fleet) == before

        check = _run(fleet, work, SITE, "-e", f"policy_file={work / 'policy2.yaml'}",
                     "-e", "jmx_port=9011", "--check", "--diff", "--tags", "firewall")
        assert not _failed(check), _failed(check)
        for res in _task(check, "policy").values():
            assert res["changed"] and "8080" in res["diff"]["prepared"], res
            assert "8080" in res["diff"]["after"] and "8080" not in res["diff"]["before"]
        for res in _task(check, "open JMX to the lab network").values():
            # the rule named jmx is replaced: 9011 in front of the REJECT, 9010 no longer open
            assert res["changed"] and res["position"] == 1, (res["explanation"], res["diff"])
            assert "9011" in res["diff"]["prepared"] and "9010" in res["diff"]["prepared"], res
        assert _save(fleet) == before  # check mode changed nothing

        (work / "lockout.yaml").write_text(LOCKOUT)
        locked = _run(fleet, work, LOCK, "-e", f"policy_file={work / 'lockout.yaml'}",
                      "-e", f"other_policy={work / 'policy2.yaml'}")
        for host, res in _task(locked, "lockout").items():
            assert res.get("failed") and res["error"] == "LockoutRisk", (host, res)
            assert "a new connection would be DROP" in res["msg"]
        assert all(r["changed"] and r["confirm_deadline"]
                   for r in _task(locked, "unconfirmed").values())
        assert all("--dport 8080" in text for text in _save(fleet).values())
        after = _run(fleet, work, AFTER, "-e", f"ca_file={work / 'root.pem'}")
        assert not _failed(after), _failed(after)
        assert all(s["ok"] == 2 and s["unreachable"] == 0 for s in after["stats"].values())
        for res in _task(after, "present").values():
            assert not res["changed"] and res["verify"][0]["ok"], res
            assert {s["kind"] for s in res["stores"] if s["already"]} >= {"debian", "java"}, res
        for host, res in _task(after, "absent").items():
            assert res["changed"] and not res["txn"], res  # check mode: nothing removed
            assert "- debian" in res["diff"]["prepared"], res
            assert fleet.run(host, ["curl", "-sS", "-o", "/dev/null", url[host]]).returncode == 0
        deadline = time.monotonic() + 20
        while _save(fleet) != before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _save(fleet) == before  # every host rolled the unconfirmed change back
