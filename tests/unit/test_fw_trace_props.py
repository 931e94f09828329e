"""The trace's fast paths (bitmask index, per-class cache) answer exactly as the plain walk."""

from __future__ import annotations

import random

import pytest

from trustwall.firewall.iptables.parse import parse_save
from trustwall.firewall.semantics import trace as tr
from trustwall.firewall.semantics.routing import from_args
from trustwall.firewall.semantics.trace import index

NETS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "192.0.2.0/24", "192.0.2.10/32",
        "203.0.113.0/25", "0.0.0.0/1"]
ADDRS = ["10.1.2.3", "10.1.9.9", "10.9.0.1", "192.0.2.10", "192.0.2.99", "203.0.113.5",
         "203.0.113.200", "8.8.8.8", "172.16.0.1"]
PORTS = [0, 1, 22, 53, 79, 80, 81, 443, 1023, 1024, 8080, 65535]


def _rule(rng: random.Random, chain: str, later: list[str]) -> str:
    def neg() -> str:
        return "! " if rng.random() < 0.25 else ""

    w = [f"-A {chain}"]
    proto = rng.choice(["", "tcp", "udp", "icmp", "tcp"])
    if proto:
        w.append(f"-p {proto}")
    for flag in ("-s", "-d"):
        if rng.random() < 0.4:
            w.append(f"{neg()}{flag} {rng.choice(NETS)}")
    if rng.random() < 0.3:
        w.append(f"{neg()}-i {rng.choice(['eth0', 'eth1', 'eth+'])}")
    if proto in ("tcp", "udp"):
        a, b = sorted(rng.sample(PORTS, 2))
        choice = rng.random()
        if choice < 0.3:
            w.append(f"-m {proto} {neg()}--dport {a}:{b}")
        elif choice < 0.5:
            w.append(f"-m {proto} {neg()}--sport {a}")
        elif choice < 0.7:
            w.append(f"-m multiport {neg()}--dports {a},{b}")
        elif choice < 0.8:
            w.append(f"-m multiport --ports {a},{b}")
    if proto == "icmp" and rng.random() < 0.5:
        w.append(f"-m icmp {neg()}--icmp-type {rng.choice(['8', '0', '3/1', 'any'])}")
    if rng.random() < 0.3:
        w.append(f"-m conntrack {neg()}--ctstate {rng.choice(['NEW', 'ESTABLISHED,RELATED'])}")
    if rng.random() < 0.15:
        w.append(f"-m iprange {neg()}--src-range 10.1.0.0-10.1.255.255")
    if rng.random() < 0.2:
        w.append(f"-m mark {neg()}--mark {rng.choice(['0x1', '0x2/0x2'])}")
    if rng.random() < 0.08:
        w.append("-m recent --name x --rcheck")
    if rng.random() < 0.1:
        w.append("-m addrtype --dst-type LOCAL")
    targets = ["-j ACCEPT", "-j DROP", "-j REJECT", "-j LOG", "-j RETURN", "",
               "-j MARK --set-mark 0x1", "-j MARK --or-mark 0x2"]
    if later:
        targets += [f"-j {rng.choice(later)}", f"-g {rng.choice(later)}"]
    w.append(rng.choice(targets))
    return " ".join(x for x in w if x)


def random_ruleset(seed: int) -> str:
    rng = random.Random(seed)
    users = [f"C{i}" for i in range(rng.randint(1, 4))]
    lines = ["*mangle", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]",
             ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
             "-A PREROUTING -s 10.1.0.0/16 -j MARK --set-mark 0x1", "COMMIT",
             "*filter", ":INPUT DROP [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":{u} - [0:0]" for u in users]
    for chain in ("INPUT", "FORWARD"):
        lines += [_rule(rng, chain, users) for _ in range(rng.randint(5, 25))]
    for i, u in enumerate(users):
        lines += [_rule(rng, u, users[i + 1:]) for _ in range(rng.randint(3, 20))]
    return "\n".join([*lines, "COMMIT", ""])


def random_packets(seed: int, n: int) -> list[tr.Packet]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        proto = rng.choice(["tcp", "udp", "icmp"])
        ports = proto != "icmp"
        out.append(tr.Packet(
            rng.choice(ADDRS), rng.choice(ADDRS), proto=proto,
            sport=rng.choice(PORTS) if ports else None,
            dport=(None if rng.random() < 0.05 else rng.choice(PORTS)) if ports else None,
            in_iface=None if rng.random() < 0.05 else rng.choice(["eth0", "eth1"]),
            out_iface=rng.choice(["eth0", "eth1"]),
            state=rng.choice(["NEW", "ESTABLISHED", "INVALID"]),
            icmp_type=rng.choice([0, 3, 8, None]) if not ports else None,
            icmp_code=rng.choice([0, 1]) if not ports else None,
            mark=rng.choice([0, 1, 2, 3])))
    return out


def summary(r: tr.TraceResult) -> tuple[object, ...]:
    return (r.verdict, r.decided_by, r.certain, r.unknown,
            tuple((o.verdict, o.decided_by, o.assuming) for o in r.outcomes))


@pytest.mark.parametrize("seed", range(8))
def test_index_and_class_cache_agree_with_the_plain_walk(seed, monkeypatch):
    ruleset = parse_save(random_ruleset(seed))
    local = from_args(["192.0.2.10", "203.0.113.200"])
    packets = random_packets(seed, 80)
    fast = tr.Tracer(ruleset, local)
    indexed = [summary(fast.trace(p)) for p in packets]
    batched = [summary(r) for r in fast.trace_many(packets + packets)]
    monkeypatch.setattr(index._CChain, "fast_mask", lambda self, ctx: None)
    plain = [summary(tr.Tracer(ruleset, local).trace(p)) for p in packets]
    assert indexed == plain
    assert batched == plain + plain
