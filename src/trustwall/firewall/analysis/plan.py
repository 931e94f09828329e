"""Plan a rule change so that it takes effect, and say exactly which packets it changes.

*Where to insert.* A new rule decides the packets it describes only if no earlier rule decides
some of them *differently*. Walking the (unfolded) chain from the top, earlier rules with the
same verdict are harmless (their packets end the same way), so the rule goes directly before the
first terminating rule that might decide one of its still-undecided packets with another
verdict: the latest position that works, which keeps rules such as ``ESTABLISHED,RELATED``
first (the seed's ``-I INPUT 10``, before the catch-all REJECT). Tables that run before it at
the same hook (raw, mangle, nat DNAT) can make every position useless; the plan then says
which rule is in the way and proposes the smallest change there.

*Semantic effect.* The packets whose verdict changes, split by the rule that decided them
before, each described like a rule: ``tcp dport 18745 state NEW from any: REJECT → ACCEPT``.
Packets that pass rules trustwall cannot decide (a RETURN on ``-m addrtype``, as ufw's
``ufw-not-local``) are followed down both branches; only when the branches end differently is
the change marked "unless … decides first".

*INVALID packets.* An ACCEPT without a state match placed above a rule that drops INVALID
state on purpose (``-m conntrack --ctstate INVALID -j DROP``, ufw's ``ufw-before-input``)
would accept those packets. What a sysadmin expects from "allow tcp/18745" is new and related
connections, not those: the plan adds ``-m conntrack ! --ctstate INVALID`` in that case and
says so (``open_invalid=True``, or an explicit ``--state`` that names INVALID, keeps them
opened). A catch-all DROP/REJECT is not such a guard, so the seed's plan stays as it was.

*Diff.* Only packets matched by a rule that differs between the two rulesets (aligned with a
longest-common-subsequence match, so moved rules count as changed) can change verdict; those
are traced through both flat chains and compared.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from trustwall.errors import BadInput
from trustwall.firewall import ir

# iptables syntax of a plan (the rule built, the commands, the edits a delete plans on) lives
# with the frontend; build_rule, find_rule and without_rule stay importable from here.
from trustwall.firewall.iptables.commands import (
    build_rule,
    delete_command,
    find_rule,
    insert_command,
    keep_invalid_out,
    without_rule,
)
from trustwall.firewall.ir import FILTER_PRIORITY, HOOKS, Frontend, Rule, Ruleset, Table
from trustwall.firewall.semantics import space as sp
from trustwall.firewall.semantics.space import Space, Universe
from trustwall.firewall.semantics.unfold import (
    FlatChain,
    FlatIndex,
    FlatRule,
    Piece,
    action_of,
    family_of,
    find_table,
    rule_space,
    unfold,
    universe_for,
)

__all__ = ["Change", "Diff", "HookDiff", "Plan", "build_rule", "diff", "find_rule",
           "plan_delete", "plan_insert", "plan_universe", "without_rule"]

MAX_LINES = 20  # effect lines shown; the rest are counted

def _earlier_base_chains(ruleset: ir.Ruleset, family: int, hook: str
                         ) -> list[tuple[Table, ir.Chain]]:
    """The base chains a packet meets before the filter priority at a filter hook, by their
    priorities: all of prerouting for a packet that arrives, then the earlier ones of the hook
    itself."""
    arrived = [] if hook == "output" else ruleset.base_chains(family, "prerouting")
    return arrived + [(t, c) for t, c in ruleset.base_chains(family, hook)
                      if c.base is not None and c.base.priority < FILTER_PRIORITY]


@dataclass(frozen=True)
class Change:
    """Packets whose verdict changes. ``unsure`` names unmodelled matches that may interfere."""

    packets: str
    before: str
    after: str
    unsure: tuple[str, ...] = ()
    _cube: sp.Cube | None = field(default=None, compare=False, repr=False)  # for callers/tests

    def __str__(self) -> str:
        note = f"  (unless {', '.join(self.unsure)} decides first)" if self.unsure else ""
        return f"{self.packets}: {self.before} → {self.after}{note}"


@dataclass(frozen=True)
class Plan:
    """A planned change: the commands, where, why, and its effect on packets."""

    table: str
    chain: str
    commands: tuple[str, ...]
    position: int | None
    effect: tuple[Change, ...]
    explanation: str
    feasible: bool = True
    more: int = 0  # effect lines not shown
    in_the_way: tuple[str, ...] = ()  # rules of earlier tables that defeat any position
    alternative: tuple[str, ...] = ()  # a later position that keeps partial DROP/REJECT guards
    alternative_why: str = ""
    rule: object = None  # the frontend's rule the commands insert (plan_insert)


@dataclass(frozen=True)
class HookDiff:
    table: str
    hook: str
    changes: tuple[Change, ...]
    more: int = 0
    truncated: bool = False  # stopped after the piece limit: "more" is a lower bound
    family: int = 4


@dataclass(frozen=True)
class Diff:
    hooks: tuple[HookDiff, ...]

    @property
    def different(self) -> bool:
        return any(h.changes for h in self.hooks)

    def to_json(self) -> dict[str, object]:
        return {"different": self.different, "hooks": list(self.hooks)}


# --------------------------------------------------------------------------- helpers

def _top(flat_rule: FlatRule) -> int:
    """The rule number, in the chain that was unfolded, that leads to this flat rule."""
    return flat_rule.path[0].number if flat_rule.path else flat_rule.origin.number


def _verdict_name(action: str) -> str:
    return action.split(" ", 1)[0] if action else action


def _changes(pieces: list[tuple[Piece, str]], universe: Universe, lines: int = MAX_LINES,
             ) -> tuple[list[Change], int]:
    """(piece, new action) pairs whose verdict differs -> grouped rule-like lines.

    Pieces with the same change whose union is again a cube (they differ in one dimension:
    "from X" and "from not X") are printed as one line.
    """
    groups: dict[tuple[str, str, tuple[str, ...]], list[sp.Cube]] = {}
    for piece, after in pieces:
        if piece.verdict == after:
            continue
        before_name, after_name = _verdict_name(piece.verdict), _verdict_name(after)
        if before_name == after_name:  # e.g. REJECT with another --reject-with
            before_name, after_name = piece.verdict, after
        groups.setdefault((before_name, after_name, piece.unsure), []).append(piece.cube)
    out: list[Change] = []
    for (before_name, after_name, unsure), cubes in groups.items():
        for cube in _merge_cubes(cubes):
            out.append(Change(sp.describe(cube, universe), before_name, after_name, unsure,
                              cube))
    out.sort(key=lambda c: (c.before, c.after, c.packets))
    return out[:lines], max(0, len(out) - lines)


def _merge_cubes(cubes: list[sp.Cube], rounds: int = 4) -> list[sp.Cube]:
    """Merge pairs whose union is a cube, a few rounds (bounded: diffs can be large)."""
    if len(cubes) > 256:
        return cubes
    for _ in range(rounds):
        merged: list[sp.Cube] = []
        changed = False
        for cube in cubes:
            for i, other in enumerate(merged):
                union = sp.cube_merge(other, cube)
                if union is not None:
                    merged[i] = union
                    changed = True
                    break
            else:
                merged.append(cube)
        cubes = merged
        if not changed:
            break
    return cubes


def _table(ruleset: Ruleset | Frontend, table: str, family: int) -> Table:
    found = find_table(ruleset, table, family)
    if found is None:
        raise BadInput(f"no table {table}")
    return found


def _chain_flat(ruleset: Ruleset | Frontend, table: str, chain: str, u: Universe) -> FlatChain:
    tbl = find_table(ruleset, table, u.family)
    c = tbl.chain(chain) if tbl is not None else None
    if c is None:
        raise BadInput(f"no chain {chain} in table {table}",
                       hint=f"chains: {', '.join(x.name for x in tbl.chains)}"
                       if tbl is not None else None)
    flat = unfold(ruleset, table, chain, u)
    if c.base is None:
        flat = replace(flat, policy="RETURN")
    return flat


def _upstream(ruleset: Ruleset | Frontend, table: str, chain: str, new: tuple[sp.Cube, ...],
              action: str, u: Universe) -> list[str]:
    """Rules of earlier base chains at the same hook that take some of ``new`` away first."""
    if table != "filter" or chain not in ("INPUT", "FORWARD", "OUTPUT"):
        return []
    out: list[str] = []
    for up, hook_chain in _earlier_base_chains(ir.as_ir(ruleset), u.family, chain.lower()):
        flat = unfold(ruleset, up.name, hook_chain.name, u)
        for piece in FlatIndex(flat).decide(new):
            if piece.rule is None:
                continue
            verdict = piece.rule.verdict
            o = piece.rule.origin
            text = o.rule.source.text
            if verdict in ("DROP", "REJECT") and _verdict_name(action) != verdict:
                out.append(f"{up.name} {o.chain} rule {o.number} ({text}) "
                           f"{verdict}s {sp.describe(piece.cube, u)} before filter {chain}; "
                           f"smallest change: iptables -t {up.name} -I {o.chain} {o.number} "
                           "with the same matches and -j ACCEPT, or narrow that rule")
            elif verdict in ("DNAT", "REDIRECT"):
                out.append(f"nat {o.chain} rule {o.number} ({text}) rewrites "
                           f"the destination of {sp.describe(piece.cube, u)}: filter {chain} "
                           "sees the translated address/port, so match those instead")
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- insert

def plan_insert(ruleset: Ruleset | Frontend, rule: object, *, table: str = "filter",
                open_invalid: bool = False) -> Plan:
    """Where ``rule`` must go in its chain to decide all its packets, and what that changes.

    An ACCEPT that says nothing about conntrack state would also accept INVALID-state packets
    (out-of-window, unknown to conntrack) that the chain drops *on purpose* before it — with
    a rule that matches INVALID state, as ufw's ``ufw-before-input`` does. Unless
    ``open_invalid`` (or the rule has its own ``state``/``ctstate`` match), the plan then
    inserts the rule with ``-m conntrack ! --ctstate INVALID``: every other state opens as
    asked, INVALID packets keep their DROP/REJECT. (A catch-all DROP/REJECT that happens to
    take INVALID packets too is not such a guard: the rule is planned as given.)
    ``Plan.rule`` is the rule the commands insert.
    """
    plan, invalid_dropped = _plan_insert(ruleset, rule, table)
    if open_invalid or not invalid_dropped or _verdict_name(action_of(rule)) != "ACCEPT" \
            or _has_state(rule):
        return plan
    plan = _plan_insert(ruleset, keep_invalid_out(rule), table)[0]  # type: ignore[arg-type]
    return replace(plan, explanation=plan.explanation + (
        "; INVALID-state packets stay dropped as the chain means them to be (the rule gets "
        "-m conntrack ! --ctstate INVALID; give --state with INVALID to open them too)"))


def plan_universe(ruleset: Ruleset | Frontend, rule: object) -> Universe:
    """The packet universe a plan for ``rule`` works in (the rule's interfaces named)."""
    conditions = rule_conditions(rule)
    return universe_for(ruleset, extra_ifaces=[
        c.value.name + ("+" if c.value.prefix else "") for c in conditions
        if c.field in ("iif", "oif")])


def rule_conditions(rule: object) -> tuple[ir.Condition, ...]:
    """An IR rule's conditions, or a frontend rule's compiled ones."""
    return (rule if isinstance(rule, Rule) else rule.to_ir()).conditions  # type: ignore[attr-defined]


def _has_state(rule: object) -> bool:
    return any(c.field == "ct_state" for c in rule_conditions(rule))


def _drops_invalid_on_purpose(piece: Piece) -> bool:
    """The piece is INVALID packets that a DROP/REJECT rule matching INVALID state takes."""
    f = piece.rule
    if f is None or f.verdict not in ("DROP", "REJECT"):
        return False
    return any(c.field == "ct_state" and not c.value.negated and "INVALID" in c.value.states
               for c in f.origin.rule.conditions)


def _plan_insert(ruleset: Ruleset | Frontend, rule: object, table: str) -> tuple[Plan, bool]:
    """The plan, and whether it would accept INVALID packets dropped on purpose."""
    u = plan_universe(ruleset, rule)
    chain = rule.chain  # type: ignore[attr-defined]
    flat = _chain_flat(ruleset, table, chain, u)
    rs = rule_space(rule, u)
    action = action_of(rule)
    wanted = Space(u, rs.may)
    undecided = wanted
    position: int | None = None
    blocker: FlatRule | None = None
    same: list[int] = []
    for f in flat.rules:
        if not f.terminal or undecided.is_empty():
            continue
        if f.action == action:
            if any(sp.cube_meets(a, b) for a in undecided.cubes for b in f.must.cubes):
                same.append(_top(f))
                undecided = undecided - f.must
            continue
        if any(sp.cube_meets(a, b) for a in undecided.cubes for b in f.may.cubes):
            position, blocker = _top(f), f
            break
    pieces = FlatIndex(flat).decide(wanted.cubes)
    effect, more = _changes([(p, action) for p in pieces], u)
    alternative, alt_why = (), ""
    if blocker is not None and position is not None:
        alt = _keeping_guards(flat, wanted, action)
        if alt is not None and alt[0] > position:
            alt_pos, guards = alt
            kept = [p for p in pieces if p.rule is not None and id(p.rule) in guards]
            alternative = (insert_command(rule, table=table,  # type: ignore[arg-type]
                                          family=u.family, position=alt_pos),)
            labels = ", ".join(dict.fromkeys(
                g.origin.label if g.origin.chain != flat.hook else str(g.origin.number)
                for g in guards.values()))
            verdicts = "/".join(sorted({g.verdict for g in guards.values()}))
            what = "; ".join(sp.describe(p.cube, u) for p in kept[:3]) + (
                " …" if len(kept) > 3 else "")
            alt_why = (f"keeps {labels} in front, which still {verdicts} "
                       + (what if what else "the packets they may match"))
    in_the_way = _upstream(ruleset, table, chain, rs.may, action, u)
    n_rules = len(_table(ruleset, table, u.family).chain(chain).rules)  # type: ignore[union-attr]
    family = u.family
    if position is not None and blocker is not None:
        cmd = insert_command(rule, table=table, family=family,  # type: ignore[arg-type]
                             position=position)
        why = (f"rule {position} ({blocker.verdict}) would otherwise decide some of these "
               f"packets first; inserting directly before it keeps rules 1–{position - 1} "
               "(e.g. ESTABLISHED,RELATED) first" if position > 1 else
               f"rule 1 ({blocker.verdict}) already decides some of these packets, so the "
               "rule must come first")
    elif not effect:
        cmd = None
        position = None
        numbers = list(dict.fromkeys(same))
        already = ("the policy gives" if not numbers else
                   f"rule {numbers[0]} gives" if len(numbers) == 1 else
                   f"rules {', '.join(map(str, numbers))} give")
        why = f"no change needed: {already} every such packet {action or 'it'} already"
    else:
        cmd = insert_command(rule, table=table, family=family,  # type: ignore[arg-type]
                             position=None)
        position = n_rules + 1
        why = ("no rule decides these packets differently before the end of the chain; "
               f"appending is enough (they currently fall through to {flat.policy})")
    if rs.unknown:
        why += f"; note: {', '.join(rs.unknown)} is not modelled, its packets were over-estimated"
    feasible = not in_the_way
    if in_the_way:
        why += "; but no position in this chain can work for all of them: see in_the_way"
    plan = Plan(table, chain, (cmd,) if cmd else (), position, tuple(effect), why,
                feasible, more, tuple(in_the_way), alternative, alt_why, rule)
    return plan, any(_drops_invalid_on_purpose(p) for p in pieces)


def _keeping_guards(flat: FlatChain, wanted: Space, action: str,
                    ) -> tuple[int, dict[int, FlatRule]] | None:
    """For an ACCEPT: the position if earlier DROP/REJECT rules that take only *some* of the
    packets (sanity guards such as "NEW without SYN") are kept in front of the new rule."""
    if _verdict_name(action) != "ACCEPT":
        return None
    undecided = wanted
    guards: dict[int, FlatRule] = {}
    for f in flat.rules:
        if not f.terminal or undecided.is_empty():
            continue
        if f.action == action:
            undecided = undecided - f.must
            continue
        if not any(sp.cube_meets(a, b) for a in undecided.cubes for b in f.may.cubes):
            continue
        if f.verdict in ("DROP", "REJECT") and not undecided <= f.must:
            guards[id(f)] = f
            undecided = undecided - f.may
            continue
        return _top(f), guards
    return None


# --------------------------------------------------------------------------- delete

def plan_delete(ruleset: Ruleset | Frontend, chain: str, number: int | None = None,
                spec: str | None = None, *, table: str = "filter") -> Plan:
    """Plan ``iptables -D``: the command and the packets whose verdict changes."""
    family = family_of(ruleset)
    tbl = find_table(ruleset, table, family)
    c = tbl.chain(chain) if tbl is not None else None
    if c is None:
        raise BadInput(f"no chain {chain} in table {table}")
    if number is None:
        if spec is None:
            raise BadInput("give a rule number or a rule specification")
        number = find_rule(ruleset, table, chain, spec)  # type: ignore[arg-type]
    if not 1 <= number <= len(c.rules):
        raise BadInput(f"{table} {chain} has {len(c.rules)} rules; there is no rule {number}")
    after = without_rule(ruleset, table, chain, number)  # type: ignore[arg-type]
    result = diff(ruleset, after, tables=(table,))
    effect = tuple(ch for h in result.hooks for ch in h.changes)
    more = sum(h.more for h in result.hooks)
    cmd = delete_command(table=table, chain=chain, number=number, family=family)
    text = c.rules[number - 1].source.text
    why = (f"deletes rule {number} ({text})" + ("; no packet changes verdict: the rule is "
                                               "shadowed or redundant" if not effect else ""))
    return Plan(table, chain, (cmd,), number, effect, why, True, more)


# --------------------------------------------------------------------------- diff

def _same(rule: Rule) -> object:
    """What makes two rules the same rule for a diff: the frontend's rule as a value (two
    opaque matches with other options differ), else the IR conditions."""
    origin = rule.source.origin
    return origin if origin is not None else rule.conditions


def _key(f: FlatRule) -> tuple[object, ...]:
    return (f.origin.chain, _same(f.origin.rule), f.action,
            tuple((o.chain, _same(o.rule)) for o in f.path))


#: Non-deciding flat rules that still change where packets go next.
_FLOW = frozenset({"RETURN", "GOTO", "JUMP"})


REGION_UNION_LIMIT = 256  # changed rules beyond which a diff decides the whole packet space


class _MeetIndex:
    """"Does some selected rule before position N meet this cube?" via a CubeIndex, so a diff
    that adds thousands of rules does not test every piece against every added rule."""

    def __init__(self, u: Universe, chain: FlatChain, positions: Iterable[int]) -> None:
        self.index = sp.CubeIndex(u)
        self.owner: list[int] = []
        for pos in positions:
            for cube in chain.rules[pos].may.cubes:
                self.index.add(cube)
                self.owner.append(pos)

    def meets_before(self, cube: sp.Cube, stop: int) -> bool:
        for cid in self.index.candidates(cube):
            if self.owner[cid] < stop and sp.cube_meets(cube, self.index.cubes[cid]):
                return True
        return False


def _hook_diff(fa: FlatChain, fb: FlatChain, u: Universe, limit: int, lines: int) -> HookDiff:
    ka, kb = [_key(f) for f in fa.rules], [_key(f) for f in fb.rules]
    changed_a: set[int] = set()
    changed_b: list[int] = []
    b_of_a: dict[int, int] = {}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ka, kb,
                                                        autojunk=False).get_opcodes():
        if tag == "equal":
            b_of_a.update(zip(range(i1, i2), range(j1, j2), strict=True))
        else:
            changed_a.update(range(i1, i2))
            changed_b.extend(range(j1, j2))
    changed = [fa.rules[i] for i in sorted(changed_a)] + [fb.rules[j] for j in changed_b]
    if fa.policy != fb.policy or len(changed) > REGION_UNION_LIMIT:
        # Keeping the union of thousands of rule spaces disjoint is quadratic; deciding the
        # whole space is a superset of the region, so the answer stays exact.
        region = Space.full(u)
    else:
        region = Space.empty(u)
        for f in changed:
            region = region | f.may
    if region.is_empty():
        return HookDiff(fa.table, fa.hook, ())
    ia, ib = FlatIndex(fa), FlatIndex(fb)
    pos_a = {id(f): i for i, f in enumerate(fa.rules)}
    flow_a = _MeetIndex(u, fa, (i for i in changed_a if fa.rules[i].action in _FLOW))
    steer_b = _MeetIndex(u, fb, (j for j in changed_b
                                 if fb.rules[j].terminal or fb.rules[j].action in _FLOW))
    pairs: list[tuple[Piece, str]] = []
    truncated = False
    for pa in ia.decide(region.cubes, limit=limit):
        # A packet decided in A by a rule both sides share can only end differently in B if
        # a changed rule of B before that shared rule may match it first, or a changed
        # RETURN/jump/goto of A before it may have steered it.
        if pa.rule is None:
            shared, stop = fa.policy == fb.policy, len(fb.rules)
        else:
            shared = pos_a[id(pa.rule)] not in changed_a
            stop = b_of_a[pos_a[id(pa.rule)]] if shared else 0
        until_a = pos_a[id(pa.rule)] if pa.rule is not None else len(fa.rules)
        if (shared and not pa.unsure and not flow_a.meets_before(pa.cube, until_a)
                and not steer_b.meets_before(pa.cube, stop)):
            continue
        for pb in ib.decide([pa.cube], limit=limit):
            unsure = tuple(dict.fromkeys(pa.unsure + pb.unsure))
            pairs.append((Piece(pb.cube, pa.rule, pa.verdict, unsure), pb.verdict))
        if len(pairs) >= limit:
            truncated = True
            break
    changes, more = _changes(pairs, u, lines)
    return HookDiff(fa.table, fa.hook, tuple(changes), more, truncated)


