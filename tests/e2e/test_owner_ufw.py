"""The ufw owner on a real ufw host (trustwall.lab.ufw): the issue's scenario, ``ufw enable;
ufw allow 22/tcp; ufw deny 18745/tcp``, a JMX stand-in listening on tcp/18745 and a client on
a veth pair. Truth is the client's real connect() and ufw's own ``ufw status numbered``; the
change must survive ``ufw reload`` and a simulated boot, and ``trustwall undo`` must bring back
the same status and the same ufw chains in the kernel.

Everything trustwall does runs INSIDE the host (its mount + net namespace) through the Python
API, as on a real server; one host serves the module, and each test starts from and returns to
the scenario's state (checked).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from fw_hosts import CLIENT_IP, SERVER_IP

from trustwall.lab.ufw import UfwHost

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs Linux namespaces")

PY = sys.executable
# A DROP makes connect() wait for its timeout: 1 s is plenty on a veth pair.
# Runs inside the host: plan (and apply) one request through the owner API; prints JSON.
API = r"""
import datetime as dt, json, sys, time
from trustwall.errors import TrustwallError
from trustwall.firewall.change.apply import Flow, Options
from trustwall.firewall.owners import ufw
from trustwall.firewall.owners.base import Request
args = json.loads(sys.argv[1])
req = Request(**args["request"])
try:
    t = time.perf_counter()
    plan = ufw.plan(req)
    out = {"plan": plan.to_json(), "plan_s": time.perf_counter() - t}
    if args.get("apply"):
        opts = Options(confirm_within=args.get("confirm", 0),
                       keep=[Flow.parse(k) for k in args.get("keep", [])])
        t = time.perf_counter()
        out["result"] = ufw.apply(plan, opts).to_json()
        out["apply_s"] = time.perf_counter() - t
except TrustwallError as exc:
    out = {"error": type(exc).__name__, "message": str(exc)}
print(json.dumps(out))
"""
# Traces packets through the live (kernel) ruleset inside the host.
TRACE = r"""
import json, sys
from trustwall.firewall.iptables.live import read_live
from trustwall.firewall.semantics import routing
from trustwall.firewall.semantics.trace import Packet, Tracer
tracer = Tracer(read_live(family=4), routing.read_live())
out = {}
for state in ("NEW", "INVALID"):
    r = tracer.trace(Packet(src=sys.argv[1], dst=sys.argv[2], proto="tcp", sport=40000, dport=18745,
                            in_iface="eth0", state=state), with_path=False)
    out[state] = [r.verdict, r.certain, r.decided_by.chain if r.decided_by else None]
print(json.dumps(out))
"""


def api(host: UfwHost, request: dict, *, apply: bool = False, **extra: object) -> dict:
    done = host.run([PY, "-c", API, json.dumps({"request": request, "apply": apply, **extra})])
    return json.loads(done.stdout)


def trustwall(host: UfwHost, *args: str) -> subprocess.CompletedProcess:
    return host.run([PY, "-m", "trustwall", *args], check=False)


def connect(host: UfwHost) -> str:
    return host.connect(timeout=1)


def ufw_chains(host: UfwHost) -> list[str]:
    """The ufw chains and rules the kernel holds (iptables-save, counters and comments out)."""
    out = []
    for tool in ("iptables-save", "ip6tables-save"):
        out += [line for line in host.run([tool]).stdout.splitlines()
                if line.startswith((":", "-A")) and "ufw" in line]
    return out


@pytest.fixture(scope="module")
def host() -> Iterator[UfwHost]:
    started = time.perf_counter()
    with UfwHost(server_ip=SERVER_IP, client_ip=CLIENT_IP) as ufw_host:
        ufw_host.enable()
        ufw_host.ufw("allow", "22/tcp")
        ufw_host.ufw("deny", "18745/tcp")
        # ufw's own quirk: after `ufw enable` the kernel's ufw6-user-limit lacks its REJECT
        # and ufw6-user-limit-accept its ACCEPT until the first reload (they are in
        # user6.rules). Undo ends with `ufw reload`, so the baseline is taken after one.
        ufw_host.reload()
        print(f"\nufw lab host: namespaces + holder {ufw_host.startup_seconds:.3f} s, "
              f"with the scenario {time.perf_counter() - started:.3f} s")
        yield ufw_host


@pytest.fixture
def scenario(host: UfwHost) -> Iterator[tuple[UfwHost, str, list[str]]]:
    """The issue's state at the start of a test, and checked again at its end."""
    status, chains = host.status_numbered(), ufw_chains(host)
    assert "18745/tcp                  DENY IN" in status
    yield host, status, chains
    assert host.status_numbered() == status
    assert ufw_chains(host) == chains


