"""Rules as packet spaces, and chains unfolded into one flat list per hook.

:func:`rule_space` turns one rule's matches into two spaces: ``may`` (every packet the rule
might match: matches we do not model are treated as "always true", an over-approximation) and
``must`` (packets it certainly matches: empty as soon as an unmodelled match is present, an
under-approximation). Analyses use ``must`` for anything that *decides* (blockers, coverage) and
``may`` for anything that *might* be affected, so their claims stay true; a finding that leans on
an unmodelled match names it.

:func:`unfold` inlines user chains into the hook that reaches them (``-j`` and ``-g``), turning
``RETURN`` into a negated condition on the rest of the called chain, so that the result is an
ordered list of :class:`FlatRule` with the plain semantics "the first terminating rule that
matches decides, else the policy". Each flat rule links back to the original rule (``origin``)
and to the jumps that led to it (``path``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache

from trustwall.firewall.iptables import extensions as ext
from trustwall.firewall.iptables.model import (
    Chain,
    Match,
    PortSet,
    Rule,
    Ruleset,
    Table,
)
from trustwall.firewall.protocols import TCP_FLAGS, protocol_number
from trustwall.firewall.semantics import space as sp
from trustwall.firewall.semantics.space import Cube, Space, Universe

_MAX_DEPTH = 64


@dataclass(frozen=True)
class Origin:
    """Where a flat rule comes from: table, chain and 1-based rule number."""

    table: str
    chain: str
    number: int
    rule: Rule = field(compare=False, repr=False)

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

def interface_names(rulesets: Iterable[Ruleset]) -> set[str]:
    names: set[str] = set()
    for rs in rulesets:
        for table in rs.tables:
            for chain in table.chains:
                for rule in chain.rules:
                    for iface in (rule.in_interface, rule.out_interface):
                        if iface is not None:
                            names.add(iface.name)
    return names


def universe_for(*rulesets: Ruleset, extra_ifaces: Iterable[str] = ()) -> Universe:
    """The universe covering every interface name the rulesets (and ``extra_ifaces``) use."""
    family = rulesets[0].family if rulesets else 4
    return Universe.for_names(family, interface_names(rulesets) | set(extra_ifaces))


# --------------------------------------------------------------------------- rules

def _net_interval(network) -> sp.Intervals:  # type: ignore[no-untyped-def]
    # not network.num_addresses: that builds the broadcast address object, 5x slower
    lo = int(network.network_address)
    return ((lo, lo + (1 << (network.max_prefixlen - network.prefixlen))),)


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


def proto_number(name: str) -> int | None:
    """Protocol number for a save spelling; None for ``all``/``0`` (any protocol)."""
    return protocol_number(name) or None


class _Builder:
    """Accumulates one rule's constraints; ``unknown`` collects what it could not model."""

    def __init__(self, universe: Universe) -> None:
        self.u = universe
        self.dims = list(universe.full)
        self.either_ports: sp.Intervals | None = None
        self.unknown: list[str] = []
        self.nothing = False

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


def _match_into(b: _Builder, m: Match, mark_touched: bool) -> None:
    """Meet the builder with a match's IR conditions; what spaces cannot hold is unknown."""
    for cond in ext.conditions(m):
        field, value = cond.field, cond.value
        if field in ("sport", "dport"):
            b.meet(sp.SPORT if field == "sport" else sp.DPORT, _ports(value))
        elif field == "either_port":
            if value.negated:  # neither port listed: both dimensions outside the list
                b.meet(sp.SPORT, _ports(value))
                b.meet(sp.DPORT, _ports(value))
            else:
                b.either_ports = _ports(value)
        elif field == "tcp_flags":
            b.meet(sp.FLAGS, _flags_bits(value.mask, value.comp, value.negated))
        elif field == "ct_state":
            bits = sum(1 << sp.STATES.index(s) for s in value.states)
            b.negatable(sp.STATE, bits, value.negated)
        elif field == "icmp":
            if value.type is None:
                if value.negated:
                    b.nothing = True
                continue
            b.negatable(sp.ICMP, ((value.type * 256 + value.code_min,
                                   value.type * 256 + value.code_max + 1),), value.negated)
        elif field in ("src_range", "dst_range"):
            b.negatable(sp.SRC if field == "src_range" else sp.DST,
                        ((int(value.first), int(value.last) + 1),), value.negated)
        elif field == "mark":
            if mark_touched:
                b.unknown.append("-m mark (mark set earlier in this hook)")
            elif value.mask != 0xFFFFFFFF:
                b.unknown.append(f"-m mark --mark {value.value:#x}/{value.mask:#x}")
            else:
                b.negatable(sp.MARK, ((value.value, value.value + 1),), value.negated)
        else:  # opaque, or a field packet spaces do not hold
            what = value.what if field == "opaque" else f"-m {m.module}"
            if what not in b.unknown:
                b.unknown.append(what)


