"""Lint a ruleset: rules that can never take effect, and structures the kernel would refuse.

Every built-in chain is unfolded (``unfold.py``) and each flat rule is checked against the
rules before it **together**: a rule is *shadowed* when the union of the packets that earlier
terminating rules certainly decide contains every packet the rule might match. Coverage is
computed on the packet-space algebra, so claims are exact for modelled matches and stay true
when a rule carries an unmodelled one (its ``may`` space is an over-approximation, blockers use
their ``must`` space). A rule that user chains inline in several places is reported only when
every copy is shadowed (or redundant).

The blocker set named for a shadowed rule is irredundant (no member can be dropped) but found
greedily, so it is not always the smallest possible one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from trustwall.firewall import ir
from trustwall.firewall.ir import FAMILY_VERSIONS, HOOKS, Frontend, Rule, Ruleset, Table
from trustwall.firewall.semantics import space as sp
from trustwall.firewall.semantics.space import Universe
from trustwall.firewall.semantics.unfold import (
    FlatChain,
    FlatIndex,
    FlatRule,
    Piece,
    action_of,
    family_of,
    rule_space,
    unfold,
    universe_for,
)

KINDS = ("shadowed", "redundant", "after_terminal", "unreachable_chain", "missing_chain",
         "empty_chain", "invalid", "bypass", "expired", "equal_priority", "dropped_later")

_REDUNDANT_BUDGET = 200  # pieces traced per rule before giving up on a "redundant" claim


@dataclass(frozen=True)
class Finding:
    """One lint finding. ``rule`` is the 1-based number as ``--line-numbers`` shows it."""

    kind: str
    table: str
    chain: str
    rule: int | None
    text: str
    blocked_by: tuple[int | str, ...] = ()
    different_verdict: bool = False
    explanation: str = ""
    depends_on: tuple[str, ...] = ()  # unmodelled matches this finding leans on
    backend: str = "iptables"  # "iptables" | "nft": whose table
    family: str = ""  # ip, ip6, inet … (the table's family)
    handle: int | None = None  # nft: the rule's handle


@dataclass(frozen=True)
class LintReport:
    findings: tuple[Finding, ...]
    rules: int
    partial: tuple[str, ...] = field(default=())  # checks that gave up (work budget)

    def to_json(self) -> dict[str, object]:
        return {"findings": list(self.findings), "rules": self.rules,
                "partial": list(self.partial)}


# --------------------------------------------------------------------------- helpers

def _text(rule: Rule) -> str:
    return rule.source.line or rule.source.text


def _target(rule: Rule) -> str:
    """The action in the frontend's word, without its options (``REJECT``, ``DNAT``)."""
    return action_of(rule).split(" ", 1)[0]


def _label(blocker: FlatRule, chain: str) -> int | str:
    """A blocker as a rule number of ``chain`` when it lives there (itself or via a jump)."""
    if blocker.origin.chain == chain:
        return blocker.origin.number
    for o in blocker.path:
        if o.chain == chain:
            return o.number
    return blocker.origin.label


def _numbers(labels: Iterable[int | str]) -> str:
    out: list[str] = []
    for x in labels:
        if str(x) not in out:
            out.append(str(x))
    return ", ".join(out)


# --------------------------------------------------------------------------- structure

def _structure(ruleset: Ruleset | Frontend, now: dt.datetime) -> list[Finding]:
    """What the frontend itself refuses or never runs (iptables: ``iptables.checks``)."""
    if isinstance(ruleset, ir.Ruleset):
        return []
    from trustwall.firewall.iptables import checks  # the frontend's own structure rules

    return [Finding(p.kind, p.table, p.chain, p.rule, p.text, explanation=p.explanation)
            for p in checks.structure(ruleset, now)]  # type: ignore[arg-type]


