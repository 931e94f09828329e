"""trustwall's trace of native nftables rulesets against the real kernel (``nft monitor
trace`` in the lab's :class:`~trustwall.lab.nft_oracle.NftOracle`): hand-built rulesets with
several tables at different priorities, named and anonymous sets (prefixes, ranges,
concatenations), verdict maps, user chains with jump/goto/return, an iptables-nft table
beside an inet table; random rulesets; and the ruleset real firewalld writes.

Crafted packets are sent for real from the sender or beyond namespace. trustwall reads the
firewalled namespace's whole picture (``nftables.live.whole_picture``) and traces each packet;
where it is certain, it must name the kernel's verdict and deciding rule (table, hook, chain,
position); where it is not, the kernel's answer must be one of its outcomes.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from dataclasses import replace

import pytest
from test_fw_trace_kernel import judge, with_out_iface

from trustwall.firewall import ir
from trustwall.firewall.nftables.live import whole_picture
from trustwall.firewall.semantics.routing import from_args
from trustwall.firewall.semantics.trace import Packet, Tracer, TraceResult

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the kernel oracle needs root"),
]

LOCALS = ["192.0.2.10", "203.0.113.200"]

HAND_BUILT = """\
table inet fw {
    set allowed {
        type ipv4_addr; flags interval
        elements = { 10.0.0.0/8, 192.0.2.50-192.0.2.99, 203.0.113.5 }
    }
    set pairs {
        type ipv4_addr . inet_service
        elements = { 10.1.2.3 . 22, 172.16.5.4 . 443 }
    }
    set blocked_ports { type inet_service; elements = { 23, 2323 } }
    map web { type inet_service : verdict; elements = { 80 : jump webchain, 8080 : goto webchain, 8443 : drop } }
    chain webchain {
        ip saddr 203.0.113.0/25 return
        ip saddr 172.16.0.0/12 accept
        reject with tcp reset
    }
    chain tcpstuff {
        tcp dport @blocked_ports drop
        tcp dport vmap @web
        ip saddr . tcp dport @pairs accept
        tcp dport { 22, 1000-1023 } ip saddr @allowed accept
    }
    chain input {
        type filter hook input priority filter + 10; policy drop;
        ct state established,related accept
        ct state invalid drop
        ct status dnat accept
        meta l4proto tcp jump tcpstuff
        meta l4proto { udp, udplite } th dport != 53 reject with icmpx admin-prohibited
        udp dport 53 ip saddr != 10.0.0.0/8 drop
        icmp type echo-request ip saddr @allowed accept
        iifname "eth1" meta l4proto icmp accept
    }
    chain forward {
        type filter hook forward priority filter + 10; policy accept;
        ip daddr . tcp dport { 172.16.5.4 . 80, 10.1.2.3 . 22 } drop
        oifname "eth0" udp sport 1000-2000 reject
        ct state new tcp flags & (syn | ack) == syn ip saddr 8.8.8.8 drop
    }
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr 192.0.2.10 tcp dport 8081 dnat ip to 172.16.5.4:80
    }
}
table ip early {
    chain inchain {
        type filter hook input priority -150; policy accept;
        ip saddr 203.0.113.199 drop
        ip saddr 192.0.2.77 tcp dport 22 accept
    }
    chain fwdchain {
        type filter hook forward priority -5; policy accept;
        ip daddr 8.8.4.4 udp dport 53 drop
    }
}
table ip late {
    chain inchain {
        type filter hook input priority 100; policy accept;
        tcp dport 443 ip saddr != 10.0.0.0/8 drop
    }
}
"""

#: iptables-nft rules beside the inet table (table ip filter at priority 0).
IPTABLES = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 1022 -j DROP
-A INPUT -s 192.0.2.11/32 -p udp -j ACCEPT
-A FORWARD -d 172.16.5.4/32 -p tcp -m tcp --dport 443 -j REJECT
COMMIT
"""

SOURCES = ["10.1.2.3", "10.1.9.9", "192.0.2.11", "192.0.2.77", "203.0.113.5", "203.0.113.199",
           "172.16.5.4", "8.8.8.8", "198.51.100.3"]
DESTINATIONS = [*LOCALS, "10.1.2.3", "172.16.5.4", "8.8.4.4"]
PORTS = [22, 23, 53, 80, 443, 1000, 1022, 1500, 2323, 8080, 8081, 8443, 9999]


