"""The compiled form of a ruleset for tracing: the packet context, one check per IR
condition (:data:`FIELDS`, one entry per condition field), and per chain the interval index
that finds the rules a packet can match."""

from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from trustwall.errors import BadInput
from trustwall.firewall.ir import (
    AddressMask,
    AddressRange,
    AddressTypes,
    Chain,
    Condition,
    CtStatus,
    Fragment,
    IcmpMatch,
    Interface,
    IpVersion,
    KeySpan,
    MarkMatch,
    Opaque,
    PacketType,
    PortSet,
    Protocol,
    SetLookup,
    Table,
)
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
                 "icmp_code", "icmp_type", "iin", "iout", "mark", "nat", "notrack", "out_given",
                 "proto", "sport", "src", "state", "version")

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
        self.nat: frozenset[str] = frozenset()  # conntrack NAT bits set on the way (dnat, snat)
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

    __slots__ = ("action", "chain", "changes", "checks", "dims", "ends", "extra", "kind",
                 "masked", "never", "number", "rule", "table", "target")

    def __init__(self) -> None:
        self.checks: tuple[Check, ...] | None = None  # every condition: made when first needed
        self.action: Callable[[_Ctx], str] | None = None
        self.never = False  # a condition no traced packet meets (``-f``, ``! -p all``)
        self.masked = False  # an address under a non-contiguous mask (no interval classes)


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

    __slots__ = ("base", "dims", "hook", "name", "policy", "rules", "table", "tkey")

    def __init__(self, chain: Chain, rules: list[_CRule], table: Table, tkey: int) -> None:
        self.table = table
        self.tkey = tkey  # the table's position in the ruleset: the scope of jumps
        self.name = chain.name
        self.hook = chain.base  # None: a user chain
        self.policy = chain.base.policy.upper() if chain.base is not None else None
        self.rules = tuple(rules)
        everyone = (1 << len(rules)) - 1
        self.base = everyone & ~sum(1 << i for i, cr in enumerate(rules) if cr.never)
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


def _fast_parts(cr: _CRule, local: LocalAddresses, family: int
                ) -> tuple[dict[str, object], tuple[Check, ...]]:
    """Split a rule into indexable field constraints and the checks left to run one by one."""
    dims: dict[str, object] = {}
    extra: list[Check] = []
    for cond in cr.rule.conditions:
        handler = FIELDS.get(cond.field)
        if handler is None or handler.index is None or not handler.index(cond, dims, cr, family):
            extra.append(condition_check(cond, local, family))
    return dims, tuple(extra)


# --- one entry per IR condition field: its check, and where the index can hold it -------------

Index = Callable[[Condition, dict[str, object], _CRule, int], bool]


class _Field:
    """How the tracer reads one condition field: ``check`` builds the per-packet test;
    ``index`` puts the condition into a chain's index (False: it cannot, the check runs)."""

    __slots__ = ("check", "index")

    def __init__(self, check: Callable[[Any, LocalAddresses, int], Check],
                 index: Index | None = None) -> None:
        self.check = check
        self.index = index


def condition_check(cond: Condition, local: LocalAddresses, family: int) -> Check:
    """One IR condition as a check of a packet: True, False, or why it cannot be told. A
    field the tracer does not know is followed both ways, as an opaque condition is."""
    handler = FIELDS.get(cond.field)
    if handler is None:
        return _unknown(f"{cond.field} is not modelled by trustwall")
    return handler.check(cond.value, local, family)


def _port_check(attr: str, ranges: Sequence[tuple[int, int]], negated: bool, flag: str
                ) -> Check:
    missing = f"the packet's {flag} is not given"

    def check(ctx: _Ctx) -> bool | str:
        port = getattr(ctx, attr)
        if port is None:
            return missing
        return any(lo <= port <= hi for lo, hi in ranges) != negated
    return check


def _ports(attr: str) -> _Field:
    label = {"sport": "source port (--sport)", "dport": "destination port (--dport)"}[attr]

    def check(value: PortSet, local: LocalAddresses, family: int) -> Check:
        return _port_check(attr, tuple((r.first, r.last) for r in value.ranges),
                           value.negated, label)

    def index(cond: Condition, dims: dict[str, object], cr: _CRule, family: int) -> bool:
        if attr in dims:
            return False
        dims[attr] = (_merge((r.first, r.last) for r in cond.value.ranges), cond.value.negated)
        return True
    return _Field(check, index)