def _placement(flat: FlatChain, backend: str) -> list[Finding]:
    """Rules the kernel refuses in this hook (also when reached via user chains)."""
    if backend != "iptables":
        return []
    from trustwall.firewall.iptables import checks

    out: list[Finding] = []
    seen: set[tuple[str, int]] = set()
    for r in flat.rules:
        o = r.origin
        if (o.chain, o.number) in seen or o.rule.source.origin is None:
            continue
        why = checks.placement(flat.table, flat.hook, o.rule.source.origin)
        if why:
            seen.add((o.chain, o.number))
            via = f" (reached from {flat.hook})" if o.chain != flat.hook else ""
            out.append(Finding("invalid", flat.table, o.chain, o.number, _text(o.rule),
                               explanation=why + via + "; the kernel refuses this rule"))
    return out


# --------------------------------------------------------------------------- coverage

@dataclass
class _Verdicts:
    """Per original rule: the result of every inlined copy."""

    copies: int = 0
    shadowed: list[tuple[list[FlatRule], bool]] = field(default_factory=list)
    redundant: list[list[FlatRule | None]] = field(default_factory=list)


def _unconditional(rule: Rule, flat: FlatChain) -> bool:
    rs = rule_space(rule, flat.universe)
    return (not rs.unknown and rs.must == (flat.universe.full,)
            and (rule.action.terminal or rule.action.kind == "return"))


#: A query with more candidates than this is "broad": its gap is worth remembering.
_BROAD = 64


class _Witnesses:
    """Packets recently shown to be decided by no earlier rule, each with how many of the
    (only growing) decider cubes it has been checked against.

    A broad rule (an unconditional jump, a catch-all) meets every earlier rule, so proving it
    is not covered costs a pass over all of them; re-checking a remembered gap only against the
    cubes added since keeps a chain of such rules linear instead of quadratic.
    """

    SIZE = 16

    def __init__(self) -> None:
        self.points: list[list] = []  # [point, checked_upto]

    def remember(self, point: sp.Point, upto: int) -> None:
        self.points.insert(0, [point, upto])
        del self.points[self.SIZE:]

    def uncovered(self, query: sp.Cube, cubes: list[sp.Cube]) -> bool:
        for entry in list(self.points):
            point, upto = entry
            if not sp.cube_contains(query, point):
                continue
            if any(sp.cube_contains(c, point) for c in cubes[upto:]):
                self.points.remove(entry)  # covered by now: forget it
                continue
            entry[1] = len(cubes)
            return True
        return False


def _shadow_pass(flat: FlatChain, tkey: int, results: dict, partial: list[str]) -> set[int]:
    """Check every flat rule against the union of earlier deciders; return shadowed positions."""
    index = sp.CubeIndex(flat.universe)
    owner: list[int] = []
    shadowed: set[int] = set()
    witnesses = _Witnesses()
    returns: list[FlatRule] = []
    for pos, r in enumerate(flat.rules):
        res = results[(tkey, r.origin.chain, r.origin.number)]
        res.copies += 1
        if r.action == "RETURN":
            returns.append(r)
        blockers: set[int] = set()
        covered = True
        for q in r.may.cubes:
            if witnesses.uncovered(q, index.cubes):
                covered = False
                break
            cands = index.candidates(q)
            got = sp.cover(q, index.cubes, cands)
            if not got.covered:
                if got.gave_up:
                    partial.append(f"{flat.table} {r.origin.label}: coverage not decided")
                elif got.witness is not None and len(cands) > _BROAD:
                    witnesses.remember(sp.cube_point(got.witness), len(index.cubes))
                covered = False
                break
            blockers.update(owner[i] for i in sp.minimal_blockers(q, index.cubes, got.used))
        if covered:
            shadowed.add(pos)
            blocking = [flat.rules[i] for i in sorted(blockers)]
            if not blocking and not r.may:
                blocking = _returns_before(r, returns, flat)
            diff = r.terminal and any(b.action != r.action for b in blocking)
            res.shadowed.append((blocking, diff))
        if r.terminal:
            for c in r.must.cubes:
                index.add(c)
                owner.append(pos)
    return shadowed


def _returns_before(r: FlatRule, returns: list[FlatRule], flat: FlatChain) -> list[FlatRule]:
    """The RETURNs of the same chain call that take some of the packets ``r`` matches (its
    path conditions and RETURNs left it none)."""
    own = sp.Space(flat.universe, rule_space(r.origin.rule, flat.universe).may)
    if not own:
        return []  # its own matches exclude every packet: nothing took them
    return [ret for ret in returns if ret.origin.chain == r.origin.chain
            and ret.path == r.path and ret.may & own]