def test_allow_goes_through_ufw_survives_reload_and_boot_and_undo_is_exact(scenario):
    host, status, chains = scenario
    assert connect(host).startswith("FAIL")
    out = api(host, {"action": "allow", "proto": "tcp", "dport": "18745"}, apply=True)
    plan = out["plan"]
    assert plan["owner"] == "ufw" and plan["persistent"] is True
    # ufw keeps one rule per match: the deny is updated in place, so it cannot keep winning
    # (``ufw insert 1 allow 18745/tcp`` would be skipped by ufw as an "existing rule").
    assert plan["commands"] == ["ufw allow from any to any port 18745 proto tcp"]
    assert any("in place" in n for n in plan["notes"])
    assert any("18745" in e and "DROP → ACCEPT" in e and "NEW" in e for e in plan["effect"])
    assert any("INVALID stay dropped" in n for n in plan["notes"])
    assert out["result"]["applied"] is True
    assert connect(host) == "OK JMX lab listener"
    now = host.status_numbered()
    assert "[ 2] 18745/tcp                  ALLOW IN    Anywhere" in now
    assert "18745/tcp (v6)             ALLOW IN" in now
    assert "DENY" not in now
    assert "### tuple ### allow tcp 18745 0.0.0.0/0 any 0.0.0.0/0 in" in \
        host.path("/etc/ufw/user.rules").read_text()
    host.reload()
    assert connect(host) == "OK JMX lab listener"
    host.reboot()
    assert connect(host) == "OK JMX lab listener"
    assert host.status_numbered() == now
    # INVALID packets stay dropped by ufw-before-input; NEW ones now pass (the kernel's rules).
    traced = json.loads(host.run([PY, "-c", TRACE, CLIENT_IP, SERVER_IP]).stdout)
    assert traced["NEW"][:2] == ["ACCEPT", True]
    assert traced["INVALID"] == ["DROP", True, "ufw-before-input"]
    undo = trustwall(host, "undo")
    assert undo.returncode == 0, undo.stderr
    assert host.status_numbered() == status
    assert ufw_chains(host) == chains
    assert connect(host).startswith("FAIL")


def test_a_narrower_allow_is_inserted_before_the_conflicting_deny(scenario):
    host, status, _ = scenario
    request = {"action": "allow", "proto": "tcp", "dport": "18745", "src": CLIENT_IP}
    out = api(host, request, apply=True)
    assert out["plan"]["commands"] == [
        f"ufw insert 2 allow from {CLIENT_IP} to any port 18745 proto tcp"]
    assert connect(host) == "OK JMX lab listener"
    now = host.status_numbered()
    assert f"[ 2] 18745/tcp                  ALLOW IN    {CLIENT_IP}" in now
    assert "[ 3] 18745/tcp                  DENY IN     Anywhere" in now
    # fw delete of the same fields: ``ufw delete …`` of that rule, through the journal too.
    gone = api(host, {**request, "action": "delete"}, apply=True)
    assert gone["plan"]["commands"] == [
        f"ufw delete allow in from {CLIENT_IP} to any port 18745 proto tcp"]
    assert any("ACCEPT → DROP" in e for e in gone["plan"]["effect"])
    assert host.status_numbered() == status
    assert connect(host).startswith("FAIL")
    # undo the delete, then the insert: back to the scenario (the fixture checks)
    assert trustwall(host, "undo").returncode == 0
    assert f"ALLOW IN    {CLIENT_IP}" in host.status_numbered()
    assert trustwall(host, "undo").returncode == 0


