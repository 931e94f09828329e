"""The firewalld owner on a real firewalld (private D-Bus, own network and mount namespaces):
the JMX port is closed (firewalld's zone reject: "No route to host") → the plan is
firewall-cmd commands in the zone the packet lands in → apply (trustwall runs INSIDE the
host, as on a real server) → the client connects, firewalld's own listings show the port,
runtime and permanent → it survives ``firewall-cmd --reload`` and a reboot → ``trustwall
undo`` → both listings and the zone files are exactly as before and the port is closed again.

One firewalld host serves the whole module (start-up ≈ 0.5 s); every test leaves it as it
found it, which :func:`unchanged` asserts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from trustwall.lab.firewalld import CLIENT_IP, SERVER_IP, FirewalldHost
from trustwall.lab.netns import Netns

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

ENV = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME": "/root", "NO_COLOR": "1", "LANG": "C.UTF-8"}
JMX_RULE = ('rule family="ipv4" source address="198.18.210.3" port port="18745" '
            'protocol="tcp" accept')
OTHER_CLIENT = "198.18.210.3"

# The owner's Python API, run inside the host (no lab import): plan, and apply if asked.
API = """
import json, sys
from trustwall.errors import TrustwallError
from trustwall.firewall.change.apply import Flow, Options
from trustwall.firewall.owners import firewalld
from trustwall.firewall.owners.base import Request
request = Request(**json.loads(sys.argv[1]))
opts = json.loads(sys.argv[3])
options = Options(confirm_within=opts.get("confirm_within", 0),
                  keep=[Flow.parse(f) for f in opts.get("keep", ())],
                  force=opts.get("force", False))
try:
    plan = firewalld.plan(request)
    out = plan.to_json()
    if sys.argv[2] == "apply":
        out = firewalld.apply(plan, options).to_json()
except TrustwallError as exc:
    out = {"error": str(exc), "type": type(exc).__name__}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def host() -> Iterator[FirewalldHost]:
    with FirewalldHost(env=ENV) as server:
        server.add_client_address(OTHER_CLIENT)
        yield server


def api(host: FirewalldHost, mode: str = "plan", options: dict[str, Any] | None = None,
        **request: Any) -> dict[str, Any]:
    proc = host.run([sys.executable, "-c", API, json.dumps(request), mode,
                     json.dumps(options or {})])
    return json.loads(proc.stdout)


def trustwall(host: FirewalldHost, *args: str) -> str:
    return host.run([sys.executable, "-m", "trustwall", *args]).stdout


def snapshot(host: FirewalldHost) -> tuple[str, str, str]:
    """firewalld's own listings, runtime and permanent, and its zone files' bytes."""
    files = host.run(["sh", "-c", "cd /etc/firewalld/zones && for f in * .*.xml*; do "
                      "[ -f \"$f\" ] && echo \"$f\" && sha256sum < \"$f\"; done; true"]).stdout
    return (host.run(["firewall-cmd", "--list-all-zones"]).stdout,
            host.run(["firewall-cmd", "--permanent", "--list-all-zones"]).stdout, files)


@pytest.fixture
def unchanged(host: FirewalldHost) -> Iterator[tuple[str, str, str]]:
    """The host's firewalld before the test; after it, everything must be as it was."""
    before = snapshot(host)
    yield before
    assert snapshot(host) == before


