"""trustwall's trace of native nftables rulesets against the real kernel (``nft monitor
trace`` in the lab's :class:`~trustwall.lab.nft_oracle.NftOracle`): hand-built rulesets with
several tables at different priorities, named and anonymous sets (prefixes, ranges,
concatenations), verdict maps, user chains with jump/goto/return, an iptables-nft table
beside an inet table; random rulesets; and the ruleset real firewalld writes.

Crafted packets are sent for real from the sender or beyond namespace. trustwall reads the
firewalled namespace's whole picture (``nftables.live.whole_picture``) and traces each packet;
where it is certain, it must name the kernel's verdict and deciding rule (table, hook, chain,
position); where it is not, the kernel's answer must be one of its outcomes.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections import Counter

import pytest
from test_fw_trace_kernel import judge, with_out_iface

from trustwall.firewall import ir
from trustwall.firewall.nftables.live import whole_picture
from trustwall.firewall.semantics.routing import from_args
from trustwall.firewall.semantics.trace import Packet, Tracer, TraceResult
from trustwall.proc import CommandFailed

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the kernel oracle needs root"),
]

LOCALS = ["192.0.2.10", "203.0.113.200"]

HAND_BUILT = """\
table inet fw {
    set allowed {
        type ipv4_addr; flags interval
        elements = { 10.0.0.0/8, 192.0.2.50-192.0.2.99, 203.0.113.5 }
    }
    set pairs {
        type ipv4_addr . inet_service
        elements = { 10.1.2.3 . 22, 172.16.5.4 . 443 }
    }
    set blocked_ports { type inet_service; elements = { 23, 2323 } }
    map web {
        type inet_service : verdict
        elements = { 80 : jump webchain, 8080 : goto webchain, 8443 : drop }
    }
    chain webchain {
        ip saddr 203.0.113.0/25 return
        ip saddr 172.16.0.0/12 accept
        reject with tcp reset
    }
    chain tcpstuff {
        tcp dport @blocked_ports drop
        tcp dport vmap @web
        ip saddr . tcp dport @pairs accept
        tcp dport { 22, 1000-1023 } ip saddr @allowed accept
    }
    chain input {
        type filter hook input priority filter + 10; policy drop;
        ct state established,related accept
        ct state invalid drop
        ct status dnat accept
        meta l4proto tcp jump tcpstuff
        meta l4proto { udp, udplite } th dport != 53 reject with icmpx admin-prohibited
        udp dport 53 ip saddr != 10.0.0.0/8 drop
        icmp type echo-request ip saddr @allowed accept
        iifname "eth1" meta l4proto icmp accept
    }
    chain forward {
        type filter hook forward priority filter + 10; policy accept;
        ip daddr . tcp dport { 172.16.5.4 . 80, 10.1.2.3 . 22 } drop
        oifname "eth0" udp sport 1000-2000 reject
        ct state new tcp flags & (syn | ack) == syn ip saddr 8.8.8.8 drop
    }
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr 192.0.2.10 tcp dport 8081 dnat ip to 172.16.5.4:80
    }
}
table ip early {
    chain inchain {
        type filter hook input priority -150; policy accept;
        ip saddr 203.0.113.199 drop
        ip saddr 192.0.2.77 tcp dport 22 accept
    }
    chain fwdchain {
        type filter hook forward priority -5; policy accept;
        ip daddr 8.8.4.4 udp dport 53 drop
    }
}
table ip late {
    chain inchain {
        type filter hook input priority 100; policy accept;
        tcp dport 443 ip saddr != 10.0.0.0/8 drop
    }
}
"""

#: iptables-nft rules beside the inet table (table ip filter at priority 0).
IPTABLES = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 1022 -j DROP
-A INPUT -s 192.0.2.11/32 -p udp -j ACCEPT
-A FORWARD -d 172.16.5.4/32 -p tcp -m tcp --dport 443 -j REJECT
COMMIT
"""

SOURCES = ["10.1.2.3", "10.1.9.9", "192.0.2.11", "192.0.2.77", "203.0.113.5", "203.0.113.199",
           "172.16.5.4", "8.8.8.8", "198.51.100.3"]
