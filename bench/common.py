"""Shared benchmark plumbing: timing whole processes, medians, machine facts, result files.

Every result file records the machine, the versions of the peers, the medians and the ratio
trustwall/peer measured in the same run, so a number can always be traced back to its setup.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
TRUSTWALL = str(ROOT / ".venv" / "bin" / "trustwall")


def machine() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def version_of(argv: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def time_call(func: Callable[[], Any], *, repeat: int = 7, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``func()`` over ``repeat`` runs, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        func()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return samples


def time_process(argv: Sequence[str], *, repeat: int = 7, warmup: int = 1,
                 env: dict[str, str] | None = None, check: bool = True) -> list[float]:
    """Wall-clock seconds of a whole process (start-up included), output discarded."""

    def once() -> None:
        proc = subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=env)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {proc.stderr[-300:]!r}")

    return time_call(once, repeat=repeat, warmup=warmup)


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {"median_s": statistics.median(samples), "min_s": min(samples),
            "max_s": max(samples), "runs": len(samples)}


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "machine": machine(), **payload}
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{name}: wrote {path.relative_to(ROOT)}")
    print(json.dumps(payload, indent=2))
    return path