def _redundant_pass(flat: FlatChain, tkey: int, results: dict, shadowed: set[int]) -> None:
    fidx = FlatIndex(flat)
    position = {id(f): i for i, f in enumerate(flat.rules)}
    for pos, r in enumerate(flat.rules):
        if not r.terminal or r.unknown or pos in shadowed:
            continue
        takers: list[FlatRule | None] = []
        for n, p in enumerate(fidx.iter_decide(r.may.cubes, pos + 1)):
            if (p.verdict != r.action or p.unsure or n >= _REDUNDANT_BUDGET
                    or (p.rule is not None and position[id(p.rule)] in shadowed)):
                break  # a counter-example (or too much work: no claim)
            if p.rule not in takers:
                takers.append(p.rule)
        else:
            results[(tkey, r.origin.chain, r.origin.number)].redundant.append(takers)


def _report_coverage(tables: list[Table], results: dict,
                     after: set[tuple[int, str, int]]) -> list[Finding]:
    """Findings per rule, keyed by (table position, chain, number): results of every copy
    of the rule that user chains inline."""
    out: list[Finding] = []
    for (tkey, chain, number), res in results.items():
        if (tkey, chain, number) in after or res.copies == 0:
            continue
        table = tables[tkey].name
        rule = tables[tkey].chain(chain).rules[number - 1]  # type: ignore[union-attr]
        if len(res.shadowed) == res.copies:
            blocking, diff = res.shadowed[0]
            labels = tuple(dict.fromkeys(_label(b, chain) for b in blocking))
            if not blocking:
                why = ("no packet can reach it: the conditions of the jumps or RETURNs before "
                       "it (or its own matches) exclude every packet")
            elif all(b.action == "RETURN" for b in blocking):
                diff = False
                rules = "rule" if len(labels) == 1 else "rules"
                why = (f"no packet can reach it: the RETURN in {rules} {_numbers(labels)} "
                       "sends every packet it matches back to the calling chain first")
            else:
                why = (f"never matches: {'rule' if len(labels) == 1 else 'rules'} "
                       f"{_numbers(labels)} {'decides' if len(labels) == 1 else 'together decide'}"
                       " every packet it matches first")
                if diff:
                    verdicts = sorted({b.verdict for b in blocking if b.action != action_of(rule)})
                    why += (f", with a different verdict ({', '.join(verdicts)}): this "
                            f"{_target(rule)} never takes effect; to make it work, insert it "
                            f"above rule {min(x for x in labels if isinstance(x, int))}"
                            if any(isinstance(x, int) for x in labels) else "")
            out.append(Finding("shadowed", table, chain, number, _text(rule), labels, diff,
                               why, **_where(tables[tkey])))
        elif res.redundant and len(res.redundant) == res.copies:
            takers = [x for x in res.redundant[0] if x is not None]
            labels = tuple(dict.fromkeys(_label(b, chain) for b in takers))
            policy = any(x is None for x in res.redundant[0])
            parts = ([f"rule{'s' if len(labels) > 1 else ''} {_numbers(labels)}"] if labels
                     else []) + (["the chain policy"] if policy or not labels else [])
            plural = len(labels) + policy > 1
            why = (f"removing it changes nothing: {' and '.join(parts)} "
                   f"{'decide' if plural else 'decides'} all its packets the same way "
                   f"({_target(rule)})")
            out.append(Finding("redundant", table, chain, number, _text(rule), labels, False,
                               why, **_where(tables[tkey])))
    return out


