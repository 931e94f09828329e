"""Connection failures that only a firewall produces, each in a throw-away network namespace:
a dropped SYN (connect timeout), ICMP admin-/host-prohibited (no route to host), ICMP
net-prohibited (network unreachable), tcp-reset (refused), and this host's own OUTPUT rules.
The probe must name each one; curl, which says only "Couldn't connect to server" for all but
the timeout, must agree that the connection failed (exit 7, or 28)."""

from __future__ import annotations

import json
import os
import sys

import pytest

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")]

PROBE = """
import json, sys
from trustwall.tls.probe import parse_target, probe
hs = probe(parse_target(sys.argv[1]), timeout=float(sys.argv[2]))
f = hs.failure
print(json.dumps({"kind": f.kind, "stage": f.stage, "detail": f.detail} if f else None))
"""

CASES = [
    # (rule, expected kind, expected errno, curl's exit code)
    ("-A INPUT -p tcp --dport 9 -j DROP", "timeout", "ETIMEDOUT", 28),
    ("-A INPUT -p tcp --dport 9 -j REJECT --reject-with icmp-admin-prohibited", "no_route",
     "EHOSTUNREACH", 7),
    ("-A INPUT -p tcp --dport 9 -j REJECT --reject-with icmp-host-prohibited", "no_route",
     "EHOSTUNREACH", 7),
    ("-A INPUT -p tcp --dport 9 -j REJECT --reject-with icmp-net-prohibited",
     "network_unreachable", "ENETUNREACH", 7),
    ("-A INPUT -p tcp --dport 9 -j REJECT --reject-with tcp-reset", "connection_refused",
     "ECONNREFUSED", 7),
    # This host's own OUTPUT chain: REJECT answers locally (refused); a DROP of a TCP SYN is
    # retransmitted, not reported (EPERM is dropped by tcp_connect): it looks like a timeout.
    ("-A OUTPUT -p tcp --dport 9 -j REJECT", "connection_refused", "ECONNREFUSED", 7),
    ("-A OUTPUT -p tcp --dport 9 -j DROP", "timeout", "ETIMEDOUT", 28),
]


@pytest.mark.parametrize("rule,kind,errno_name,curl_exit", CASES,
                         ids=[c[1] + "-" + c[0].split()[-1] for c in CASES])
def test_firewall_outcome_is_named(rule: str, kind: str, errno_name: str,
                                   curl_exit: int) -> None:
    from trustwall.lab.netns import Netns

    with Netns.create("tlsfw") as ns:
        # A second address on lo: the packets take the INPUT/OUTPUT path of a real peer.
        ns.run(["ip", "addr", "add", "198.18.99.1/32", "dev", "lo"])
        ns.run(["iptables", *rule.split()])
        out = ns.run([sys.executable, "-c", PROBE, "198.18.99.1:9", "1.5"], timeout=30)
        curl = ns.run(["curl", "-sS", "--max-time", "1.5", "https://198.18.99.1:9/"],
                      check=False, timeout=30, env={"PATH": "/usr/bin:/bin"})
    got = json.loads(out.stdout)
    assert (got["kind"], got["detail"]) == (kind, errno_name)
    assert got["stage"] == "connect"
    assert curl.returncode == curl_exit, curl.stderr
