"""trustwall's trace against the real kernel (the lab's oracle): random and real rulesets.

Every packet is sent for real; the oracle replays the kernel's counters into its deciding rule.
Where the trace claims certainty it must name the same table, hook, chain, rule and verdict.
Where it does not, the kernel's answer must be one of the outcomes it lists.
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from dataclasses import replace

import pytest

from trustwall.firewall.iptables.parse import parse_save
from trustwall.firewall.semantics.routing import from_args
from trustwall.firewall.semantics.trace import Outcome, Packet, Tracer, TraceResult
from trustwall.lab.corpora import REAL_RULESETS

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the kernel oracle needs root"),
]

CORPUS = REAL_RULESETS / "iptables-semantics/thy/Iptables_Semantics/Examples/IPPartEval"

NETS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "192.0.2.0/24",
        "192.0.2.10/32", "203.0.113.0/25", "203.0.113.200/32", "172.16.0.0/12"]
# No local address as a source: the kernel's own answer (RST, ICMP error) to such a packet
# would loop back through INPUT and move counters there as well (see the oracle's limits).
SOURCES = ["10.1.2.3", "10.1.9.9", "10.200.0.1", "192.0.2.11", "192.0.2.77", "203.0.113.5",
           "203.0.113.199", "172.16.5.4", "8.8.8.8"]
LOCALS = ["192.0.2.10", "203.0.113.200"]
DESTINATIONS = [*LOCALS, "10.1.2.3", "203.0.113.5", "172.16.5.4", "8.8.4.4"]
PORTS = [22, 53, 80, 443, 1000, 1023, 1024, 8080, 65535]
RANGES = ["10.1.2.0-10.1.2.10", "192.0.2.50-192.0.2.99", "203.0.113.1-203.0.113.200"]
IFACES = ["eth0", "eth1", "eth+"]


def _neg(rng: random.Random, p: float = 0.2) -> list[str]:
    return ["!"] if rng.random() < p else []


def _ports(rng: random.Random) -> str:
    a, b = sorted(rng.sample(PORTS, 2))
    return str(a) if rng.random() < 0.6 else f"{a}:{b}"


def random_rule(rng: random.Random, chain: str, later: list[str], marks: bool) -> str:
    words = ["-A", chain]
    proto = rng.choice([None, "tcp", "tcp", "udp", "icmp"])
    if proto:
        words += [*_neg(rng, 0.1), "-p", proto]
    for flag in ("-s", "-d"):
        if rng.random() < 0.35:
            words += [*_neg(rng), flag, rng.choice(NETS)]
    if rng.random() < 0.25:
        words += [*_neg(rng), "-i", rng.choice(IFACES)]
    if chain != "INPUT" and rng.random() < 0.15:
        words += [*_neg(rng), "-o", rng.choice(IFACES)]
    if proto in ("tcp", "udp") and "!" not in words[words.index("-p") - 1:words.index("-p")]:
        kind = rng.random()
        if kind < 0.35:
            words += ["-m", proto, *_neg(rng), "--dport", _ports(rng)]
        elif kind < 0.5:
            words += ["-m", proto, *_neg(rng), "--sport", _ports(rng)]
        elif kind < 0.7:
            ports = ",".join(str(p) for p in sorted(rng.sample(PORTS, 3)))
            words += ["-m", "multiport", *_neg(rng), "--dports", ports]
        if proto == "tcp" and rng.random() < 0.2:
            words += ["-m", "tcp", *_neg(rng), "--syn"]
    if proto == "icmp" and "!" not in words[:words.index("-p")] and rng.random() < 0.5:
        words += ["-m", "icmp", *_neg(rng), "--icmp-type", rng.choice(["8", "0", "any"])]
    if rng.random() < 0.3:
        states = ",".join(rng.sample(["NEW", "ESTABLISHED", "INVALID", "RELATED"],
                                     rng.randint(1, 2)))
        words += (["-m", "conntrack", *_neg(rng), "--ctstate", states] if rng.random() < 0.5
                  else ["-m", "state", *_neg(rng), "--state", states])
    if rng.random() < 0.12:
        words += ["-m", "iprange", *_neg(rng), rng.choice(["--src-range", "--dst-range"]),
                  rng.choice(RANGES)]
    if marks and rng.random() < 0.25:
        words += ["-m", "mark", *_neg(rng), "--mark", rng.choice(["0x1", "0x2", "0x0"])]
    if rng.random() < 0.05:
        words += ["-m", "limit", "--limit", "1000/sec"]  # not modelled: both outcomes
    if rng.random() < 0.08:
        words += ["-m", "comment", "--comment", f'"rule {rng.randint(1, 99)}"']
    targets = ["ACCEPT", "DROP", "REJECT", "LOG", "RETURN", None]
    if later:
        targets += ["jump", "jump", "goto"]
    target = rng.choice(targets)
    if target == "jump":
        words += ["-j", rng.choice(later)]
    elif target == "goto":
        words += ["-g", rng.choice(later)]
    elif target is not None:
        words += ["-j", target]
    return " ".join(words)


def random_ruleset(rng: random.Random) -> tuple[str, bool]:
    """An iptables-save text (filter, sometimes mangle MARKs and a nat DNAT); and has_dnat."""
    users = [f"U{i}" for i in range(rng.randint(1, 3))]
    marks = rng.random() < 0.4
    dnat = rng.random() < 0.25
    lines = []
    if marks:
        lines += ["*mangle", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]",
                  ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"]
        for _ in range(rng.randint(1, 3)):
            cond = rng.choice(["-p tcp -m tcp --dport 80", "-s 10.1.0.0/16", "-p udp",
                               "-d 192.0.2.10/32", "-i eth1"])
            lines.append(f"-A PREROUTING {cond} -j MARK --set-mark {rng.choice(['1', '2'])}")
        lines.append("COMMIT")
    if dnat:
        lines += ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]",
                  ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
                  "-A PREROUTING -d 192.0.2.10/32 -p tcp -m tcp --dport 8080 "
                  "-j DNAT --to-destination 172.16.5.4:80",
                  "-A PREROUTING -d 203.0.113.200/32 -p udp -j DNAT --to-destination 10.1.2.3",
                  "COMMIT"]
    lines += ["*filter", f":INPUT {rng.choice(['ACCEPT', 'DROP'])} [0:0]",
              f":FORWARD {rng.choice(['ACCEPT', 'DROP'])} [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":{u} - [0:0]" for u in users]
    for chain in ("INPUT", "FORWARD"):
        lines += [random_rule(rng, chain, users, marks) for _ in range(rng.randint(3, 8))]
    for i, u in enumerate(users):
        lines += [random_rule(rng, u, users[i + 1:], marks) for _ in range(rng.randint(2, 6))]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n", dnat


def random_packet(rng: random.Random, only_eth0: bool) -> Packet:
    proto = rng.choice(["tcp", "tcp", "udp", "icmp"])
    state = "NEW"
    icmp_type = None
    if proto == "tcp":
        state = rng.choice(["NEW", "NEW", "ESTABLISHED", "INVALID"])
    elif proto == "udp":
        state = rng.choice(["NEW", "NEW", "ESTABLISHED"])
    else:
        icmp_type = rng.choice([8, 8, 0])
        state = "NEW" if icmp_type == 8 else "INVALID"  # an unsolicited echo reply
    ports = proto in ("tcp", "udp")
    if ports and rng.random() < 0.5:
        dport = rng.choice(PORTS)
        if dport == 8080 and only_eth0 and proto == "tcp":
            dport = rng.choice([8080, 80])
    else:
        dport = rng.randint(1, 65535) if ports else None
    return Packet(
        src=rng.choice(SOURCES), dst=rng.choice(DESTINATIONS), proto=proto,
        sport=rng.choice([*PORTS, rng.randint(1024, 65535)]) if ports else None,
        dport=dport, in_iface="eth0" if only_eth0 else rng.choice(["eth0", "eth1"]),
        state=state, icmp_type=icmp_type)


def with_out_iface(packet: Packet, locals_: set[str]) -> Packet:
    """What the oracle's routing does: forwarded packets leave by the other interface."""
    if packet.dst in locals_:
        return packet
    return replace(packet, out_iface="eth1" if packet.in_iface in (None, "eth0") else "eth0")