def _after_terminal(tables: list[Table], universe: sp.Universe,
                    ) -> tuple[list[Finding], set[tuple[int, str, int]]]:
    out: list[Finding] = []
    keys: set[tuple[int, str, int]] = set()
    probe = FlatChain("", "", (), "ACCEPT", universe)
    for tkey, table in enumerate(tables):
        for chain in table.chains:
            for number, rule in enumerate(chain.rules, 1):
                if _unconditional(rule, probe) and number < len(chain.rules):
                    for later in range(number + 1, len(chain.rules) + 1):
                        keys.add((tkey, chain.name, later))
                        after = chain.rules[later - 1]
                        out.append(Finding(
                            "after_terminal", table.name, chain.name, later,
                            _text(after), (number,), _target(after) != _target(rule),
                            f"rule {number} ({_target(rule)} with no conditions) decides "
                            "every packet before it; it can never match",
                            **_where(table)))
                    break
    return out, keys


def _bypass(flats: dict[tuple[int, str], FlatChain], tables: list[Table]) -> list[Finding]:
    """iptables: DNAT in nat PREROUTING of packets that filter INPUT would refuse."""
    found = {(tables[tkey].name, chain): flat for (tkey, chain), flat in flats.items()
             if tables[tkey].backend == "iptables"}
    nat = found.get(("nat", "PREROUTING"))
    filt_in = found.get(("filter", "INPUT"))
    if nat is None or filt_in is None:
        return []
    fidx = FlatIndex(filt_in)
    out: list[Finding] = []
    for r in nat.rules:
        rewrite = r.origin.rule.action.rewrite
        if not isinstance(rewrite, ir.Nat) or rewrite.kind != "dnat" or r.may.is_empty():
            continue
        denied = [p for p in fidx.decide(r.may.cubes) if p.verdict.split()[0] in (
            "DROP", "REJECT")]
        if not denied:
            continue
        by = sorted({p.rule.origin.number for p in denied if p.rule is not None
                     and p.rule.origin.chain == "INPUT"})
        where = f"filter INPUT rule(s) {_numbers(by)}" if by else "the INPUT policy"
        to = (rewrite.address or "?") + (f":{rewrite.port}" if rewrite.port is not None else "")
        sample = sp.describe(denied[0].cube, nat.universe)
        out.append(Finding(
            "bypass", "nat", r.origin.chain, r.origin.number, _text(r.origin.rule), tuple(by),
            True, f"{sample}: DNATed to {to} before "
            f"routing, so it goes through FORWARD, not INPUT: {where} would "
            f"{denied[0].verdict.split()[0]} it but never sees it; filter it in FORWARD "
            "(Docker: the DOCKER-USER chain) instead", depends_on=r.unknown))
    return out


# --------------------------------------------------------------------------- entry point

