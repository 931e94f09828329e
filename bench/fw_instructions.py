"""Instructions per parse, per lint and per trace batch (a fresh tracer, 2000 packets, 300 of
them again with paths) on the largest real ruleset, this tree vs a base tree.

CPU seconds on this shared 2-core VM swing by ±30 % between identical runs, too much to hold a
"no more than 10 % slower" budget to. ``valgrind --tool=callgrind`` counts instructions, which
repeat to the instruction whatever else the machine does, so a before/after comparison of the
firewall core uses them. Each side runs the work n and m times in separate interpreters; the
difference divided by (m - n) is the cost of one parse (or lint), start-up and imports cancel.

Run: ``.venv/bin/python -m bench fw_instructions`` compares with the tree named by
``TRUSTWALL_BENCH_BASE`` (a ``src`` directory of another checkout, e.g. a ``git worktree add
/tmp/base <commit>``; without it only this tree is measured) -> bench/results/fw_instructions.json
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from bench.common import version_of, write_result
from trustwall.lab.corpora import TUM_LARGEST

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
# One script for both trees: the modules moved in issue 13's layout, so try both paths.
SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
try:
    from trustwall.firewall.iptables.parse import _TAIL_CACHE, parse_save
    from trustwall.firewall.analysis.lint import lint
except ImportError:
    from trustwall.firewall.parse import _TAIL_CACHE, parse_save
    from trustwall.firewall.analyze import lint
text = open(sys.argv[2], errors="surrogateescape").read()
_TAIL_CACHE.clear()
rs = parse_save(text)
if sys.argv[3] == "trace":
    from trustwall.firewall.semantics.routing import from_args
    from trustwall.firewall.semantics.trace import Tracer
    sys.path.insert(1, sys.argv[5])  # this tree's bench: the same packets for both trees
    from bench.fw_trace import packets
    batch = packets(text, 2000)
    local = from_args(["131.159.20.1"])
for _ in range(int(sys.argv[4])):
    if sys.argv[3] == "parse":
        _TAIL_CACHE.clear()
        parse_save(text)
    elif sys.argv[3] == "trace":
        rs.__dict__.pop("_ir", None)  # a one-shot trace compiles the IR too
        tracer = Tracer(rs, local)
        tracer.trace_many(batch)
        for p in batch[:300]:
            tracer.trace(p)
    else:
        lint(rs)
"""
#: (fewer, more) runs per measurement; lint runs once more to count a whole lint
RUNS = {"parse": (1, 4), "lint": (0, 1), "trace": (1, 3)}


def instructions(src: Path, what: str, times: int) -> int:
    argv = [sys.executable, "-c", SCRIPT, str(src), str(TUM_LARGEST), what, str(times),
            str(HERE_SRC.parent)]
    env = {**os.environ, "PYTHONPATH": str(src)}
    # Once without valgrind first: a stale .pyc compiled inside one measured run (and not the
    # other) showed up as +20 % "per parse".
    subprocess.run([*argv[:-2], "0", argv[-1]], capture_output=True, check=True, env=env)
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                           *argv], capture_output=True, text=True, check=True, env=env)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no total: {proc.stderr[-300:]}")
    return int(found.group(1))


def per_call(src: Path) -> dict[str, int]:
    out = {}
    for what, (low, high) in RUNS.items():
        out[what] = (instructions(src, what, high) - instructions(src, what, low)) // (high - low)
    return out


def main() -> None:
    base = os.environ.get("TRUSTWALL_BENCH_BASE")
    result: dict[str, object] = {
        "what": f"instructions per parse_save, per lint and per trace batch of {TUM_LARGEST.name}",
        "valgrind": version_of(["valgrind", "--version"]),
        "this_tree": per_call(HERE_SRC),
    }
    if base:
        result["base_tree"] = {"src": base, **per_call(Path(base))}
        result["ratio_this_over_base"] = {
            what: round(result["this_tree"][what] / result["base_tree"][what], 3)  # type: ignore[index]
            for what in RUNS}
    print(result)
    write_result("fw_instructions", result)


if __name__ == "__main__":
    main()