def outcome_key(o: Outcome) -> tuple[object, ...]:
    d = o.decided_by
    return ("-",) if d is None else (d.table, d.hook, d.chain, d.rule, o.verdict)


def kernel_key(hit, outcome: Outcome) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    d = outcome.decided_by
    if d is None:
        return ("?",)
    k = hit.decision(d.table, d.hook)
    return ("none",) if k is None else (d.table, d.hook, k.chain, k.rule, k.verdict)


def judge(result: TraceResult, hit) -> str:  # type: ignore[no-untyped-def]
    keys = {outcome_key(o): kernel_key(hit, o) for o in result.outcomes}
    if result.certain:
        (mine, kernel), = list(keys.items())[:1]
        return "agree" if mine == kernel else f"DISAGREE trace={mine} kernel={kernel}"
    return "covered" if any(m == k for m, k in keys.items()) else \
        f"NOT COVERED outcomes={list(keys)}"


def run_against_kernel(oracle, text: str, packets: list[Packet], locals_: set[str],  # type: ignore[no-untyped-def]
                       local_addrs: list[str]) -> Counter:
    oracle.load(text)
    tracer = Tracer(parse_save(text), from_args(local_addrs))
    hits = oracle.send_many(packets)
    tally: Counter = Counter()
    failures = []
    for packet, hit in zip(packets, hits, strict=True):
        result = tracer.trace(with_out_iface(packet, locals_))
        verdict = judge(result, hit)
        tally[verdict.split()[0]] += 1
        if verdict not in ("agree", "covered"):
            failures.append(f"{packet}: {verdict}")
    assert not failures, "\n".join([text, *failures[:5]])
    return tally


