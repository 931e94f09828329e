"""Netfilter traversal of a described packet: which rule decides it, and by which path.

The walk follows the kernel's hook order (net/netfilter priorities for IPv4 and IPv6)::

    incoming:  PREROUTING raw -> conntrack -> mangle -> nat(NEW)
               routing decision (local destination?)
               INPUT   mangle -> filter -> security -> nat(NEW)          (to this host)
               FORWARD mangle -> filter -> security                       (through it)
               POSTROUTING mangle -> nat(NEW)
    local:     OUTPUT raw -> conntrack -> mangle -> nat(NEW) -> filter -> security
               POSTROUTING mangle -> nat(NEW)

Inside a table: rules in order, user chains by ``-j`` (return to the next rule) and ``-g``
(return to the caller's caller), RETURN, the built-in chain's policy at its end. ACCEPT ends
only the current table's chain; DROP, REJECT and QUEUE end the packet. Non-terminating targets
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

from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from trustwall.errors import BadInput
from trustwall.firewall.model import Chain, Match, Rule, Ruleset
from trustwall.firewall.routing import UNKNOWN as UNKNOWN_LOCALS
from trustwall.firewall.routing import LocalAddresses

STATES = ("NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED")
TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG")
_PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58, "icmpv6": 58, "sctp": 132,
                  "udplite": 136, "dccp": 33, "esp": 50, "ah": 51, "gre": 47, "all": 0}
_PORT_PROTOS = {6, 17, 132, 136, 33}

#: Targets that decide the packet for good (the rest of the hooks are not visited).
FINAL_VERDICTS = frozenset({"DROP", "REJECT", "QUEUE", "NFQUEUE", "TARPIT"})
#: Targets known to let the packet continue with the next rule.
CONTINUING_TARGETS = frozenset({
    "LOG", "NFLOG", "ULOG", "TRACE", "SET", "AUDIT", "CLASSIFY", "DSCP", "TOS", "TTL", "HL",
    "TCPMSS", "TCPOPTSTRIP", "CHECKSUM", "CONNSECMARK", "SECMARK", "IDLETIMER", "LED",
    "RATEEST", "HMARK", "ECN", "TEE", "CT", "NOTRACK", "MARK", "CONNMARK",
})
_NAT_TARGETS = frozenset({"DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP"})
_CHANGING_TARGETS = _NAT_TARGETS | {"MARK", "CONNMARK", "CT", "NOTRACK"}


@dataclass(frozen=True)
class Packet:
    """A packet as the user describes it. Addresses are strings; ports and types are numbers.

    ``state`` is the conntrack state the packet has (NEW, ESTABLISHED, RELATED, INVALID,
    UNTRACKED); ``local`` marks a packet the host itself sends (OUTPUT instead of PREROUTING).
    ``tcp_flags`` None means "SYN for NEW, ACK otherwise". A field left None is unknown: a
    rule that tests it makes the trace follow both outcomes.
    """

    src: str
    dst: str
    proto: str = "tcp"
    sport: int | None = None
    dport: int | None = None
    in_iface: str | None = None
    out_iface: str | None = None
    state: str = "NEW"
    icmp_type: int | None = None
    icmp_code: int | None = None
    mark: int = 0
    tcp_flags: frozenset[str] | None = None
    local: bool = False

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "tcp_flags" and value is not None:
                value = sorted(value)
            out[name] = value
        return out


@dataclass(frozen=True)
class RuleRef:
    """A rule by table, chain and 1-based number (None: the chain's policy) with its text.

    ``hook`` is the built-in chain the packet was in when the rule decided (the rule's own
    chain may be a user chain reached from it).
    """

    table: str
    chain: str
    rule: int | None
    text: str
    hook: str = ""


@dataclass(frozen=True)
class Step:
    """One thing that happened on the way: a rule matched (and what its target did)."""

    table: str
    chain: str
    rule: int | None
    text: str
    action: str


@dataclass(frozen=True)
class Unknown:
    """A point the trace could not decide, and why."""

    table: str
    chain: str
    rule: int | None
    text: str
    reason: str


@dataclass(frozen=True)
class Assumption:
    unknown: Unknown
    holds: bool

    def to_json(self) -> dict[str, object]:
        return {**_unknown_json(self.unknown), "holds": self.holds}


@dataclass(frozen=True)
class Outcome:
    """One complete walk under one set of assumptions about the unknowns."""

    verdict: str
    decided_by: RuleRef | None
    path: tuple[Step, ...]
    hooks: tuple[str, ...]
    assuming: tuple[Assumption, ...]
    final_packet: Packet | None = None  # None: no target changed the packet

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.verdict, "decided_by": self.decided_by,
                "assuming": list(self.assuming), "hooks": list(self.hooks)}


@dataclass(frozen=True)
class TraceResult:
    """The answer for one packet. ``verdict`` is UNKNOWN when the outcomes disagree."""

    packet: Packet
    verdict: str
    decided_by: RuleRef | None
    path: tuple[Step, ...]
    hooks: tuple[str, ...]
    unknown: tuple[Unknown, ...]
    outcomes: tuple[Outcome, ...]
    certain: bool
    final_packet: Packet
    complete: bool = True  # False: too many unknowns, not every combination was followed

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "verdict": self.verdict,
            "certain": self.certain,
            "decided_by": self.decided_by,
            "path": list(self.path),
            "unknown": [_unknown_json(u) for u in self.unknown],
            "hooks": list(self.hooks),
            "packet": self.packet,
        }
        if self.final_packet != self.packet:
            out["final_packet"] = self.final_packet
        if len(self.outcomes) > 1:
            out["outcomes"] = list(self.outcomes)
        if not self.complete:
            out["complete"] = False
        return out


def _unknown_json(u: Unknown) -> dict[str, object]:
    return {"table": u.table, "chain": u.chain, "rule": u.rule, "text": u.text,
            "reason": u.reason}


# --- the compiled form ------------------------------------------------------------------------

# Target kinds of a compiled rule.
_NONE, _JUMP, _GOTO, _RETURN, _VERDICT, _ACCEPT, _ACTION, _UNKNOWN_TARGET = range(8)

Check = Callable[["_Ctx"], "bool | str"]  # True/False, or the reason it cannot be decided


class _Ctx:
    """The packet while it travels (mutable: NAT and MARK change it)."""

    __slots__ = ("ctmark", "dport", "dst", "family", "flags", "hook", "icmp",
                 "icmp_code", "icmp_type", "iin", "iout", "mark", "notrack", "out_given", "proto",
                 "sport", "src", "state", "version")

    def __init__(self, p: Packet, family: int) -> None:
        self.family = family
        self.src: int | None = _addr_int(p.src, family, "source")
        self.dst: int | None = _addr_int(p.dst, family, "destination")
        self.proto = _proto_number(p.proto)
        self.sport = p.sport
        self.dport = p.dport
        # Before the routing decision a packet has no output interface, and one the host sends
        # has no input interface: iptables compares those against "".
        self.iin = "" if p.local else p.in_iface
        self.iout = p.out_iface if p.local else ""
        self.out_given = p.out_iface
        state = p.state if p.state in STATES else p.state.upper()
        if state not in STATES:
            raise BadInput(f"unknown conntrack state {p.state!r}",
                           hint="one of " + ", ".join(STATES))
        self.state = state
        self.mark = p.mark
        self.ctmark: int | None = 0 if state == "NEW" else None
        self.icmp_type = p.icmp_type
        self.icmp_code = p.icmp_code
        if self.proto == 6:
            self.flags = p.tcp_flags if p.tcp_flags is not None else (
                _SYN if state == "NEW" else _ACK)
        else:
            self.flags = _NO_FLAGS
        self.hook = ""
        self.notrack = False
        self.version = 0  # bumped whenever a target changes the packet
        if self.proto not in (1, 58):
            self.icmp: tuple[int, int] | None = _NO_ICMP
        else:
            self.icmp = None if p.icmp_type is None else (p.icmp_type, p.icmp_code or 0)


_SYN, _ACK, _NO_FLAGS = frozenset({"SYN"}), frozenset({"ACK"}), frozenset()
_NO_ICMP = (-1, -1)


def _addr_int(text: str, family: int, what: str) -> int:
    try:  # the common, fast case
        return int.from_bytes(socket.inet_pton(socket.AF_INET if family == 4 else
                                               socket.AF_INET6, text), "big")
    except (OSError, TypeError):
        pass
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise BadInput(f"{what} {text!r} is not an IP address") from None
    if addr.version != family:
        raise BadInput(f"{what} {text} is IPv{addr.version} but the ruleset is IPv{family}")
    return int(addr)


def _proto_number(proto: str) -> int:
    number = _PROTO_NUMBERS.get(proto)  # type: ignore[call-overload]
    if number is not None:
        return number
    text = str(proto).lower()
    if text.isdigit():
        return int(text)
    if text in _PROTO_NUMBERS:
        return _PROTO_NUMBERS[text]
    from trustwall.firewall.parse import protocol_number

    try:
        return protocol_number(text)
    except ValueError:
        raise BadInput(f"unknown protocol {proto!r}") from None


class _CRule:
    """One rule flattened for speed."""

    __slots__ = ("action", "chain", "checks", "dims", "dst", "extra", "frag", "iin", "iout",
                 "kind", "number", "proto", "rule", "src", "target")

    def __init__(self) -> None:
        self.checks: tuple[Check, ...] = ()
        self.action: Callable[[_Ctx], str] | None = None


def _net(addr: object) -> tuple[int, int, bool] | None:
    if addr is None:
        return None
    if addr.mask is not None:  # type: ignore[attr-defined]
        value, mask = addr.mask  # type: ignore[attr-defined]
        return value, mask, addr.negated  # type: ignore[attr-defined]
    net = addr.network  # type: ignore[attr-defined]
    return int(net.network_address), int(net.netmask), addr.negated  # type: ignore[attr-defined]


def _iface(iface: object) -> tuple[str, bool, bool] | None:
    if iface is None:
        return None
    name = iface.name  # type: ignore[attr-defined]
    wildcard = name.endswith("+")
    return (name[:-1] if wildcard else name), wildcard, iface.negated  # type: ignore[attr-defined]


class _RangeDim:
    """Rules' constraints on one numeric field as a sweep of bitmasks over value intervals."""

    __slots__ = ("attr", "masks", "points", "ports", "unconstrained")

    def __init__(self, attr: str, constraints: list[tuple[int, list[tuple[int, int]], bool]],
                 everyone: int) -> None:
        self.attr = {"src_r": "src", "dst_r": "dst"}.get(attr, attr)
        self.ports = attr in ("sport", "dport")
        constrained = 0
        base = 0
        events: dict[int, list[int]] = {}
        for i, ranges, negated in constraints:
            bit = 1 << i
            constrained |= bit
            if negated:
                base |= bit
            for lo, hi in ranges:
                events.setdefault(lo, [0, 0])[1 if negated else 0] |= bit
                events.setdefault(hi + 1, [0, 0])[0 if negated else 1] |= bit
        self.unconstrained = everyone & ~constrained
        cur = self.unconstrained | base
        self.points = [0]
        self.masks = [cur]
        for point in sorted(events):
            add, remove = events[point]
            cur = (cur & ~remove) | add
            if point == self.points[-1]:
                self.masks[-1] = cur
            else:
                self.points.append(point)
                self.masks.append(cur)

    def lookup(self, ctx: _Ctx) -> int | None:
        value = getattr(ctx, self.attr)
        if value is None:
            # A protocol without ports: only rules that say nothing about ports can match
            # (iptables ties every port match to its -p).
            return self.unconstrained if self.ports and ctx.proto not in _PORT_PROTOS else None
        return self.masks[bisect_right(self.points, value) - 1]


class _PredDim:
    """Rules' constraints on one field with few distinct values; masks cached per value."""

    __slots__ = ("attr", "cache", "preds", "unconstrained")

    def __init__(self, attr: str, preds: list[tuple[int, Callable[[object], bool]]],
                 everyone: int) -> None:
        self.attr = attr
        self.preds = preds
        self.unconstrained = everyone & ~sum(1 << i for i, _ in preds)
        self.cache: dict[object, int] = {}

    def lookup(self, ctx: _Ctx) -> int | None:
        value = getattr(ctx, self.attr)
        if value is None:
            return None
        mask = self.cache.get(value)
        if mask is None:
            mask = self.unconstrained
            for i, pred in self.preds:
                if pred(value):
                    mask |= 1 << i
            if len(self.cache) < 4096:
                self.cache[value] = mask
        return mask


class _CChain:
    """A chain's compiled rules, with a bitmask index over every field the rules test."""

    __slots__ = ("base", "dims", "name", "policy", "rules")

    def __init__(self, chain: Chain, rules: list[_CRule]) -> None:
        self.name = chain.name
        self.policy = chain.policy
        self.rules = tuple(rules)
        everyone = (1 << len(rules)) - 1
        self.base = everyone & ~sum(1 << i for i, cr in enumerate(rules) if cr.frag is True)
        ranges: dict[str, list[tuple[int, list[tuple[int, int]], bool]]] = {}
        preds: dict[str, list[tuple[int, Callable[[object], bool]]]] = {}
        for i, cr in enumerate(rules):
            for dim, constraint in cr.dims.items():
                if dim in _RANGE_DIMS:
                    spans, negated = constraint  # type: ignore[misc]
                    ranges.setdefault(dim, []).append((i, spans, negated))
                else:
                    preds.setdefault(dim, []).append((i, constraint))  # type: ignore[arg-type]
        dims: list[_RangeDim | _PredDim] = [_RangeDim(d, c, everyone) for d, c in ranges.items()]
        dims += [_PredDim(d, p, everyone) for d, p in preds.items()]
        self.dims = tuple(dims)

    def fast_mask(self, ctx: _Ctx) -> int | None:
        """Bits of the rules whose indexed fields all match; None if a field is unknown."""
        mask = self.base
        for dim in self.dims:
            m = dim.lookup(ctx)
            if m is None:
                return None
            mask &= m
            if not mask:
                return 0
        return mask


_RANGE_DIMS = frozenset({"src", "dst", "src_r", "dst_r", "sport", "dport"})


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def _fast_parts(rule: Rule, cr: _CRule, local: LocalAddresses, family: int
                ) -> tuple[dict[str, object], tuple[Check, ...]]:
    """Split a rule into indexable field constraints and the checks left to run one by one."""
    dims: dict[str, object] = {}
    extra: list[Check] = []
    full = 0xFFFFFFFF if family == 4 else (1 << 128) - 1
    for dim, addr in (("src", rule.source), ("dst", rule.destination)):
        net = getattr(cr, dim)
        if net is not None and addr is not None and addr.mask is not None:
            extra.append(_masked_check(dim, net))  # not one interval: checked one by one
        elif net is not None:
            dims[dim] = ([(net[0], net[0] | (full & ~net[1]))], net[2])
    if cr.proto is not None:
        number, negated = cr.proto
        dims["proto"] = lambda v, n=number, neg=negated: (v == n) != neg
    for dim in ("iin", "iout"):
        iface = getattr(cr, dim)
        if iface is not None:
            name, wild, neg = iface
            dims[dim] = (lambda v, n=name, neg=neg: v.startswith(n) != neg) if wild else \
                (lambda v, n=name, neg=neg: (v == n) != neg)
    for m in rule.matches:
        extra += _fast_match(m, dims, local, family)
    return dims, tuple(extra)


def _fast_match(m: Match, dims: dict[str, object], local: LocalAddresses, family: int
                ) -> list[Check]:
    module = m.module
    if module in _QUIET_OPTIONS:
        extra: list[Check] = []
        for opt in m.options:
            if opt.name not in _QUIET_OPTIONS[module]:
                extra.append(_unknown(f"-m {module} --{opt.name} is not modelled by trustwall"))
                break
        for dim, ports, flag in (("sport", m.source_ports, "source port (--sport)"),
                                 ("dport", m.destination_ports, "destination port (--dport)")):
            if ports is None:
                continue
            spans = [(r.first, r.last) for r in ports.ranges]
            if dim in dims:
                extra.append(_port_check(dim, spans, ports.negated, flag))
            else:
                dims[dim] = (_merge(spans), ports.negated)
        either = m.either_ports
        if either is not None:
            extra.append(_either_port_check([(r.first, r.last) for r in either.ranges],
                                            either.negated))
        for dim, value in (("flags", m.tcp_flags), ("state", m.states)):
            if value is None:
                continue
            if dim == "state" and value.states & {"SNAT", "DNAT"}:  # type: ignore[union-attr]
                extra.append(_unknown("conntrack states SNAT/DNAT are not modelled"))
            elif dim in dims:
                extra.append(lambda ctx, d=dim, v=value: v.matches(getattr(ctx, d)))  # type: ignore[union-attr]
            else:
                dims[dim] = value.matches  # type: ignore[union-attr]
        return extra
    if module in ("icmp", "icmp6") and m.icmp is not None and "icmp" not in dims:
        icmp = m.icmp
        dims["icmp"] = lambda v: v[0] >= 0 and icmp.matches(v[0], v[1])  # type: ignore[index]
        return []
    if module == "iprange" and "src_r" not in dims and "dst_r" not in dims:
        for dim, rng in (("src_r", m.source_range), ("dst_r", m.destination_range)):
            if rng is not None:
                dims[dim] = ([(int(rng.first), int(rng.last))], rng.negated)
        return []
    if module == "mark" and m.mark is not None and "mark" not in dims:
        dims["mark"] = m.mark.matches
        return []
    return _compile_match(m, local, family)


# --- the tracer ---------------------------------------------------------------------------------


class _Run:
    """One walk under a fixed list of answers to the unknowns met on the way."""

    __slots__ = ("answers", "decisions", "hooks", "met", "path", "with_path")

    def __init__(self, answers: list[bool], with_path: bool) -> None:
        self.answers = answers
        self.met: list[Unknown] = []
        self.path: list[Step] = []
        self.hooks: list[str] = []
        self.decisions: dict[tuple[str, str], RuleRef] = {}
        self.with_path = with_path

    def decide(self, unknown: Unknown) -> bool:
        i = len(self.met)
        self.met.append(unknown)
        return self.answers[i] if i < len(self.answers) else False


class Tracer:
    """A ruleset compiled for tracing. Build once, then :meth:`trace` or :meth:`trace_many`.

    Not thread-safe (it keeps per-call scratch space); use one Tracer per thread.
    """

    def __init__(self, ruleset: Ruleset, local: LocalAddresses | None = None, *,
                 max_outcomes: int = 64) -> None:
        self.ruleset = ruleset
        self.family = ruleset.family
        self.local = local if local is not None else UNKNOWN_LOCALS
        self.max_outcomes = max_outcomes
        self._chains: dict[tuple[str, str], _CChain] = {}
        self._texts: dict[int, str] = {}
        self._local_ints: frozenset[int] | None = None
        self._local_nets: tuple[tuple[int, int], ...] = ()
        if self.local.known:
            self._local_ints = frozenset(
                int(a) for a in self.local.addresses | self.local.broadcasts
                if a.version == self.family)
            self._local_nets = tuple((int(n.network_address), int(n.netmask))
                                     for n in self.local.networks if n.version == self.family)
        for table in ruleset.tables:
            names = {c.name for c in table.chains}
            for chain in table.chains:
                rules = [self._compile(table.name, chain, i, r, names)
                         for i, r in enumerate(chain.rules, 1)]
                self._chains[(table.name, chain.name)] = _CChain(chain, rules)
        self._points = self._class_points()
        self._cache: dict[tuple[object, ...], TraceResult] = {}
        self._addr_classes: dict[str, int] = {}
        self._hook_chains: dict[tuple[str, ...], list[tuple[str, _CChain]]] = {}
        self._refs: dict[tuple[object, str], RuleRef] = {}  # rule or policy refs, made once
        self._masks: dict[tuple[object, ...], int | None] = {}  # per trace() call

    # -- public API --

    def trace(self, packet: Packet, *, with_path: bool = True) -> TraceResult:
        """Trace one packet (all outcomes when something is unknown)."""
        ctx: _Ctx | None = _Ctx(packet, self.family)  # validates the packet once, up front
        self._masks.clear()
        outcomes: list[Outcome] = []
        seen: dict[Unknown, None] = {}
        pending: list[list[bool]] = [[]]
        complete = True
        while pending:
            if len(outcomes) >= self.max_outcomes:
                complete = False
                break
            answers = pending.pop()
            run = _Run(answers, with_path)
            if ctx is None:
                ctx = _Ctx(packet, self.family)
            verdict, decided = self._walk(run, ctx, packet.local)
            if not run.met and not answers:  # the common case: nothing unknown on the way
                path, hooks = tuple(run.path), tuple(run.hooks)
                final = self._packet_of(packet, ctx)
                return TraceResult(packet, verdict, decided, path, hooks, (), (
                    Outcome(verdict, decided, path, hooks, (), final),), True, final or packet)
            final = self._packet_of(packet, ctx)
            ctx = None
            for u in run.met:
                seen.setdefault(u, None)
            # Every unknown met after the forced prefix could have gone the other way.
            for j in range(len(run.met) - 1, len(answers) - 1, -1):
                pending.append(answers + [False] * (j - len(answers)) + [True])
            assuming = tuple(Assumption(u, run.answers[i] if i < len(run.answers) else False)
                             for i, u in enumerate(run.met))
            outcomes.append(Outcome(verdict, decided, tuple(run.path), tuple(run.hooks),
                                    assuming, final))
        first = outcomes[0]
        agree = all(o.verdict == first.verdict and o.decided_by == first.decided_by
                    for o in outcomes)
        certain = agree and complete
        return TraceResult(
            packet=packet,
            verdict=first.verdict if certain else "UNKNOWN",
            decided_by=first.decided_by if certain else None,
            path=first.path, hooks=first.hooks, unknown=tuple(seen), outcomes=tuple(outcomes),
            certain=certain, final_packet=first.final_packet or packet, complete=complete)

    def trace_many(self, packets: Iterable[Packet], *, with_path: bool = False
                   ) -> list[TraceResult]:
        """Trace many packets against the compiled ruleset (paths off by default, for speed).

        Without paths, packets that no rule can tell apart (every field in the same interval
        between the boundaries the rules draw) share one walk: the answer is cached per class.
        """
        if with_path or self._points is None:
            return [self.trace(p, with_path=with_path) for p in packets]
        out = []
        cache = self._cache
        for p in packets:
            key = self._signature(p)
            hit = cache.get(key)
            if hit is None:
                result = self.trace(p, with_path=False)
                if all(o.final_packet is None for o in result.outcomes) \
                        and len(cache) < 500_000:
                    cache[key] = result
                out.append(result)
            else:
                out.append(TraceResult(p, hit.verdict, hit.decided_by, hit.path, hit.hooks,
                                       hit.unknown, hit.outcomes, hit.certain, p, hit.complete))
        return out

    def _signature(self, p: Packet) -> tuple[object, ...]:
        """The packet's equivalence class: which interval each field falls in, and the rest."""
        addrs, ports = self._points  # type: ignore[misc]
        classes = self._addr_classes
        src = classes.get(p.src)
        if src is None:
            if len(classes) > 1_000_000:
                classes.clear()
            src = classes[p.src] = bisect_right(addrs, _addr_int(p.src, self.family, "source"))
        dst = classes.get(p.dst)
        if dst is None:
            dst = classes[p.dst] = bisect_right(addrs, _addr_int(p.dst, self.family,
                                                                 "destination"))
        return (src, dst,
                None if p.sport is None else bisect_right(ports, p.sport),
                None if p.dport is None else bisect_right(ports, p.dport),
                p.proto, p.in_iface, p.out_iface, p.state, p.icmp_type, p.icmp_code, p.mark,
                p.tcp_flags, p.local,
                # the live route lookup may send two addresses of one class different ways
                self.local.out_interface(p.dst) if self.local.route_lookup else None)

    def _class_points(self) -> tuple[list[int], list[int]] | None:
        """Every boundary any rule (or the routing decision) draws on addresses and ports."""
        addrs: set[int] = {0}
        ports: set[int] = {0}
        for cchain in self._chains.values():
            for cr in cchain.rules:
                if cr.kind == _ACTION and cr.target == "NETMAP":
                    return None  # rewrites low address bits: no interval class survives it
                if any(a is not None and a.mask is not None
                       for a in (cr.rule.source, cr.rule.destination)):
                    return None  # a non-contiguous mask: no interval class either
                for dim, constraint in cr.dims.items():
                    if dim in _RANGE_DIMS:
                        target = ports if dim in ("sport", "dport") else addrs
                        for lo, hi in constraint[0]:  # type: ignore[index]
                            target.update((lo, hi + 1))
                for m in cr.rule.matches:
                    for ps in (m.source_ports, m.destination_ports, m.either_ports):
                        for r in ps.ranges if ps is not None else ():
                            ports.update((r.first, r.last + 1))
                    for rng in (m.source_range, m.destination_range):
                        if rng is not None:
                            addrs.update((int(rng.first), int(rng.last) + 1))
        for a in self._local_ints or ():
            addrs.update((a, a + 1))
        for net, mask in self._local_nets:
            addrs.update((net, net + (~mask & ((1 << 128) - 1 if self.family == 6
                                                else 0xFFFFFFFF)) + 1))
        if self.family == 4:
            addrs.update((0xE0000000, 0xF0000000, 0xFFFFFFFF))  # multicast, broadcast
        else:
            addrs.update((0xFF << 120,))
        return sorted(addrs), sorted(ports)

    # -- compile --

    def _compile(self, table: str, chain: Chain, number: int, rule: Rule,
                 chain_names: set[str]) -> _CRule:
        cr = _CRule()
        cr.rule = rule
        cr.chain = chain.name
        cr.number = number
        cr.src = _net(rule.source)
        cr.dst = _net(rule.destination)
        cr.iin = _iface(rule.in_interface)
        cr.iout = _iface(rule.out_interface)
        cr.frag = rule.fragment
        cr.proto = None
        if rule.protocol is not None:
            n = _proto_number(rule.protocol.name)
            if n != 0:
                cr.proto = (n, rule.protocol.negated)
            elif rule.protocol.negated:  # "! -p all" matches nothing
                cr.proto = (-1, False)
        checks: list[Check] = []
        for m in rule.matches:
            checks.extend(_compile_match(m, self.local, self.family))
        cr.checks = tuple(checks)
        cr.dims, cr.extra = _fast_parts(rule, cr, self.local, self.family)
        cr.target = None
        target = rule.target
        if target is None:
            cr.kind = _NONE
        elif target.name in chain_names:
            cr.kind = _GOTO if target.goto else _JUMP
            cr.target = target.name
        elif target.name == "RETURN":
            cr.kind = _RETURN
        elif target.name == "ACCEPT":
            cr.kind = _ACCEPT
        elif target.name in FINAL_VERDICTS:
            cr.kind = _VERDICT
            cr.target = "QUEUE" if target.name == "NFQUEUE" else target.name
        elif target.name in _NAT_TARGETS or target.name in CONTINUING_TARGETS:
            cr.kind = _ACTION
            cr.target = target.name
            cr.action = _compile_action(target.name, target.options, self.local, table)
        else:
            cr.kind = _UNKNOWN_TARGET
            cr.target = target.name
        return cr

    def _text(self, cr: _CRule) -> str:
        key = id(cr)
        text = self._texts.get(key)
        if text is None:
            from trustwall.firewall.render import render_rule

            try:
                text = render_rule(cr.rule)
            except Exception:  # a renderer gap must not hide the trace; fall back to the input
                text = cr.rule.text.strip()
            self._texts[key] = text
        return text

    def _ref(self, table: str, cr: _CRule, hook: str) -> RuleRef:
        key = (id(cr), hook)
        ref = self._refs.get(key)
        if ref is None:
            ref = self._refs[key] = RuleRef(table, cr.chain, cr.number, self._text(cr), hook)
        return ref

    # -- walk --

    def _packet_of(self, p: Packet, ctx: _Ctx) -> Packet | None:
        if ctx.version == 0 and not ctx.notrack:  # no target changed the packet
            return None

        def addr(value: int | None, old: str) -> str:
            return old if value is None else str(ipaddress.ip_address(value)) \
                if self.family == 4 else str(ipaddress.IPv6Address(value))

        return replace(p, src=addr(ctx.src, p.src), dst=addr(ctx.dst, p.dst), sport=ctx.sport,
                       dport=ctx.dport, mark=ctx.mark, state=ctx.state, out_iface=ctx.iout)

    def _walk(self, run: _Run, ctx: _Ctx, local: bool) -> tuple[str, RuleRef | None]:
        if local:
            order: list[tuple[str, tuple[str, ...]]] = [
                ("OUTPUT", ("raw", "mangle", "nat", "filter", "security"))]
            main = "OUTPUT"
        else:
            verdict = self._hook_tables(run, ctx, "PREROUTING", ("raw", "mangle", "nat"))
            if verdict is not None:
                return verdict
            to_me = self._is_local(run, ctx)
            if not to_me and self.local.forwarding is False and self.family == 4:
                # The kernel routes such a packet nowhere: no FORWARD, no counters, dropped.
                ref = RuleRef("", "routing", None, "net.ipv4.ip_forward = 0 (forwarding off)",
                              "routing")
                if run.with_path:
                    run.path.append(Step("", "routing", None, ref.text, "DROP"))
                return "DROP", ref
            if not to_me:
                ctx.iout = ctx.out_given
                if ctx.iout is None and ctx.dst is not None:
                    ctx.iout = self.local.out_interface(str(_addr_obj(ctx.dst, self.family)))
            main = "INPUT" if to_me else "FORWARD"
            order = [("INPUT", ("mangle", "filter", "security", "nat"))] if to_me else [
                ("FORWARD", ("mangle", "filter", "security"))]
        if main != "INPUT":
            order.append(("POSTROUTING", ("mangle", "nat")))
        for hook, tables in order:
            verdict = self._hook_tables(run, ctx, hook, tables)
            if verdict is not None:
                return verdict
        decided = run.decisions.get(("filter", main))
        return "ACCEPT", decided

    def _is_local(self, run: _Run, ctx: _Ctx) -> bool:
        if ctx.dst is None:  # REDIRECT to an address we do not know: still this host
            return True
        dst = ctx.dst
        if self._local_ints is not None:
            local: bool | None = dst in self._local_ints or any(
                dst & mask == net for net, mask in self._local_nets)
        else:
            local = None
        addr = _addr_obj(dst, self.family)
        if local is None:
            local = run.decide(Unknown(
                "", "routing", None, "routing decision",
                "is the destination an address of this host? give --local-addr (or --live)"))
        if run.with_path:
            run.path.append(Step("", "routing", None, f"destination {addr}",
                                 "local: INPUT" if local else "not local: FORWARD"))
        return local

    def _present(self, hook: str, tables: Sequence[str]) -> list[tuple[str, _CChain]]:
        key = (hook, *tables)
        found = self._hook_chains.get(key)
        if found is None:
            found = self._hook_chains[key] = [
                (t, self._chains[(t, hook)]) for t in tables if (t, hook) in self._chains]
        return found

    def _hook_tables(self, run: _Run, ctx: _Ctx, hook: str, tables: Sequence[str]
                     ) -> tuple[str, RuleRef | None] | None:
        """Walk one hook through its tables; a final verdict (DROP…) is returned, else None."""
        run.hooks.append(hook)
        for table, cchain in self._present(hook, tables):
            if table == "nat" and ctx.state != "NEW":
                continue  # NAT rules see only a connection's first packet
            ctx.hook = hook
            saved_state = ctx.state
            if table == "raw":
                ctx.state = "INVALID"  # conntrack has not run yet: no ct attached
            result = self._chain(run, table, cchain, ctx, 0)
            if table == "raw":
                ctx.state = "UNTRACKED" if ctx.notrack else saved_state
            if result is None:
                policy = cchain.policy or "ACCEPT"
                ref = self._refs.get((table, hook))
                if ref is None:
                    ref = self._refs[(table, hook)] = RuleRef(table, hook, None,
                                                              f"-P {hook} {policy}", hook)
                if run.with_path:
                    run.path.append(Step(table, hook, None, ref.text, f"policy {policy}"))
                verdict = policy
            else:
                verdict, ref = result
            run.decisions[(table, hook)] = ref
            if verdict != "ACCEPT":
                return verdict, ref
        return None

    def _chain(self, run: _Run, table: str, cchain: _CChain, ctx: _Ctx, depth: int
               ) -> tuple[str, RuleRef] | None:
        """Walk a chain; None means it returned (RETURN or its end)."""
        if depth > 100:
            raise BadInput(f"chain {cchain.name} jumps too deep (a loop?)")
        for cr in self._matching(run, table, cchain, ctx):
            kind = cr.kind
            if kind == _NONE:
                self._step(run, table, cr, "match (no target)")
                continue
            if kind in (_JUMP, _GOTO):
                self._step(run, table, cr, ("goto " if kind == _GOTO else "jump ") + cr.target)
                sub = self._chains[(table, cr.target)]
                result = self._chain(run, table, sub, ctx, depth + 1)
                if result is not None or kind == _GOTO:
                    return result
                continue
            if kind == _RETURN:
                self._step(run, table, cr, "RETURN")
                return None
            if kind in (_ACCEPT, _VERDICT):
                verdict = "ACCEPT" if kind == _ACCEPT else cr.target
                self._step(run, table, cr, verdict)
                return verdict, self._ref(table, cr, ctx.hook)
            if kind == _ACTION:
                note = cr.action(ctx) if cr.action is not None else cr.target
                if cr.target in _CHANGING_TARGETS:
                    ctx.version += 1
                self._step(run, table, cr, note)
                if cr.target in _NAT_TARGETS:
                    return "ACCEPT", self._ref(table, cr, ctx.hook)
                continue
            # A target trustwall does not know: it may decide the packet or let it continue.
            u = Unknown(table, cr.chain, cr.number, self._text(cr),
                        f"target {cr.target} is not modelled: it may stop the packet")
            if run.decide(u):
                self._step(run, table, cr, f"{cr.target} (assumed to decide)")
                return "UNKNOWN", self._ref(table, cr, ctx.hook)
            self._step(run, table, cr, f"{cr.target} (assumed to continue)")
        return None

    def _matching(self, run: _Run, table: str, cchain: _CChain, ctx: _Ctx
                  ) -> Iterator[_CRule]:
        """The chain's rules that match, in order: by the index when every field is known."""
        if ctx.version == 0:  # unchanged packet: forked walks share the chain's mask
            key = (id(cchain), ctx.hook, ctx.state, ctx.iout)
            mask = self._masks.get(key, -1)
            if mask == -1:
                mask = self._masks[key] = cchain.fast_mask(ctx)
        else:
            mask = cchain.fast_mask(ctx)
        rules = cchain.rules
        if mask is None:
            for cr in rules:
                if self._matches(run, table, cr, ctx):
                    yield cr
            return
        while mask:
            low = mask & -mask
            mask ^= low
            cr = rules[low.bit_length() - 1]
            if cr.extra and not self._extra(run, table, cr, ctx):
                continue
            version = ctx.version
            yield cr
            if ctx.version != version:  # a MARK/CONNMARK changed what the later rules see
                fresh = cchain.fast_mask(ctx)
                if fresh is None:
                    for later in rules[low.bit_length():]:
                        if self._matches(run, table, later, ctx):
                            yield later
                    return
                mask = fresh & ~((low << 1) - 1)

    def _extra(self, run: _Run, table: str, cr: _CRule, ctx: _Ctx) -> bool:
        reason = ""
        for check in cr.extra:
            result = check(ctx)
            if result is False:
                return False
            if result is not True:
                reason = reason or str(result)
        if not reason:
            return True
        return run.decide(Unknown(table, cr.chain, cr.number, self._text(cr), reason))

    def _step(self, run: _Run, table: str, cr: _CRule, action: str) -> None:
        if run.with_path:
            run.path.append(Step(table, cr.chain, cr.number, self._text(cr), action))

    def _matches(self, run: _Run, table: str, cr: _CRule, ctx: _Ctx) -> bool:
        proto = cr.proto
        if proto is not None and (ctx.proto == proto[0]) == proto[1]:
            return False
        reason = ""
        net = cr.src
        if net is not None:
            if ctx.src is None:
                reason = "the source address is unknown"
            elif ((ctx.src & net[1]) == net[0]) == net[2]:
                return False
        net = cr.dst
        if net is not None:
            if ctx.dst is None:
                reason = "the destination was rewritten to an address trustwall does not know"
            elif ((ctx.dst & net[1]) == net[0]) == net[2]:
                return False
        iface = cr.iin
        if iface is not None:
            if ctx.iin is None:
                reason = "the packet's input interface is not given (--in)"
            elif (ctx.iin.startswith(iface[0]) if iface[1] else ctx.iin == iface[0]) == iface[2]:
                return False
        iface = cr.iout
        if iface is not None:
            if ctx.iout is None:
                reason = "the packet's output interface is not given (--out)"
            elif (ctx.iout.startswith(iface[0]) if iface[1] else ctx.iout == iface[0]) == iface[2]:
                return False
        if cr.frag is True:  # traced packets are never fragments
            return False
        for check in cr.checks:
            result = check(ctx)
            if result is False:
                return False
            if result is not True:
                reason = reason or str(result)
        if not reason:
            return True
        return run.decide(Unknown(table, cr.chain, cr.number, self._text(cr), reason))



# --- matches ------------------------------------------------------------------------------------


def _port_check(attr: str, ranges: Sequence[tuple[int, int]], negated: bool, flag: str
                ) -> Check:
    missing = f"the packet's {flag} is not given"

    def check(ctx: _Ctx) -> bool | str:
        port = getattr(ctx, attr)
        if port is None:
            return missing
        return any(lo <= port <= hi for lo, hi in ranges) != negated
    return check


def _masked_check(dim: str, net: tuple[int, int, bool]) -> Check:
    """``-s/-d addr/mask`` with a non-contiguous mask: (field & mask) == addr, exactly."""
    value, mask, negated = net

    def check(ctx: _Ctx) -> bool | str:
        field = getattr(ctx, dim)
        if field is None:
            return f"the {'source' if dim == 'src' else 'destination'} address is unknown"
        return ((field & mask) == value) != negated
    return check


def _either_port_check(ranges: Sequence[tuple[int, int]], negated: bool) -> Check:
    def check(ctx: _Ctx) -> bool | str:
        ports = [p for p in (ctx.sport, ctx.dport) if p is not None]
        hit = any(lo <= p <= hi for p in ports for lo, hi in ranges)
        if not hit and len(ports) < 2:
            return "the packet's ports are not given"
        return hit != negated
    return check


def _unknown(reason: str) -> Check:
    return lambda ctx: reason


_QUIET_OPTIONS = {"tcp": {"sport", "dport", "tcp-flags"}, "udp": {"sport", "dport"},
                  "udplite": {"sport", "dport"}, "sctp": {"sport", "dport"},
                  "dccp": {"sport", "dport"}, "multiport": {"sports", "dports", "ports"},
                  "conntrack": {"ctstate"}, "state": {"state"}}


def _compile_match(m: Match, local: LocalAddresses, family: int) -> list[Check]:
    """Checks for one ``-m`` match; a part trustwall does not model becomes an unknown."""
    module = m.module
    checks: list[Check] = []
    if module in _QUIET_OPTIONS:
        extra = [o.name for o in m.options if o.name not in _QUIET_OPTIONS[module]]
        if extra:
            checks.append(_unknown(f"-m {module} --{extra[0]} is not modelled by trustwall"))
        for attr, ports, flag in (("sport", m.source_ports, "source port (--sport)"),
                                  ("dport", m.destination_ports,
                                   "destination port (--dport)")):
            if ports is not None:
                ranges = tuple((r.first, r.last) for r in ports.ranges)
                checks.append(_port_check(attr, ranges, ports.negated, flag))
        either = m.either_ports
        if either is not None:
            checks.append(_either_port_check(tuple((r.first, r.last) for r in either.ranges),
                                             either.negated))
        flags = m.tcp_flags
        if flags is not None:
            checks.append(lambda ctx, f=flags: f.matches(ctx.flags))
        states = m.states
        if states is not None:
            virtual = states.states & {"SNAT", "DNAT"}
            if virtual:
                checks.append(_unknown(f"conntrack state {sorted(virtual)[0]} is not modelled"))
            else:
                checks.append(lambda ctx, s=states: s.matches(ctx.state))
        return checks
    if module in ("icmp", "icmp6"):
        icmp = m.icmp
        if icmp is None:
            return [_unknown(f"-m {module} without a type is not modelled")]

        def icmp_check(ctx: _Ctx, icmp=icmp) -> bool | str:  # type: ignore[no-untyped-def]
            if icmp.type is None:
                return not icmp.negated
            if ctx.icmp_type is None:
                return "the packet's ICMP type is not given (--icmp-type)"
            return icmp.matches(ctx.icmp_type, ctx.icmp_code or 0)
        return [icmp_check]
    if module == "iprange":
        for attr, rng in (("src", m.source_range), ("dst", m.destination_range)):
            if rng is not None:
                lo, hi, neg = int(rng.first), int(rng.last), rng.negated
                checks.append(lambda ctx, a=attr, lo=lo, hi=hi, neg=neg:
                              "an address is unknown" if getattr(ctx, a) is None
                              else (lo <= getattr(ctx, a) <= hi) != neg)
        return checks
    if module == "mark":
        mark = m.mark
        if mark is None:
            return [_unknown("-m mark without --mark")]
        return [lambda ctx, mk=mark: "the packet mark is unknown here" if ctx.mark is None
                else mk.matches(ctx.mark)]
    if module == "connmark":
        opt = m.option("mark")
        if opt is None or not opt.values:
            return [_unknown("-m connmark without --mark")]
        value, _, mask = opt.values[0].partition("/")
        v, mk, neg = int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF, opt.negated
        return [lambda ctx: "the connection mark is unknown (not a NEW connection)"
                if ctx.ctmark is None else ((ctx.ctmark & mk) == v) != neg]
    if module == "comment":
        return []
    if module == "pkttype":
        opt = m.option("pkt-type")
        if opt is None or not opt.values:
            return [_unknown("-m pkttype without --pkt-type")]
        want, neg = opt.values[0].lower(), opt.negated
        return [lambda ctx: "the destination is unknown" if ctx.dst is None
                else (_pkttype(ctx.dst, family, local) == want) != neg]
    if module == "addrtype":
        for opt in m.options:
            if opt.name in ("src-type", "dst-type") and opt.values:
                attr = "src" if opt.name == "src-type" else "dst"
                types = frozenset(opt.values[0].upper().split(","))
                checks.append(_addrtype_check(attr, types, opt.negated, local, family))
            else:
                checks.append(_unknown(f"-m addrtype --{opt.name} is not modelled"))
        return checks
    if module == "mac":
        return [_unknown("the packet's source MAC address is not modelled")]
    if module == "limit":
        return [_unknown("-m limit depends on the traffic before this packet")]
    return [_unknown(f"-m {module} is not modelled by trustwall")]


def _addr_obj(value: int, family: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.IPv4Address(value) if family == 4 else ipaddress.IPv6Address(value)


def _pkttype(value: int, family: int, local: LocalAddresses) -> str:
    addr = _addr_obj(value, family)
    if addr.is_multicast:
        return "multicast"
    if family == 4 and local.is_broadcast(addr):
        return "broadcast"
    return "unicast"


def _addrtype_check(attr: str, types: frozenset[str], negated: bool, local: LocalAddresses,
                    family: int) -> Check:
    def check(ctx: _Ctx) -> bool | str:
        value = getattr(ctx, attr)
        if value is None:
            return "an address is unknown"
        addr = _addr_obj(value, family)
        if addr.is_multicast:
            kinds = {"MULTICAST"}
        elif family == 4 and (local.is_broadcast(addr) or value == 0):
            kinds = {"BROADCAST"}
        else:
            is_local = local.is_local(addr)
            kinds = {"LOCAL"} if is_local else {"UNICAST"} if is_local is False else None
            if kinds is None:
                a, b = ("LOCAL" in types) != negated, ("UNICAST" in types) != negated
                return a if a == b else "is the address local? give --local-addr (or --live)"
        return bool(kinds & types) != negated
    return check


# --- targets that change the packet -------------------------------------------------------------


def _opt(options: Sequence[object], name: str) -> str | None:
    for o in options:
        if o.name == name:  # type: ignore[attr-defined]
            return o.values[0] if o.values else ""  # type: ignore[attr-defined]
    return None


def _value_mask(text: str) -> tuple[int, int]:
    value, _, mask = text.partition("/")
    return int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF


def _split_nat(text: str) -> tuple[str | None, int | None]:
    """``1.2.3.4-1.2.3.9:80-90`` -> ("1.2.3.4", 80); ``[::1]:80``; ``:80``."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    elif ":" in text:  # a bare IPv6 address
        host, port = text, ""
    else:
        host, port = text, ""
    host = host.split("-")[0] or None
    first = port.split("-")[0]
    return host, int(first) if first else None


def _compile_action(name: str, options: Sequence[object], local: LocalAddresses, table: str
                    ) -> Callable[[_Ctx], str]:
    """What a MARK/CONNMARK/CT/NAT target does to the travelling packet (returns a note)."""
    if name == "MARK":
        return _mark_action(options)
    if name == "CONNMARK":
        return _connmark_action(options)
    if name in ("CT", "NOTRACK"):
        if name == "NOTRACK" or _opt(options, "notrack") is not None:
            def notrack(ctx: _Ctx) -> str:
                ctx.notrack = True
                return f"{name}: the packet becomes UNTRACKED"
            return notrack
        return lambda ctx: name
    if name == "DNAT":
        host, port = _split_nat(_opt(options, "to-destination") or "")
        return lambda ctx: _rewrite(ctx, "dst", host, port)
    if name == "SNAT":
        host, port = _split_nat(_opt(options, "to-source") or "")
        return lambda ctx: _rewrite(ctx, "src", host, port)
    if name == "REDIRECT":
        ports = _opt(options, "to-ports")
        port = int(ports.split("-")[0]) if ports else None

        def redirect(ctx: _Ctx) -> str:
            loop = "127.0.0.1" if ctx.family == 4 else "::1"
            addr = loop if ctx.hook == "OUTPUT" else local.primary(ctx.iin, ctx.family)
            ctx.dst = int(ipaddress.ip_address(addr)) if addr is not None else None
            if port is not None:
                ctx.dport = port
            return f"REDIRECT to {addr or 'the input interface address'}:{ctx.dport}"
        return redirect
    if name == "MASQUERADE":
        ports = _opt(options, "to-ports")
        port = int(ports.split("-")[0]) if ports else None

        def masquerade(ctx: _Ctx) -> str:
            addr = local.primary(ctx.iout, ctx.family)
            ctx.src = int(addr) if addr is not None else None
            if port is not None:
                ctx.sport = port
            return f"MASQUERADE to {addr or 'the output interface address'}"
        return masquerade
    if name == "NETMAP":
        net = ipaddress.ip_network(_opt(options, "to") or "0.0.0.0/0", strict=False)
        base, mask = int(net.network_address), int(net.netmask)

        def netmap(ctx: _Ctx) -> str:
            attr = "dst" if ctx.hook in ("PREROUTING", "OUTPUT") else "src"
            value = getattr(ctx, attr)
            if value is not None:
                setattr(ctx, attr, (value & ~mask) | base)
            return f"NETMAP {attr} into {net}"
        return netmap
    return lambda ctx: name


def _rewrite(ctx: _Ctx, attr: str, host: str | None, port: int | None) -> str:
    port_attr = "dport" if attr == "dst" else "sport"
    if host is not None:
        setattr(ctx, attr, int(ipaddress.ip_address(host)))
    if port is not None:
        setattr(ctx, port_attr, port)
    value = getattr(ctx, attr)
    shown = _addr_obj(value, ctx.family) if value is not None else "?"
    kind = "DNAT" if attr == "dst" else "SNAT"
    return f"{kind} to {shown}:{getattr(ctx, port_attr)}"


def _mark_action(options: Sequence[object]) -> Callable[[_Ctx], str]:
    op, value, mask = "", 0, 0xFFFFFFFF
    for name in ("set-xmark", "set-mark", "and-mark", "or-mark", "xor-mark"):
        text = _opt(options, name)
        if text is not None:
            op = name
            value, mask = _value_mask(text)
            break

    def mark(ctx: _Ctx) -> str:
        old = ctx.mark
        if old is None and not (op in ("set-xmark", "set-mark") and mask == 0xFFFFFFFF):
            return "MARK (mark unknown)"
        old = old or 0
        ctx.mark = {"set-xmark": (old & ~mask) ^ value, "set-mark": (old & ~mask) | value,
                    "and-mark": old & value, "or-mark": old | value,
                    "xor-mark": old ^ value}.get(op, old)
        return f"MARK set to {ctx.mark:#x}"
    return mark


def _connmark_set(value: int, mask: int, *, xor: bool) -> Callable[[_Ctx], str]:
    def set_ct(ctx: _Ctx) -> str:
        if ctx.ctmark is None and mask != 0xFFFFFFFF:
            return "CONNMARK (connection mark unknown)"
        old = ctx.ctmark or 0
        ctx.ctmark = (old & ~mask) ^ value if xor else (old & ~mask) | value
        return f"CONNMARK set to {ctx.ctmark:#x}"
    return set_ct


def _connmark_action(options: Sequence[object]) -> Callable[[_Ctx], str]:
    nfmask = int(_opt(options, "nfmask") or "0xffffffff", 0)
    ctmask = int(_opt(options, "ctmask") or "0xffffffff", 0)
    for name in ("set-xmark", "set-mark"):
        text = _opt(options, name)
        if text is not None:
            return _connmark_set(*_value_mask(text), xor=name == "set-xmark")
    if _opt(options, "save-mark") is not None:
        def save(ctx: _Ctx) -> str:
            if ctx.mark is None or ctx.ctmark is None:
                ctx.ctmark = None
            else:
                ctx.ctmark = (ctx.ctmark & ~ctmask) ^ (ctx.mark & nfmask)
            return "CONNMARK save-mark"
        return save
    if _opt(options, "restore-mark") is not None:
        def restore(ctx: _Ctx) -> str:
            if ctx.ctmark is None or ctx.mark is None:
                ctx.mark = None
            else:
                ctx.mark = (ctx.mark & ~nfmask) ^ (ctx.ctmark & ctmask)
            return "CONNMARK restore-mark"
        return restore
    return lambda ctx: "CONNMARK"


def trace(ruleset: Ruleset, packet: Packet, local: LocalAddresses | None = None
          ) -> TraceResult:
    """Trace one packet through ``ruleset`` (compiles it; use :class:`Tracer` for many)."""
    return Tracer(ruleset, local).trace(packet)


def trace_many(ruleset: Ruleset, packets: Iterable[Packet],
               local: LocalAddresses | None = None, *, with_path: bool = False
               ) -> list[TraceResult]:
    """Trace many packets: the ruleset is compiled once."""
    return Tracer(ruleset, local).trace_many(packets, with_path=with_path)


__all__ = ["Assumption", "Outcome", "Packet", "RuleRef", "Step", "TraceResult", "Tracer",
           "Unknown", "trace", "trace_many"]
