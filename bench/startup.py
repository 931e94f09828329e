"""CLI start-up: ``trustwall --help`` vs ``python -c pass`` (goal: within 3x)."""

from __future__ import annotations

import sys

from bench.common import TRUSTWALL, summary, time_process, write_result


def main() -> None:
    python = sys.executable
    peer = time_process([python, "-c", "pass"], repeat=21, warmup=3)
    help_ = time_process([TRUSTWALL, "--help"], repeat=21, warmup=3)
    version = time_process([TRUSTWALL, "--version"], repeat=21, warmup=3)
    peer_s, help_s = summary(peer), summary(help_)
    write_result("startup", {
        "peer": {"command": f"{python} -c pass", **peer_s},
        "trustwall_help": {"command": "trustwall --help", **help_s},
        "trustwall_version": {"command": "trustwall --version", **summary(version)},
        "ratio_help_vs_python": round(help_s["median_s"] / peer_s["median_s"], 2),
        "goal": "ratio <= 3",
    })


if __name__ == "__main__":
    main()
