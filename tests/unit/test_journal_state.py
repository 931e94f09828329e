"""The state directory is hostile until proven otherwise (issue 18), and an interrupted change
is noticed, named and recoverable from every command (issue 19)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trustwall.errors import BadInput
from trustwall.journal import statedir
from trustwall.journal.audit import AuditLog
from trustwall.journal.transaction import Transaction, recover, transactions, undo

TRUSTWALL = [sys.executable, "-m", "trustwall"]
NOBODY = 65534


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*TRUSTWALL, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.fixture(autouse=True)
def _fresh_checks() -> None:
    statedir._CHECKED.clear()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_reading_and_refused_commands_create_no_state_dir(tmp_path: Path) -> None:
    """`undo no-such-id` refused before /var/lib/trustwall or its lock exist (issue 16)."""
    img = tmp_path / "img"
    img.mkdir()
    for args in (["undo", "no-such-id"], ["undo"], ["undo", "--dry-run"], ["log"],
                 ["log", "--verify"], ["recover", "--dry-run"], ["recover"]):
        proc = _cli(*args, "--root", str(img))
        assert proc.returncode in (0, 2), (args, proc.stderr)
        assert not (img / "var").exists(), args
    assert "no transaction no-such-id" in _cli("undo", "no-such-id", "--root", str(img)).stderr


@pytest.mark.parametrize("problem", ["other-owner", "mode-0755", "symlink", "writable-parent"])
def test_unsafe_state_dirs_are_refused_with_the_fix(tmp_path: Path, problem: str) -> None:
    parent = tmp_path / "p"
    parent.mkdir(mode=0o755)
    state = parent / "state"
    state.mkdir(mode=0o700)
    if problem == "other-owner":
        os.chown(state, NOBODY, NOBODY)
    elif problem == "mode-0755":
        os.chmod(state, 0o755)
    elif problem == "symlink":
        state.rmdir()
        (parent / "real").mkdir(mode=0o700)
        state.symlink_to("real")
    else:
        os.chmod(parent, 0o777)
    for args in (["log", "--state-dir", str(state)], ["undo", "--state-dir", str(state)],
                 ["recover", "--state-dir", str(state)]):
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        first, hint = proc.stderr.splitlines()[:2]
        assert first.startswith("trustwall: error: state directory") and "refusing" in first
        assert hint.startswith("trustwall: hint: ") and ("chmod" in hint or "chown" in hint
                                                         or "--state-dir" in hint)
    with pytest.raises(statedir.UnsafeStateDir), \
            Transaction("t", "x", state_dir=state, root=tmp_path) as txn:
        txn.write_file(tmp_path / "f", b"x")
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("name", ["lock", "audit.log", "audit.head", "audit.key"])
def test_state_files_planted_as_symlinks_never_touch_their_target(tmp_path: Path,
                                                                   name: str) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (state / name).symlink_to(victim)
    if name == "audit.head":  # replaced by rename: the link goes, its target stays
        with Transaction("t", "x", state_dir=state, root=tmp_path) as txn:
            txn.write_file(tmp_path / "f", b"x")
        assert not (state / name).is_symlink()
    else:
        with pytest.raises(BadInput, match="symlink"), \
                Transaction("t", "x", state_dir=state, root=tmp_path) as txn:
            txn.write_file(tmp_path / "f", b"x")
    assert victim.read_text() == "precious\n"


def _crashed(root: Path, state: Path) -> None:
    """A transaction killed after its first file write."""
    code = ("import os, signal; from pathlib import Path; "
            "from trustwall.journal.transaction import Transaction\n"
            f"with Transaction('ca-install', 'trust Corp Root', root={str(root)!r}, "
            f"state_dir={str(state)!r}) as txn:\n"
            f"    txn.write_file(Path({str(root)!r}) / 'a', b'new')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9


def _one_done_one_crashed(tmp_path: Path, state: Path) -> Path:
    """A root where transaction 1 committed and transaction 2 was killed mid-way."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "a").write_bytes(b"old")
    with Transaction("test", "first", root=root, state_dir=state) as txn:
        txn.write_file(root / "b", b"b")
    _crashed(root, state)
    return root


