"""``fw lint`` on the largest TUM ruleset and on generated 1k/10k/100k-rule chains, next to
``iptables-restore`` of the same files in a lab namespace, measured in the same run.

Reported per input: lint (in-process, parse excluded, median), parse, the whole
``trustwall fw lint --file`` process for TUM, ``iptables-restore`` (commit) in a namespace,
the ratio lint / restore, and the growth exponent of lint time over the generated sizes
(slope of log time against log rules; 1 is linear, n log n shows as about 1.1 here).

Generated chains have a realistic shape: ESTABLISHED,RELATED and loopback first, then rules
for single hosts or /24s with a port or a multiport list, some per interface, some in user
chains reached by a jump per service group, a few duplicates (shadowed on purpose), and a
catch-all REJECT at the end.

Run: ``.venv/bin/python -m bench.fw_lint`` (root, for the kernel peer) ->
bench/results/fw_lint.json
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import tempfile
import time

from bench.common import TRUSTWALL, summary, time_call, version_of, write_result
from trustwall.firewall.analysis.lint import lint
from trustwall.firewall.iptables.parse import parse_save
from trustwall.firewall.semantics.unfold import _rule_space
from trustwall.lab.corpora import TUM_LARGEST

TUM = TUM_LARGEST
SIZES = (1_000, 10_000, 100_000)


def generated(n: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    groups = max(1, n // 500)
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":SVC{g} - [0:0]" for g in range(groups)]
    head = ["-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT",
            "-A INPUT -i lo -j ACCEPT"]
    body: list[str] = []
    made: list[str] = []
    for i in range(n - 3):
        if made and rng.random() < 0.02:
            body.append(rng.choice(made))  # a duplicate: shadowed by its twin
            continue
        chain = "INPUT" if i % 5 else f"SVC{rng.randrange(groups)}"
        net = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
        src = net if rng.random() < 0.6 else net.rsplit(".", 1)[0] + ".0/24"
        iface = f" -i eth{rng.randrange(4)}" if rng.random() < 0.3 else ""
        proto = rng.choice(["tcp", "tcp", "udp"])
        if rng.random() < 0.2:
            ports = ",".join(str(rng.randrange(1, 65536)) for _ in range(3))
            match = f"-m multiport --dports {ports}"
        else:
            match = f"-m {proto} --dport {rng.randrange(1, 65536)}"
        verdict = rng.choice(["ACCEPT", "ACCEPT", "ACCEPT", "DROP"])
        rule = f"-A {chain} -s {src}{iface} -p {proto} {match} -j {verdict}"
        body.append(rule)
        made.append(rule)
    jumps = [f"-A INPUT -j SVC{g}" for g in range(groups)]
    tail = ["-A INPUT -j REJECT --reject-with icmp-host-prohibited"]
    inp = [r for r in body if r.startswith("-A INPUT")]
    svc = [r for r in body if not r.startswith("-A INPUT")]
    lines += head + inp[: len(inp) // 2] + jumps + inp[len(inp) // 2:] + tail + svc
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def restore_in_namespace(text: str, repeat: int) -> dict[str, float] | None:
    if os.geteuid() != 0:
        return None
    from trustwall.lab.netns import Netns

    with Netns.create("bench-lint") as ns:
        def once() -> None:
            ns.run(["iptables-restore"], input=text, timeout=600)

        return summary(time_call(once, repeat=repeat, warmup=1))


def measure(name: str, text: str, repeat: int) -> dict[str, object]:
    start = time.perf_counter()
    ruleset = parse_save(text)
    parse_s = time.perf_counter() - start
    reports = []

    def cold_lint() -> None:
        _rule_space.cache_clear()  # every run translates every rule again
        reports.append(lint(ruleset))

    runs = summary(time_call(cold_lint, repeat=repeat, warmup=0))
    findings: dict[str, int] = {}
    for f in reports[0].findings:
        findings[f.kind] = findings.get(f.kind, 0) + 1
    restore = restore_in_namespace(text, repeat)
    out: dict[str, object] = {"input": name, "rules": ruleset.rule_count, "parse_s": parse_s,
                              "lint": runs, "findings": findings, "iptables_restore": restore}
    if restore:
        out["ratio_lint_vs_restore"] = runs["median_s"] / restore["median_s"]
        out["ratio_parse_plus_lint_vs_restore"] = (
            (parse_s + runs["median_s"]) / restore["median_s"])
    print(f"{name}: {ruleset.rule_count} rules, lint {runs['median_s']:.3f}s, "
          f"restore {restore['median_s'] if restore else float('nan'):.3f}s")
    return out


def main() -> None:
    results = []
    tum_text = TUM.read_text().replace("XX:XX:XX:XX:XX:XX", "02:00:00:00:00:01")
    tum = measure(f"TUM {TUM.name}", tum_text, repeat=3)
    with tempfile.NamedTemporaryFile("w", suffix=".rules", delete=False) as fh:
        fh.write(tum_text)
        path = fh.name
    try:
        def process() -> None:
            subprocess.run([TRUSTWALL, "fw", "lint", "--file", path],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

        tum["process_fw_lint"] = summary(time_call(process, repeat=3, warmup=0))
    finally:
        os.unlink(path)
    results.append(tum)
    growth = []
    for n in SIZES:
        r = measure(f"generated {n}", generated(n), repeat=3 if n <= 10_000 else 1)
        results.append(r)
        growth.append((r["rules"], r["lint"]["median_s"]))  # type: ignore[index]
    xs = [math.log(n) for n, _ in growth]
    ys = [math.log(t) for _, t in growth]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs)
    write_result("fw_lint", {
        "versions": {"iptables": version_of(["iptables", "-V"])},
        "results": results,
        "growth_exponent": slope,
        "note": "lint excludes parsing; restore is iptables-restore (nft backend) committing "
                "the same text in a fresh namespace",
    })


if __name__ == "__main__":
    main()