def test_trace_agrees_with_kernel_on_random_rulesets():
    from trustwall.lab.oracle import FW_BEYOND_ADDR, FW_SENDER_ADDR, KernelOracle

    rng = random.Random(20261129)
    locals_ = {*LOCALS, FW_SENDER_ADDR, FW_BEYOND_ADDR}
    total: Counter = Counter()
    with KernelOracle(local_addrs=LOCALS) as oracle:
        for _ in range(18):
            text, dnat = random_ruleset(rng)
            packets = [random_packet(rng, only_eth0=dnat) for _ in range(25)]
            total += run_against_kernel(oracle, text, packets, locals_, sorted(locals_))
    print(f"\nrandom rulesets vs kernel: {dict(total)}")
    assert total["agree"] > 0.8 * sum(total.values())


def _real_packets(rng: random.Random, text: str, locals_: list[str], ifaces: tuple[str, str],
                  n: int) -> list[Packet]:
    """Packets built from the addresses and ports the ruleset itself mentions."""
    addrs = [a for a in re.findall(r"-[sd] (\d+\.\d+\.\d+\.\d+)", text)
             if not a.startswith(("0.", "127.", "224.", "255.", "198.18."))] or ["10.9.9.9"]
    ports = [int(p) for p in re.findall(r"--dports? (\d+)", text)] or [22]
    packets = []
    for _ in range(n):
        proto = rng.choice(["tcp", "tcp", "udp", "icmp"])
        state = rng.choice(["NEW", "NEW", "ESTABLISHED"]) if proto != "icmp" else "NEW"
        to_me = rng.random() < 0.6
        dst = rng.choice(locals_) if to_me else rng.choice(addrs)
        if dst in ("10.9.9.9",) or (not to_me and dst in locals_):
            dst = "203.0.113.99"
        src = rng.choice([*addrs, "203.0.113.7", "100.64.1.1"])
        if src == dst or src in locals_:
            src = "203.0.113.8"
        tcpudp = proto != "icmp"
        packets.append(Packet(
            src=src, dst=dst, proto=proto, state=state, in_iface=rng.choice(ifaces),
            sport=rng.randint(1024, 65535) if tcpudp else None,
            dport=(rng.choice(ports) if rng.random() < 0.7 else rng.randint(1, 65535))
            if tcpudp else None, icmp_type=8 if not tcpudp else None))
    return packets


