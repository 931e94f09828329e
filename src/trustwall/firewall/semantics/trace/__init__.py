"""Netfilter traversal of a described packet: which rule decides it, and by which path.

The walk follows the kernel's hook order (net/netfilter priorities for IPv4 and IPv6)::

    incoming:  PREROUTING raw -> conntrack -> mangle -> nat(NEW)
               routing decision (local destination?)
               INPUT   mangle -> filter -> security -> nat(NEW)          (to this host)
               FORWARD mangle -> filter -> security                       (through it)
               POSTROUTING mangle -> nat(NEW)
    local:     OUTPUT raw -> conntrack -> mangle -> nat(NEW) -> filter -> security
               POSTROUTING mangle -> nat(NEW)

It walks the IR (:mod:`trustwall.firewall.ir`): at each hook, every base chain of every table
of the packet's IP version, by priority (iptables' tables sit at their fixed priorities, so the
order above is theirs; base chains of equal priority run in table order and the answer warns
that the kernel's order is undefined). Inside a base chain: rules in order, user chains of the
same table by jump (return to the next rule) and goto (return to the caller's caller), return,
the base chain's policy at its end. ACCEPT ends only the current base chain; DROP, REJECT and
QUEUE end the packet. Non-terminating targets
(LOG, NFLOG, MARK, CONNMARK, SET, TRACE, …) continue; MARK/CONNMARK change the mark that later
``-m mark`` rules see; DNAT/REDIRECT change the destination before the routing decision, so a
published Docker port goes to FORWARD; SNAT/MASQUERADE change the source afterwards. The nat
table is consulted only for the first packet of a connection (state NEW), as in the kernel; a
raw-table NOTRACK makes the packet UNTRACKED. The conntrack state is an input.

**Unknowns.** A match trustwall does not model (``-m recent``, ``-m string``, a stateful
``-m limit``…), a packet field the user left out (no ``--in`` but a rule says ``-i eth0``), or a
routing decision without the host's addresses is not guessed: the trace is re-run with the
unknown taken both ways (depth-first over the choices) and every outcome is kept. The result is
*certain* when all outcomes agree on the verdict and the deciding rule.

**Speed.** :class:`Tracer` compiles the ruleset once. Per chain, every field the rules test
(addresses, ports, protocol, interfaces, state, TCP flags, ICMP type, mark) becomes a sorted
list of interval boundaries with one bitmask of rules per interval; ANDing the masks of a
packet's fields leaves exactly the rules whose indexed parts match, and the walk visits only
those (the lowest bit first), running closures just for what the index cannot hold. When a
field is unknown the chain falls back to the plain rule-by-rule walk, which the tests check the
index against. ``Tracer.trace_many`` also caches the answer per packet class: packets whose
every field falls between the same boundaries of the whole ruleset get the same answer.
"""

from trustwall.firewall.semantics.trace.result import (
    STATES,
    Assumption,
    Outcome,
    Packet,
    RuleRef,
    Step,
    TraceResult,
    Unknown,
)
from trustwall.firewall.semantics.trace.walk import Tracer, trace, trace_many

__all__ = ["STATES", "Assumption", "Outcome", "Packet",
           "RuleRef", "Step", "TraceResult", "Tracer", "Unknown", "trace", "trace_many"]
