"""The kernel oracle agrees with a hand-written expectation (issue 2, "Done when")."""

from __future__ import annotations

import os

import pytest

from trustwall.firewall.semantics.trace import Packet
from trustwall.lab.netns import list_lab_namespaces


def mine() -> set[str]:
    """Lab namespaces this test process made (other test runs may work in parallel)."""
    return {n for n in list_lab_namespaces() if f"-{os.getpid()}-" in n}

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the kernel oracle needs root"),
]

RULESET = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:SERVICES - [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -j SERVICES
-A INPUT -p udp -m conntrack --ctstate ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m conntrack --ctstate INVALID -j DROP
-A FORWARD -s 10.0.0.0/8 -j DROP
-A SERVICES -s 10.1.0.0/16 -j RETURN
-A SERVICES -p tcp -m tcp --dport 80 -j ACCEPT
-A SERVICES -j LOG
COMMIT
"""

HOST = "192.0.2.10"

# packet -> (hook, chain, rule number or None for the policy, verdict)
EXPECTED = [
    (Packet("10.1.2.3", HOST, sport=40000, dport=22), ("INPUT", "INPUT", 1, "ACCEPT")),
    # the user chain RETURNs for 10.1/16, nothing else matches: the INPUT policy decides
    (Packet("10.1.2.3", HOST, sport=40000, dport=80), ("INPUT", "INPUT", None, "DROP")),
    (Packet("10.2.2.3", HOST, sport=40000, dport=80), ("INPUT", "SERVICES", 2, "ACCEPT")),
    # LOG does not decide: the packet falls off the user chain and INPUT's policy drops it
    (Packet("10.2.2.3", HOST, sport=40000, dport=81), ("INPUT", "INPUT", None, "DROP")),
    (Packet("10.2.2.3", HOST, proto="udp", sport=5000, dport=53),
     ("INPUT", "INPUT", None, "DROP")),
    (Packet("10.2.2.3", HOST, proto="udp", sport=5000, dport=53, state="ESTABLISHED"),
     ("INPUT", "INPUT", 3, "ACCEPT")),
    (Packet("10.2.2.3", HOST, sport=40000, dport=81, state="INVALID"),
     ("INPUT", "INPUT", 4, "DROP")),
    (Packet("10.2.2.3", "203.0.113.9", sport=40000, dport=81), ("FORWARD", "FORWARD", 1, "DROP")),
    (Packet("11.2.2.3", "203.0.113.9", proto="icmp", icmp_type=8, in_iface="eth1"),
     ("FORWARD", "FORWARD", None, "ACCEPT")),
]


def test_oracle_agrees_with_hand_written_expectation_on_user_chain_ruleset():
    from trustwall.lab.oracle import KernelOracle

    before = mine()
    with KernelOracle(local_addrs=[HOST]) as oracle:
        oracle.load(RULESET)
        hits = oracle.send_many([p for p, _ in EXPECTED])
        for hit, (packet, (hook, chain, rule, verdict)) in zip(hits, EXPECTED, strict=True):
            decision = hit.decision("filter", hook)
            assert decision is not None, packet
            assert (decision.chain, decision.rule, decision.verdict) == (chain, rule, verdict), \
                packet
            other = "FORWARD" if hook == "INPUT" else "INPUT"
            assert hit.decision("filter", other) is None, packet
        # the user chain's RETURN rule counted exactly the one packet from 10.1/16 to port 80
        assert [m.packets for m in hits[1].moved_in("filter", "SERVICES")] == [1]
    assert mine() == before


def test_oracle_cleans_up_its_namespaces_after_a_failure():
    from trustwall.lab.oracle import KernelOracle

    before = mine()
    with pytest.raises(RuntimeError), KernelOracle():
        raise RuntimeError("boom")
    assert mine() == before
