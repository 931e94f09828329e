"""One lock per host: two processes changing things at once are serialized."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trustwall.journal.lock import HostLock, LockTimeout

CHILD = """
import json, sys, time
from pathlib import Path
from trustwall.journal.transaction import Transaction
root, tag, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
with Transaction("test", tag, root=root) as txn:
    start = time.monotonic()
    for n in range(5):
        txn.write_file(root / "shared", f"{tag} {n}\\n".encode())
        time.sleep(0.05)
    end = time.monotonic()
out.write_text(json.dumps([start, end]))
"""


def test_two_processes_run_their_transactions_one_after_the_other(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), tag,
                               str(tmp_path / f"{tag}.json")]) for tag in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=60) == 0
    (a0, a1), (b0, b1) = (json.loads((tmp_path / f"{t}.json").read_text()) for t in "ab")
    assert a1 <= b0 or b1 <= a0, "transactions overlapped"


def test_lock_is_reentrant_in_process_and_times_out_across_processes(tmp_path: Path) -> None:
    with HostLock(tmp_path), HostLock(tmp_path):
        waiter = subprocess.run(
            [sys.executable, "-c",
             "import sys; from trustwall.journal.lock import HostLock, LockTimeout\n"
             f"try:\n HostLock({str(tmp_path)!r}, timeout=0.3).acquire()\n"
             "except LockTimeout as e:\n print(e); sys.exit(7)"],
            capture_output=True, text=True, timeout=60)
        assert waiter.returncode == 7, waiter.stderr
        assert "held by another trustwall run" in waiter.stdout
    HostLock(tmp_path, timeout=0.3).acquire()  # released on exit: free again


def test_lock_held_by_a_killed_process_is_released(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from trustwall.journal.lock import HostLock\n"
         f"HostLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout):
            HostLock(tmp_path, timeout=0.2).acquire()
    finally:
        holder.kill()
        holder.wait()
    lock = HostLock(tmp_path, timeout=5)
    lock.acquire()
    lock.release()
