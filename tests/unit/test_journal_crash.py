"""kill -9 at random points of a many-file transaction (and of its undo) never leaves a file
half-written, and the next run rolls the interrupted transaction back to all-old."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from trustwall.journal.transaction import recover, transactions, undo

FILES = 15
CHILD = """
import sys
from pathlib import Path
from trustwall.journal.transaction import Transaction, undo
root, what = Path(sys.argv[1]), sys.argv[2]
print("go", flush=True)
if what == "undo":
    undo(root=root)
else:
    with Transaction("test", "many files", root=root) as txn:
        for n in range(FILES):
            txn.write_file(root / "d" / f"f{n:03d}", (f"new {n} " * 500).encode(), mode=0o600)
            print(n, flush=True)
            if n % 7 == 0:
                txn.remove_file(root / "d" / f"g{n:03d}")
""".replace("FILES", str(FILES))


def _old(n: int) -> bytes:
    return (f"old {n} " * 300).encode()


def _populate(root: Path) -> None:
    d = root / "d"
    d.mkdir(parents=True)
    for n in range(FILES):
        (d / f"f{n:03d}").write_bytes(_old(n))
        if n % 7 == 0:
            (d / f"g{n:03d}").write_bytes(b"g")


def _state(root: Path) -> str:
    """'old', 'new' or 'mixed'; fails on any file that is neither old nor new bytes."""
    d = root / "d"
    seen = set()
    for n in range(FILES):
        data = (d / f"f{n:03d}").read_bytes()
        assert data in (_old(n), (f"new {n} " * 500).encode()), f"f{n:03d} half-written"
        seen.add("old" if data == _old(n) else "new")
    leftovers = [p.name for p in d.iterdir() if p.name.endswith("tw-tmp")]
    return "mixed" if len(seen) > 1 else seen.pop(), leftovers


def _run_and_kill(root: Path, what: str, delay: float, after_lines: int = 0) -> int:
    """Kill -9 the child ``delay`` seconds after it has reported ``after_lines`` steps."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), what],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for _ in range(after_lines + 1):
        child.stdout.readline()
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    return child.wait()


@pytest.mark.slow
def test_kill_9_during_install_always_recovers_to_all_old(tmp_path: Path) -> None:
    rng = random.Random(5)
    roots = [tmp_path / f"r{attempt}" for attempt in range(32)]
    for root in roots:
        _populate(root)
    # Anywhere from before the first write to the commit point itself; several at a time
    # (each attempt has its own root and state dir) to keep the wall time down.
    kills = [(root, rng.uniform(0, 0.004), rng.randint(0, FILES)) for root in roots]
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda k: _run_and_kill(k[0], "install", k[1], k[2]), kills))
    outcomes = []
    for attempt, (root, rc) in enumerate(zip(roots, codes, strict=True)):
        state, _ = _state(root)  # every file old or new, never torn
        rolled = recover(root=root)
        after, leftovers = _state(root)
        txns = transactions(root=root)
        status = txns[0].status if txns else "not started"
        outcomes.append((rc, state, status))
        assert not leftovers
        if not txns:
            assert after == "old"
        elif status == "committed":  # the kill came after the commit point
            assert after == "new" and not rolled
        else:
            assert after == "old", f"attempt {attempt}: {state} -> {after}"
            assert rolled == [txns[0].id] and status == "rolled-back"
            assert len(list((root / "d").glob("g*"))) == len(range(0, FILES, 7))
    assert sum(1 for _, _, status in outcomes if status == "rolled-back") >= 22, outcomes
    assert any(state == "mixed" for _, state, _ in outcomes), "no kill landed mid-way"


@pytest.mark.slow
def test_kill_9_during_undo_leaves_the_install_intact(tmp_path: Path) -> None:
    rng = random.Random(9)
    roots = [tmp_path / f"u{attempt}" for attempt in range(6)]

    def install(root: Path) -> float:
        _populate(root)
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", CHILD, str(root), "install"], check=True,
                       capture_output=True)
        return time.monotonic() - start

    with ThreadPoolExecutor(4) as pool:
        duration = max(pool.map(install, roots))
        delays = [rng.uniform(0, duration) for _ in roots]
        list(pool.map(lambda rd: _run_and_kill(rd[0], "undo", rd[1]),
                      zip(roots, delays, strict=True)))
    for attempt, root in enumerate(roots):
        _state(root)  # never torn
        recover(root=root)
        after, leftovers = _state(root)
        assert not leftovers
        last = transactions(root=root)[-1]
        if last.kind == "undo" and last.status == "committed":
            assert after == "old"
        else:
            assert after == "new", f"attempt {attempt}: interrupted undo not rolled back"
            undo(root=root)  # the interrupted undo left the install undoable
            assert _state(root)[0] == "old"