def test_allow_opens_the_port_through_firewalld_and_undo_restores_it_exactly(host, unchanged):
    assert host.connect() == "FAIL No route to host"
    plan = api(host, action="allow", proto="tcp", dport="18745")
    assert plan["owner"] == "firewalld"
    assert plan["commands"] == ["firewall-cmd --zone public --add-port 18745/tcp",
                                "firewall-cmd --permanent --zone public --add-port 18745/tcp"]
    assert plan["persistent"] is True
    assert plan["effect"] == ["NEW tcp/18745 from any in zone public: REJECT -> ACCEPT"]

    began = time.monotonic()
    result = api(host, "apply", action="allow", proto="tcp", dport="18745")
    print(f"trustwall apply (plan + journal + read-back): {time.monotonic() - began:.2f}s")
    assert result["applied"] is True, result
    assert host.connect() == "OK JMX lab listener"
    assert "ports: 18745/tcp" in host.listing()
    assert "ports: 18745/tcp" in host.listing(permanent=True)
    # Only firewalld's own table: no raw nft/iptables rule that a reload would wipe.
    tables = host.run(["nft", "list", "tables"]).stdout.split("\n")
    assert [t for t in tables if t] == ["table inet firewalld"]

    host.reload()
    assert host.connect() == "OK JMX lab listener"
    host.reboot()
    assert host.connect() == "OK JMX lab listener"
    assert "ports: 18745/tcp" in host.listing()

    out = trustwall(host, "undo")
    assert "firewalld allow" in out
    assert host.connect() == "FAIL No route to host"
    assert snapshot(host) == unchanged


def test_reject_beats_an_open_port_and_delete_removes_both(host, unchanged):
    """firewalld runs a zone's _deny chain (reject/drop rich rules) before _allow (ports): the
    plan's effect says so and the kernel agrees; delete removes the port and the rule, runtime
    and permanent, and undo puts them back, one journal transaction at a time."""
    api(host, "apply", action="allow", proto="tcp", dport="18745")
    assert host.connect().startswith("OK")
    plan = api(host, action="reject", proto="tcp", dport="18745")
    assert plan["effect"] == ["NEW tcp/18745 from any in zone public: ACCEPT -> REJECT"]
    assert api(host, "apply", action="reject", proto="tcp", dport="18745")["applied"]
    assert host.connect() == "FAIL Connection refused"  # the rich rule's reject, not the zone's
    rule = 'rule port port="18745" protocol="tcp" reject'
    plan = api(host, action="delete", proto="tcp", dport="18745")
    assert plan["commands"] == [
        "firewall-cmd --zone public --remove-port 18745/tcp",
        f"firewall-cmd --zone public --remove-rich-rule '{rule}'",
        "firewall-cmd --permanent --zone public --remove-port 18745/tcp",
        f"firewall-cmd --permanent --zone public --remove-rich-rule '{rule}'"]
    assert api(host, "apply", action="delete", proto="tcp", dport="18745")["applied"]
    assert host.connect() == "FAIL No route to host"
    assert "18745" not in host.listing() + host.listing(permanent=True)
    trustwall(host, "undo")  # the delete: port and rule are back, runtime and permanent
    for listing in (host.listing(), host.listing(permanent=True)):
        assert "ports: 18745/tcp" in listing and rule in listing
    trustwall(host, "undo")  # the reject
    assert host.connect() == "OK JMX lab listener"
    trustwall(host, "undo")  # the allow


def test_for_is_a_runtime_timeout_that_firewalld_expires(host, unchanged):
    plan = api(host, action="allow", proto="tcp", dport="18745", duration=2)
    assert plan["commands"] == ["firewall-cmd --zone public --add-port 18745/tcp "
                                "--timeout 2s"]
    assert plan["persistent"] is False
    assert plan["expires"]
    began = time.monotonic()
    assert api(host, "apply", action="allow", proto="tcp", dport="18745",
               duration=2)["applied"]
    assert host.connect() == "OK JMX lab listener"
    assert "18745" not in host.listing(permanent=True)
    record = json.loads(host.run(["cat", "/var/lib/trustwall/firewalld-expiry.json"]).stdout)
    assert record[-1]["expires"] == plan["expires"] or record[-1]["expires"]
    assert record[-1]["zones"] == ["public"]
    while "18745" in host.listing() and time.monotonic() - began < 10:
        time.sleep(0.2)
    assert host.connect() == "FAIL No route to host"
    assert time.monotonic() - began < 10
    # fw expire: firewalld removed the port itself; trustwall's record of it goes (journaled)
    expired = json.loads(trustwall(host, "fw", "expire", "--json"))["removed"]
    assert [line for line in expired if line.startswith("firewalld ")] == [
        f"firewalld firewall-cmd --zone public --add-port 18745/tcp --timeout 2s (expired "
        f"{record[-1]['expires']}; firewalld's --timeout removed it, its record goes)"], expired
    assert json.loads(host.read("/var/lib/trustwall/firewalld-expiry.json")) == record[:-1]
    assert "firewalld" not in " ".join(json.loads(trustwall(host, "fw", "expire",
                                                            "--json"))["removed"])
    trustwall(host, "undo")  # the expiry: the record is back
    assert json.loads(host.read("/var/lib/trustwall/firewalld-expiry.json")) == record
    trustwall(host, "undo")  # only the expiry record is left to restore


