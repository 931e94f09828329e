"""Issue 13's conformance figures, measured against this machine's kernel (root, lab).

Run: ``TRUSTWALL_FW_FULL_CORPUS=1 .venv/bin/python tests/conformance/fw_figures.py`` (about
3 minutes; without the variable the largest TUM dumps are sampled as in the tests). Prints:
the .t OK lines iptables-save prints exactly as trustwall renders them, the real rulesets
whose whole iptables-save trustwall reproduces, and the ``fw import --live`` → ``fw diff
POLICY --live`` round trips that find no difference; each over what the kernel loads.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import test_fw_kernel_oracle as oracle
import test_fw_real_rulesets as real

from trustwall.lab.netns import Netns


def main() -> None:
    with Netns.create("fwfig") as ns:
        def run(argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
            return subprocess.run(ns.argv(argv), input=input, capture_output=True, text=True,
                                  timeout=120, check=False)

        ok_lines = sum(1 for c in oracle.CASES if c.outcome == "OK")
        agree, diffs, unloadable = oracle.compare(run)
        print(f"iptables-tests OK lines identical: {agree}/{ok_lines - unloadable} that the "
              f"kernel loads ({ok_lines} OK lines; {len(diffs)} unexplained differences; "
              f"the rest are KNOWN_DIVERGENCES)")
        spelled = oracle.compare_spellings(run)
        print(f"extra spellings identical: {len(oracle.SPELLINGS) - len(spelled)}/"
              f"{len(oracle.SPELLINGS)}")
        same, differ, refused = real.compare_with_kernel(run)
        print(f"real rulesets identical to the kernel: {len(same)}/{len(same) + len(differ)} "
              f"loadable ({len(refused)} of {len(real.kernel_entries())} refused by the kernel)")
        for line in differ:
            print("  differs:", line)
        with tempfile.TemporaryDirectory() as work:
            good, bad, loaded = real.policy_round_trips(ns.name, run, Path(work))
        print(f"policy round trips (import --live -> diff --live clean): {len(good)}/{loaded}")
        for line in bad:
            print("  fails:", line)


if __name__ == "__main__":
    main()
