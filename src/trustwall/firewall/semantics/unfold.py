"""Rules as packet spaces, and chains unfolded into one flat list per hook.

:func:`rule_space` turns one IR rule's conditions (:data:`FIELDS`, one entry per field) into
two spaces: ``may`` (every packet the rule might match: conditions spaces do not hold are
treated as "always true", an over-approximation) and ``must`` (packets it certainly matches:
empty as soon as such a condition is present, an under-approximation). nft's conditions
have entries too: an IP version (``nfproto``), protocol sets, set lookups (a one-key set is a
union of values in its dimension, a concatenation a union of products, one cube per element;
negated lookups their complement); ``ct status`` and set keys without a dimension (pkttype,
ct mark, icmp code) stay "may match". Analyses use ``must``
for anything that *decides* (blockers, coverage) and ``may`` for anything that *might* be
affected, so their claims stay true; a finding that leans on an unmodelled condition names it.

:func:`unfold` inlines user chains into the base chain that reaches them (jump and goto),
turning a return into a negated condition on the rest of the called chain, so that the result
is an ordered list of :class:`FlatRule` with the plain semantics "the first terminating rule
that matches decides, else the policy". Each flat rule links back to its IR rule (``origin``,
whose ``rule.source`` names the frontend's rule) and to the jumps that led to it (``path``).
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache

from trustwall.firewall import ir
from trustwall.firewall.ir import Chain, Condition, Frontend, PortSet, Rule, Ruleset, Table
from trustwall.firewall.protocols import TCP_FLAGS
from trustwall.firewall.semantics import space as sp
from trustwall.firewall.semantics.space import Cube, Space, Universe

_MAX_DEPTH = 64


@dataclass(frozen=True)
class Origin:
    """Where a flat rule comes from: table, chain and 1-based rule number."""

    table: str
    chain: str
    number: int
    rule: Rule = field(compare=False, repr=False)  # the IR rule (its source: rule.source)

    @property
    def label(self) -> str:
        return f"{self.chain}:{self.number}"


@dataclass(frozen=True)
class RuleSpace:
    may: tuple[Cube, ...]
    must: tuple[Cube, ...]
    unknown: tuple[str, ...]  # why must != may: unmodelled modules/options, "-f", …


@dataclass(frozen=True)
class FlatRule:
    """One rule of an unfolded hook, with the conditions of the jumps that lead to it."""

    may: Space
    must: Space
    action: str  # target name; for REJECT with its --reject-with ("REJECT icmp-host-prohibited")
    terminal: bool
    origin: Origin
    path: tuple[Origin, ...] = ()  # the jump/goto rules that led here, outermost first
    unknown: tuple[str, ...] = ()  # unmodelled matches on the rule or its path

    @property
    def verdict(self) -> str:
        """The verdict name as users say it (REJECT, not REJECT icmp-host-prohibited)."""
        return self.action.split(" ", 1)[0]


@dataclass(frozen=True)
class FlatChain:
    table: str
    hook: str
    rules: tuple[FlatRule, ...]
    policy: str
    universe: Universe


# --------------------------------------------------------------------------- universe

def _ir_rule(rule: Rule | object) -> Rule:
    """An IR rule, or a frontend's rule compiled to one (``iptables.model.Rule.to_ir``)."""
    return rule if isinstance(rule, Rule) else rule.to_ir()  # type: ignore[attr-defined]


def family_of(ruleset: Ruleset | Frontend) -> int:
    """The IP version a ruleset's packet spaces are about (an IR ruleset holding both: 4)."""
    family = getattr(ruleset, "family", None)
    if isinstance(family, int):
        return family
    return (ir.as_ir(ruleset).versions() or (4,))[0]


def _tables(ruleset: Ruleset, family: int) -> list[Table]:
    return [t for t in ruleset.tables if family in ir.FAMILY_VERSIONS.get(t.family, ())]


