"""The planned command, applied to a real kernel: target packets change verdict, others don't.

The lab's kernel oracle loads the seed ruleset into a namespace, runs the exact command that
``plan_insert``/``plan_delete`` printed, and sends real packets before and after. The verdicts
that changed must be exactly those of packets inside the plan's predicted effect.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shlex

import pytest

from trustwall.firewall.analysis.plan import build_rule, plan_delete, plan_insert
from trustwall.firewall.iptables.parse import parse_save
from trustwall.firewall.protocols import TCP_FLAGS
from trustwall.firewall.semantics import space as sp
from trustwall.firewall.semantics.trace import Packet
from trustwall.firewall.semantics.unfold import universe_for

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the kernel oracle needs root"),
]

SEED = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 443 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 8080 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 9090 -j ACCEPT
-A INPUT -p udp -m state --state NEW -m udp --dport 161 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
COMMIT
"""

SOURCES = ["198.18.0.2", "10.1.2.3", "203.0.113.9"]
DST = "198.18.0.1"  # the firewalled namespace's own address: INPUT


def _sample(rng: random.Random, n: int) -> list[Packet]:
    out = [Packet("198.18.0.2", DST, "tcp", 40000, 18745, in_iface="eth0", state="NEW")]
    while len(out) < n:
        proto = rng.choice(["tcp", "tcp", "udp"])
        state = rng.choice(["NEW", "NEW", "ESTABLISHED"] + (["INVALID"] if proto == "tcp"
                                                            else []))
        out.append(Packet(rng.choice(SOURCES), DST, proto, rng.choice([1024, 40000]),
                          rng.choice([22, 161, 18745, 18746, 9090]), in_iface="eth0",
                          state=state))
    return out


def _point(u: sp.Universe, p: Packet) -> sp.Point:
    proto = {"tcp": 6, "udp": 17}[p.proto]
    flags = 0
    if p.proto == "tcp":  # the oracle sends SYN for NEW, ACK otherwise
        flags = 1 << TCP_FLAGS.index("SYN" if p.state == "NEW" else "ACK")
    return (int(ipaddress.ip_address(p.src)), int(ipaddress.ip_address(p.dst)), proto,
            p.sport or 0, p.dport or 0, u.iface_class(p.in_iface or ""), len(u.ifaces),
            sp.STATES.index(p.state), 0, flags, 0)


def _verdicts(oracle, packets: list[Packet]) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for hit in oracle.send_many(packets):
        decision = hit.decision("filter", "INPUT")
        assert decision is not None, hit
        out.append(decision.verdict)
    return out


def _before_and_after(text: str, plan, packets: list[Packet]  # type: ignore[no-untyped-def]
                      ) -> tuple[list[str], list[str]]:
    """The kernel's verdicts for ``packets`` on ``text``, then after running exactly the
    command the plan printed."""
    from trustwall.lab.oracle import KernelOracle

    with KernelOracle(sender_if="eth0") as oracle:
        oracle.load(text)
        before = _verdicts(oracle, packets)
        (cmd,) = plan.commands
        oracle.fw.run(shlex.split(cmd))
        return before, _verdicts(oracle, packets)


def _check(plan, packets: list[Packet], before: list[str], after: list[str],  # type: ignore[no-untyped-def]
           u: sp.Universe) -> None:
    cubes = [c._cube for c in plan.effect]
    assert not plan.more
    for p, v0, v1 in zip(packets, before, after, strict=True):
        predicted = any(sp.cube_contains(c, _point(u, p)) for c in cubes if c is not None)
        assert (v0 != v1) == predicted, (p, v0, v1)


def test_planned_insert_takes_effect_in_the_kernel() -> None:

    rs = parse_save(SEED)
    rule = build_rule("ACCEPT", proto="tcp", dport="18745", state="NEW")
    plan = plan_insert(rs, rule)
    assert plan.position == 10
    u = universe_for(rs)  # the universe the plan used (eth0 is an unnamed interface)
    packets = _sample(random.Random(7), 16)
    before, after = _before_and_after(SEED, plan, packets)
    assert before[0] == "REJECT" and after[0] == "ACCEPT"  # the target packet
    assert len(set(zip(before, after, strict=True))) > 1  # others kept theirs
    _check(plan, packets, before, after, u)


def test_planned_delete_takes_effect_in_the_kernel() -> None:

    rs = parse_save(SEED)
    plan = plan_delete(rs, "INPUT", 4)
    u = universe_for(rs)  # the universe the plan used (eth0 is an unnamed interface)
    packets = [*_sample(random.Random(11), 12),
               Packet("10.1.2.3", DST, "tcp", 40000, 22, in_iface="eth0", state="NEW")]
    before, after = _before_and_after(SEED, plan, packets)
    assert (before[-1], after[-1]) == ("ACCEPT", "REJECT")
    _check(plan, packets, before, after, u)


def test_rules_lint_calls_shadowed_never_decide_in_the_kernel() -> None:
    from trustwall.firewall.analysis.lint import lint
    from trustwall.lab.oracle import KernelOracle

    text = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -s 10.0.0.0/9 -j DROP\n"
            "-A INPUT -s 10.128.0.0/9 -p tcp -j DROP\n"
            "-A INPUT -s 10.128.0.0/9 -p udp -j ACCEPT\n"
            "-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT\n"
            "-A INPUT -s 10.0.0.0/8 -p udp -j DROP\n"
            "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    shadowed = {f.rule: set(f.blocked_by) for f in lint(parse_save(text)).findings
                if f.kind == "shadowed"}
    assert shadowed == {4: {1, 2}, 5: {1, 3}}
    rng = random.Random(5)
    packets = [Packet(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                      DST, rng.choice(["tcp", "udp"]), 40000, rng.choice([22, 53]),
                      in_iface="eth0", state="NEW") for _ in range(12)]
    packets.append(Packet("192.0.2.7", DST, "tcp", 40000, 22, in_iface="eth0", state="NEW"))
    with KernelOracle(sender_if="eth0") as oracle:
        oracle.load(text)
        decided = [hit.decision("filter", "INPUT") for hit in oracle.send_many(packets)]
    rules = [d.rule for d in decided if d is not None]
    assert len(rules) == len(packets)
    assert not set(rules) & set(shadowed)  # the kernel never picks a shadowed rule
    assert set(rules[:-1]) <= {1, 2, 3} and rules[-1] == 6