def _either_port_check(value: PortSet, local: LocalAddresses, family: int) -> Check:
    ranges, negated = tuple((r.first, r.last) for r in value.ranges), value.negated

    def check(ctx: _Ctx) -> bool | str:
        ports = [p for p in (ctx.sport, ctx.dport) if p is not None]
        hit = any(lo <= p <= hi for p in ports for lo, hi in ranges)
        if not hit and len(ports) < 2:
            return "the packet's ports are not given"
        return hit != negated
    return check


def _value_index(dim: str) -> Index:
    """Index a condition whose value has ``matches(packet value)`` under ``dim``."""
    def index(cond: Condition, dims: dict[str, object], cr: _CRule, family: int) -> bool:
        if dim in dims:
            return False
        dims[dim] = cond.value.matches
        return True
    return index


def _icmp_check(value: IcmpMatch, local: LocalAddresses, family: int) -> Check:
    def check(ctx: _Ctx) -> bool | str:
        if value.type is None:
            return not value.negated
        if ctx.icmp_type is None:
            return "the packet's ICMP type is not given (--icmp-type)"
        return value.matches(ctx.icmp_type, ctx.icmp_code or 0)
    return check


def _icmp_index(cond: Condition, dims: dict[str, object], cr: _CRule, family: int) -> bool:
    if "icmp" in dims:
        return False
    icmp = cond.value
    dims["icmp"] = lambda v: v[0] >= 0 and icmp.matches(v[0], v[1])
    return True


def _range(attr: str) -> _Field:
    def check(value: AddressRange, local: LocalAddresses, family: int) -> Check:
        lo, hi, neg = int(value.first), int(value.last), value.negated
        return lambda ctx: "an address is unknown" if getattr(ctx, attr) is None \
            else (lo <= getattr(ctx, attr) <= hi) != neg

    def index(cond: Condition, dims: dict[str, object], cr: _CRule, family: int) -> bool:
        key = attr + "_r"
        if key in dims:
            return False
        dims[key] = ([(int(cond.value.first), int(cond.value.last))], cond.value.negated)
        return True
    return _Field(check, index)


def contiguous(value: AddressMask) -> bool:
    """True when the mask is a prefix (one interval of addresses)."""
    inverted = ~value.mask & ((1 << (32 if value.version == 4 else 128)) - 1)
    return inverted & (inverted + 1) == 0


def _address(attr: str) -> _Field:
    """``-s``/``-d`` (``ip saddr``): an address under a mask; a prefix is one interval of
    the index, a non-contiguous mask is checked one by one."""
    whose = "source" if attr == "src" else "destination"
    # the source is always given; the destination is unknown only after a rewrite to it
    missing = "the source address is unknown" if attr == "src" else \
        "the destination was rewritten to an address trustwall does not know"

    def check(value: AddressMask, local: LocalAddresses, family: int) -> Check:
        if value.version != family:
            return lambda ctx: False
        mask, want, negated = value.mask, value.value, value.negated
        why = missing if contiguous(value) else f"the {whose} address is unknown"

        def check(ctx: _Ctx) -> bool | str:
            field = getattr(ctx, attr)
            if field is None:
                return why
            return ((field & mask) == want) != negated
        return check

    def index(cond: Condition, dims: dict[str, object], cr: _CRule, family: int) -> bool:
        value = cond.value
        if not contiguous(value):
            cr.masked = True
            return False
        if attr in dims or value.version != family:
            return False
        full = 0xFFFFFFFF if family == 4 else (1 << 128) - 1
        dims[attr] = ([(value.value, value.value | (full & ~value.mask))], value.negated)
        return True
    return _Field(check, index)


def _proto_check(value: Protocol, local: LocalAddresses, family: int) -> Check:
    number, negated = value.number, value.negated
    return lambda ctx: (number == 0 or ctx.proto == number) != negated


def _proto_index(cond: Condition, dims: dict[str, object], cr: _CRule, family: int) -> bool:
    if "proto" in dims:
        return False
    number, negated = cond.value.number, cond.value.negated
    if number == 0:  # any protocol; negated (! -p all): none
        cr.never = cr.never or negated
        return True
    dims["proto"] = lambda v: (v == number) != negated
    return True


def _interface(attr: str) -> _Field:
    missing = "the packet's input interface is not given (--in)" if attr == "iin" else \
        "the packet's output interface is not given (--out)"

    def check(value: Interface, local: LocalAddresses, family: int) -> Check:
        def check(ctx: _Ctx) -> bool | str:
            name = getattr(ctx, attr)
            if name is None:
                return missing
            return value.matches(name)
        return check

    def index(cond: Condition, dims: dict[str, object], cr: _CRule, family: int) -> bool:
        if attr in dims:
            return False
        dims[attr] = cond.value.matches
        return True
    return _Field(check, index)