DESTINATIONS = [*LOCALS, "10.1.2.3", "172.16.5.4", "8.8.4.4"]
PORTS = [22, 23, 53, 80, 443, 1000, 1022, 1500, 2323, 8080, 8081, 8443, 9999]


def random_packet(rng: random.Random) -> Packet:
    proto = rng.choice(["tcp", "tcp", "tcp", "udp", "icmp"])
    if proto == "icmp":
        itype = rng.choice([8, 8, 0])
        return Packet(rng.choice(SOURCES), rng.choice(DESTINATIONS), "icmp",
                      in_iface=rng.choice(["eth0", "eth1"]), icmp_type=itype,
                      state="NEW" if itype == 8 else "INVALID")
    state = rng.choice(["NEW", "NEW", "NEW", "ESTABLISHED"] + (["INVALID"] if proto == "tcp"
                                                                 else []))
    return Packet(rng.choice(SOURCES), rng.choice(DESTINATIONS), proto,
                  sport=rng.choice([*PORTS, rng.randint(1024, 65535)]),
                  dport=rng.choice(PORTS) if rng.random() < 0.8 else rng.randint(1, 65535),
                  in_iface=rng.choice(["eth0", "eth1"]), state=state)


def _tracer(oracle) -> Tracer:  # type: ignore[no-untyped-def]
    """trustwall's reading of the firewalled namespace (the oracle's own table left out)."""
    from trustwall.lab.nft_oracle import TRACE_TABLE

    ruleset = whole_picture(netns=oracle.fw.name).ruleset
    ruleset = ir.Ruleset(tuple(t for t in ruleset.tables if t.name != TRACE_TABLE))
    return Tracer(ruleset, from_args(sorted(oracle.local_addrs)), family=4)


def verdict_class(verdict: str) -> str:
    return "ACCEPT" if verdict == "ACCEPT" else "STOP"


def check(result: TraceResult, hit) -> str:  # type: ignore[no-untyped-def]
    """agree / covered (uncertain, the kernel's answer among the outcomes) / a failure."""
    judged = judge(result, hit)
    if judged == "agree" and verdict_class(result.verdict) != verdict_class(hit.verdict):
        return f"DISAGREE verdict trace={result.verdict} kernel={hit.verdict}"
    if judged == "covered" and not any(verdict_class(o.verdict) == verdict_class(hit.verdict)
                                       for o in result.outcomes):
        return f"NOT COVERED kernel verdict {hit.verdict}"
    return judged


def run(oracle, packets: list[Packet]) -> tuple[Counter, list[str]]:  # type: ignore[no-untyped-def]
    tracer = _tracer(oracle)
    hits = oracle.send_many(packets)
    tally: Counter = Counter()
    failures = []
    for packet, hit in zip(packets, hits, strict=True):
        if not hit.events:
            tally["lost"] += 1  # the monitor missed it: no truth to compare with
            continue
        result = tracer.trace(with_out_iface(packet, set(oracle.local_addrs)))
        verdict = check(result, hit)
        tally[verdict.split()[0]] += 1
        if verdict not in ("agree", "covered"):
            failures.append(f"{packet}: {verdict}\n  kernel: {hit.events}")
    return tally, failures


def _report(name: str, tally: Counter, seconds: float) -> None:
    total = sum(tally.values())
    print(f"\n{name}: packets {total}, certain {tally['agree'] + tally['DISAGREE']}, "
          f"agreed {tally['agree']}, uncertain-but-covered {tally['covered']}, "
          f"lost {tally['lost']} ({seconds:.1f} s)")


def test_trace_agrees_with_kernel_on_hand_built_nft_ruleset_beside_iptables_nft():
    from trustwall.lab.nft_oracle import NftOracle

    rng = random.Random(14)
    began = time.monotonic()
    with NftOracle(local_addrs=LOCALS) as oracle:
        oracle.load(HAND_BUILT, iptables=IPTABLES)
        packets = [random_packet(rng) for _ in range(150)]
        # the cases the ruleset was written for, beside the random ones
        packets += [
            Packet("10.1.2.3", "192.0.2.10", sport=40000, dport=22, in_iface="eth0"),
            Packet("10.1.2.4", "192.0.2.10", sport=40000, dport=22, in_iface="eth0"),
            Packet("198.51.100.3", "192.0.2.10", sport=40000, dport=8081, in_iface="eth0"),
            Packet("203.0.113.5", "192.0.2.10", sport=40000, dport=80, in_iface="eth0"),
            Packet("172.16.5.4", "192.0.2.10", sport=40000, dport=8080, in_iface="eth0"),
            Packet("10.1.2.3", "192.0.2.10", sport=40000, dport=1022, in_iface="eth0"),
            Packet("192.0.2.11", "192.0.2.10", "udp", sport=40000, dport=99, in_iface="eth0"),
        ]
        tally, failures = run(oracle, packets)
    _report("hand-built nft + iptables-nft vs kernel", tally, time.monotonic() - began)
    assert not failures, "\n".join(failures[:5])
    assert tally["agree"] > 0.8 * sum(tally.values())
    assert tally["lost"] <= 2