def find_table(ruleset: Ruleset | Frontend, name: str, family: int) -> Table | None:
    """The table called ``name`` that sees packets of IP version ``family``."""
    return next((t for t in _tables(ir.as_ir(ruleset), family) if t.name == name), None)


def iface_name(iface: ir.Interface) -> str:
    """An interface condition as a universe class name (``eth+`` for a prefix)."""
    return iface.name + "+" if iface.prefix else iface.name


def interface_names(rulesets: Iterable[Ruleset | Frontend]) -> set[str]:
    names: set[str] = set()
    for rs in rulesets:
        for table in ir.as_ir(rs).tables:
            for chain in table.chains:
                for rule in chain.rules:
                    for cond in rule.conditions:
                        if cond.field in ("iif", "oif"):
                            names.add(iface_name(cond.value))
                        elif cond.field == "set":
                            names.update(_set_iface_names(cond.value))
    return names


@lru_cache(maxsize=4096)
def _set_iface_names(lookup: ir.SetLookup) -> frozenset[str]:
    """The interface names an nft set lookup over ``iifname``/``oifname`` lists."""
    at = [i for i, key in enumerate(lookup.keys) if key in ("iif", "oif")]
    return frozenset(iface_name(e[i]) for e in lookup.elements for i in at
                     if isinstance(e[i], ir.Interface))


def universe_for(*rulesets: Ruleset | Frontend, extra_ifaces: Iterable[str] = ()) -> Universe:
    """The universe covering every interface name the rulesets (and ``extra_ifaces``) use."""
    family = family_of(rulesets[0]) if rulesets else 4
    return Universe.for_names(family, interface_names(rulesets) | set(extra_ifaces))


# --------------------------------------------------------------------------- rules

def _net_interval(lo: int, mask: int, bits: int) -> sp.Intervals:
    return ((lo, lo + (~mask & ((1 << bits) - 1)) + 1),)


def _ports(ps: PortSet) -> sp.Intervals:
    ivs = sp.iv_or((), tuple((r.first, r.last + 1) for r in ps.ranges))
    return sp.iv_sub(sp.FULL_PORTS, ivs) if ps.negated else ivs


@cache
def _flags_bits(mask: frozenset[str], comp: frozenset[str], negated: bool) -> int:
    m = sum(1 << TCP_FLAGS.index(f) for f in mask if f in TCP_FLAGS)
    c = sum(1 << TCP_FLAGS.index(f) for f in comp if f in TCP_FLAGS)
    bits = 0
    for combo in range(256):
        if ((combo & m) == c) != negated:
            bits |= 1 << combo
    return bits


class _Builder:
    """Accumulates one rule's constraints; ``unknown`` collects what it could not model."""

    def __init__(self, universe: Universe) -> None:
        self.u = universe
        self.dims = list(universe.full)
        self.either_ports: sp.Intervals | None = None
        self.unknown: list[str] = []
        self.nothing = False
        self.mark_touched = False
        #: unions the rule's cube must meet (an nft lookup in a set of concatenations)
        self.unions: list[Space] = []

    def unsure(self, what: str) -> None:
        """A condition the space cannot hold: the rule may match, not must."""
        if what not in self.unknown:
            self.unknown.append(what)

    def meet(self, d: int, value: object) -> None:
        cur = self.dims[d]
        if sp.IS_INTERVAL[d]:
            new = sp.iv_and(cur, value)  # type: ignore[arg-type]
            self.nothing |= not new
        else:
            new = cur & value  # type: ignore[operator]
            self.nothing |= new == 0
        self.dims[d] = new

    def negatable(self, d: int, value: object, negated: bool) -> None:
        if negated:
            full = self.u.full[d]
            value = (sp.iv_sub(full, value) if sp.IS_INTERVAL[d]  # type: ignore[arg-type]
                     else full & ~value)  # type: ignore[operator]
        self.meet(d, value)

    def cubes(self) -> tuple[Cube, ...]:
        if self.nothing:
            return ()
        if self.unions:
            out = self._plain_cubes()
            space = Space(self.u, out)
            for union in self.unions:
                space = space & union
            return space.cubes
        return self._plain_cubes()

    def _plain_cubes(self) -> tuple[Cube, ...]:
        base = tuple(self.dims)
        if self.either_ports is None:
            return (base,)
        a = list(base)
        a[sp.SPORT] = sp.iv_and(base[sp.SPORT], self.either_ports)
        b = list(base)
        b[sp.DPORT] = sp.iv_and(base[sp.DPORT], self.either_ports)
        out = Space.empty(self.u)
        for c in (a, b):
            if c[sp.SPORT] and c[sp.DPORT]:
                out = out | Space.of(self.u, tuple(c))
        return out.cubes