def test_rich_rule_with_a_source_lets_only_that_source_in(host, unchanged):
    plan = api(host, action="allow", proto="tcp", dport="18745", src=OTHER_CLIENT)
    assert plan["commands"] == [
        f"firewall-cmd --zone public --add-rich-rule '{JMX_RULE}'",
        f"firewall-cmd --permanent --zone public --add-rich-rule '{JMX_RULE}'"]
    assert api(host, "apply", action="allow", proto="tcp", dport="18745",
               src=OTHER_CLIENT)["applied"]
    assert host.connect(source=OTHER_CLIENT) == "OK JMX lab listener"
    assert host.connect(source=CLIENT_IP) == "FAIL No route to host"
    assert JMX_RULE in host.listing() and JMX_RULE in host.listing(permanent=True)
    trustwall(host, "undo")
    assert host.connect(source=OTHER_CLIENT) == "FAIL No route to host"


def test_the_zone_is_the_one_firewalld_dispatches_to(host, unchanged):
    """A source binding wins over the interface; the interface's zone over the default."""
    host.run(["firewall-cmd", "--zone", "internal", "--add-interface", "eth0"])
    host.run(["firewall-cmd", "--zone", "work", "--add-source", f"{OTHER_CLIENT}/32"])
    try:
        plan = api(host, action="allow", proto="tcp", dport="18745")
        assert plan["commands"][0] == "firewall-cmd --zone internal --add-port 18745/tcp"
        assert any(OTHER_CLIENT in note for note in plan["notes"])
        plan = api(host, action="deny", proto="tcp", dport="18745", src=OTHER_CLIENT)
        assert plan["commands"][0].startswith("firewall-cmd --zone work --add-rich-rule")
        assert api(host, "apply", action="allow", proto="tcp", dport="18745")["applied"]
        assert host.connect() == "OK JMX lab listener"
        # work (the source binding) still rejects the other client: the model said so too
        assert host.connect(source=OTHER_CLIENT) == "FAIL No route to host"
        trustwall(host, "undo")
        assert host.connect() == "FAIL No route to host"
    finally:
        host.run(["firewall-cmd", "--zone", "work", "--remove-source", f"{OTHER_CLIENT}/32"])
        host.run(["firewall-cmd", "--zone", "internal", "--remove-interface", "eth0"])


def test_rejecting_the_operators_ssh_flow_is_refused(host, unchanged):
    keep = {"keep": [f"tcp:{CLIENT_IP}->{SERVER_IP}:22"]}
    out = api(host, "apply", keep, action="reject", proto="tcp", dport="22")
    assert out["type"] == "LockoutRisk", out
    assert "zone public" in out["error"]
    # a reject that spares the flow's source is fine
    out = api(host, "apply", keep, action="reject", proto="tcp", dport="22", src=OTHER_CLIENT)
    assert out["applied"] is True, out
    trustwall(host, "undo")


def test_unconfirmed_change_is_rolled_back_by_the_watcher(host, unchanged):
    undos = trustwall(host, "log").count("committed undo")
    began = time.monotonic()
    out = api(host, "apply", {"confirm_within": 2}, action="allow", proto="tcp", dport="18745")
    assert out["confirm_deadline"], out
    assert host.connect() == "OK JMX lab listener"
    while trustwall(host, "log").count("committed undo") == undos \
            and time.monotonic() - began < 20:
        time.sleep(0.3)
    assert host.connect() == "FAIL No route to host"
    assert "18745" not in host.listing() + host.listing(permanent=True)


