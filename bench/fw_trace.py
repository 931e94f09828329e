"""Trace throughput on the largest real ruleset (TUM, ~5.5k rules), and the kernel as peer.

Measured in one run: parse + compile time; ``Tracer.trace_many`` over a batch of packets drawn
from the ruleset's own addresses, ports and interfaces (cold: fresh tracer, every packet
walked or classed for the first time; warm: the same batch again); ``Tracer.trace`` one by one
with paths; and, as the peer, the lab's kernel oracle (a real packet plus an ``iptables-save
-c`` diff per packet) on a sample, with the agreement between the two on that sample.
Throughput is given per wall-clock second and per CPU second of this process (the latter
does not depend on how busy the machine is).

Run: ``.venv/bin/python -m bench.fw_trace`` (root for the kernel peer) ->
bench/results/fw_trace.json
"""

from __future__ import annotations

import os
import random
import re
import statistics
import time

from bench.common import version_of, write_result
from trustwall.firewall.iptables.parse import parse_save
from trustwall.firewall.semantics.routing import from_args
from trustwall.firewall.semantics.trace import Packet, Tracer
from trustwall.lab.corpora import TUM_LARGEST

TUM = TUM_LARGEST
BATCH = 20_000
KERNEL_SAMPLE = 60


def packets(text: str, n: int, seed: int = 1) -> list[Packet]:
    """A traffic mix over the addresses, ports and interfaces the ruleset names."""
    rng = random.Random(seed)
    addrs = sorted(set(re.findall(r"-[sd] (\d+\.\d+\.\d+\.\d+)", text)))
    ifaces = sorted(set(re.findall(r"-[io] (\S+)", text)))
    ports = sorted({int(p) for p in re.findall(r"--dports? (\d+)", text)})
    out = []
    for _ in range(n):
        proto = rng.choices(["tcp", "udp", "icmp"], [6, 3, 1])[0]
        tcpudp = proto != "icmp"
        out.append(Packet(
            src=rng.choice(addrs), dst=rng.choice(addrs), proto=proto,
            sport=rng.randint(1024, 65535) if tcpudp else None,
            dport=(rng.choice(ports) if rng.random() < 0.7 else rng.randint(1, 65535))
            if tcpudp else None,
            in_iface=rng.choice(ifaces), out_iface=rng.choice(ifaces),
            state=rng.choice(["NEW", "ESTABLISHED"]) if tcpudp else "NEW",
            icmp_type=8 if not tcpudp else None))
    return out


def kernel_peer(text: str, sample: list[Packet], tracer_results: list) -> dict:  # type: ignore[type-arg]
    """The same packets through the real kernel (two of the ruleset's interfaces)."""
    from trustwall.lab.oracle import KernelOracle

    ifaces = ("eth1.96", "eth1.110")
    local = ["131.159.20.1"]
    # The dumps anonymise MACs as XX:XX:…, which the kernel refuses: any valid MAC will do.
    kernel_text = text.replace("XX:XX:XX:XX:XX:XX", "02:00:00:00:00:01")
    chosen = [p for p in sample if p.in_iface in ifaces][:KERNEL_SAMPLE]
    with KernelOracle(sender_if=ifaces[0], beyond_if=ifaces[1], local_addrs=local) as oracle:
        start = time.perf_counter()
        oracle.load(kernel_text)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        hits = oracle.send_many(chosen)
        send_s = time.perf_counter() - start
    return {"packets": len(chosen), "load_s": load_s, "packets_per_s": len(chosen) / send_s,
            "hits": hits, "chosen": chosen}


def main() -> None:
    text = TUM.read_text()
    start = time.perf_counter()
    ruleset = parse_save(text)
    parse_s = time.perf_counter() - start
    local = from_args(["131.159.20.1"])
    start = time.perf_counter()
    tracer = Tracer(ruleset, local)
    compile_s = time.perf_counter() - start
    batch = packets(text, BATCH)

    # Wall clock and process CPU time: on a shared machine the CPU figure is the stable one.
    cold, warm, cold_cpu, warm_cpu = [], [], [], []
    load_before = os.getloadavg()[0]
    for _ in range(2):
        fresh = Tracer(ruleset, local)
        start, cpu = time.perf_counter(), time.process_time()
        results = fresh.trace_many(batch)
        cold.append(time.perf_counter() - start)
        cold_cpu.append(time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        fresh.trace_many(batch)
        warm.append(time.perf_counter() - start)
        warm_cpu.append(time.process_time() - cpu)
    one = batch[:2000]
    start = time.perf_counter()
    for p in one:
        tracer.trace(p)
    single_s = time.perf_counter() - start
    certain = sum(r.certain for r in results)

    payload: dict = {
        "ruleset": str(TUM),
        "rules": ruleset.rule_count,
        "versions": {"iptables": version_of(["iptables", "--version"])},
        "parse_s": parse_s,
        "compile_s": compile_s,
        "batch_packets": BATCH,
        "batch_cold_packets_per_s": BATCH / statistics.median(cold),
        "batch_warm_packets_per_s": BATCH / statistics.median(warm),
        "batch_cold_packets_per_cpu_s": BATCH / statistics.median(cold_cpu),
        "batch_warm_packets_per_cpu_s": BATCH / statistics.median(warm_cpu),
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "single_with_path_packets_per_s": len(one) / single_s,
        "equivalence_classes": len(fresh._cache),
        "certain_fraction": certain / BATCH,
        "goal_packets_per_s": 50_000,
    }
    if os.geteuid() == 0:
        peer = kernel_peer(text, batch, results)
        by_packet = {id(p): r for p, r in zip(batch, results, strict=True)}
        agree = covered = 0
        for packet, hit in zip(peer["chosen"], peer["hits"], strict=True):
            result = by_packet[id(packet)]
            keys = set()
            for o in result.outcomes:
                d = o.decided_by
                k = hit.decision(d.table, d.hook) if d is not None else None
                if k is not None and (k.chain, k.rule, k.verdict) == (d.chain, d.rule, o.verdict):
                    keys.add(True)
            if result.certain and keys:
                agree += 1
            elif keys:
                covered += 1
        payload["kernel_peer"] = {
            "what": "lab kernel oracle: crafted packet over veth + iptables-save -c diff",
            "packets": peer["packets"], "restore_s": peer["load_s"],
            "packets_per_s": peer["packets_per_s"],
            "certain_and_agree": agree, "uncertain_but_kernel_among_outcomes": covered,
        }
        payload["ratio_batch_cold_vs_kernel_oracle"] = (
            payload["batch_cold_packets_per_s"] / peer["packets_per_s"])
    write_result("fw_trace", payload)
    for key in ("rules", "compile_s", "batch_cold_packets_per_s", "batch_warm_packets_per_s",
                "batch_cold_packets_per_cpu_s", "batch_warm_packets_per_cpu_s",
                "load_average_1min",
                "single_with_path_packets_per_s", "certain_fraction"):
        print(f"  {key}: {payload[key]}")
    if "kernel_peer" in payload:
        print(f"  kernel_peer: {payload['kernel_peer']}")


if __name__ == "__main__":
    main()