# A stock ufw host after `ufw allow 22/tcp; ufw deny 18745/tcp`, in ufw's chain layout
# (before.rules / after.rules / user.rules; logging chains trimmed): ufw-before-input accepts
# loopback and ESTABLISHED,RELATED, drops INVALID, checks the destination is local, then runs
# the user's rules; ufw-track-input lets NEW tcp out of the default DROP only after all that.
UFW = """\
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ufw-after-input - [0:0]
:ufw-after-logging-input - [0:0]
:ufw-before-input - [0:0]
:ufw-before-logging-input - [0:0]
:ufw-logging-deny - [0:0]
:ufw-not-local - [0:0]
:ufw-reject-input - [0:0]
:ufw-skip-to-policy-input - [0:0]
:ufw-track-input - [0:0]
:ufw-user-input - [0:0]
-A INPUT -j ufw-before-logging-input
-A INPUT -j ufw-before-input
-A INPUT -j ufw-after-input
-A INPUT -j ufw-after-logging-input
-A INPUT -j ufw-reject-input
-A INPUT -j ufw-track-input
-A ufw-after-input -p udp -m udp --dport 137 -j ufw-skip-to-policy-input
-A ufw-after-input -p tcp -m tcp --dport 445 -j ufw-skip-to-policy-input
-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input
-A ufw-after-logging-input -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW] "
-A ufw-before-input -i lo -j ACCEPT
-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-input -m conntrack --ctstate INVALID -j ufw-logging-deny
-A ufw-before-input -m conntrack --ctstate INVALID -j DROP
-A ufw-before-input -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A ufw-before-input -p udp -m udp --sport 67 --dport 68 -j ACCEPT
-A ufw-before-input -j ufw-not-local
-A ufw-before-input -j ufw-user-input
-A ufw-logging-deny -m conntrack --ctstate INVALID -m limit --limit 3/min --limit-burst 10 -j RETURN
-A ufw-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-not-local -m addrtype --dst-type LOCAL -j RETURN
-A ufw-not-local -m addrtype --dst-type MULTICAST -j RETURN
-A ufw-not-local -m addrtype --dst-type BROADCAST -j RETURN
-A ufw-not-local -m limit --limit 3/min --limit-burst 10 -j ufw-logging-deny
-A ufw-not-local -j DROP
-A ufw-skip-to-policy-input -j DROP
-A ufw-track-input -p tcp -m conntrack --ctstate NEW -j ACCEPT
-A ufw-track-input -p udp -m conntrack --ctstate NEW -j ACCEPT
-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT
-A ufw-user-input -p tcp -m tcp --dport 18745 -j DROP
COMMIT
"""


def _every_state(rng: random.Random, n: int) -> list[Packet]:
    """tcp/udp packets of every state the oracle can produce, to 22, 18745 and others."""
    out = []
    for state in ("NEW", "ESTABLISHED", "INVALID"):
        for dport in (22, 18745, 18746):
            out.append(Packet(rng.choice(SOURCES), DST, "tcp", 40000, dport, in_iface="eth0",
                              state=state))
    while len(out) < n:
        proto = rng.choice(["tcp", "udp"])
        state = rng.choice(["NEW", "ESTABLISHED"] + (["INVALID"] if proto == "tcp" else []))
        out.append(Packet(rng.choice(SOURCES), DST, proto, rng.choice([1024, 40000]),
                          rng.choice([22, 161, 18745, 18746]), in_iface="eth0", state=state))
    return out


@pytest.mark.parametrize("open_invalid", [False, True])
def test_plan_on_a_ufw_host_lists_every_changed_class_and_keeps_invalid_dropped(
        open_invalid: bool) -> None:
    """Issue 13: the effect lists NEW DROP → ACCEPT (not only INVALID), and INVALID packets
    that ufw drops stay dropped unless asked; the kernel agrees packet by packet."""

    rs = parse_save(UFW)
    plan = plan_insert(rs, build_rule("ACCEPT", proto="tcp", dport="18745"),
                       open_invalid=open_invalid)
    lines = {(c.packets.split(" state ")[1].split(" ")[0], c.before, c.after, c.unsure)
             for c in plan.effect}
    if open_invalid:
        assert lines == {("INVALID,NEW,UNTRACKED", "DROP", "ACCEPT", ())}
        assert "ctstate" not in plan.commands[0]
    else:
        assert lines == {("NEW,UNTRACKED", "DROP", "ACCEPT", ())}
        assert "-m conntrack ! --ctstate INVALID" in plan.commands[0]
    u = universe_for(rs)
    packets = _every_state(random.Random(13), 24)
    before, after = _before_and_after(UFW, plan, packets)
    changed = {(p.state, p.dport) for p, v0, v1 in zip(packets, before, after, strict=True)
               if v0 != v1}
    assert ("NEW", 18745) in changed
    assert (("INVALID", 18745) in changed) == open_invalid
    _check(plan, packets, before, after, u)