# One entry per IR condition field: how it narrows a rule's packet space. A field missing
# here (or one packet spaces cannot hold) leaves the rule "may match" only, as opaque does.

def _ports_into(b: _Builder, cond: Condition) -> None:
    b.meet(sp.SPORT if cond.field == "sport" else sp.DPORT, _ports(cond.value))


def _either_port_into(b: _Builder, cond: Condition) -> None:
    value = cond.value
    if value.negated:  # neither port listed: both dimensions outside the list
        b.meet(sp.SPORT, _ports(value))
        b.meet(sp.DPORT, _ports(value))
    else:
        b.either_ports = _ports(value)


def _flags_into(b: _Builder, cond: Condition) -> None:
    v = cond.value
    b.meet(sp.FLAGS, _flags_bits(v.mask, v.comp, v.negated))


def _state_into(b: _Builder, cond: Condition) -> None:
    bits = sum(1 << sp.STATES.index(s) for s in cond.value.states)
    b.negatable(sp.STATE, bits, cond.value.negated)


def _icmp_into(b: _Builder, cond: Condition) -> None:
    value = cond.value
    if value.type is None:
        b.nothing |= value.negated
        return
    b.negatable(sp.ICMP, ((value.type * 256 + value.code_min,
                           value.type * 256 + value.code_max + 1),), value.negated)


def _range_into(b: _Builder, cond: Condition) -> None:
    value = cond.value
    b.negatable(sp.SRC if cond.field == "src_range" else sp.DST,
                ((int(value.first), int(value.last) + 1),), value.negated)


def _mark_into(b: _Builder, cond: Condition) -> None:
    value = cond.value
    if b.mark_touched:
        b.unsure("mark (set earlier in this hook)")
    elif value.mask != 0xFFFFFFFF:
        b.unsure(f"mark {value.value:#x}/{value.mask:#x}")
    else:
        b.negatable(sp.MARK, ((value.value, value.value + 1),), value.negated)


def _proto_into(b: _Builder, cond: Condition) -> None:
    value = cond.value
    if value.number == 0:  # any protocol; negated: none
        b.nothing |= value.negated
    else:
        b.negatable(sp.PROTO, 1 << value.number, value.negated)


def _address_into(b: _Builder, cond: Condition) -> None:
    value = cond.value
    d = sp.SRC if cond.field == "src" else sp.DST
    if value.version != b.u.family:
        b.nothing = True
        return
    bits = 32 if value.version == 4 else 128
    inverted = ~value.mask & ((1 << bits) - 1)
    if inverted & (inverted + 1):
        # a non-contiguous mask: exact would be up to 2^(hole bits) intervals, so the space
        # keeps the CIDR superset (nothing when negated) and marks the rule "may match" only,
        # as for any option it does not model
        lead = bits - inverted.bit_length()  # the mask's leading ones
        cover = value.mask >> (bits - lead) << (bits - lead) if lead else 0
        b.unsure(f"{'not ' if value.negated else ''}{cond.field} {_masked_text(value)}")
        if not value.negated and lead:
            b.negatable(d, _net_interval(value.value & cover, cover, bits), False)
        return
    if value.mask == 0:
        b.nothing |= value.negated
        return
    b.negatable(d, _net_interval(value.value, value.mask, bits), value.negated)