# --- random rulesets ---------------------------------------------------------------------------

NETS = ["10.0.0.0/8", "10.1.2.0/24", "10.1.2.3", "192.0.2.0/24", "192.0.2.11", "203.0.113.0/25",
        "172.16.0.0/12", "8.8.8.8"]
RANGES = ["10.1.2.0-10.1.2.10", "192.0.2.50-192.0.2.99", "203.0.113.1-203.0.113.200"]


def _value_set(rng: random.Random, values: list[str], k: int = 3) -> str:
    return "{ " + ", ".join(dict.fromkeys(rng.sample(values, min(k, len(values))))) + " }"


def random_match(rng: random.Random) -> str:
    neg = "!= " if rng.random() < 0.15 else ""
    kind = rng.random()
    if kind < 0.2:
        return f"ip {rng.choice(['saddr', 'daddr'])} {neg}{rng.choice(NETS + RANGES)}"
    if kind < 0.3:
        return f"ip saddr {neg}@nets"
    if kind < 0.45:
        proto = rng.choice(["tcp", "udp"])
        ports = rng.sample(PORTS, 2)
        form = rng.choice([str(ports[0]), f"{min(ports)}-{max(ports)}",
                           _value_set(rng, [str(p) for p in PORTS])])
        return f"{proto} {rng.choice(['dport', 'sport'])} {neg}{form}"
    if kind < 0.5:
        return f"tcp dport {neg}@ports"
    if kind < 0.55:
        return "ip saddr . tcp dport @pairs"
    if kind < 0.62:
        return f"meta l4proto {_value_set(rng, ['tcp', 'udp', 'icmp'], 2)}"
    if kind < 0.72:
        return f"ct state {_value_set(rng, ['new', 'established', 'related', 'invalid'], 2)}"
    if kind < 0.78:
        return f'iifname {neg}"{rng.choice(["eth0", "eth1", "eth*"])}"'
    if kind < 0.83:
        return f"icmp type {neg}{rng.choice(['echo-request', 'echo-reply'])}"
    if kind < 0.87:
        return f"ct status {rng.choice(['dnat', 'snat'])}"
    if kind < 0.92:
        return "tcp flags & (syn | ack) == syn"
    if kind < 0.95:
        return "meta nfproto ipv4"
    return "limit rate 1000/second"  # not modelled: both outcomes


def random_rule(rng: random.Random, later: list[str]) -> str:
    words = [random_match(rng) for _ in range(rng.choice([0, 1, 1, 2, 2, 3]))]
    verdicts = ["accept", "drop", "reject", "counter", "return"]
    if later:
        verdicts += ["jump", "jump", "goto", "vmap"]
    verdict = rng.choice(verdicts)
    if verdict in ("jump", "goto"):
        verdict = f"{verdict} {rng.choice(later)}"
    elif verdict == "vmap":
        a, b = rng.sample(PORTS, 2)
        verdict = f"tcp dport vmap {{ {a} : accept, {b} : jump {rng.choice(later)} }}"
    return " ".join([*words, verdict])