def test_an_interrupted_change_is_named_by_every_command_and_recovered(tmp_path: Path,
                                                                       state: Path) -> None:
    root = _one_done_one_crashed(tmp_path, state)
    assert (root / "a").read_bytes() == b"new"
    for args in (["log"], ["stores", "--root", str(root)], ["ca", "list", "--root", str(root)]):
        proc = _cli(*args, env={"TRUSTWALL_STATE_DIR": str(state)})
        lines = [ln for ln in proc.stderr.splitlines() if "interrupted" in ln]
        assert len(lines) == 1, (args, proc.stderr)
        assert "#2" in lines[0] and "trustwall recover" in lines[0], lines[0]
    shown = _cli("log", "--json", "--state-dir", str(state))
    assert json.loads(shown.stdout)["interrupted"]["id"] == "2"
    # --dry-run changes nothing, recovery included
    before = sorted(str(p) for p in state.rglob("*"))
    assert "would roll back interrupted transaction #2" in _cli(
        "recover", "--dry-run", "--state-dir", str(state)).stdout
    planned = _cli("undo", "--dry-run", "--state-dir", str(state))
    assert "recovery pending" in planned.stdout, planned
    assert sorted(str(p) for p in state.rglob("*")) == before
    assert (root / "a").read_bytes() == b"new"
    done = _cli("recover", "--state-dir", str(state))
    assert done.returncode == 0 and "roll back interrupted transaction #2" in done.stdout
    assert (root / "a").read_bytes() == b"old"
    assert [t.status for t in transactions(state_dir=state)] == ["committed", "rolled-back"]
    assert "interrupted" not in _cli("log", "--state-dir", str(state)).stderr
    assert _cli("log", "--verify", "--state-dir", str(state)).returncode == 0


def test_recovery_repairs_an_audit_head_left_one_record_behind(tmp_path: Path,
                                                               state: Path) -> None:
    """Issue 19: a kill between the audit append and the head's rename."""
    with Transaction("test", "one", root=tmp_path, state_dir=state) as txn:
        txn.write_file(tmp_path / "a", b"1")
    head = (state / "audit.head").read_bytes()
    with Transaction("test", "two", root=tmp_path, state_dir=state) as txn:
        txn.write_file(tmp_path / "a", b"2")
    (state / "audit.head").write_bytes(head)            # the rename never happened
    (state / "txns" / "000002" / "audited").unlink()    # nor the marker after it
    assert not AuditLog(state).verify().ok
    assert recover(state_dir=state) == []
    assert AuditLog(state).verify().ok
    assert [r["id"] for r in AuditLog(state).records()] == ["1", "2"]


def test_a_head_ahead_of_the_log_is_never_repaired(tmp_path: Path, state: Path) -> None:
    for n in range(2):
        with Transaction("test", f"{n}", root=tmp_path, state_dir=state) as txn:
            txn.write_file(tmp_path / "a", str(n).encode())
    lines = (state / "audit.log").read_text().splitlines(keepends=True)
    (state / "audit.log").write_text(lines[0])
    AuditLog(state).repair_head()
    assert not AuditLog(state).verify().ok


def test_undo_dry_run_runs_no_recovery(tmp_path: Path, state: Path) -> None:
    root = _one_done_one_crashed(tmp_path, state)
    plan = undo(state_dir=state, dry_run=True)
    assert plan.actions[0].startswith("first roll back interrupted transaction 2")
    assert (root / "a").read_bytes() == b"new"
    assert statedir.interrupted(state_dir=state) is not None


def test_the_interrupted_check_ignores_a_transaction_running_right_now(tmp_path: Path,
                                                                       state: Path) -> None:
    with Transaction("test", "running", root=tmp_path, state_dir=state) as txn:
        txn.write_file(tmp_path / "a", b"1")
        proc = _cli("log", "--state-dir", str(state))
        assert "interrupted" not in proc.stderr