def random_packet(rng: random.Random) -> Packet:
    proto = rng.choice(["tcp", "tcp", "tcp", "udp", "icmp"])
    if proto == "icmp":
        itype = rng.choice([8, 8, 0])
        return Packet(rng.choice(SOURCES), rng.choice(DESTINATIONS), "icmp",
                      in_iface=rng.choice(["eth0", "eth1"]), icmp_type=itype,
                      state="NEW" if itype == 8 else "INVALID")
    state = rng.choice(["NEW", "NEW", "NEW", "ESTABLISHED"] + (["INVALID"] if proto == "tcp"
                                                                 else []))
    return Packet(rng.choice(SOURCES), rng.choice(DESTINATIONS), proto,
                  sport=rng.choice([*PORTS, rng.randint(1024, 65535)]),
                  dport=rng.choice(PORTS) if rng.random() < 0.8 else rng.randint(1, 65535),
                  in_iface=rng.choice(["eth0", "eth1"]), state=state)


def _tracer(oracle) -> Tracer:  # type: ignore[no-untyped-def]
    """trustwall's reading of the firewalled namespace (the oracle's own table left out)."""
    from trustwall.lab.nft_oracle import TRACE_TABLE

    ruleset = whole_picture(netns=oracle.fw.name).ruleset
    ruleset = ir.Ruleset(tuple(t for t in ruleset.tables if t.name != TRACE_TABLE))
    return Tracer(ruleset, from_args(sorted(oracle.local_addrs)), family=4)


def verdict_class(verdict: str) -> str:
    return "ACCEPT" if verdict == "ACCEPT" else "STOP"


def check(result: TraceResult, hit) -> str:  # type: ignore[no-untyped-def]
    """agree / covered (uncertain, the kernel's answer among the outcomes) / a failure."""
    judged = judge(result, hit)
    if judged == "agree" and verdict_class(result.verdict) != verdict_class(hit.verdict):
        return f"DISAGREE verdict trace={result.verdict} kernel={hit.verdict}"
    if judged == "covered" and not any(verdict_class(o.verdict) == verdict_class(hit.verdict)
                                       for o in result.outcomes):
        return f"NOT COVERED kernel verdict {hit.verdict}"
    return judged


def run(oracle, packets: list[Packet]) -> tuple[Counter, list[str]]:  # type: ignore[no-untyped-def]
    tracer = _tracer(oracle)
    hits = oracle.send_many(packets)
    tally: Counter = Counter()
    failures = []
    for packet, hit in zip(packets, hits, strict=True):
        if not hit.events:
            tally["lost"] += 1  # the monitor missed it: no truth to compare with
            continue
        result = tracer.trace(with_out_iface(packet, set(oracle.local_addrs)))
        verdict = check(result, hit)
        tally[verdict.split()[0]] += 1
        if verdict not in ("agree", "covered"):
            failures.append(f"{packet}: {verdict}\n  kernel: {hit.events}")
    return tally, failures


def _report(name: str, tally: Counter, seconds: float) -> None:
    total = sum(tally.values())
    print(f"\n{name}: packets {total}, certain {tally['agree'] + tally['DISAGREE']}, "
          f"agreed {tally['agree']}, uncertain-but-covered {tally['covered']}, "
          f"lost {tally['lost']} ({seconds:.1f} s)")


def test_trace_agrees_with_kernel_on_hand_built_nft_ruleset_beside_iptables_nft():
    from trustwall.lab.nft_oracle import NftOracle

    rng = random.Random(14)
    began = time.monotonic()
    with NftOracle(local_addrs=LOCALS) as oracle:
        oracle.load(HAND_BUILT, iptables=IPTABLES)
        packets = [random_packet(rng) for _ in range(150)]
        # the cases the ruleset was written for, beside the random ones
        packets += [
            Packet("10.1.2.3", "192.0.2.10", sport=40000, dport=22, in_iface="eth0"),
            Packet("10.1.2.4", "192.0.2.10", sport=40000, dport=22, in_iface="eth0"),
            Packet("198.51.100.3", "192.0.2.10", sport=40000, dport=8081, in_iface="eth0"),
            Packet("203.0.113.5", "192.0.2.10", sport=40000, dport=80, in_iface="eth0"),
            Packet("172.16.5.4", "192.0.2.10", sport=40000, dport=8080, in_iface="eth0"),
            Packet("10.1.2.3", "192.0.2.10", sport=40000, dport=1022, in_iface="eth0"),
            Packet("192.0.2.11", "192.0.2.10", "udp", sport=40000, dport=99, in_iface="eth0"),
        ]
        tally, failures = run(oracle, packets)
    _report("hand-built nft + iptables-nft vs kernel", tally, time.monotonic() - began)
    assert not failures, "\n".join(failures[:5])
    assert tally["agree"] > 0.8 * sum(tally.values())
    assert tally["lost"] <= 2
