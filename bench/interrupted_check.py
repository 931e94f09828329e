"""Cost of noticing an interrupted transaction (issue 19), paid by every command's output:
``statedir.interrupted()`` with no state dir, with 500 finished transactions, and with one
open; plus ``trustwall log`` on an empty state dir as a whole process (goal: the check is
noise next to start-up)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.common import TRUSTWALL, summary, time_call, time_process, write_result
from trustwall.journal.statedir import interrupted


def _state(top: Path, finished: int, open_one: bool) -> Path:
    txns = top / "txns"
    for number in range(1, finished + 2 if open_one else finished + 1):
        txn = txns / f"{number:06d}"
        txn.mkdir(parents=True)
        (txn / "meta.json").write_text(f'{{"id": "{number}", "kind": "bench"}}')
        (txn / "journal.jsonl").write_text("")
        if number <= finished:
            (txn / "status.json").write_text("{}")
            (txn / "audited").write_text("")
    os.chmod(top, 0o700)
    return top


def _per_call(func: object, calls: int = 2000) -> dict[str, float]:
    samples = time_call(lambda: [func() for _ in range(calls)], repeat=7)  # type: ignore[operator]
    return {(k[:-2] + "_us" if k.endswith("_s") else k): (v / calls * 1e6 if k.endswith("_s")
                                                           else v)
            for k, v in summary(samples).items()}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        many = _state(Path(tmp) / "many", 500, open_one=False)
        crashed = _state(Path(tmp) / "crashed", 500, open_one=True)
        empty = Path(tmp) / "empty"
        empty.mkdir(mode=0o700)
        env = {**os.environ, "TRUSTWALL_STATE_DIR": str(empty)}
        write_result("interrupted_check", {
            "no_state_dir": _per_call(lambda: interrupted(state_dir="/nonexistent")),
            "500_finished": _per_call(lambda: interrupted(state_dir=many)),
            "500_finished_1_open": _per_call(lambda: interrupted(state_dir=crashed)),
            "trustwall_log_process": summary(time_process([TRUSTWALL, "log"], env=env)),
            "goal": "microseconds per command; start-up is tens of milliseconds",
        })


if __name__ == "__main__":
    main()