def diff(a: Ruleset | Frontend, b: Ruleset | Frontend, *, tables: tuple[str, ...] | None = None,
         limit: int = 2000, lines: int = MAX_LINES) -> Diff:
    """The packets whose verdict differs between ``a`` and ``b``, per table and hook.

    At most about ``limit`` pieces are traced per hook; past that ``truncated`` is set and the
    counts are lower bounds (the answer "they differ" stays exact).
    """
    family = family_of(a)
    if family != family_of(b):
        raise BadInput(f"cannot compare an IPv{family} ruleset with an IPv{family_of(b)} one")
    u = universe_for(a, b)
    sides = [[t for t in ir.as_ir(x).tables if family in ir.FAMILY_VERSIONS.get(t.family, ())]
             for x in (a, b)]
    names = tables or tuple(dict.fromkeys(t.name for side in sides for t in side))
    out = []
    for table in names:
        for hook in HOOKS:
            chains = dict.fromkeys(c.name for side in sides for t in side if t.name == table
                                   for c in t.chains
                                   if c.base is not None and c.base.hook == hook)
            for chain in chains:
                hd = _hook_diff(unfold(a, table, chain, u), unfold(b, table, chain, u), u,
                                limit, lines)
                if hd.changes:
                    out.append(replace(hd, family=family))
    return Diff(tuple(out))