def _masked_text(value: ir.AddressMask) -> str:
    cls = ipaddress.IPv4Address if value.version == 4 else ipaddress.IPv6Address
    return f"{cls(value.value)}/{cls(value.mask)}"


def _iface_into(b: _Builder, cond: Condition) -> None:
    b.negatable(sp.IIF if cond.field == "iif" else sp.OIF,
                b.u.iface_bits(iface_name(cond.value)), cond.value.negated)


def _fragment_into(b: _Builder, cond: Condition) -> None:
    b.unsure("not fragment" if cond.value.negated else "fragment")


def _nfproto_into(b: _Builder, cond: Condition) -> None:
    b.nothing |= not cond.value.matches(b.u.family)


def _proto_set_into(b: _Builder, cond: Condition) -> None:
    bits = 0
    for number in cond.value.numbers:
        if 0 <= number < 256:
            bits |= 1 << number
    b.negatable(sp.PROTO, bits, cond.value.negated)


def _ct_status_into(b: _Builder, cond: Condition) -> None:
    bits = ", ".join(sorted(cond.value.bits))
    b.unsure(f"ct status {'!= ' if cond.value.negated else ''}{bits}")


#: Set-lookup keys packet spaces hold: the dimension each reads.
_SET_DIMS = {"src": sp.SRC, "dst": sp.DST, "sport": sp.SPORT, "dport": sp.DPORT,
             "proto": sp.PROTO, "mark": sp.MARK, "iif": sp.IIF, "oif": sp.OIF,
             "ct_state": sp.STATE, "icmp_type": sp.ICMP}
#: Past this many elements a set of concatenations is held as "may match" only (a union of
#: that many products costs more than the answer is worth); one-key sets have no limit.
_MAX_PRODUCTS = 2048


def _component_value(u: Universe, key: str, part: object) -> object | None:
    """One element component as the dimension's value (None: not held)."""
    d = _SET_DIMS.get(key)
    if d is None:
        return None
    if isinstance(part, ir.KeySpan):
        if key == "icmp_type":
            return ((part.first * 256, (part.last + 1) * 256),)
        if key == "proto":
            return sum(1 << n for n in range(max(part.first, 0), min(part.last, 255) + 1))
        top = u.full[d][-1][1] if sp.IS_INTERVAL[d] else None
        last = part.last + 1 if top is None else min(part.last + 1, top)
        return ((part.first, last),) if part.first < last else ()
    if isinstance(part, ir.Interface):
        return u.iface_bits(iface_name(part))
    if isinstance(part, str) and key == "ct_state" and part.upper() in sp.STATES:
        return 1 << sp.STATES.index(part.upper())
    return None


def _empty(d: int, value: object) -> bool:
    return not value if sp.IS_INTERVAL[d] else value == 0


