"""`fw lint --live` on native nft tables (beside iptables-nft ones) against the kernel.

Truth: the kernel's own per-rule counters after a random packet sweep (lab.oracle crafts NEW,
ESTABLISHED and INVALID packets with spoofed sources into the firewalled namespace). A rule
lint calls shadowed must never count a packet; the rules said to shadow it must; an accept
said not to let the packet in must count packets that the later base chain then drops.
Plans through the nftables owner are in test_fw_owners_lab.py (real connects).
"""

from __future__ import annotations

import json
import os
import random
import sys

import pytest

from trustwall.firewall.semantics.trace import Packet
from trustwall.lab.oracle import FW_SENDER_ADDR, KernelOracle

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

ENV = {"PATH": os.environ["PATH"], "HOME": "/root", "NO_COLOR": "1"}

NATIVE = """
table inet filter {
    set allowed { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 192.168.1.1 } }
    set pairs { type ipv4_addr . inet_service; elements = { 10.0.0.1 . 22, 10.0.0.2 . 80 } }
    chain input {
        type filter hook input priority 10; policy drop;
        ct state established,related counter accept
        ct state invalid counter drop
        ip saddr @allowed counter accept
        ip saddr 10.1.0.0/16 counter accept
        ip saddr . tcp dport @pairs counter accept
        tcp dport { 22, 80 } counter accept
        tcp dport 22 counter accept
        meta l4proto { tcp, udp } th dport 53 counter accept
        udp dport 53 counter accept
        tcp dport vmap { 8080 : accept, 8081 : drop }
        tcp dport 8081 counter accept
        ip saddr != 172.16.0.0/12 tcp dport 9000 counter drop
        ip saddr 1.2.3.4 tcp dport 9000 counter accept
        jump empty
        counter drop
    }
    chain empty {
    }
    chain orphan {
        tcp dport 1 counter drop
    }
}
"""

#: (family, table, chain, rule text) of each rule lint must call shadowed.
SHADOWED = {
    "ip saddr 10.1.0.0/16 counter packets 0 bytes 0 accept",
    "ip saddr . tcp dport @pairs counter packets 0 bytes 0 accept",
    "tcp dport 22 counter packets 0 bytes 0 accept",
    "udp dport 53 counter packets 0 bytes 0 accept",
    "tcp dport 8081 counter packets 0 bytes 0 accept",
    "ip saddr 1.2.3.4 tcp dport 9000 counter packets 0 bytes 0 accept",
}

SOURCES = ["10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.1", "1.2.3.4", "172.16.5.5",
           "198.18.0.2", "203.0.113.9"]
PORTS = [22, 53, 80, 8080, 8081, 9000, 18745, 1]


def _lint(oracle: KernelOracle) -> dict:
    proc = oracle.fw.run([sys.executable, "-m", "trustwall", "fw", "lint", "--live", "--json"],
                         check=False, env=ENV, input="", timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def _counters(oracle: KernelOracle) -> dict[int, tuple[str, int]]:
    """handle -> (rule text as nft lists it at zero, packets) for every native rule."""
    listing = json.loads(oracle.fw.run(["nft", "-j", "list", "ruleset"]).stdout)["nftables"]
    out = {}
    for obj in listing:
        rule = obj.get("rule")
        if not rule or rule["family"] != "inet":
            continue
        packets = sum(s["counter"]["packets"] for s in rule["expr"] if "counter" in s)
        out[rule["handle"]] = (rule["chain"], packets)
    return out


def _sweep(oracle: KernelOracle, n: int, seed: int) -> None:
    rng = random.Random(seed)
    packets = []
    for _ in range(n):
        proto = rng.choice(["tcp", "tcp", "udp"])
        state = rng.choice(["NEW", "NEW", "ESTABLISHED", "INVALID"] if proto == "tcp"
                           else ["NEW", "ESTABLISHED"])
        port = rng.choice([*PORTS, rng.randrange(1, 65536)])
        packets.append(Packet(rng.choice(SOURCES), FW_SENDER_ADDR, proto,
                              sport=rng.randrange(1024, 65536), dport=port, state=state))
    oracle.send_many(packets)


@pytest.fixture
def oracle():
    with KernelOracle() as o:
        o.fw.run(["nft", "flush", "ruleset"])
        o.fw.run(["nft", "-f", "-"], input=NATIVE)
        o.fw.run(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_loose=0"])
        yield o


def test_lint_live_on_native_and_mixed_tables_agrees_with_kernel_counters(oracle):
    fw = oracle.fw
    # Mixed: an iptables-nft filter table (priority 0) whose accept the nft table drops.
    fw.run(["iptables-nft", "-A", "INPUT", "-s", "203.0.113.0/24", "-p", "tcp", "--dport",
            "18745", "-j", "ACCEPT"])
    handles = {}
    for line in fw.run(["nft", "-a", "list", "table", "inet", "filter"]).stdout.splitlines():
        text, _, handle = line.strip().rpartition(" # handle ")
        if handle.isdigit():
            handles[int(handle)] = text

    report = _lint(oracle)
    assert report["rules"] >= 17  # never "0 rules" on a host whose nft tables hold rules
    nft = [f for f in report["findings"] if f["backend"] == "nft"]
    shadowed = {f["handle"] for f in nft if f["kind"] == "shadowed"}
    assert {handles[h] for h in shadowed} == SHADOWED
    assert all(f["family"] == "inet" and f["table"] == "filter" for f in nft)
    kinds = {(f["kind"], f["chain"]) for f in nft}
    assert {("empty_chain", "empty"), ("unreachable_chain", "orphan")} <= kinds
    later = [f for f in report["findings"] if f["kind"] == "dropped_later"]
    assert [(f["backend"], f["chain"], f["rule"]) for f in later] == [("iptables", "INPUT", 1)]
    assert "does not let the packet in" in later[0]["explanation"]
    assert "nft inet filter input rule 15" in later[0]["explanation"]  # the final counter drop

    _sweep(oracle, 240, seed=14)
    # iptables' accept counted 18745 packets; the nft table then dropped them.
    oracle.send(Packet("203.0.113.9", FW_SENDER_ADDR, "tcp", sport=40000, dport=18745))
    counters = _counters(oracle)
    for handle in shadowed:
        assert counters[handle][1] == 0, f"kernel counted shadowed rule {handles[handle]}"
    blockers = [f["blocked_by"] for f in nft if f["kind"] == "shadowed"]
    assert blockers and all(blockers)
    counted = sum(p for _, p in counters.values())
    assert counted >= 200  # the sweep reached the chain: the zeros above mean something
    ipt = fw.run(["iptables-nft-save", "-c", "-t", "filter"]).stdout
    line = next(ln for ln in ipt.splitlines() if "--dport 18745" in ln)
    assert not line.startswith("[0:"), line
    final_drop = max(h for h, (chain, _) in counters.items() if chain == "input")
    assert counters[final_drop][1] >= 1


def test_lint_file_reads_nft_text_and_equal_priorities_are_found(oracle, tmp_path):
    path = tmp_path / "rules.nft"
    path.write_text(NATIVE + "table ip other {\n chain input {\n"
                    "  type filter hook input priority 10; policy accept;\n }\n}\n")
    proc = oracle.fw.run([sys.executable, "-m", "trustwall", "fw", "lint", "--file", str(path),
                          "--json"], check=False, env=ENV, input="")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    kinds = [f["kind"] for f in report["findings"]]
    assert kinds.count("shadowed") == len(SHADOWED)
    eq = [f for f in report["findings"] if f["kind"] == "equal_priority"]
    assert len(eq) == 1 and "nft ip other input" in eq[0]["explanation"]