def lint(ruleset: Ruleset | Frontend, *, now: dt.datetime | None = None,
         version: int | None = None) -> LintReport:
    """All findings for ``ruleset`` (see :data:`KINDS`), in table/chain/rule order: the
    coverage analysis reads the IR; structure and placement rules come from the frontend.
    ``version``: the IP version whose tables are linted (default: the ruleset's first;
    :func:`lint_all` lints every version of an IR ruleset and the tables between them)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    irs = ir.as_ir(ruleset)
    family = version or family_of(ruleset)
    universe = Universe.for_names(family, universe_for(ruleset).ifaces) \
        if version is not None else universe_for(ruleset)
    tables = [t for t in irs.tables if family in FAMILY_VERSIONS.get(t.family, ())]
    findings = _structure(ruleset, now)
    flats: dict[tuple[int, str], FlatChain] = {}  # by (table position, base chain)
    for hook in HOOKS:
        for tkey, table in enumerate(tables):
            for chain in table.chains:
                if chain.base is not None and chain.base.hook == hook:
                    flats[(tkey, chain.name)] = unfold(irs, table, chain.name, universe)
    after, after_keys = _after_terminal(tables, universe)
    findings += after
    results: dict = defaultdict(_Verdicts)
    partial: list[str] = []
    for (tkey, _), flat in sorted(flats.items(), key=lambda kv: kv[0][0]):
        findings += _placement(flat, tables[tkey].backend)
        shadowed = _shadow_pass(flat, tkey, results, partial)
        _redundant_pass(flat, tkey, results, shadowed)
    findings += _report_coverage(tables, results, after_keys)
    findings += _bypass(flats, tables)
    order = {t.name: i for i, t in enumerate(tables)}
    chain_order = {(t.name, c.name): i for t in tables for i, c in enumerate(t.chains)}
    findings.sort(key=lambda f: (order.get(f.table, 99), chain_order.get((f.table, f.chain), 0),
                                 f.rule or 0, KINDS.index(f.kind)))
    rules = sum(len(c.rules) for t in tables for c in t.chains)
    return LintReport(tuple(_sourced(findings, tables)), rules, tuple(partial))


def _where(table: Table) -> dict[str, str]:
    return {"backend": table.backend, "family": table.family}


def _sourced(findings: list[Finding], tables: list[Table]) -> list[Finding]:
    """Each finding with its table's backend and family, and an nft rule's handle (findings
    made without a family come from the iptables frontend)."""
    out = []
    for f in findings:
        table = next((t for t in tables if (t.name, t.family, t.backend) == (
            f.table, f.family, f.backend)), None) if f.family else next(
            (t for t in tables if t.name == f.table and t.backend == "iptables"), None)
        if table is None:
            out.append(f)
            continue
        handle = f.handle
        chain = table.chain(f.chain)
        if handle is None and chain is not None and f.rule is not None \
                and 1 <= f.rule <= len(chain.rules):
            handle = chain.rules[f.rule - 1].source.handle
        f = replace(f, backend=table.backend, family=table.family, handle=handle)
        if table.backend == "nft" and chain is not None:
            f = _nft_numbers(f, chain)
        out.append(f)
    return out


def _nft_numbers(f: Finding, chain: ir.Chain) -> Finding:
    """An nft finding numbered as nft counts rules (a verdict map is one nft rule but one IR
    rule per element): the rule, the blockers and the numbers in the explanation."""
    position = {n: r.source.position for n, r in enumerate(chain.rules, 1)
                if r.source.position is not None}
    if all(k == v for k, v in position.items()):
        return f

    def number(m: re.Match[str]) -> str:
        nums = [str(position.get(int(x), x)) for x in m.group(2).split(", ")]
        return m.group(1) + ", ".join(dict.fromkeys(nums))

    return replace(
        f, rule=position.get(f.rule, f.rule) if f.rule is not None else None,
        blocked_by=tuple(dict.fromkeys(position.get(b, b) if isinstance(b, int) else b
                                       for b in f.blocked_by)),
        explanation=re.sub(r"(rules? |above rule )(\d+(?:, \d+)*)", number, f.explanation))


# --------------------------------------------------------------------------- whole picture

#: Per-version kinds that must hold for every IP version an inet table sees.
_EVERY_VERSION = frozenset({"shadowed", "redundant"})
_LATER_PIECES = 400  # pieces traced per accepting rule through the later base chains


def lint_all(ruleset: Ruleset, *, now: dt.datetime | None = None,
             backends: tuple[str, ...] = ("iptables", "nft")) -> LintReport:
    """Lint everything the kernel evaluates (``nftables.live.whole_picture``): every IP
    version, native nft tables beside iptables ones, and two findings between tables —
    base chains of one hook at the same priority (``equal_priority``: their order is
    undefined) and an accept that a later base chain of the hook drops (``dropped_later``:
    it does not let the packet in). ``backends``: whose tables' own findings are reported
    (the cross-table ones always are)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    versions = ruleset.versions() or (4,)
    per: dict[int, LintReport] = {v: lint(ruleset, now=now, version=v) for v in versions}
    seen: dict[tuple, list[int]] = {}
    first: dict[tuple, Finding] = {}
    for v, report in per.items():
        for f in report.findings:
            key = (f.backend, f.family, f.table, f.chain, f.rule, f.kind)
            seen.setdefault(key, []).append(v)
            first.setdefault(key, f)
    findings: list[Finding] = []
    for key, found in seen.items():
        f = first[key]
        if f.backend not in backends:
            continue
        if f.kind in _EVERY_VERSION and f.family == "inet" and f.rule is not None:
            missing = [v for v in versions if v not in found]
            if any(_may_match(ruleset, f, v) for v in missing):
                continue  # shadowed for one IP version only: the rule still works for the other
        findings.append(f)
    findings += [f for f in _nft_structure(ruleset) if f.backend in backends]
    findings += _equal_priorities(ruleset)
    partial: list[str] = []
    for v in versions:
        findings += _dropped_later(ruleset, v, partial)
    findings = list({(f.backend, f.family, f.table, f.chain, f.rule, f.kind, f.text): f
                     for f in findings}.values())
    order = {(t.backend, t.family, t.name): i for i, t in enumerate(ruleset.tables)}
    findings.sort(key=lambda f: (order.get((f.backend, f.family, f.table), 99), f.chain,
                                 f.rule or 0, KINDS.index(f.kind)))
    rules = sum(len(c.rules) for t in ruleset.tables if t.backend in backends
                for c in t.chains)
    return LintReport(tuple(findings), rules,
                      tuple(dict.fromkeys(p for r in per.values() for p in r.partial))
                      + tuple(partial))