def _fragment_check(value: Fragment, local: LocalAddresses, family: int) -> Check:
    hit = value.negated  # traced packets are never non-first fragments
    return lambda ctx: hit


def _fragment_index(cond: Condition, dims: dict[str, object], cr: _CRule, family: int) -> bool:
    cr.never = cr.never or not cond.value.negated
    return True


def _mark_check(value: MarkMatch, local: LocalAddresses, family: int) -> Check:
    return lambda ctx: "the packet mark is unknown here" if ctx.mark is None \
        else value.matches(ctx.mark)


def _ct_mark_check(value: MarkMatch, local: LocalAddresses, family: int) -> Check:
    return lambda ctx: "the connection mark is unknown (not a NEW connection)" \
        if ctx.ctmark is None else value.matches(ctx.ctmark)


def _pkttype_check(value: PacketType, local: LocalAddresses, family: int) -> Check:
    return lambda ctx: "the destination is unknown" if ctx.dst is None \
        else (_pkttype(ctx.dst, family, local) == value.kind) != value.negated


def _addrtype(attr: str) -> _Field:
    def check(value: AddressTypes, local: LocalAddresses, family: int) -> Check:
        return _addrtype_check(attr, value.types, value.negated, local, family)
    return _Field(check)


# --- nftables conditions ---------------------------------------------------------------------


def _nfproto_check(value: IpVersion, local: LocalAddresses, family: int) -> Check:
    hit = value.matches(family)  # a tracer traces one IP version
    return lambda ctx: hit


def _nfproto_index(cond: Condition, dims: dict[str, object], cr: _CRule, family: int) -> bool:
    cr.never = cr.never or not cond.value.matches(family)
    return True


def _proto_set_index(cond: Condition, dims: dict[str, object], cr: _CRule, family: int
                     ) -> bool:
    if "proto" in dims:
        return False
    dims["proto"] = cond.value.matches
    return True


def _ct_status_bits(ctx: _Ctx) -> tuple[frozenset[str], frozenset[str]] | None:
    """The conntrack status bits of the packet's connection: (known set, known clear); None
    when it has no conntrack entry (INVALID, UNTRACKED, or before conntrack ran), where nft's
    ``ct`` expression does not match at all. NEW is the connection's first packet (as the NAT
    chains already assume): nothing seen back, not assured, not yet confirmed, NAT bits as
    this path set them. ESTABLISHED: confirmed and a reply seen; the rest unknown."""
    if ctx.notrack or ctx.state in ("INVALID", "UNTRACKED"):
        return None
    if ctx.state == "NEW":
        return ctx.nat, _CT_STATUS_BITS - ctx.nat
    if ctx.state == "ESTABLISHED":
        return frozenset({"confirmed", "seen-reply"}), frozenset({"dying"})
    return frozenset({"confirmed"}), frozenset({"dying"})


_CT_STATUS_BITS = frozenset({"expected", "seen-reply", "assured", "confirmed", "snat", "dnat",
                             "dying"})


def _ct_status_check(value: CtStatus, local: LocalAddresses, family: int) -> Check:
    bits, negated = value.bits, value.negated

    def check(ctx: _Ctx) -> bool | str:
        known = _ct_status_bits(ctx)
        if known is None:
            return False  # no connection: nft's ct expression breaks the rule
        on, off = known
        if bits & on:
            return not negated
        if bits <= off:
            return negated
        return (f"the connection's status ({', '.join(sorted(bits - off))}) is not known for "
                f"a {ctx.state} packet")
    return check


def _set_value(key: str, ctx: _Ctx, local: LocalAddresses, family: int) -> object:
    """The packet's value for one key of a set lookup (``ir.SET_KEYS``); None: unknown;
    :data:`_ABSENT`: the packet has no such header (the lookup does not match)."""
    if key in ("sport", "dport"):
        value = getattr(ctx, key)
        if value is None and ctx.proto not in PORT_PROTOCOL_NUMBERS:
            return _ABSENT
        return value
    if key in ("icmp_type", "icmp_code"):
        if ctx.proto not in (1, 58):
            return _ABSENT
        if ctx.icmp_type is None:
            return None
        return ctx.icmp_type if key == "icmp_type" else ctx.icmp_code or 0
    if key == "nfproto":
        return family
    if key == "ct_mark" and ctx.state in ("INVALID", "UNTRACKED"):
        return _ABSENT  # no connection: nft's ct expression breaks the rule
    if key == "pkttype":
        return None if ctx.dst is None else _pkttype(ctx.dst, family, local)
    return getattr(ctx, _SET_ATTRS.get(key, key))