def test_the_dbus_reader_agrees_with_firewall_cmd(host, unchanged):
    """trustwall reads zones over D-Bus (busctl); firewall-cmd's listing is the fallback and
    the oracle: both must see the same zones."""
    changes = (("rich-rule", JMX_RULE), ("port", "1000-1001/udp"), ("protocol", "gre"))
    for what, value in changes:
        host.run(["firewall-cmd", "--zone", "public", f"--add-{what}", value])
    try:
        code = ("from trustwall.firewall.owners import firewalld as fd\n"
                "bus, cmd = fd.read_state(), fd._read_state_cmd()\n"
                "assert bus.default_zone == cmd.default_zone == 'public'\n"
                "for name in bus.runtime:\n"
                "    for a, b in ((bus.runtime, cmd.runtime), (bus.permanent, cmd.permanent)):\n"
                "        x, y = a[name], b[name]\n"
                "        assert x.settings() == y.settings(), (name, x, y)\n"
                "        assert (x.target, sorted(x.interfaces), sorted(x.sources)) == \\\n"
                "            (y.target, sorted(y.interfaces), sorted(y.sources))\n"
                "print(sorted(bus.runtime), bus.runtime['public'].rich_rules)\n")
        out = host.run([sys.executable, "-c", code]).stdout
        assert "['public']" in out and "198.18.210.3" in out
    finally:
        for what, value in changes:
            host.run(["firewall-cmd", "--zone", "public", f"--remove-{what}", value])


def test_a_stopped_firewalld_is_refused_with_its_own_way(host, unchanged):
    host.stop_firewalld()
    try:
        plan = api(host, action="allow", proto="tcp", dport="18745")
        assert plan["refused"] == "firewalld is not running"
        assert plan["commands"] == [] and plan["next"] == "systemctl start firewalld"
    finally:
        host.start_firewalld()
    assert host.connect() == "FAIL No route to host"


def test_undo_never_acts_on_another_namespaces_firewalld(host, unchanged, tmp_path):
    """The firewalld step says where it was made (network namespace, machine): an undo run
    anywhere else is refused before firewall-cmd runs, even forced; where it was made, it
    undoes."""
    state = str(tmp_path / "state")  # on the host's /tmp: both places see the same journal
    trustwall(host, "fw", "allow", "-p", "tcp", "--dport", "18745", "--apply", "--yes",
              "--confirm-within", "0", "--state-dir", state)
    assert host.connect() == "OK JMX lab listener"
    steps = [json.loads(line) for path in (tmp_path / "state").rglob("journal.jsonl")
             for line in path.read_text().splitlines()]
    step = next(s for s in steps if s.get("kind") == "firewalld")
    assert {"netns", "machine_id"} <= set(step["data"]), step
    with Netns.create("fwdother") as other:
        for extra in ([], ["--force"], ["--dry-run"]):
            proc = other.run([sys.executable, "-m", "trustwall", "undo", "--state-dir", state,
                              *extra], env=ENV, check=False)
            assert proc.returncode != 0 and "another network namespace" in proc.stderr, proc
    assert host.connect() == "OK JMX lab listener"
    assert "ports: 18745/tcp" in host.listing(permanent=True)
    trustwall(host, "undo", "--state-dir", state)
    assert host.connect() == "FAIL No route to host"


def test_lint_live_reads_firewalld_nft_table_and_hides_its_structure(host, unchanged):
    """firewalld's inet table is linted (never "0 rules"); its empty zone chains (_pre,
    _log, _post …) are firewalld's structure: hidden, shown by --all with owner and backend."""
    proc = host.run([sys.executable, "-m", "trustwall", "fw", "lint", "--live", "--json"],
                    check=False)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert report["rules"] > 20 and report["hidden"] > 0
    assert not [f for f in report["findings"] if f["kind"] == "empty_chain"]
    proc = host.run([sys.executable, "-m", "trustwall", "fw", "lint", "--live", "--all",
                     "--json"], check=False)
    everything = json.loads(proc.stdout)
    empty = [f for f in everything["findings"] if f["kind"] == "empty_chain"]
    assert empty and all(f["owner"] == "firewalld" and f["backend"] == "nft"
                         and f["family"] == "inet" and f["table"] == "firewalld"
                         for f in empty)