def random_nft_ruleset(rng: random.Random) -> str:
    users = [f"u{i}" for i in range(rng.randint(1, 3))]
    lines = ["table inet r {",
             "  set nets { type ipv4_addr; flags interval; elements = { "
             + ", ".join(rng.sample(NETS + RANGES, 3)) + " } }",
             "  set ports { type inet_service; flags interval; elements = { 22, 80-90, 443 } }",
             "  set pairs { type ipv4_addr . inet_service; elements = { 10.1.2.3 . 22, "
             "192.0.2.11 . 80 } }"]
    for i, u in enumerate(users):
        lines.append(f"  chain {u} {{")
        lines += ["    " + random_rule(rng, users[i + 1:]) for _ in range(rng.randint(1, 5))]
        lines.append("  }")
    for hook, prio in (("input", rng.choice([-10, 0, 10])), ("forward", 0)):
        lines.append(f"  chain b_{hook} {{")
        lines.append(f"    type filter hook {hook} priority {prio}; "
                     f"policy {rng.choice(['accept', 'drop'])};")
        lines += ["    " + random_rule(rng, users) for _ in range(rng.randint(2, 7))]
        lines.append("  }")
    lines.append("}")
    if rng.random() < 0.6:  # a second table at another priority
        lines += ["table ip other {", "  chain in {",
                  f"    type filter hook input priority {rng.choice([-150, 5, 50])}; "
                  "policy accept;"]
        lines += ["    " + random_rule(rng, []) for _ in range(rng.randint(1, 3))]
        lines += ["  }", "}"]
    if rng.random() < 0.3:  # a DNAT that ct status dnat can see
        lines += ["table ip nat {", "  chain pre {",
                  "    type nat hook prerouting priority dstnat; policy accept;",
                  "    ip daddr 192.0.2.10 tcp dport 8081 dnat to 172.16.5.4:80", "  }", "}"]
    return "\n".join(lines) + "\n"


def test_trace_agrees_with_kernel_on_random_nft_rulesets():
    from trustwall.lab.nft_oracle import NftOracle

    rng = random.Random(20261207)
    total: Counter = Counter()
    failures: list[str] = []
    began = time.monotonic()
    with NftOracle(local_addrs=LOCALS) as oracle:
        refused = 0
        for _ in range(12):
            while True:  # nft refuses some combinations (conflicting protocols): draw again
                text = random_nft_ruleset(rng)
                try:
                    oracle.load(text)
                    break
                except CommandFailed:
                    refused += 1
            tally, failed = run(oracle, [random_packet(rng) for _ in range(30)])
            total += tally
            failures += [f"{text}{f}" for f in failed]
    _report(f"random nft rulesets vs kernel ({refused} drawn rulesets refused by nft)", total,
            time.monotonic() - began)
    assert not failures, "\n".join(failures[:3])
    assert total["agree"] > 0.7 * sum(total.values())
    assert total["lost"] <= 3


# --- real firewalld ----------------------------------------------------------------------------

ENV = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME": "/root", "NO_COLOR": "1", "LANG": "C.UTF-8"}


