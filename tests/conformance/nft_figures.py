"""Issue 14's corpus figures (nftables-tests), measured against this machine's kernel (root).

Run: ``.venv/bin/python tests/conformance/nft_figures.py`` (about a minute). Prints: the
tests/py JSON rules the kernel loads and trustwall reads back without a crash, the share of
their statements understood (compiled to IR conditions/actions, the rest opaque, by kind), and
the tests/shell dumps whose nft-syntax rendering loads again and lists the same JSON.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import nft_corpus as corpus

from trustwall.lab.netns import Netns


def main() -> None:
    with Netns.create("nftfig") as ns:
        def run(argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
            return subprocess.run(ns.argv(argv), input=input, capture_output=True, text=True,
                                  timeout=120, check=False)

        start = time.monotonic()
        py = corpus.run_py(run)
        print(f"tests/py JSON rules: {py.rules}; loaded by the kernel: {py.loaded}; read back "
              f"without a crash: {py.read} ({len(py.crashes)} crashes)")
        share = 100 * py.understood / py.statements if py.statements else 0
        traced = 100 * py.traced_understood / py.traced_statements if py.traced_statements \
            else 0
        print(f"  statements understood: {py.understood}/{py.statements} ({share:.1f}%); in "
              f"ip/ip6/inet tables (the traced families): {py.traced_understood}/"
              f"{py.traced_statements} ({traced:.1f}%); the rest are opaque")
        print(f"  opaque by kind (top 15): {py.opaque.most_common(15)}")
        for crash in py.crashes[:20]:
            print("  crash:", crash)
        print(f"  ({time.monotonic() - start:.1f}s)")
        start = time.monotonic()
        results = list(corpus.run_dumps(run))
        count = Counter(r.outcome for r in results)
        loaded = len(results) - count["refused"]
        print(f"tests/shell dumps: {len(results)}; loaded by the kernel: {loaded}; rendered "
              f"by trustwall, loaded again and listed identically: {count['same']}/{loaded} "
              f"(differs {count['differs']}, render refused by nft {count['reload-refused']})")
        for r in results:
            if r.outcome in ("differs", "reload-refused"):
                print(f"  {r.outcome}: {r.path.relative_to(corpus.SHELL_DIR)}: {r.detail}")
        print(f"  ({time.monotonic() - start:.1f}s)")


if __name__ == "__main__":
    main()
