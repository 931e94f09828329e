"""Issue 15's "done when": on real firewalld, ufw, plain-nftables and iptables-persistent lab
hosts (trustwall.lab.managed) the SAME ``trustwall fw allow -p tcp --dport 18745 --apply``,
run inside the host as an operator would, opens the port through the owner (a real client
connect), survives the owner's reload and a simulated reboot (flush, then the manager's own
start-up), and ``trustwall undo`` restores the owner's own view exactly: ``firewall-cmd
--list-all`` and ``--permanent --list-all``; ``ufw status numbered`` and ufw's rule files; the
nft listing and /etc/nftables.conf's bytes; iptables-save and rules.v4's bytes.

One host per owner, started and closed in the test; the timings print (``-s``).
"""

from __future__ import annotations

import json
import os
import time

import pytest

from trustwall.lab.firewalld import FirewalldHost
from trustwall.lab.managed import IptablesPersistentHost, ManagedHost, NftablesHost
from trustwall.lab.ufw import UfwHost

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

ALLOW = ("fw", "allow", "-p", "tcp", "--dport", "18745", "--apply", "--yes", "--json")

def _ufw() -> ManagedHost:
    host = UfwHost().start()
    try:
        host.enable()  # ufw's defaults: incoming denied
        host.ufw("allow", "22/tcp")
        host.reload()  # ufw's quirk (test_owner_ufw): the kernel matches its files after one
    except BaseException:
        host.close()
        raise
    return host


HOSTS = {  # owner -> its host, started
    "firewalld": lambda: FirewalldHost().start(),
    "ufw": _ufw,
    "nftables": lambda: NftablesHost().start(),
    "iptables": lambda: IptablesPersistentHost().start(),
}


@pytest.mark.parametrize("owner", list(HOSTS))
def test_the_same_allow_opens_through_the_owner_survives_and_undoes_exactly(owner):
    began = time.monotonic()
    host = HOSTS[owner]()
    try:
        started = time.monotonic() - began
        assert host.connect(timeout=1).startswith("FAIL")
        before = host.snapshot()

        t0 = time.monotonic()
        out = json.loads(host.trustwall(*ALLOW).stdout)
        applied_s = time.monotonic() - t0
        assert out["owner"] == owner, out
        assert out["result"]["applied"] is True, out
        assert host.connect(timeout=1) == "OK JMX lab listener"
        changed = host.snapshot()
        assert changed != before
        for name, view in changed.items():  # the port is in the owner's own view
            if name != "/etc/ufw/user6.rules":
                assert "18745" in view, (name, view)

        host.reload()
        assert host.connect(timeout=1) == "OK JMX lab listener"
        host.reboot()
        assert host.connect(timeout=1) == "OK JMX lab listener"
        assert host.snapshot() == changed

        t0 = time.monotonic()
        host.trustwall("undo")
        undo_s = time.monotonic() - t0
        assert host.snapshot() == before
        assert host.connect(timeout=1).startswith("FAIL")
        print(f"\n{owner}: host start {started:.2f}s, trustwall apply {applied_s:.2f}s, "
              f"undo {undo_s:.2f}s, whole test {time.monotonic() - began:.2f}s")
    finally:
        host.close()
