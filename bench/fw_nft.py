"""Trace throughput and lint time on a generated native nftables ruleset (>= 5k rules, large
named sets), next to ``nft -f`` loading the same file in a scratch namespace, in one run.

The ruleset: ``table inet bench`` with a 50,000-element IPv4 prefix set (``blocklist``), a
500-port set, a 1,000-element address . port concatenation, a 200-element verdict map, an
input base chain that drops the blocklist and dispatches by vmap/jump into 20 user chains of
250 rules each (host or /24 source, port or anonymous port set, some per interface), and a
``table ip early`` at priority -150 with a few hundred more rules: 5,000+ rules in all.

Measured: ``nft -f`` of the file into a fresh namespace (the kernel's peer: parse + commit),
``nft -j list ruleset`` read back, trustwall's parse of that JSON and compile to the IR, the
tracer's build, ``Tracer.trace`` one packet at a time (no class cache; packets/s) and
``Tracer.trace_many`` over the same batch (class cache on), and ``analysis.lint.lint`` on
the IR as this branch has it (lint's nft support is being written in parallel: the result
says what it did). Ratios: one nft load vs one lint; packets traced in one nft load's time.

Run: ``.venv/bin/python -m bench.fw_nft`` (root: it needs a namespace) ->
bench/results/fw_nft.json
"""

from __future__ import annotations

import ipaddress
import os
import random
import tempfile
import time
from pathlib import Path

from bench.common import summary, time_call, version_of, write_result
from trustwall.firewall.nftables import compile as nft_compile
from trustwall.firewall.nftables import parse
from trustwall.firewall.semantics.routing import from_args
from trustwall.firewall.semantics.trace import Packet, Tracer

BLOCKLIST = 50_000
USER_CHAINS = 20
RULES_PER_CHAIN = 250
BATCH = 5_000
LOCAL = "192.0.2.10"