# --------------------------------------------------------------------------- any IR chain

@dataclass(frozen=True)
class HookPlan:
    """Where an IR rule goes in a chain of any backend (``before``: the chain's IR rule it is
    inserted in front of, None = appended; ``needed``: False when nothing changes), its effect
    across every base chain of the hook, and what else must change (``in_the_way``: rules
    of other base chains that still decide some of its packets otherwise)."""

    before: Rule | None
    needed: bool
    effect: tuple[str, ...]
    explanation: str
    in_the_way: tuple[str, ...] = ()
    more: int = 0
    guarded_invalid: bool = False  # an ACCEPT above a rule that drops INVALID on purpose


def _up(verdict: str) -> str:
    return _verdict_name(verdict).upper()


def plan_hook_insert(ruleset: Ruleset, table: Table, chain: str, rule: Rule) -> HookPlan:
    """The IR planner for a rule into ``table``'s ``chain`` (nft or iptables alike): the
    latest position at which it decides all its packets (directly before the first
    terminating rule that would decide some of them with another verdict), and the effect
    through every base chain of the hook, per IP version the table sees. An accept that an
    earlier or later base chain still drops is reported in ``in_the_way``, naming that rule."""
    target = table.chain(chain)
    if target is None:
        raise BadInput(f"no chain {chain} in {table.family} {table.name}")
    hook = target.base.hook if target.base is not None else None
    new = _up(action_of(rule))
    first: int | None = None
    blocker_text = ""
    effect: list[str] = []
    in_the_way: list[str] = []
    more = 0
    guarded = False
    for version in ir.FAMILY_VERSIONS.get(table.family, ()):
        u = Universe.for_names(version, universe_for(ruleset, extra_ifaces=[
            c.value.name + ("+" if c.value.prefix else "") for c in rule.conditions
            if c.field in ("iif", "oif")]).ifaces)
        flat = unfold(ruleset, table, chain, u)
        wanted = Space(u, rule_space(rule, u).may)
        if wanted.is_empty():
            continue
        undecided = wanted
        for f in flat.rules:
            if not f.terminal or undecided.is_empty():
                continue
            if _up(f.action) == new:
                undecided = undecided - f.must
                continue
            if any(sp.cube_meets(a, b) for a in undecided.cubes for b in f.may.cubes):
                pos = _top(f) - 1
                if first is None or pos < first:
                    top = target.rules[pos].source.position or _top(f)
                    first, blocker_text = pos, f"{f.verdict} rule {top}"
                break
        pieces = FlatIndex(flat).decide(wanted.cubes)
        changed = [p for p in pieces if _up(p.verdict) != new]
        guarded |= new == "ACCEPT" and any(
            p.rule is not None and _up(p.verdict) in ("DROP", "REJECT") and any(
                c.field == "ct_state" and not c.value.negated and "INVALID" in c.value.states
                for c in p.rule.origin.rule.conditions) for p in changed)
        if not changed or hook is None:
            lines, extra = _changes([(p, action_of(rule)) for p in changed], u)
            effect += [f"IPv{version} {table.family} {table.name} {chain}: {c}" for c in lines]
            more += extra
            continue
        cubes = [p.cube for p in changed]
        others = [(t, c) for t, c in ruleset.base_chains(version, hook)
                  if c is not target]
        prio = target.base.priority  # type: ignore[union-attr]
        after: dict[int, str] = {}
        for t, c in others:
            if c.base is None:
                continue
            earlier = c.base.priority < prio
            if not earlier and new != "ACCEPT":
                continue  # a drop here is final: later base chains never see the packets
            oflat = unfold(ruleset, t, c.name, u)
            for piece in FlatIndex(oflat).decide(cubes, limit=200):
                verdict = _up(piece.verdict)
                if verdict not in ("DROP", "REJECT"):
                    continue
                o = piece.rule.origin if piece.rule is not None else None
                handle = o.rule.source.handle if o is not None else None
                name = (f"{t.backend} {t.family} {t.name} {c.name} "
                        + (f"rule {o.rule.source.position or o.number}"
                           + (f" (handle {handle})" if handle else "")
                           + f": {o.rule.source.text}" if o is not None
                           else f"policy {verdict}"))
                when = "before" if earlier else "after"
                in_the_way.append(
                    f"IPv{version}: {name} {verdict.lower()}s {sp.describe(piece.cube, u)} "
                    f"{when} {table.family} {table.name} {chain}"
                    + ("" if earlier or new != "ACCEPT" else
                       "; an accept here does not let it in: accept it there too"))
                for i, cube in enumerate(cubes):
                    if sp.cube_meets(cube, piece.cube):
                        after.setdefault(i, f"{verdict} (by {name})")
        lines, extra = _changes([(p, action_of(rule)) for p in changed], u)
        for line in lines:
            final = next((v for i, v in after.items()
                          if line._cube is not None and sp.cube_meets(line._cube, cubes[i])),
                         None)
            effect.append(f"IPv{version} {table.family} {table.name} {chain}: {line}"
                          + (f"; but the hook still ends in {final}" if final else
                             f"; at hook {hook}: {line.after.upper()}"))
        more += extra
    before = target.rules[first] if first is not None else None
    if not effect:
        why = f"no change needed: every such packet already gets {new.lower()}"
        return HookPlan(None, False, (), why, tuple(dict.fromkeys(in_the_way)), more, guarded)
    if before is not None:
        why = (f"{blocker_text} would otherwise decide some of these packets first; inserting "
               "directly before it keeps the rules above it first")
    else:
        why = ("no rule decides these packets differently before the end of the chain: "
               "appending is enough")
    return HookPlan(before, True, tuple(effect), why, tuple(dict.fromkeys(in_the_way)), more,
                    guarded)