def _may_match(ruleset: Ruleset, f: Finding, version: int) -> bool:
    table = next((t for t in ruleset.tables if (t.backend, t.family, t.name)
                  == (f.backend, f.family, f.table)), None)
    chain = table.chain(f.chain) if table is not None else None
    if chain is None or f.rule is None or not 1 <= f.rule <= len(chain.rules):
        return True
    u = Universe.for_names(version, universe_for(ruleset).ifaces)
    return bool(rule_space(chain.rules[f.rule - 1], u).may)


def _nft_structure(ruleset: Ruleset) -> list[Finding]:
    """nft user chains: jumps to a chain the table lacks, chains no base chain reaches,
    empty chains that a jump reaches (a jump there does nothing)."""
    out: list[Finding] = []
    for table in ruleset.tables:
        if table.backend != "nft":
            continue
        where = _where(table)
        names = {c.name for c in table.chains}
        calls: dict[str, set[str]] = defaultdict(set)
        for chain in table.chains:
            for number, rule in enumerate(chain.rules, 1):
                if rule.action.kind not in ("jump", "goto") or not rule.action.chain:
                    continue
                target = rule.action.chain
                if target in names:
                    calls[chain.name].add(target)
                    continue
                out.append(Finding("missing_chain", table.name, chain.name, number,
                                   _text(rule), explanation=f"{rule.action.kind}s to {target},"
                                   f" which table {table.family} {table.name} does not have",
                                   handle=rule.source.handle, **where))
        reached: set[str] = set()
        todo = [c.name for c in table.chains if c.base is not None]
        while todo:
            name = todo.pop()
            if name in reached:
                continue
            reached.add(name)
            todo.extend(calls.get(name, ()))
        for chain in table.chains:
            if chain.base is not None:
                continue
            if chain.name not in reached:
                out.append(Finding("unreachable_chain", table.name, chain.name, None,
                                   f"chain {chain.name}", explanation="no base chain jumps "
                                   "or goes to it (directly or through other chains), so none "
                                   "of its rules ever sees a packet", **where))
            elif not chain.rules:
                out.append(Finding("empty_chain", table.name, chain.name, None,
                                   f"chain {chain.name}", explanation="user chain has no rules;"
                                   " a jump to it does nothing", **where))
    return out


def _base_label(table: Table, chain: ir.Chain) -> str:
    return f"{table.backend} {table.family} {table.name} {chain.name}"


def _equal_priorities(ruleset: Ruleset) -> list[Finding]:
    """Base chains of one hook (and IP version) at the same priority, one finding per chain
    pair: the kernel's order between them is undefined."""
    out: list[Finding] = []
    done: set[tuple] = set()
    for version in ruleset.versions():
        for hook in HOOKS:
            chains = ruleset.base_chains(version, hook)
            for i, (t, c) in enumerate(chains):
                for t2, c2 in chains[i + 1:]:
                    if c.base.priority != c2.base.priority:  # type: ignore[union-attr]
                        continue
                    key = (id(c), id(c2))
                    if key in done:
                        continue
                    done.add(key)
                    out.append(Finding(
                        "equal_priority", t.name, c.name, None, _base_label(t, c),
                        (_base_label(t2, c2),), False,
                        f"hook {hook} priority {c.base.priority}: "  # type: ignore[union-attr]
                        f"{_base_label(t2, c2)} runs at the same priority, in an order the "
                        "kernel does not define; give one of them another priority",
                        **_where(t)))
    return out