REAL = [
    # file, the two interfaces the oracle gives the firewalled host, its local addresses
    ("config_home_user/typical_home_user_iptables-save", ("eth1", "eth0.10"),
     ["192.168.10.1"]),
    ("medium-sized-company/iptables-save", ("eth0", "ppp0"), ["192.168.1.1"]),
    ("gopherproxy.meulie.net/iptables-save", ("eth0", "eth1"), ["203.0.113.50"]),
]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="real-ruleset corpus not present")
def test_trace_agrees_with_kernel_on_real_rulesets():
    from trustwall.lab.oracle import FW_BEYOND_ADDR, FW_SENDER_ADDR, KernelOracle

    rng = random.Random(7)
    report = {}
    for name, ifaces, local_addrs in REAL:
        text = (CORPUS / name).read_text()
        locals_ = {*local_addrs, FW_SENDER_ADDR, FW_BEYOND_ADDR}
        packets = _real_packets(rng, text, local_addrs, ifaces, 24)
        with KernelOracle(sender_if=ifaces[0], beyond_if=ifaces[1],
                          local_addrs=local_addrs) as oracle:
            oracle.load(text)
            tracer = Tracer(parse_save(text), from_args(sorted(locals_)))
            hits = oracle.send_many(packets)
        tally: Counter = Counter()
        failures = []
        for packet, hit in zip(packets, hits, strict=True):
            out = ifaces[1] if packet.in_iface == ifaces[0] else ifaces[0]
            traced = packet if packet.dst in locals_ else replace(packet, out_iface=out)
            verdict = judge(tracer.trace(traced), hit)
            tally[verdict.split()[0]] += 1
            if verdict not in ("agree", "covered"):
                failures.append(f"{packet}: {verdict}")
        assert not failures, name + "\n" + "\n".join(failures[:5])
        report[name.split("/")[0]] = dict(tally)
    print(f"\nreal rulesets vs kernel: {report}")


DOCKER = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A DOCKER ! -i eth1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -o eth1 -j DOCKER
-A DOCKER -d 172.17.0.2/32 ! -i eth1 -o eth1 -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
"""


def test_published_docker_port_is_decided_in_forward_by_kernel_and_trace():
    from trustwall.lab.oracle import KernelOracle

    host = "192.0.2.10"
    packets = [Packet("198.51.100.7", host, sport=40000, dport=8080, in_iface="eth0"),
               Packet("198.51.100.7", host, sport=40000, dport=22, in_iface="eth0"),
               Packet("198.51.100.7", host, sport=40000, dport=8081, in_iface="eth0")]
    expected = [("FORWARD", "DOCKER", 1, "ACCEPT"), ("INPUT", "INPUT", 1, "ACCEPT"),
                ("INPUT", "INPUT", None, "DROP")]
    tracer = Tracer(parse_save(DOCKER), from_args([host, "198.18.0.1", "198.18.1.1"]))
    with KernelOracle(local_addrs=[host]) as oracle:
        oracle.load(DOCKER)
        hits = oracle.send_many(packets)
    for packet, hit, (hook, chain, rule, verdict) in zip(packets, hits, expected, strict=True):
        result = tracer.trace(replace(packet, out_iface="eth1"))
        assert result.certain
        d = result.decided_by
        assert (d.hook, d.chain, d.rule, result.verdict) == (hook, chain, rule, verdict)
        k = hit.decision("filter", hook)
        assert (k.chain, k.rule, k.verdict) == (chain, rule, verdict)


def test_forwarding_off_means_no_forward_chain_at_all():
    from trustwall.lab.oracle import KernelOracle

    host = "192.0.2.10"
    packet = Packet("198.51.100.7", host, sport=40000, dport=8080, in_iface="eth0")
    local = replace(from_args([host, "198.18.0.1", "198.18.1.1"]), forwarding=False)
    result = Tracer(parse_save(DOCKER), local).trace(replace(packet, out_iface="eth1"))
    assert result.verdict == "DROP" and result.decided_by.chain == "routing"
    with KernelOracle(local_addrs=[host]) as oracle:
        oracle.load(DOCKER)
        oracle.fw.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"])
        hit = oracle.send(packet)
    assert hit.decision("nat", "PREROUTING") is not None  # it did arrive and was DNATed
    assert hit.decision("filter", "FORWARD") is None
    assert hit.decision("filter", "INPUT") is None
