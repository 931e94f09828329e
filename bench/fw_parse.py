"""Parse + render of the largest real ruleset (TUM, ~5.5k rules) against the kernel's own tools.

Measured in one run, on the same text:
- trustwall in-process: ``parse_save`` and ``render_save`` (median of several runs);
- trustwall as a process: ``trustwall fw save --file F`` (start-up included);
- the peers, in a lab namespace: ``iptables-restore --test`` (parse and validate without
  committing), ``iptables-restore`` (commit), and ``iptables-save`` of the loaded ruleset;
  ``ip netns exec NS true`` is measured too so the namespace entry cost can be read off.
The TUM dumps anonymise MACs as XX:XX:..., which the kernel refuses; a fixed MAC stands in.
Also checked: trustwall's rendering equals the kernel's iptables-save output (per table).

Run: ``.venv/bin/python -m bench.fw_parse`` (root, for the kernel peers) ->
bench/results/fw_parse.json
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import tempfile
from collections.abc import Callable

from bench.common import TRUSTWALL, summary, time_call, time_process, version_of, write_result
from trustwall.firewall.iptables.parse import _TAIL_CACHE, parse_save
from trustwall.firewall.iptables.render import render_save
from trustwall.lab.corpora import TUM_LARGEST

TUM = TUM_LARGEST
REPEAT = 7


def cpu_call(func: Callable[[], object], *, repeat: int = REPEAT) -> dict[str, float]:
    """CPU seconds (user + system, this process and the children it waited for) per call.

    Wall-clock medians on a shared 2-core box swing with the load of other jobs; CPU time
    does not, so both are reported.
    """
    samples = []
    func()
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
            resource.RUSAGE_CHILDREN)
        func()
        after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
            resource.RUSAGE_CHILDREN)
        samples.append(sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime
                           for a, b in zip(after, before, strict=True)))
    return {"cpu_median_s": statistics.median(samples), "cpu_min_s": min(samples)}


def _tables(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("*"):
            cur = line[1:]
            out[cur] = ""
        if cur is not None:
            out[cur] += line + "\n"
    return out


def main() -> None:
    text = TUM.read_text().replace("XX:XX:XX:XX:XX:XX", "02:00:00:00:00:01")
    ruleset = parse_save(text)
    payload: dict = {
        "file": str(TUM), "rules": ruleset.rule_count, "bytes": len(text.encode()),
        "versions": {"iptables": version_of(["iptables", "-V"])},
    }
    def cold_parse() -> object:
        # parse.py remembers parsed rule tails across calls; time a first read of the file
        _TAIL_CACHE.clear()
        return parse_save(text)

    parse = summary(time_call(cold_parse, repeat=REPEAT))
    parse.update(cpu_call(cold_parse))
    warm = summary(time_call(lambda: parse_save(text), repeat=REPEAT))
    warm.update(cpu_call(lambda: parse_save(text)))
    render = summary(time_call(lambda: render_save(ruleset), repeat=REPEAT))
    render.update(cpu_call(lambda: render_save(ruleset)))
    both = summary(time_call(lambda: render_save(cold_parse()), repeat=REPEAT))  # type: ignore[arg-type]
    both.update(cpu_call(lambda: render_save(cold_parse())))  # type: ignore[arg-type]
    payload["trustwall"] = {"parse": parse, "parse_again_same_process": warm,
                            "render_save": render, "parse_and_render": both}
    with tempfile.NamedTemporaryFile("w", suffix=".rules", delete=False) as fh:
        fh.write(text)
        path = fh.name
    try:
        argv = [TRUSTWALL, "fw", "save", "--file", path]
        payload["trustwall"]["process_fw_save"] = summary(time_process(argv, repeat=REPEAT))
        payload["trustwall"]["process_fw_save"].update(cpu_call(lambda: subprocess.run(
            argv, stdout=subprocess.DEVNULL, check=True)))
    finally:
        os.unlink(path)
    if os.geteuid() == 0:
        payload["kernel"] = kernel_peers(text, ruleset)
        k = payload["kernel"]
        fw_save = payload["trustwall"]["process_fw_save"]
        payload["ratios"] = {
            "wall": {
                "parse_and_render_vs_iptables_save":
                    both["median_s"] / k["iptables_save"]["median_s"],
                "parse_vs_restore_test":
                    parse["median_s"] / k["iptables_restore_test"]["median_s"],
                "process_fw_save_vs_iptables_save":
                    fw_save["median_s"] / k["iptables_save"]["median_s"],
            },
            "cpu": {
                "parse_and_render_vs_iptables_save":
                    both["cpu_median_s"] / k["iptables_save"]["cpu_median_s"],
                "parse_vs_restore_test":
                    parse["cpu_median_s"] / k["iptables_restore_test"]["cpu_median_s"],
                "process_fw_save_vs_iptables_save":
                    fw_save["cpu_median_s"] / k["iptables_save"]["cpu_median_s"],
            },
            "note": "ratio > 1 means trustwall is slower; the kernel tools' CPU includes "
                    "`ip netns exec` (see netns_exec_true)",
        }
    else:
        payload["kernel"] = "skipped: needs root for a lab namespace"
    write_result("fw_parse", payload)


def kernel_peers(text: str, ruleset: object) -> dict:  # type: ignore[type-arg]
    from trustwall.lab.netns import Netns

    with Netns.create("fwbench") as ns:
        def run(argv: list[str], input: str | None = None) -> str:
            return subprocess.run(ns.argv(argv), input=input, capture_output=True, text=True,
                                  check=True, timeout=300).stdout

        def timed(argv: list[str], input: str | None = None) -> dict[str, float]:
            result = summary(time_call(lambda: run(argv, input), repeat=REPEAT))
            result.update(cpu_call(lambda: run(argv, input)))
            return result

        out = {
            "netns_exec_true": timed(["true"]),
            "iptables_restore_test": timed(["iptables-restore", "--test"], text),
            "iptables_restore": timed(["iptables-restore"], text),
        }
        out["iptables_save"] = timed(["iptables-save"])
        # equality with counters: a restore without -c zeroes the file's chain counters
        run(["nft", "flush", "ruleset"])
        run(["iptables-restore", "-c"], text)
        kernel = _tables(run(["iptables-save", "-c"]))
        mine = _tables(render_save(ruleset, counters=True))  # type: ignore[arg-type]
        out["render_equals_kernel_save"] = all(kernel.get(t) == s for t, s in mine.items())
        return out


if __name__ == "__main__":
    main()