def plan_hook_delete(ruleset: Ruleset, table: Table, chain: str, handle: int) -> tuple[str, ...]:
    """The effect of deleting the nft rule with ``handle`` from ``table``'s ``chain`` (every
    IR rule it compiled to, verdict-map elements included), per IP version, as effect lines:
    the packets whose verdict in that chain changes."""
    target = table.chain(chain)
    if target is None:
        raise BadInput(f"no chain {chain} in {table.family} {table.name}")
    kept = tuple(r for r in target.rules if r.source.handle != handle)
    chains = tuple(ir.Chain(c.name, kept, c.base) if c is target else c for c in table.chains)
    without = Table(table.backend, table.family, table.name, chains)
    after = Ruleset(tuple(without if t is table else t for t in ruleset.tables))
    out: list[str] = []
    for version in ir.FAMILY_VERSIONS.get(table.family, ()):
        u = Universe.for_names(version, universe_for(ruleset).ifaces)
        fa, fb = unfold(ruleset, table, chain, u), unfold(after, without, chain, u)
        if target.base is None:
            fa, fb = replace(fa, policy="RETURN"), replace(fb, policy="RETURN")
        hd = _hook_diff(fa, fb, u, 2000, MAX_LINES)
        out += [f"IPv{version} {table.family} {table.name} {chain}: {c}" for c in hd.changes]
        if hd.more:
            out.append(f"IPv{version}: {hd.more} more")
    return tuple(out)