def _set_into(b: _Builder, cond: Condition) -> None:
    """An nft set lookup: one key is a union of values in its dimension (a set of prefixes or
    ranges: intervals); a concatenation is a union of products, one cube per element. Keys
    packet spaces do not hold (pkttype, ct mark, icmp code, nfproto) leave the rule "may
    match" (and a negated lookup then no narrower than without it)."""
    lookup: ir.SetLookup = cond.value
    what = f"{'!' if lookup.negated else ''}@{lookup.name}" if lookup.name else \
        ("not in a set" if lookup.negated else "set lookup")
    if not lookup.elements:
        b.nothing |= not lookup.negated
        return
    held = [k in _SET_DIMS and not (k == "mark" and b.mark_touched) for k in lookup.keys]
    if "nfproto" in lookup.keys:
        at = lookup.keys.index("nfproto")
        elements = tuple(e for e in lookup.elements
                         if not isinstance(e[at], ir.KeySpan) or e[at].matches(b.u.family))
        held[at] = True  # decided per element above: no dimension left to hold
        if not lookup.negated and not elements:
            b.nothing = True
            return
        if lookup.negated and len(lookup.keys) == 1:
            b.nothing |= bool(elements)
            return
    else:
        elements = lookup.elements
    exact = all(held)
    if not exact:
        unheld = [k for k, h in zip(lookup.keys, held, strict=True) if not h]
        b.unsure(f"{what} over {', '.join(unheld)}")
        if lookup.negated:
            return
    dims = [(i, _SET_DIMS[k]) for i, k in enumerate(lookup.keys) if held[i] and k in _SET_DIMS]
    if not dims:
        return
    if len(dims) == 1:
        i, d = dims[0]
        value: object = () if sp.IS_INTERVAL[d] else 0
        for element in elements:
            v = _component_value(b.u, lookup.keys[i], element[i])
            if v is None:
                b.unsure(what)
                return
            value = sp.iv_or(value, v) if sp.IS_INTERVAL[d] else value | v  # type: ignore
        if lookup.negated and not exact:
            return
        b.negatable(d, value, lookup.negated)
        return
    if len(elements) > _MAX_PRODUCTS:
        b.unsure(f"{what} ({len(elements)} concatenated elements)")
        return
    union = _products(b.u, lookup.keys, tuple(dims), elements)
    if union is None:
        b.unsure(what)
        return
    b.unions.append(Space.full(b.u) - union if lookup.negated else union)


@lru_cache(maxsize=256)
def _products(u: Universe, keys: tuple[str, ...], dims: tuple[tuple[int, int], ...],
              elements: tuple) -> Space | None:
    cubes: list[Cube] = []
    for element in elements:
        cube = list(u.full)
        for i, d in dims:
            v = _component_value(u, keys[i], element[i])
            if v is None:
                return None
            cube[d] = sp.iv_and(cube[d], v) if sp.IS_INTERVAL[d] else cube[d] & v
            if _empty(d, cube[d]):
                break
        else:
            cubes.append(tuple(cube))
    out = Space.empty(u)
    for cube in cubes:
        out = out | Space.of(u, cube)
    return out


#: The packet spaces' reading of every IR condition field (adding a field = one entry here
#: and one in ``trace.index.FIELDS``).
FIELDS: dict[str, Callable[[_Builder, Condition], None]] = {
    "proto": _proto_into,
    "src": _address_into,
    "dst": _address_into,
    "iif": _iface_into,
    "oif": _iface_into,
    "fragment": _fragment_into,
    "sport": _ports_into,
    "dport": _ports_into,
    "either_port": _either_port_into,
    "tcp_flags": _flags_into,
    "ct_state": _state_into,
    "icmp": _icmp_into,
    "src_range": _range_into,
    "dst_range": _range_into,
    "mark": _mark_into,
    "nfproto": _nfproto_into,
    "proto_set": _proto_set_into,
    "ct_status": _ct_status_into,
    "set": _set_into,
}

#: How a finding names a condition that packet spaces do not hold.
_UNHELD = {"pkttype": "packet type", "src_type": "source address type",
           "dst_type": "destination address type", "ct_mark": "connection mark"}


def rule_space(rule: Rule | object, universe: Universe, *, mark_touched: bool = False
               ) -> RuleSpace:
    """The packets ``rule``'s conditions select: ``may`` ⊇ exact ⊇ ``must`` (``rule``: an IR
    rule, or a frontend's rule such as ``iptables.model.Rule``).

    Cached by value: the same conditions seen from several hooks, or in both sides of a diff,
    are translated once.
    """
    return _rule_space(_ir_rule(rule).conditions, universe, mark_touched)


@lru_cache(maxsize=1 << 16)
def _rule_space(conditions: tuple[Condition, ...], universe: Universe, mark_touched: bool
                ) -> RuleSpace:
    b = _Builder(universe)
    b.mark_touched = mark_touched
    for cond in conditions:
        into = FIELDS.get(cond.field)
        if into is not None:
            into(b, cond)
        elif cond.field == "opaque":
            b.unsure(cond.value.what)
        else:
            b.unsure(_UNHELD.get(cond.field, cond.field))
    may = b.cubes()
    return RuleSpace(may, () if b.unknown else may, tuple(b.unknown))