def test_temporary_allow_is_removed_through_ufw_when_it_expires(scenario):
    host, status, _ = scenario
    out = api(host, {"action": "allow", "proto": "tcp", "dport": "18745", "duration": 1},
              apply=True)
    assert out["result"]["applied"] is True
    assert any("expiry record" in n for n in out["plan"]["notes"])
    rules = host.path("/etc/ufw/user.rules").read_text()
    assert "comment=" in rules
    assert connect(host) == "OK JMX lab listener"
    time.sleep(1.2)
    done = trustwall(host, "fw", "expire", "--json")
    assert done.returncode == 0, done.stderr
    removed = json.loads(done.stdout)["removed"]
    assert len(removed) == 1 and "tw:allow-tcp-18745" in removed[0], removed
    # the rule replaced a deny in place, so expiry puts the deny back (was=deny)
    assert host.status_numbered() == status
    assert connect(host).startswith("FAIL")
    assert "No expired rules" in trustwall(host, "fw", "expire").stdout
    # the expiry itself is journaled: undo it, then undo the temporary allow
    assert trustwall(host, "undo").returncode == 0
    assert "ALLOW IN" in host.status_numbered().split("22/tcp (v6)")[0].split("[ 2]")[1]
    assert trustwall(host, "undo").returncode == 0


def test_an_unconfirmed_change_is_rolled_back_through_ufw(scenario):
    host, status, _ = scenario
    out = api(host, {"action": "allow", "proto": "tcp", "dport": "18745"}, apply=True,
              confirm=1)
    assert out["result"]["confirm_deadline"]
    assert connect(host) == "OK JMX lab listener"
    txn = out["result"]["txn"]
    deadline = time.monotonic() + 30
    # The watcher undoes it (files back, then ufw reload) as its own transaction.
    while f"undo {txn}:" not in trustwall(host, "log").stdout and time.monotonic() < deadline:
        time.sleep(0.5)
    assert host.status_numbered() == status
    assert connect(host).startswith("FAIL")


def test_a_deny_that_would_cut_a_kept_flow_is_refused(scenario):
    host, status, _ = scenario
    out = api(host, {"action": "deny", "proto": "tcp", "dport": "22", "src": CLIENT_IP},
              apply=True, keep=[f"tcp:{CLIENT_IP}:50000->{SERVER_IP}:22"])
    assert out["error"] == "LockoutRisk", out
    assert "22" in out["message"]
    assert host.status_numbered() == status


def test_hostile_rules_file_is_refused_not_obeyed(scenario):
    host, status, _ = scenario
    path = host.path("/etc/ufw/user.rules")
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(
            b"### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in",
            b"### tuple ### allow tcp 22;reboot 0.0.0.0/0 any 0.0.0.0/0 in"))
        out = api(host, {"action": "allow", "proto": "tcp", "dport": "18745"})
        assert out["error"] == "ParseError" and "bad port" in out["message"], out
    finally:
        path.write_bytes(original)
    assert host.status_numbered() == status


def test_an_undo_killed_before_its_reload_rolls_back_files_first_then_reloads(scenario):
    """The undo restores ufw's files, then runs ``ufw reload``. Killed just before the reload
    (``TRUSTWALL_FAULT_AT``: the journal's crash points), recovery rolls the undo back: the
    files must come back BEFORE ufw reloads, or ufw loads the pre-change rules while its files
    say the port is open (the kernel and ``ufw status`` would disagree)."""
    host, status, _ = scenario
    request = {"action": "allow", "proto": "tcp", "dport": "18745"}
    api(host, request, apply=True)
    opened, opened_chains = host.status_numbered(), ufw_chains(host)
    env = {**host.env, "TRUSTWALL_FAULT_TRACE": "/run/tw-fault-trace"}
    assert host.run([PY, "-m", "trustwall", "undo"], env=env).returncode == 0
    trace = host.read("/run/tw-fault-trace").splitlines()
    reload_at = next(int(line.split()[0]) for line in trace if line.endswith(" exec ufw"))
    assert host.status_numbered() == status
    api(host, request, apply=True)
    killed = host.run([PY, "-m", "trustwall", "undo"], check=False,
                      env={**host.env, "TRUSTWALL_FAULT_AT": str(reload_at)})
    assert killed.returncode == -9, killed
    assert trustwall(host, "recover").returncode == 0
    assert host.status_numbered() == opened
    assert ufw_chains(host) == opened_chains  # the kernel loaded the restored files
    assert connect(host) == "OK JMX lab listener"
    assert trustwall(host, "undo").returncode == 0