def rule_space(rule: Rule, universe: Universe, *, mark_touched: bool = False) -> RuleSpace:
    """The packets ``rule``'s matches select: ``may`` ⊇ exact ⊇ ``must``.

    Cached by value: the same rule seen from several hooks, or in both sides of a diff, is
    translated once.
    """
    return _rule_space(rule, universe, mark_touched)


@lru_cache(maxsize=1 << 16)
def _rule_space(rule: Rule, universe: Universe, mark_touched: bool) -> RuleSpace:
    b = _Builder(universe)
    if rule.protocol is not None:
        try:
            num = proto_number(rule.protocol.name)
        except ValueError:
            b.unknown.append(f"-p {rule.protocol.name}")
        else:
            if num is None:
                b.nothing |= rule.protocol.negated
            else:
                b.negatable(sp.PROTO, 1 << num, rule.protocol.negated)
    for d, addr in ((sp.SRC, rule.source), (sp.DST, rule.destination)):
        if addr is not None:
            if addr.network.version != universe.family:
                b.nothing = True
                continue
            if addr.mask is not None:
                # a non-contiguous mask: exact would be up to 2^(hole bits) intervals, so the
                # space keeps the CIDR superset (nothing when negated) and marks the rule
                # "may match" only, as for any option it does not model
                b.unknown.append(f"{'! ' if addr.negated else ''}-{'s' if d == sp.SRC else 'd'}"
                                 f" {addr.text}")
                if not addr.negated and addr.network.prefixlen:
                    b.negatable(d, _net_interval(addr.network), False)
                continue
            if addr.network.prefixlen == 0:
                b.nothing |= addr.negated
                continue
            b.negatable(d, _net_interval(addr.network), addr.negated)
    for d, iface in ((sp.IIF, rule.in_interface), (sp.OIF, rule.out_interface)):
        if iface is not None:
            b.negatable(d, universe.iface_bits(iface.name), iface.negated)
    if rule.fragment is not None:
        b.unknown.append("-f" if rule.fragment else "! -f")
    for m in rule.matches:
        _match_into(b, m, mark_touched)
    may = b.cubes()
    return RuleSpace(may, () if b.unknown else may, tuple(b.unknown))


def action_of(rule: Rule) -> str:
    t = rule.target
    if t is None:
        return ""
    if t.name == "REJECT":
        opt = t.option("reject-with")
        return f"REJECT {opt.value if opt and opt.value else 'icmp-port-unreachable'}"
    return t.name


# --------------------------------------------------------------------------- unfolding

def unfold(ruleset: Ruleset, table: str, hook: str, universe: Universe | None = None,
           *, start: Space | None = None) -> FlatChain:
    """The hook's chain with every user chain it reaches inlined (see module docstring).

    ``start`` restricts the packets that enter the hook (default: all).
    """
    u = universe or universe_for(ruleset)
    tbl = ruleset.table(table)
    chain = tbl.chain(hook) if tbl is not None else None
    if tbl is None or chain is None:
        return FlatChain(table, hook, (), "ACCEPT", u)
    out: list[FlatRule] = []
    entry = start if start is not None else Space.full(u)
    _Walker(tbl, u, out).walk(chain, entry, entry, (), (), 0)
    return FlatChain(table, hook, tuple(out), chain.policy or "ACCEPT", u)


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
            rs = self.spaces[key] = rule_space(rule, self.u, mark_touched=self.mark_touched)
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
            target = rule.target
            name = target.name if target is not None else ""
            callee = self.chains.get(name) if target is not None else None
            if callee is not None and not callee.builtin:
                # A marker for the jump itself (never decides): lint and plan number by it.
                self.out.append(FlatRule(m_may, m_must, "GOTO" if target.goto else "JUMP",
                                         False, origin, path, unk))
                self.walk(callee, m_may, m_must, (*path, origin), unk, depth + 1)
                if target.goto:
                    may, must = may - m_must, must - m_may
                    unknown = _carry(unknown, rs.unknown)
                continue
            if name == "RETURN":
                if chain.builtin:
                    self.out.append(FlatRule(m_may, m_must, chain.policy or "ACCEPT", True,
                                             origin, path, unk))
                    continue
                self.out.append(FlatRule(m_may, m_must, "RETURN", False, origin, path, unk))
                may, must = may - m_must, must - m_may
                unknown = _carry(unknown, rs.unknown)
                continue
            if name in ext.MARK_SETTERS:
                self.mark_touched = True
            self.out.append(FlatRule(m_may, m_must, action_of(rule),
                                     name in ext.TERMINATING_TARGETS, origin, path, unk))


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