def action_of(rule: Rule | object) -> str:
    """A rule's action as flat chains compare them: the frontend's word (``REJECT
    icmp-port-unreachable``: two REJECTs answer differently), "" for no action."""
    action = _ir_rule(rule).action
    if action.name or not action.terminal:
        return action.name
    return action.says


# --------------------------------------------------------------------------- unfolding

def unfold(ruleset: Ruleset | Frontend, table: str | Table, hook: str,
           universe: Universe | None = None, *, start: Space | None = None) -> FlatChain:
    """The hook's chain with every user chain it reaches inlined (see module docstring).

    ``table`` (a table of the ruleset, or its name among the tables of the universe's IP
    version) and ``hook`` (its base chain: ``INPUT``) say where; ``start`` restricts the
    packets that enter the hook (default: all).
    """
    u = universe or universe_for(ruleset)
    tbl = table if isinstance(table, Table) else find_table(ruleset, table, u.family)
    name = table.name if isinstance(table, Table) else table
    chain = tbl.chain(hook) if tbl is not None else None
    if tbl is None or chain is None:
        return FlatChain(name, hook, (), "ACCEPT", u)
    out: list[FlatRule] = []
    entry = start if start is not None else Space.full(u)
    _Walker(tbl, u, out).walk(chain, entry, entry, (), (), 0)
    return FlatChain(name, hook, tuple(out), _policy(chain), u)


def _policy(chain: Chain) -> str:
    return chain.base.policy.upper() if chain.base is not None else "ACCEPT"


def _carry(unknown: tuple[str, ...], more: tuple[str, ...]) -> tuple[str, ...]:
    """The unknowns of the rules after a RETURN/goto with unmodelled matches: whether they see
    a packet depends on those matches too (``may`` keeps it, ``must`` does not)."""
    return unknown + tuple(x for x in more if x not in unknown)


class _Walker:
    def __init__(self, table: Table, universe: Universe, out: list[FlatRule]) -> None:
        self.table = table
        self.chains = {c.name: c for c in table.chains}
        self.u = universe
        self.out = out
        self.mark_touched = False
        self.spaces: dict[tuple[int, bool], RuleSpace] = {}

    def _space(self, rule: Rule) -> RuleSpace:
        key = (id(rule), self.mark_touched)
        rs = self.spaces.get(key)
        if rs is None:
            rs = self.spaces[key] = _rule_space(rule.conditions, self.u, self.mark_touched)
        return rs

    def _meet(self, cond: Space, cubes: tuple[Cube, ...]) -> Space:
        if cubes == (self.u.full,):
            return cond
        return cond & Space(self.u, cubes)

    def walk(self, chain: Chain, may: Space, must: Space, path: tuple[Origin, ...],
             unknown: tuple[str, ...], depth: int) -> None:
        if depth > _MAX_DEPTH:  # the kernel refuses loops; a file may still contain one
            return
        for number, rule in enumerate(chain.rules, 1):
            origin = Origin(self.table.name, chain.name, number, rule)
            rs = self._space(rule)
            m_may = self._meet(may, rs.may)
            m_must = self._meet(must, rs.must)
            unk = unknown + rs.unknown
            action = rule.action
            kind = action.kind
            callee = self.chains.get(action.chain or "") if kind in ("jump", "goto") else None
            if callee is not None and callee.base is None:
                # A marker for the jump itself (never decides): lint and plan number by it.
                goto = kind == "goto"
                self.out.append(FlatRule(m_may, m_must, "GOTO" if goto else "JUMP",
                                         False, origin, path, unk))
                self.walk(callee, m_may, m_must, (*path, origin), unk, depth + 1)
                if goto:
                    may, must = may - m_must, must - m_may
                    unknown = _carry(unknown, rs.unknown)
                continue
            if kind == "return":
                if chain.base is not None:
                    self.out.append(FlatRule(m_may, m_must, _policy(chain), True,
                                             origin, path, unk))
                    continue
                self.out.append(FlatRule(m_may, m_must, "RETURN", False, origin, path, unk))
                may, must = may - m_must, must - m_may
                unknown = _carry(unknown, rs.unknown)
                continue
            if isinstance(action.rewrite, (ir.SetMark, ir.MarkCopy)):
                self.mark_touched = True
            self.out.append(FlatRule(m_may, m_must, action_of(rule), action.terminal, origin,
                                     path, unk))