def _trustwall(host, *args: str) -> dict:  # type: ignore[no-untyped-def]
    """``trustwall ARGS --json`` inside the host (why-in exits 1 when a rung is broken)."""
    proc = host.run([sys.executable, "-m", "trustwall", *args, "--json"], check=False)
    assert proc.returncode in (0, 1) and proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def test_firewalld_rejects_18745_and_trace_why_in_and_the_kernel_say_so():
    """Done when (issue 14): on a real firewalld host a connect to tcp/18745 fails; ``fw trace
    --live`` says REJECT by firewalld's own rule (its handle), ``why-in`` says the firewall
    rung fails and names it; then firewalld's ruleset, loaded into the kernel oracle, is
    traced as the kernel walks it."""
    from trustwall.lab.firewalld import CLIENT_IP, FirewalldHost
    from trustwall.lab.nft_oracle import NftOracle

    with FirewalldHost(env=ENV) as host:
        host.run(["firewall-cmd", "--add-port", "8080/tcp"])
        host.run(["firewall-cmd", "--add-service", "dns"])
        host.run(["firewall-cmd", "--add-rich-rule", 'rule family="ipv4" source '
                  'address="203.0.113.0/25" port port="1022" protocol="tcp" accept'])
        assert "No route to host" in host.connect(18745)
        listed = json.loads(host.run(["nft", "-j", "list", "table", "inet", "firewalld"]).stdout)
        rejects = [r["rule"] for r in (x for x in listed["nftables"]) if "rule" in r
                   and r["rule"]["chain"] == "filter_IN_public"
                   and any("reject" in e for e in r["rule"]["expr"])]
        handle = rejects[-1]["handle"]
        traced = _trustwall(host, "fw", "trace", "--live", "--src", CLIENT_IP, "--dport",
                            "18745")
        assert traced["verdict"] == "REJECT" and traced["certain"]
        d = traced["decided_by"]
        assert (d["backend"], d["family"], d["table"], d["chain"], d["handle"]) == \
            ("nft", "inet", "firewalld", "filter_IN_public", handle)
        assert d["owner"] == "firewalld"
        report = _trustwall(host, "why-in", "18745", "--from", CLIENT_IP)
        rung = next(r for r in report["rungs"] if r["name"] == "firewall")
        assert rung["status"] == "broken" and report["broken"] == "firewall"
        assert f"nft inet firewalld filter_IN_public rule {d['rule']} (handle {handle})" \
            in rung["found"]
        assert "firewall-cmd" in rung["next_command"]
        # the port opened: the connect works, the trace says ACCEPT, the rung passes
        host.run(["firewall-cmd", "--add-port", "18745/tcp"])
        assert host.connect(18745).startswith("OK")
        assert _trustwall(host, "fw", "trace", "--live", "--src", CLIENT_IP, "--dport",
                          "18745")["verdict"] == "ACCEPT"
        assert next(r for r in _trustwall(host, "why-in", "18745", "--from", CLIENT_IP)[
            "rungs"] if r["name"] == "firewall")["status"] == "ok"
        ruleset = host.run(["nft", "list", "ruleset"]).stdout

    rng = random.Random(18745)
    began = time.monotonic()
    with NftOracle(local_addrs=LOCALS) as oracle:
        oracle.load(ruleset)
        packets = [random_packet(rng) for _ in range(120)]
        packets += [Packet(src, "192.0.2.10", "tcp", sport=40000, dport=port, in_iface="eth0")
                    for src in ("203.0.113.5", "198.51.100.3")
                    for port in (22, 1022, 8080, 18745)]
        tally, failures = run(oracle, packets)
    _report("firewalld's ruleset vs kernel", tally, time.monotonic() - began)
    assert not failures, "\n".join(failures[:3])
    assert tally["agree"] > 0.9 * sum(tally.values())


# --- a plain nftables host and a mixed iptables-nft + nft host -----------------------------------

PLAIN = """\
table inet filter {
    set jmx_clients { type ipv4_addr; flags interval; elements = { 198.18.200.3 } }
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iifname "lo" accept
        tcp dport 22 accept
        tcp dport 18745 ip saddr @jmx_clients accept
        meta l4proto tcp reject with tcp reset
    }
}
"""

#: beside the seed's iptables-nft INPUT (which accepts 18745 once rule 1 says so), an nft table
#: at a later priority that still rejects it
MIXED = """\
table inet guard {
    chain input {
        type filter hook input priority 10; policy accept;
        tcp dport 18745 ip saddr != 198.18.200.3 reject with tcp reset
    }
}
"""


def _in_ns(ns, *args: str) -> dict:  # type: ignore[no-untyped-def]
    proc = ns.run([sys.executable, "-m", "trustwall", *args, "--json"], check=False)
    assert proc.returncode in (0, 1) and proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def _firewall_rung(ns, source: str) -> dict:  # type: ignore[no-untyped-def]
    report = _in_ns(ns, "why-in", "18745", "--from", source)
    return next(r for r in report["rungs"] if r["name"] == "firewall")