_ABSENT = object()
_SET_ATTRS = {"iif": "iin", "oif": "iout", "ct_mark": "ctmark", "ct_state": "state"}


def _set_check(value: SetLookup, local: LocalAddresses, family: int) -> Check:
    """The lookup as a hash probe for its single-value elements (a 1,000-pair concatenation
    is one probe, not 1,000 comparisons) and ``SetLookup``'s own test for the rest (ranges,
    prefixes, interface wildcards)."""
    keys, where = value.keys, value.name or "an anonymous set"
    words = tuple(k in ("ct_state", "pkttype") for k in keys)  # compared case-blind
    exact: set[tuple[object, ...]] = set()
    rest = []
    for element in value.elements:
        probe = tuple(_exact(part) for part in element)
        if any(p is None for p in probe):
            rest.append(element)
        else:
            exact.add(probe)
    others = SetLookup(keys, tuple(rest))
    negated = value.negated

    def check(ctx: _Ctx) -> bool | str:
        values = tuple(_set_value(k, ctx, local, family) for k in keys)
        if any(v is _ABSENT for v in values):
            return False  # nft's payload load fails: the rule does not match, negated or not
        missing = [k for k, v in zip(keys, values, strict=True) if v is None]
        if missing:
            return f"the packet's {', '.join(missing)} is not given (lookup in {where})"
        probe = tuple(v.upper() if w and isinstance(v, str) else v
                      for v, w in zip(values, words, strict=True))
        hit = probe in exact or (bool(rest) and others.matches(values))
        return hit != negated
    return check


def _exact(part: KeySpan | Interface | str) -> object:
    """The one value an element component holds (None: a range, prefix or wildcard)."""
    if isinstance(part, KeySpan):
        return part.first if part.first == part.last else None
    if isinstance(part, Interface):
        return None if part.prefix or part.negated else part.name
    return part.upper()


def _set_index(cond: Condition, dims: dict[str, object], cr: _CRule, family: int) -> bool:
    """A one-key lookup of addresses or ports is intervals of the chain's index (a 50k-prefix
    set is a sorted sweep, not 50k tests per packet); other keys run as checks."""
    value: SetLookup = cond.value
    if len(value.keys) != 1 or value.keys[0] not in ("src", "dst", "sport", "dport") or \
            value.keys[0] in dims or \
            not all(isinstance(e[0], KeySpan) for e in value.elements):
        return False
    key = value.keys[0]
    dims[key] = (_merge((e[0].first, e[0].last) for e in value.elements), value.negated)  # type: ignore[union-attr]
    return True


def _opaque_check(value: Opaque, local: LocalAddresses, family: int) -> Check:
    return _unknown(value.why)


def _unknown(reason: str) -> Check:
    return lambda ctx: reason


#: The tracer's reading of every IR condition field (adding a field = one entry here and one
#: in ``unfold.FIELDS``); a field missing here is followed both ways, as an opaque one is.
FIELDS: dict[str, _Field] = {
    "proto": _Field(_proto_check, _proto_index),
    "src": _address("src"),
    "dst": _address("dst"),
    "iif": _interface("iin"),
    "oif": _interface("iout"),
    "fragment": _Field(_fragment_check, _fragment_index),
    "sport": _ports("sport"),
    "dport": _ports("dport"),
    "either_port": _Field(_either_port_check),
    "tcp_flags": _Field(lambda value, local, family: lambda ctx: value.matches(ctx.flags),
                        _value_index("flags")),
    "ct_state": _Field(lambda value, local, family: lambda ctx: value.matches(ctx.state),
                       _value_index("state")),
    "icmp": _Field(_icmp_check, _icmp_index),
    "src_range": _range("src"),
    "dst_range": _range("dst"),
    "mark": _Field(_mark_check, _value_index("mark")),
    "ct_mark": _Field(_ct_mark_check),
    "pkttype": _Field(_pkttype_check),
    "src_type": _addrtype("src"),
    "dst_type": _addrtype("dst"),
    "opaque": _Field(_opaque_check),
    "nfproto": _Field(_nfproto_check, _nfproto_index),
    "proto_set": _Field(lambda value, local, family: lambda ctx: value.matches(ctx.proto),
                        _proto_set_index),
    "ct_status": _Field(_ct_status_check),
    "set": _Field(_set_check, _set_index),
}


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