# --------------------------------------------------------------------------- deciding

@dataclass(frozen=True)
class Piece:
    """Packets (one cube) and the flat rule that decides them (None: the policy).

    ``unsure`` lists unmodelled matches of rules passed over on the way: a packet of the piece
    might have been decided by one of them instead.
    """

    cube: Cube
    rule: FlatRule | None
    verdict: str
    unsure: tuple[str, ...] = ()


class FlatIndex:
    """The terminating rules of a flat chain, indexed by the cubes of their ``may`` space."""

    def __init__(self, flat: FlatChain) -> None:
        self.flat = flat
        self.index = sp.CubeIndex(flat.universe)
        self.owner: list[int] = []  # cube id -> position in flat.rules
        for pos, rule in enumerate(flat.rules):
            if rule.terminal:
                for cube in rule.may.cubes:
                    self.index.add(cube)
                    self.owner.append(pos)

    def first_meeting(self, cube: Cube, start: int) -> int | None:
        """Position of the first terminating rule at or after ``start`` that may match."""
        cubes = self.index.cubes
        cands = self.index.candidates(cube)
        # cube ids grow with the position of their rule: skip those before ``start`` at once
        first = bisect.bisect_left(cands, bisect.bisect_left(self.owner, start)) if start else 0
        for cid in cands[first:]:
            if sp.cube_meets(cube, cubes[cid]):
                return self.owner[cid]
        return None

    def decide(self, cubes: Iterable[Cube], start: int = 0, limit: int | None = None,
               ) -> list[Piece]:
        """Split ``cubes`` by the rule (from position ``start``) that decides each part.

        With ``limit``, stop once that many pieces are out (the caller sees a full list).
        """
        out: list[Piece] = []
        for piece in self.iter_decide(cubes, start):
            out.append(piece)
            if limit is not None and len(out) >= limit:
                break
        return out

    def iter_decide(self, cubes: Iterable[Cube], start: int = 0) -> Iterator[Piece]:
        """Lazy :meth:`decide`: a caller looking for one counter-example stops early.

        A piece passed over by rules that only *may* take it is ``unsure`` of those rules'
        unknowns, unless every one of them would give it the verdict it ends with anyway.
        """
        u = self.flat.universe
        work: list[tuple[Cube, int, tuple[str, ...], frozenset[str]]] = [
            (c, start, (), frozenset()) for c in cubes]
        while work:
            cube, pos, unsure, alts = work.pop()
            hit = self.first_meeting(cube, pos)
            if hit is None:
                policy = self.flat.policy
                yield Piece(cube, None, policy, () if alts <= {policy} else unsure)
                continue
            rule = self.flat.rules[hit]
            here = Space.of(u, cube)
            sure = () if alts <= {rule.action} else unsure
            for c in (here & rule.must).cubes:
                yield Piece(c, rule, rule.action, sure)
            for c in (here - rule.may).cubes:
                work.append((c, hit + 1, unsure, alts))
            rest = (here & rule.may) - rule.must
            if rest:
                # may − must: the rule might take these; say so and follow the "no" branch.
                why = rule.unknown or (f"rule {rule.origin.label}",)
                maybe = unsure + tuple(x for x in why if x not in unsure)
                for c in rest.cubes:
                    work.append((c, hit + 1, maybe, alts | {rule.action}))