@pytest.mark.parametrize("kind", ["plain", "mixed"])
def test_nft_hosts_trace_and_why_in_agree_with_real_connects(kind: str):
    from fw_hosts import CLIENT_IP, SERVER_IP, connect, two_hosts

    from trustwall.lab.netns import connect_tcp

    other = "198.18.200.3"
    with two_hosts(f"nft{kind}") as (server, client):
        if kind == "plain":
            server.run(["nft", "flush", "ruleset"])
            server.run(["nft", "-f", "-"], input=PLAIN)
        else:
            server.run(["iptables-nft", "-I", "INPUT", "-p", "tcp", "--dport", "18745",
                        "-j", "ACCEPT"])
            server.run(["nft", "-f", "-"], input=MIXED)
        client.run(["ip", "addr", "add", f"{other}/24", "dev", "eth0"])
        shown = server.run([sys.executable, "-m", "trustwall", "fw", "show", "--live"],
                           env=None).stdout
        table = "filter" if kind == "plain" else "guard"
        assert f"table inet {table}" in shown and "# handle" in shown
        listed = json.loads(server.run(["nft", "-j", "list", "table", "inet", table]).stdout)
        reject = next(x["rule"] for x in listed["nftables"] if "rule" in x
                      and any("reject" in e for e in x["rule"]["expr"]))

        # refused from the client's first address: kernel, trace and why-in agree
        assert "Connection refused" in connect(client)
        traced = _in_ns(server, "fw", "trace", "--live", "--src", CLIENT_IP, "--dst",
                        SERVER_IP, "--dport", "18745")
        d = traced["decided_by"]
        assert traced["verdict"] == "REJECT" and traced["certain"]
        assert (d["backend"], d["table"], d["handle"]) == ("nft", table, reject["handle"])
        rung = _firewall_rung(server, CLIENT_IP)
        assert rung["status"] == "broken"
        assert f"nft inet {table} {reject['chain']}" in rung["found"]
        assert f"(handle {reject['handle']})" in rung["found"]

        # let in from the other address: the connect works, the trace says ACCEPT
        assert connect_tcp(client, SERVER_IP, 18745, source=other).startswith("OK")
        traced = _in_ns(server, "fw", "trace", "--live", "--src", other, "--dst", SERVER_IP,
                        "--dport", "18745")
        assert traced["verdict"] == "ACCEPT" and traced["certain"]
        assert _firewall_rung(server, other)["status"] == "ok"


def test_batch_trace_of_a_saved_nft_file_answers_as_the_api(tmp_path):
    """``fw trace --file F.nft --batch``: nft text (and its JSON listing) read like the live
    picture; each line's answer is the API's, IPv6 packets through the inet table too."""
    import subprocess

    from trustwall.firewall.nftables.live import file_ir, load_text

    text_file = tmp_path / "rules.nft"
    text_file.write_text(HAND_BUILT + "table ip6 six {\n  chain in {\n"
                         "    type filter hook input priority 0; policy accept;\n"
                         "    tcp dport 22 ip6 saddr 2001:db8::/64 drop\n  }\n}\n")
    json_file = tmp_path / "rules.json"
    json_file.write_text(load_text(text_file))
    packets = [pkt.to_json() for pkt in (
        Packet("10.1.2.3", "192.0.2.10", sport=40000, dport=22, in_iface="eth0"),
        Packet("203.0.113.5", "192.0.2.10", sport=40000, dport=8443, in_iface="eth0"),
        Packet("2001:db8::5", "2001:db8:1::1", sport=40000, dport=22, in_iface="eth0"),
        Packet("2001:db8:2::5", "2001:db8:1::1", sport=40000, dport=22, in_iface="eth0"))]
    lines = "".join(json.dumps({k: v for k, v in p.items() if v is not None and k != "local"})
                    + "\n" for p in packets)
    expected = None
    for source in (text_file, json_file):
        proc = subprocess.run(
            [sys.executable, "-m", "trustwall", "fw", "trace", "--file", str(source),
             "--local-addr", "192.0.2.10", "--local-addr", "2001:db8:1::1", "--batch", "-"],
            input=lines, capture_output=True, text=True, timeout=120, check=True)
        rows = [json.loads(line) for line in proc.stdout.splitlines()]
        got = [(r["verdict"], r["decided_by"] and (r["decided_by"]["backend"],
                                                   r["decided_by"]["table"],
                                                   r["decided_by"]["handle"])) for r in rows]
        if expected is None:
            ruleset = file_ir(text_file)
            local = from_args(["192.0.2.10", "2001:db8:1::1"])
            from trustwall.firewall.semantics.trace import trace_many
            expected = [(r.verdict, r.decided_by and ("nft", r.decided_by.table,
                                                      r.decided_by.handle))
                        for r in trace_many(ruleset, [Packet(**p) for p in packets], local)]
        assert got == expected
    # the last: no rule of inet fw matches IPv6 to port 22 from outside @allowed: its policy
    assert [v for v, _ in expected] == ["ACCEPT", "DROP", "DROP", "DROP"]
    assert expected[3][1] == ("nft", "fw", None)