def generated(seed: int = 7) -> str:
    rng = random.Random(seed)
    nets = set()
    while len(nets) < BLOCKLIST:  # /24../32 prefixes across 100.64.0.0/10 and 198.51.100.0/24
        length = rng.choice([24, 28, 32])
        base = 0x64400000 + rng.randrange(0x400000)
        net = ipaddress.IPv4Network((base >> (32 - length) << (32 - length), length))
        nets.add(str(net))
    ports = sorted(rng.sample(range(1024, 65536), 500))
    pairs = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)} . "
             f"{rng.randrange(1, 65536)}" for _ in range(1000)]
    vmap_ports = sorted(rng.sample(range(1, 1024), 200))
    lines = ["table inet bench {",
             "  set blocklist { type ipv4_addr; flags interval; auto-merge",
             "    elements = { " + ", ".join(sorted(nets)) + " } }",
             "  set ports { type inet_service; elements = { "
             + ", ".join(map(str, ports)) + " } }",
             "  set pairs { type ipv4_addr . inet_service; elements = { "
             + ", ".join(dict.fromkeys(pairs)) + " } }",
             "  map svc { type inet_service : verdict; elements = { "
             + ", ".join(f"{p} : jump u{i % USER_CHAINS}" for i, p in enumerate(vmap_ports))
             + " } }"]
    for c in range(USER_CHAINS):
        lines.append(f"  chain u{c} {{")
        for _ in range(RULES_PER_CHAIN):
            src = f"10.{rng.randrange(256)}.{rng.randrange(256)}"
            src = f"{src}.{rng.randrange(1, 255)}" if rng.random() < 0.6 else f"{src}.0/24"
            iface = f'iifname "eth{rng.randrange(4)}" ' if rng.random() < 0.3 else ""
            if rng.random() < 0.2:
                dport = "{ " + ", ".join(str(rng.randrange(1, 65536)) for _ in range(3)) + " }"
            else:
                dport = str(rng.randrange(1, 65536))
            verdict = rng.choice(["accept", "accept", "accept", "drop"])
            lines.append(f"    {iface}ip saddr {src} tcp dport {dport} {verdict}")
        lines.append("    return")
        lines.append("  }")
    lines += ["  chain input {",
              "    type filter hook input priority filter; policy drop;",
              "    ct state established,related accept",
              '    iifname "lo" accept',
              "    ip saddr @blocklist drop",
              "    ip saddr . tcp dport @pairs accept",
              "    tcp dport @ports accept",
              "    tcp dport vmap @svc"]
    lines += [f"    ip saddr 10.{c * 12}.0.0/14 jump u{c}" for c in range(USER_CHAINS)]
    lines += ["    reject with icmpx admin-prohibited", "  }", "}",
              "table ip early {", "  chain in {",
              "    type filter hook input priority -150; policy accept;"]
    lines += [f"    ip saddr 172.16.{i % 256}.{i // 256 + 1} udp dport {rng.randrange(1, 65536)} "
              "drop" for i in range(300)]
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def packets(n: int, seed: int = 3) -> list[Packet]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.3:
            src = str(ipaddress.IPv4Address(0x64400000 + rng.randrange(0x400000)))
        elif kind < 0.8:
            src = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        else:
            src = f"172.16.{rng.randrange(256)}.{rng.randrange(1, 3)}"
        proto = rng.choice(["tcp", "tcp", "tcp", "udp"])
        out.append(Packet(src, LOCAL, proto, sport=rng.randrange(1024, 65536),
                          dport=rng.randrange(1, 65536), in_iface=f"eth{rng.randrange(4)}"))
    return out


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench.fw_nft needs root (nft -f in a scratch namespace)")
    from trustwall.lab.netns import Netns

    text = generated()
    with tempfile.TemporaryDirectory(prefix="tw-bench-nft-") as work:
        path = Path(work) / "bench.nft"
        path.write_text(text)
        with Netns.create("bench-nft") as ns:
            def load() -> None:
                ns.run(["nft", "flush", "ruleset"])
                ns.run(["nft", "-f", str(path)], timeout=600)

            nft_load = summary(time_call(load, repeat=3, warmup=1))
            start = time.perf_counter()
            listing = ns.run(["nft", "-j", "list", "ruleset"], timeout=600).stdout
            list_s = time.perf_counter() - start
    start = time.perf_counter()
    model = parse.loads(listing)
    parse_s = time.perf_counter() - start
    start = time.perf_counter()
    ruleset = nft_compile.compile_ruleset(model)
    compile_s = time.perf_counter() - start
    nft_rules = sum(len(c.rules) for t in model.tables for c in t.chains)
    ir_rules = sum(len(c.rules) for t in ruleset.tables for c in t.chains)
    start = time.perf_counter()
    tracer = Tracer(ruleset, from_args([LOCAL]), family=4)
    tracer_s = time.perf_counter() - start
    batch = packets(BATCH)
    cpu = time.process_time()
    start = time.perf_counter()
    results = [tracer.trace(p, with_path=False) for p in batch]
    one_by_one_s = time.perf_counter() - start
    one_by_one_cpu = time.process_time() - cpu
    verdicts: dict[str, int] = {}
    for r in results:
        verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
    start = time.perf_counter()
    tracer.trace_many(batch)
    many_s = time.perf_counter() - start
    lint_out: dict[str, object]
    try:
        from trustwall.firewall.analysis.lint import lint

        reports = []
        lint_s = summary(time_call(lambda: reports.append(lint(ruleset)), repeat=1, warmup=0))
        kinds: dict[str, int] = {}
        for f in reports[0].findings:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        lint_out = {"time": lint_s, "findings": kinds,
                    "ratio_lint_vs_nft_load": lint_s["median_s"] / nft_load["median_s"]}
    except Exception as exc:  # lint's nft support lands in parallel: say what happened
        lint_out = {"error": f"{type(exc).__name__}: {exc}"}
    per_packet = one_by_one_s / BATCH
    payload = {
        "versions": {"nft": version_of(["nft", "--version"])},
        "ruleset": {"nft_rules": nft_rules, "ir_rules": ir_rules,
                    "blocklist_elements": BLOCKLIST, "file_bytes": len(text)},
        "nft_load": nft_load,
        "nft_list_json_s": list_s,
        "parse_s": parse_s, "compile_s": compile_s, "tracer_build_s": tracer_s,
        "trace_one_by_one": {"packets": BATCH, "seconds": one_by_one_s,
                             "cpu_seconds": one_by_one_cpu,
                             "packets_per_s": BATCH / one_by_one_s,
                             "packets_per_cpu_s": BATCH / one_by_one_cpu,
                             "verdicts": verdicts},
        "trace_many_cached": {"packets": BATCH, "seconds": many_s,
                              "packets_per_s": BATCH / many_s},
        "packets_traced_per_nft_load": nft_load["median_s"] / per_packet,
        "ratio_read_compile_build_vs_nft_load":
            (parse_s + compile_s + tracer_s) / nft_load["median_s"],
        "lint": lint_out,
        "note": "nft_load: nft flush + nft -f of the generated file in a fresh namespace; "
                "trustwall reads the kernel's JSON listing of it; lint as on this branch",
    }
    write_result("fw_nft", payload)
    print(f"nft -f {nft_load['median_s']:.2f}s; parse {parse_s:.2f}s compile {compile_s:.2f}s "
          f"tracer {tracer_s:.2f}s; trace {BATCH / one_by_one_s:.0f} pkt/s "
          f"(cached {BATCH / many_s:.0f}); lint {lint_out}")


if __name__ == "__main__":
    main()
