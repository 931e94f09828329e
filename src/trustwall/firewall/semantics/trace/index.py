"""The compiled form of a ruleset for tracing: the packet context, one check per IR
condition, and per chain the interval index that finds the rules a packet can match."""

from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence

from trustwall.errors import BadInput
from trustwall.firewall.iptables import extensions as ext
from trustwall.firewall.iptables.model import Chain, Match, Rule
from trustwall.firewall.ir import Condition
from trustwall.firewall.protocols import PORT_PROTOCOL_NUMBERS, BadValue, protocol_number
from trustwall.firewall.semantics.routing import LocalAddresses
from trustwall.firewall.semantics.trace.result import STATES, Packet

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
    try:
        return protocol_number(str(proto))
    except BadValue:
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
            ports = self.ports and ctx.proto not in PORT_PROTOCOL_NUMBERS
            return self.unconstrained if ports else None
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


_PORT_LABELS = {"sport": "source port (--sport)", "dport": "destination port (--dport)"}
_INDEXED_VALUES = {"tcp_flags": "flags", "ct_state": "state", "mark": "mark"}
_RANGE_KEYS = {"src_range": "src_r", "dst_range": "dst_r"}


def _fast_match(m: Match, dims: dict[str, object], local: LocalAddresses, family: int
                ) -> list[Check]:
    """Put a match's conditions into the index where it can hold them; checks for the rest."""
    extra: list[Check] = []
    for cond in ext.conditions(m):
        field, value = cond.field, cond.value
        if field in _PORT_LABELS:
            spans = [(r.first, r.last) for r in value.ranges]
            if field in dims:
                extra.append(_port_check(field, spans, value.negated, _PORT_LABELS[field]))
            else:
                dims[field] = (_merge(spans), value.negated)
        elif field in _INDEXED_VALUES and _INDEXED_VALUES[field] not in dims:
            dims[_INDEXED_VALUES[field]] = value.matches
        elif field == "icmp" and "icmp" not in dims:
            dims["icmp"] = lambda v, icmp=value: v[0] >= 0 and icmp.matches(v[0], v[1])
        elif field in _RANGE_KEYS and _RANGE_KEYS[field] not in dims:
            dims[_RANGE_KEYS[field]] = ([(int(value.first), int(value.last))], value.negated)
        else:
            extra.append(_condition_check(cond, local, family))
    return extra


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


def _compile_match(m: Match, local: LocalAddresses, family: int) -> list[Check]:
    """Checks for one ``-m`` match; a part trustwall does not model becomes an unknown."""
    return [_condition_check(c, local, family) for c in ext.conditions(m)]


def _condition_check(cond: Condition, local: LocalAddresses, family: int) -> Check:
    """One IR condition as a check of a packet: True, False, or why it cannot be told."""
    field, value = cond.field, cond.value
    if field in _PORT_LABELS:
        ranges = tuple((r.first, r.last) for r in value.ranges)
        return _port_check(field, ranges, value.negated, _PORT_LABELS[field])
    if field == "either_port":
        return _either_port_check(tuple((r.first, r.last) for r in value.ranges), value.negated)
    if field == "tcp_flags":
        return lambda ctx: value.matches(ctx.flags)
    if field == "ct_state":
        return lambda ctx: value.matches(ctx.state)
    if field == "icmp":
        def icmp_check(ctx: _Ctx) -> bool | str:
            if value.type is None:
                return not value.negated
            if ctx.icmp_type is None:
                return "the packet's ICMP type is not given (--icmp-type)"
            return value.matches(ctx.icmp_type, ctx.icmp_code or 0)
        return icmp_check
    if field in _RANGE_KEYS:
        attr, lo, hi, neg = field[:3], int(value.first), int(value.last), value.negated
        return lambda ctx: "an address is unknown" if getattr(ctx, attr) is None \
            else (lo <= getattr(ctx, attr) <= hi) != neg
    if field == "mark":
        return lambda ctx: "the packet mark is unknown here" if ctx.mark is None \
            else value.matches(ctx.mark)
    if field == "ct_mark":
        return lambda ctx: "the connection mark is unknown (not a NEW connection)" \
            if ctx.ctmark is None else value.matches(ctx.ctmark)
    if field == "pkttype":
        return lambda ctx: "the destination is unknown" if ctx.dst is None \
            else (_pkttype(ctx.dst, family, local) == value.kind) != value.negated
    if field in ("src_type", "dst_type"):
        return _addrtype_check(field[:3], value.types, value.negated, local, family)
    if field == "opaque":
        return _unknown(value.why)
    return _unknown(f"{field} is not modelled by trustwall")


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