def _dropped_later(ruleset: Ruleset, version: int, partial: list[str]) -> list[Finding]:
    """Accept rules of a filter base chain all of whose NEW packets (all its packets when it
    takes no NEW ones) later or equal-priority base chains of the same hook certainly drop or
    reject: the accept lets no connection in. (An accept only some of whose packets are
    dropped later, as a broad accept beside another table's port block, is the normal
    layering of tables: no finding.)"""
    out: list[Finding] = []
    u = Universe.for_names(version, universe_for(ruleset).ifaces)
    for hook in HOOKS:
        chains = ruleset.base_chains(version, hook)
        if len(chains) < 2:
            continue
        flats = [(t, c, unfold(ruleset, t, c.name, u)) for t, c in chains]
        indexes = [FlatIndex(f) for _, _, f in flats]
        for i, (t, c, flat) in enumerate(flats):
            if c.base is None or c.base.type != "filter":
                continue
            later = [(flats[j], indexes[j]) for j, (_, c2, _f) in enumerate(flats)
                     if j != i and c2.base is not None and c2.base.priority >= c.base.priority]
            if not later:
                continue
            for r in flat.rules:
                if r.verdict.upper() != "ACCEPT" or not r.must:
                    continue
                mine = [p.cube for p in indexes[i].decide(r.must.cubes, limit=_LATER_PIECES)
                        if p.rule is r and not p.unsure]
                # Letting a packet in means letting its connection start: judge the NEW
                # packets when the accept takes some (ESTABLISHED ones are usually accepted
                # by every table), else all it takes.
                new = [c for c in (sp.cube_and(c, _new_only(u)) for c in mine) if c is not None]
                mine = new or mine
                if not mine:
                    continue
                dropped = _all_dropped(mine, later)
                if dropped is None:
                    continue
                by = []
                for (t2, c2, _f2), piece in dropped:
                    o = piece.rule.origin if piece.rule is not None else None
                    handle = o.rule.source.handle if o is not None else None
                    by.append(f"{_base_label(t2, c2)} " + (
                        f"rule {o.rule.source.position or o.number}"
                        + (f" (handle {handle})" if handle else "")
                        + f": {_text(o.rule)}" if o is not None
                        else f"policy {piece.verdict}"))
                names = list(dict.fromkeys(by))
                first = dropped[0][1]
                out.append(Finding(
                    "dropped_later", t.name, r.origin.chain,
                    r.origin.rule.source.position or r.origin.number,
                    _text(r.origin.rule), tuple(names), True,
                    f"does not let the packet in (IPv{version}, hook {hook}): every packet it "
                    f"accepts ({sp.describe(first.cube, u)}"
                    f"{' …' if len(dropped) > 1 else ''}) is then dropped by "
                    f"{'; '.join(names[:3])}{' …' if len(names) > 3 else ''}; accept it there "
                    "too (or instead)", handle=r.origin.rule.source.handle, **_where(t)))
    return out


def _new_only(u: Universe) -> sp.Cube:
    cube = list(u.full)
    cube[sp.STATE] = 1 << sp.STATES.index("NEW")
    return tuple(cube)


def _all_dropped(cubes: list[sp.Cube], later: list[tuple[tuple, FlatIndex]]
                 ) -> list[tuple[tuple, Piece]] | None:
    """Walk ``cubes`` through the later base chains in order: the pieces each drops or
    rejects, or None when some packet gets through (or is not certainly dropped)."""
    dropped: list[tuple[tuple, Piece]] = []
    work = cubes
    for flat, index in later:
        passed: list[sp.Cube] = []
        for piece in index.decide(work, limit=_LATER_PIECES):
            if piece.unsure:
                return None
            if piece.verdict.split(" ", 1)[0].upper() in ("DROP", "REJECT"):
                dropped.append((flat, piece))
            else:
                passed.append(piece.cube)
        if len(passed) >= _LATER_PIECES:
            return None
        work = passed
        if not work:
            return dropped
    return None
