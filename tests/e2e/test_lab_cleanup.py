"""A lab whose builder is killed is still torn down completely, by its record and namespace
names only; `trustwall lab up|status|down` work across invocations."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trustwall.lab.netns import NETNS_DIR
from trustwall.lab.topology import STATE_DIR, LabState, _in_namespace, cleanup_labs

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

TRUSTWALL = [sys.executable, "-m", "trustwall"]

BUILD_AND_WAIT = """
import time
from trustwall.lab.topology import Lab
lab = Lab().start()
time.sleep(300)
"""


def _wait_for_record(owner: int, *, ready: bool, timeout: float = 60) -> LabState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in STATE_DIR.glob(f"lab-{owner}-*.json"):
            try:
                state = LabState.load(path)
            except (OSError, ValueError):
                continue  # being replaced right now
            if state.ready or (not ready and len(state.namespaces) >= 2):
                return state
        time.sleep(0.01)
    raise AssertionError(f"no lab record from pid {owner}")


def _assert_gone(state: LabState) -> None:
    names = set(state.namespaces.values())
    assert not [n for n in names if (NETNS_DIR / n).exists()]
    assert not [p for p in state.pids.values() if _in_namespace(p, names) or _running(p, state)]
    assert not [d for d in state.etc_netns if Path(d).exists()]
    assert not Path(state.workdir).exists()
    assert not (STATE_DIR / f"{state.id}.json").exists()


def _running(pid: int, state: LabState) -> bool:
    try:
        return state.workdir in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


@pytest.mark.parametrize("when", ["while building", "once up"])
def test_lab_of_a_killed_process_is_torn_down_by_cleanup(when: str) -> None:
    builder = subprocess.Popen([sys.executable, "-c", BUILD_AND_WAIT],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        state = _wait_for_record(builder.pid, ready=when == "once up")
    finally:
        builder.send_signal(signal.SIGKILL)
        builder.wait()
    state = LabState.load(STATE_DIR / f"{state.id}.json")  # the latest record
    # The leak is real: the namespaces outlive their builder…
    assert any((NETNS_DIR / n).exists() for n in state.namespaces.values())
    if when == "once up":
        assert all(_running(pid, state) for pid in state.pids.values())
    # …until the clean-up, which uses the record and the names only.
    assert state.id in cleanup_labs()
    _assert_gone(state)


def test_lab_up_status_down_across_invocations() -> None:
    up = subprocess.run([*TRUSTWALL, "lab", "up", "--json"], capture_output=True, text=True,
                        timeout=120)
    assert up.returncode == 0, up.stderr
    state = LabState(**{**json.loads(up.stdout), "etc_netns": ()})
    state = LabState.load(STATE_DIR / f"{state.id}.json")
    try:
        assert state.kind == "up" and state.ready
        status = subprocess.run([*TRUSTWALL, "lab", "status", "--json"], capture_output=True,
                                text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        mine = [lab for lab in json.loads(status.stdout)["labs"] if lab["id"] == state.id]
        assert mine and mine[0]["healthy"], status.stdout
        # The holder keeps the lab alive after `lab up` returned.
        assert all((NETNS_DIR / n).exists() for n in state.namespaces.values())
    finally:
        # --id: a default `lab down` would also take down other runs' `lab up` labs.
        down = subprocess.run([*TRUSTWALL, "lab", "down", "--id", state.id, "--json"],
                              capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout)["removed"] == [state.id]
    _assert_gone(state)
    with pytest.raises(ProcessLookupError):
        os.kill(state.owner_pid, 0)


def test_lab_down_leaves_labs_of_live_sessions_alone(lab) -> None:
    down = subprocess.run([*TRUSTWALL, "lab", "down", "--stale", "--json"], capture_output=True,
                          text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert lab.id not in json.loads(down.stdout)["removed"]
    assert all(ns.exists for ns in (lab.client, lab.edge, lab.origin, lab.server))
    assert lab.state_file.exists()


LEAKY_TEST = """
from trustwall.lab.netns import Netns


def test_forgets_to_delete_its_namespace():
    Netns.create("leak")
"""


def test_session_fails_when_a_test_leaves_a_namespace(tmp_path: Path) -> None:
    """The session-end guard of tests/conftest.py turns a leak into a failed run."""
    (tmp_path / "test_leaky.py").write_text(LEAKY_TEST)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                           str(tmp_path / "test_leaky.py")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    from trustwall.lab.netns import cleanup_stale

    removed = cleanup_stale()  # the leaky run is over: its namespace is stale now
    assert any(name.startswith("tw-leak-") for name in removed)
    assert "1 passed" in proc.stdout
    assert "namespace left behind: tw-leak-" in proc.stdout
    assert proc.returncode == 1
