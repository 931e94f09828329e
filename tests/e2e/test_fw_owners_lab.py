"""Owners on real hosts in the lab: ufw (real ufw, rules captured as ufw makes them), plain
nftables (nftables.conf), a Docker-style published port, iptables-persistent.

Each host is a trustwall.lab.managed host: a network namespace plus a private mount namespace
held by one process, the owner's files as scratch copies (ufw) or /etc as an overlay on scratch
(/etc/nftables.conf, /etc/iptables), /run and /var/lib fresh tmpfs (ufw's lock file,
trustwall's journal), a client on a veth pair and the JMX stand-in on tcp/18745.
Truth: real connects, the kernel's listings (iptables-save, nft list ruleset) and counters
(a bare ACK sent raw from the client, lab.oracle.send_raw), `ufw reload`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections import Counter

import pytest

from trustwall.firewall.semantics.trace import Packet
from trustwall.lab.managed import (
    NFT_CONF,
    RULES_V4,
    IptablesPersistentHost,
    ManagedHost,
    NftablesHost,
)
from trustwall.lab.netns import Netns, veth
from trustwall.lab.oracle import send_raw
from trustwall.lab.ufw import UfwHost

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

SERVER_IP, CLIENT_IP = "198.18.230.1", "198.18.230.2"
LISTENER = ("import socket,sys\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, "
            "socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(16)\n"
            "while True:\n    c, _ = s.accept(); c.sendall(b'OK'); c.close()\n")


@pytest.fixture
def host():
    """``host(UfwHost)``: a started lab host (lab.managed) of that kind, closed after the test."""
    made: list[ManagedHost] = []

    def make(cls: type[ManagedHost], *args: object) -> ManagedHost:
        made.append(cls(*args, server_ip=SERVER_IP, client_ip=CLIENT_IP))  # type: ignore[call-arg]
        made[-1].start()
        return made[-1]

    yield make
    for h in made:
        h.close()


def connects(server: ManagedHost, port: int = 18745) -> bool:
    return server.connect(port, timeout=1.5).startswith("OK")


def _json(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout)


def _rules(save: str) -> list[str]:
    """iptables-save lines that say what the ruleset is (no comments, no counters)."""
    return [re.sub(r" \[\d+:\d+\]$", "", line) for line in save.splitlines()
            if line.startswith(("-A", ":", "*"))]


# -- ufw -------------------------------------------------------------------------------------


def test_ufw_host_lint_hides_ufws_structure_and_reports_hand_added_rules(host):
    server = host(UfwHost)
    server.run(["ufw", "--force", "enable"])
    server.run(["ufw", "allow", "22/tcp"])
    server.run(["ufw", "deny", "18745/tcp"])

    everything = _json(server.trustwall("fw", "lint", "--all", "--json", check=False))
    kinds = [f["kind"] for f in everything["findings"]]
    assert len(kinds) >= 20 and {"empty_chain", "unreachable_chain"} <= set(kinds)
    assert {f["owner"] for f in everything["findings"]} == {"ufw"}

    shown = _json(server.trustwall("fw", "lint", "--json", check=False))
    print(f"ufw lint figure: --all {len(kinds)} findings "
          f"{dict(sorted(Counter(kinds).items()))}; default {len(shown['findings'])} shown, "
          f"{shown['hidden']} hidden")
    assert shown["owner"] == "ufw"
    assert shown["hidden"] == len(kinds) - len(shown["findings"])
    assert len(shown["findings"]) <= 2
    for finding in shown["findings"]:  # what is left: the operator's own ufw rules
        assert finding["chain"] == "ufw-user-input" and "ufw" in finding["next"]

    # Rules added by hand inside ufw's chains: ufw's own reload is the oracle.
    server.run(["iptables", "-I", "ufw-before-input", "1", "-p", "tcp", "--dport", "9999",
                "-j", "ACCEPT"])
    server.run(["iptables", "-I", "INPUT", "1", "-p", "tcp", "--dport", "9998", "-j",
                "ACCEPT"])
    found = {(f["chain"], f["text"]): f for f in
             _json(server.trustwall("fw", "lint", "--json", check=False))["findings"]
             if f["kind"] == "hand_added"}
    in_ufw = found[("ufw-before-input", "-A ufw-before-input -p tcp -m tcp --dport 9999 "
                                        "-j ACCEPT")]
    in_input = found[("INPUT", "-A INPUT -p tcp -m tcp --dport 9998 -j ACCEPT")]
    assert "next `ufw reload`" in in_ufw["explanation"] and in_ufw["owner"] == "ufw"
    assert "next boot" in in_input["explanation"]
    assert len(found) == 2
    server.run(["ufw", "reload"])
    saved = server.run(["iptables-save"]).stdout
    assert "--dport 9999" not in saved and "--dport 9998" in saved  # as the findings said

    shown_text = server.trustwall("fw", "show").stdout
    assert "# owner: ufw" in shown_text


def test_ufw_host_refuses_a_policy_apply_and_plans_through_ufw(host, tmp_path):
    server = host(UfwHost)
    server.run(["ufw", "--force", "enable"])
    server.run(["ufw", "deny", "18745/tcp"])
    before = server.run(["iptables-save"]).stdout
    policy = server.trustwall("fw", "import", "--live").stdout
    server.run(["sh", "-c", "cat > /run/tw-policy.yaml"], input=policy)

    refused = server.trustwall("fw", "apply", "/run/tw-policy.yaml", "--yes", "--confirm-within",
                               "0", check=False)
    assert refused.returncode == 1
    assert "ufw manages this firewall" in refused.stderr and "ufw allow" in refused.stderr
    forced = server.trustwall("fw", "apply", "/run/tw-policy.yaml", "--force", "--dry-run",
                              "--json", "--confirm-within", "0")
    assert _json(forced)["dry_run"] is True
    assert _rules(server.run(["iptables-save"]).stdout) == _rules(before)

    # A plan goes through ufw (or, where owners.ufw is not merged yet, says so) — never the
    # raw `iptables -I INPUT …` that ufw would lose at the next boot.
    plan = server.trustwall("fw", "allow", "-p", "tcp", "--dport", "18745", "--plan", "--json",
                            check=False)
    if plan.returncode == 0:
        data = _json(plan)
        assert data["owner"] == "ufw" and all(c.startswith("ufw ") for c in data["commands"])
    else:
        assert "owned by ufw is not supported yet" in plan.stderr
        assert "iptables -I" not in plan.stdout


def test_why_in_names_the_ufw_owner(host):
    server = host(UfwHost)
    server.run(["ufw", "--force", "enable"])
    report = _json(server.trustwall("why-in", "18745", "--from", CLIENT_IP, "--json", check=False))
    rung = next(r for r in report["rungs"] if r["name"] == "firewall")
    assert rung["status"] == "broken", report
    assert "DROP by filter INPUT policy" in rung["found"] and "ufw" in rung["found"]
    assert "iptables -I" not in rung["found"]
    assert rung["next_command"].startswith("sudo ufw ") or \
        "not supported yet" in rung["found"]


# -- plain nftables ---------------------------------------------------------------------------

def _invalid_drops(server: ManagedHost) -> int:
    listed = server.run(["nft", "list", "chain", "inet", "filter", "input"]).stdout
    return int(re.search(r"ct state invalid counter packets (\d+)", listed).group(1))


def test_nftables_conf_owner_apply_survives_reboot_and_undo_is_exact(host):
    server = host(NftablesHost)
    assert not connects(server)
    live_before = server.listing()  # listings: counters at zero (packets sent move them)

    plan = _json(server.trustwall("fw", "allow", "-p", "tcp", "--dport", "18745", "--plan",
                                  "--json"))
    assert plan["owner"] == "nftables" and plan["persistent"] is True
    assert plan["writes"] == ["/etc/nftables.conf"]
    # The IR planner: directly before the catch-all reject (by its live handle), with
    # ct state != invalid because rule 2 drops INVALID packets on purpose.
    listed = server.run(["nft", "-a", "list", "chain", "inet", "filter", "input"]).stdout
    reject = re.search(r"\treject.* # handle (\d+)", listed).group(1)
    commands = [" ".join(shlex.split(c)) for c in plan["commands"]]
    assert commands == [f"nft insert rule inet filter input handle {reject} tcp dport 18745 "
                        "ct state != invalid accept"]
    assert plan["refused"] is None
    assert plan["effect"] and all("18745" in e and "INVALID" not in e for e in plan["effect"])
    assert any("NEW" in e and e.endswith("at hook input: ACCEPT") for e in plan["effect"])

    started = time.monotonic()
    applied = _json(server.trustwall("fw", "allow", "-p", "tcp", "--dport", "18745", "--apply",
                                     "--yes", "--json"))
    trustwall_s = time.monotonic() - started
    assert applied["owner"] == "nftables" and applied["result"]["applied"] is True
    assert connects(server)  # NEW, then ESTABLISHED packets of a real connection
    # INVALID: a bare ACK (no connection, strict tcp tracking) stays dropped, by rule 2.
    server.run(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_loose=0"])
    invalid_before = _invalid_drops(server)
    send_raw(server.client, Packet(CLIENT_IP, SERVER_IP, "tcp", sport=41234, dport=18745,
                                   state="INVALID", tcp_flags=frozenset({"ACK"})))
    deadline = time.monotonic() + 2
    while _invalid_drops(server) == invalid_before and time.monotonic() < deadline:
        time.sleep(0.05)  # the veth hop is processed in softirq
    assert _invalid_drops(server) == invalid_before + 1
    after = server.listing()
    assert "tcp dport 18745 ct state != invalid accept" in after

    server.reboot()  # an empty kernel, then what nftables.service runs
    assert server.listing() == after
    assert connects(server)

    # Removal through the same owner: live rule by handle, and its line in the file.
    with_rule = server.run(["cat", "/etc/nftables.conf"]).stdout
    planned = _json(server.trustwall("fw", "delete", "--plan", "--json", "INPUT", "-p", "tcp",
                                     "--dport", "18745", "-j", "ACCEPT"))
    added = re.search(r"tcp dport 18745 ct state != invalid accept # handle (\d+)", server.run(
        ["nft", "-a", "list", "chain", "inet", "filter", "input"]).stdout).group(1)
    assert planned["commands"] == [f"nft delete rule inet filter input handle {added}"]
    assert any("18745" in e and "NEW" in e and "REJECT" in e.upper() for e in planned["effect"])
    removed = _json(server.trustwall("fw", "delete", "--apply", "--yes", "--json", "INPUT",
                                     "-p", "tcp", "--dport", "18745", "-j", "ACCEPT"))
    assert removed["owner"] == "nftables"
    assert server.listing() == live_before
    assert server.run(["cat", "/etc/nftables.conf"]).stdout == NFT_CONF
    assert not connects(server)
    server.trustwall("undo", removed["result"]["txn_id"])
    assert server.listing() == after
    assert server.run(["cat", "/etc/nftables.conf"]).stdout == with_rule

    server.trustwall("undo", applied["result"]["txn_id"])
    assert server.listing() == live_before
    assert server.run(["cat", "/etc/nftables.conf"]).stdout == NFT_CONF
    assert not connects(server)

    # The manager's own command, same run, for the latency note.
    started = time.monotonic()
    server.run(["nft", "insert", "rule", "inet", "filter", "input", "tcp", "dport", "18745",
                "accept"])
    native_s = time.monotonic() - started
    print(f"apply latency nftables: trustwall {trustwall_s:.3f}s, nft insert {native_s:.3f}s")


def test_nftables_plan_refuses_an_accept_a_later_base_chain_drops(host):
    """Across every base chain of the hook: a later table that drops the port makes the
    accept no plan; the refusal names that rule, and the kernel agrees (connect fails)."""
    later = ("table ip late {\n\tchain input {\n\t\ttype filter hook input priority 10; "
             "policy accept;\n\t\ttcp dport 18745 counter drop\n\t}\n}\n")
    server = host(NftablesHost, NFT_CONF + later)
    listed = server.run(["nft", "-a", "list", "table", "ip", "late"]).stdout
    handle = re.search(r"tcp dport 18745 counter packets \d+ bytes \d+ drop # handle (\d+)",
                       listed).group(1)
    proc = server.trustwall("fw", "allow", "-p", "tcp", "--dport", "18745", "--plan", "--json",
                            check=False)
    assert proc.returncode != 0
    plan = _json(proc)
    assert plan["owner"] == "nftables"
    assert f"nft ip late input rule 1 (handle {handle})" in plan["refused"]
    assert "does not let it in" in plan["refused"]
    # The kernel: with the accept added by hand, the later table still drops the SYN.
    server.run(["nft", "insert", "rule", "inet", "filter", "input", "tcp", "dport", "18745",
                "accept"])
    assert not connects(server)
    assert "counter packets 0 " not in server.run(["nft", "list", "table", "ip",
                                                     "late"]).stdout


def test_mixed_iptables_and_nft_host_plans_across_both_and_apply_opens_the_port(host):
    """iptables-nft's filter INPUT (policy DROP) and a native nft table at priority 10: an
    iptables plan is checked through the nft table too — a port the nft table drops is
    refused naming its rule; another port is planned, applied, and a real connect passes."""
    server = host(ManagedHost)
    server.run(["iptables-nft", "-P", "INPUT", "DROP"])
    server.run(["iptables-nft", "-A", "INPUT", "-m", "conntrack", "--ctstate",
                "ESTABLISHED,RELATED", "-j", "ACCEPT"])
    server.run(["nft", "-f", "-"], input="table inet mixed {\n\tchain input {\n\t\ttype "
               "filter hook input priority 10; policy accept;\n\t\ttcp dport 9999 counter "
               "drop\n\t}\n}\n")
    server.listen(9999)
    assert not connects(server)
    handle = re.search(r"tcp dport 9999 counter packets \d+ bytes \d+ drop # handle (\d+)",
                       server.run(["nft", "-a", "list", "table", "inet", "mixed"]).stdout
                       ).group(1)

    lint = _json(server.trustwall("fw", "lint", "--live", "--json", check=False))
    assert lint["rules"] >= 2  # iptables' and nft's rules both counted

    proc = server.trustwall("fw", "allow", "-p", "tcp", "--dport", "9999", "--plan", "--json",
                            check=False)
    assert proc.returncode != 0
    refused = _json(proc)["refused"]
    assert f"nft inet mixed input rule 1 (handle {handle})" in refused, refused

    plan = _json(server.trustwall("fw", "allow", "-p", "tcp", "--dport", "18745", "--plan",
                                  "--json"))
    assert plan["refused"] is None and plan["commands"][0].startswith("iptables")
    applied = _json(server.trustwall("fw", "allow", "-p", "tcp", "--dport", "18745", "--apply",
                                     "--yes", "--json"))
    assert applied["result"]["applied"] is True, applied
    assert connects(server)
    assert not connects(server, 9999)


# -- Docker ------------------------------------------------------------------------------------

CONTAINER_IP = "172.17.0.2"
DOCKER_RULES = f"""*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination {CONTAINER_IP}:3000
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A DOCKER -d {CONTAINER_IP}/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 3000 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
"""


def test_docker_published_port_is_changed_in_docker_user_never_input(host, tmp_path):
    server = host(ManagedHost)
    container = Netns.create("container")
    try:
        veth(server.server, "docker0", "172.17.0.1/16", container, "eth0", f"{CONTAINER_IP}/16")
        container.run(["ip", "route", "add", "default", "via", "172.17.0.1"])
        server.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        server.run(["iptables-restore"], input=DOCKER_RULES)
        listener = container.popen([sys.executable, "-c", LISTENER, "3000"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        before = server.run(["iptables-save"]).stdout
        assert connects(server, 8080)  # INPUT drops everything but 22: DNAT'ed never sees it

        refused = server.trustwall("fw", "deny", "-p", "tcp", "--dport", "8080", "--chain", "INPUT",
                                   "--plan", check=False)
        assert refused.returncode == 1 and "never pass INPUT" in refused.stderr
        assert "DOCKER-USER" in refused.stderr
        written = server.trustwall("fw", "deny", "-p", "tcp", "--dport", "3000", "--chain",
                                   "DOCKER", "--plan", check=False)
        assert written.returncode == 1 and "belongs to docker" in written.stderr

        plan = _json(server.trustwall("fw", "deny", "-p", "tcp", "--dport", "8080", "--plan",
                                      "--json"))
        assert plan["owner"] == "docker"
        assert plan["commands"] == ["iptables -I DOCKER-USER 1 -p tcp -m conntrack "
                                    "--ctorigdstport 8080 --ctdir ORIGINAL -j DROP"]
        # Described as FORWARD sees them (after the DNAT): the container's address and port.
        assert any(line.startswith("FORWARD: tcp dport 3000 state INVALID,NEW") and
                   line.endswith(f"to {CONTAINER_IP}: ACCEPT → DROP") for line in plan["effect"])
        state = str(tmp_path / "state")
        applied = _json(server.trustwall("fw", "deny", "-p", "tcp", "--dport", "8080", "--apply",
                                         "--yes", "--json", "--confirm-within", "0", "--no-persist",
                                         "--state-dir", state))
        assert applied["owner"] == "docker" and applied["result"]["applied"] is True
        saved = server.run(["iptables-save"]).stdout
        assert ("-A DOCKER-USER -p tcp -m conntrack --ctorigdstport 8080 --ctdir ORIGINAL "
                "-j DROP") in saved
        assert not connects(server, 8080)
        server.trustwall("undo", "--state-dir", state)
        assert _rules(server.run(["iptables-save"]).stdout) == _rules(before)
        assert connects(server, 8080)
        listener.kill()
    finally:
        container.delete()


# -- iptables-persistent ------------------------------------------------------------------------

def test_iptables_persistent_owner_writes_the_boot_file_and_undo_removes_it(host):
    server = host(IptablesPersistentHost)
    assert not connects(server)

    plan = _json(server.trustwall("fw", "allow", "-p", "tcp", "--dport", "18745", "--plan",
                                  "--json"))
    assert plan["owner"] == "iptables" and plan["persistent"] is True
    assert plan["commands"][-1] == "iptables-save -f /etc/iptables/rules.v4"
    started = time.monotonic()
    applied = _json(server.trustwall("fw", "allow", "-p", "tcp", "--dport", "18745", "--apply",
                                     "--yes", "--json", "--confirm-within", "0"))
    trustwall_s = time.monotonic() - started
    assert applied["owner"] == "iptables"
    assert applied["result"]["persisted"] == ["/etc/iptables/rules.v4"]
    assert connects(server)
    after = _rules(server.run(["iptables-save"]).stdout)

    server.reboot()  # an empty kernel, then what netfilter-persistent runs
    assert _rules(server.run(["iptables-save"]).stdout) == after
    assert connects(server)

    server.trustwall("undo")
    assert server.run(["cat", "/etc/iptables/rules.v4"]).stdout == RULES_V4
    assert not connects(server)
    started = time.monotonic()
    server.run(["iptables", "-I", "INPUT", "3", "-p", "tcp", "--dport", "18745", "-j",
                "ACCEPT"])
    server.run(["sh", "-c", "iptables-save > /etc/iptables/rules.v4"])
    native_s = time.monotonic() - started
    print(f"apply latency iptables: trustwall {trustwall_s:.3f}s, iptables -I + save "
          f"{native_s:.3f}s")
