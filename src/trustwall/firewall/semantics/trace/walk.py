"""The walk: hooks, tables and chains in the kernel's order, jumps and returns, and the
re-runs over unknowns (:class:`Tracer`, :func:`trace`, :func:`trace_many`)."""

from __future__ import annotations

import ipaddress
import itertools
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from trustwall.errors import BadInput
from trustwall.firewall.ir import (
    CONNTRACK_PRIORITY,
    FAMILY_VERSIONS,
    FILTER_PRIORITY,
    HOOKS,
    Chain,
    Frontend,
    KeySpan,
    Nat,
    Rule,
    Ruleset,
    Table,
    as_ir,
)
from trustwall.firewall.semantics.routing import UNKNOWN as UNKNOWN_LOCALS
from trustwall.firewall.semantics.routing import LocalAddresses
from trustwall.firewall.semantics.trace.actions import compile_rewrite
from trustwall.firewall.semantics.trace.index import (
    _ACCEPT,
    _ACTION,
    _GOTO,
    _JUMP,
    _NONE,
    _RANGE_DIMS,
    _RETURN,
    _UNKNOWN_TARGET,
    _VERDICT,
    Check,
    _addr_int,
    _addr_obj,
    _CChain,
    _CRule,
    _Ctx,
    _fast_parts,
    condition_check,
)
from trustwall.firewall.semantics.trace.result import (
    Assumption,
    Outcome,
    Packet,
    RuleRef,
    Step,
    TraceResult,
    Unknown,
)

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

    def __init__(self, ruleset: Ruleset | Frontend, local: LocalAddresses | None = None, *,
                 max_outcomes: int = 64, family: int | None = None) -> None:
        self.ruleset = ruleset
        self.ir = as_ir(ruleset)
        # an iptables ruleset is one family; an IR ruleset traces the version it holds (4 when
        # it holds both, unless ``family`` says otherwise)
        self.family = family or getattr(ruleset, "family", None) or (
            self.ir.versions() or (4,))[0]
        self.local = local if local is not None else UNKNOWN_LOCALS
        self.max_outcomes = max_outcomes
        self._chains: dict[tuple[int, str], _CChain] = {}
        self._texts: dict[int, str] = {}
        self._local_ints: frozenset[int] | None = None
        self._local_nets: tuple[tuple[int, int], ...] = ()
        if self.local.known:
            self._local_ints = frozenset(
                int(a) for a in self.local.addresses | self.local.broadcasts
                if a.version == self.family)
            self._local_nets = tuple((int(n.network_address), int(n.netmask))
                                     for n in self.local.networks if n.version == self.family)
        for tkey, table in enumerate(self.ir.tables):
            if self.family not in FAMILY_VERSIONS.get(table.family, ()):
                continue
            names = {c.name for c in table.chains}
            for chain in table.chains:
                rules = [self._compile(table, chain, i, r, names)
                         for i, r in enumerate(chain.rules, 1)]
                self._chains[(tkey, chain.name)] = _CChain(chain, rules, table, tkey)
        # per hook: its base chains by priority; which one names the rule that accepted a
        # packet (the filter priority); equal priorities, whose order the kernel leaves open
        # (base chain, is a nat chain, runs before conntrack: raw), by priority
        self._hooks: dict[str, list[tuple[_CChain, bool, bool]]] = {}
        self._accepter: dict[str, int] = {}
        self._warnings: dict[str, tuple[str, ...]] = {}  # by hook (as results name it)
        tkeys = {id(t): i for i, t in enumerate(self.ir.tables)}
        for hook in HOOKS:
            present = [self._chains[(tkeys[id(t)], c.name)]
                       for t, c in self.ir.base_chains(self.family, hook)]
            self._hooks[hook] = [
                (c, c.hook.type == "nat", c.hook.priority < CONNTRACK_PRIORITY
                 and hook in ("prerouting", "output")) for c in present]
            # the filter base chain at the filter priority names the accepting rule; on an
            # nft host without one (firewalld's chains sit at filter + 10), the nearest to it
            filters = [c for c in present if c.hook.type == "filter" and (
                c.hook.priority == FILTER_PRIORITY or c.table.backend == "nft")]
            if filters:
                nearest = min(abs(c.hook.priority - FILTER_PRIORITY) for c in filters)
                self._accepter[hook] = next(
                    c.tkey for c in reversed(filters)
                    if abs(c.hook.priority - FILTER_PRIORITY) == nearest)
            warnings = tuple(
                f"{hook}: {_where(a)} and {_where(b)} share priority {a.hook.priority}; the "
                "kernel's order between them is undefined (traced in the order listed)"
                for a, b in itertools.pairwise(present) if a.hook.priority == b.hook.priority)
            if warnings:
                self._warnings[hook.upper()] = warnings
        # the same, with every run of equal priorities the other way round
        self._swapped = {hook: _reverse_ties(chains) for hook, chains in self._hooks.items()}
        self._points = self._class_points()
        self._cache: dict[tuple[object, ...], TraceResult] = {}
        self._addr_classes: dict[str, int] = {}
        self._refs: dict[tuple[object, str], RuleRef] = {}  # rule or policy refs, made once
        self._masks: dict[tuple[object, ...], int | None] = {}  # per trace() call

    # -- public API --

    def trace(self, packet: Packet, *, with_path: bool = True) -> TraceResult:
        """Trace one packet (all outcomes when something is unknown).

        When the packet met base chains of equal priority, it is traced again with each such
        group in the other order; if the answers differ, the order is one more unknown (the
        kernel's is undefined) and the verdict is UNKNOWN with both outcomes.
        """
        result = self._trace(packet, with_path)
        if not result.warnings:
            return result
        listed, self._hooks = self._hooks, self._swapped
        try:
            other = self._trace(packet, with_path)
        finally:
            self._hooks = listed
        if (other.verdict, other.decided_by) == (result.verdict, result.decided_by):
            return result
        order = Unknown("", "priority", None, "; ".join(result.warnings),
                        "base chains of equal priority: the kernel's order between them is "
                        "undefined (holds: the order listed)")
        outcomes = tuple(replace(o, assuming=(Assumption(order, holds), *o.assuming))
                         for holds, r in ((True, result), (False, other)) for o in r.outcomes)
        return replace(result, verdict="UNKNOWN", decided_by=None, certain=False,
                       unknown=(order, *dict.fromkeys(result.unknown + other.unknown)),
                       outcomes=outcomes, complete=result.complete and other.complete)

    def _trace(self, packet: Packet, with_path: bool) -> TraceResult:
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
                    Outcome(verdict, decided, path, hooks, (), final),), True, final or packet,
                    warnings=self._warned(hooks))
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
            certain=certain, final_packet=first.final_packet or packet, complete=complete,
            warnings=self._warned(*(o.hooks for o in outcomes)))

    def _warned(self, *hooks: tuple[str, ...]) -> tuple[str, ...]:
        """The equal-priority warnings of the hooks these walks went through."""
        if not self._warnings:
            return ()
        met = dict.fromkeys(h for walk in hooks for h in walk)
        return tuple(w for h in met for w in self._warnings.get(h, ()))

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
                                       hit.unknown, hit.outcomes, hit.certain, p, hit.complete,
                                       hit.warnings))
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
                rewrite = cr.rule.action.rewrite
                if isinstance(rewrite, Nat) and rewrite.kind == "netmap":
                    return None  # rewrites low address bits: no interval class survives it
                for dim, constraint in cr.dims.items():
                    if dim in _RANGE_DIMS:
                        target = ports if dim in ("sport", "dport") else addrs
                        for lo, hi in constraint[0]:  # type: ignore[index]
                            target.update((lo, hi + 1))
                if cr.masked:
                    return None  # a non-contiguous mask: no interval class either
                for cond in cr.rule.conditions:
                    field, value = cond.field, cond.value
                    if field in ("sport", "dport", "either_port"):
                        for r in value.ranges:
                            ports.update((r.first, r.last + 1))
                    elif field in ("src_range", "dst_range"):
                        addrs.update((int(value.first), int(value.last) + 1))
                    elif field == "set":  # nft set lookups: every element's bounds
                        for i, key in enumerate(value.keys):
                            target = addrs if key in ("src", "dst") else \
                                ports if key in ("sport", "dport") else None
                            if target is None:
                                continue  # the class key holds the packet's own value
                            for element in value.elements:
                                part = element[i]
                                if isinstance(part, KeySpan):
                                    target.update((part.first, part.last + 1))
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

    def _compile(self, table: Table, chain: Chain, number: int, rule: Rule,
                 chain_names: set[str]) -> _CRule:
        cr = _CRule()
        cr.rule = rule
        cr.table = table.name
        cr.chain = chain.name
        # the frontend's position (a verdict map is several IR rules of one nft rule)
        cr.number = rule.source.position or number
        cr.dims, cr.extra = _fast_parts(cr, self.local, self.family)
        action = rule.action
        kind = action.kind
        cr.target = action.name
        cr.changes = cr.ends = False
        if kind == "continue" and not action.name and action.rewrite is None:
            cr.kind = _NONE
        elif kind in ("jump", "goto") and action.chain in chain_names:
            cr.kind = _GOTO if kind == "goto" else _JUMP
            cr.target = action.chain
        elif kind == "return":
            cr.kind = _RETURN
        elif kind == "accept":
            cr.kind = _ACCEPT
        elif kind in ("drop", "reject", "queue"):
            cr.kind = _VERDICT
            cr.target = action.says
        elif kind in ("nat", "continue"):
            cr.kind = _ACTION
            cr.target = action.name or kind
            cr.action = compile_rewrite(action.rewrite, cr.target, self.local)
            cr.changes = action.rewrite is not None
            cr.ends = kind == "nat"
        else:  # "ends" (TPROXY, SYNPROXY), "unknown", or a jump out of the table
            cr.kind = _UNKNOWN_TARGET
            cr.target = action.name or kind
        return cr

    def _text(self, cr: _CRule) -> str:
        key = id(cr)
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = cr.rule.source.text
        return text

    def _ref(self, cr: _CRule, hook: str) -> RuleRef:
        key = (id(cr), hook)
        ref = self._refs.get(key)
        if ref is None:
            src = cr.rule.source
            ref = self._refs[key] = RuleRef(cr.table, cr.chain, cr.number, self._text(cr),
                                            hook.upper(), src.backend, src.family, src.handle)
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
            order = ["output"]
            main = "output"
        else:
            verdict = self._hook(run, ctx, "prerouting")
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
            main = "input" if to_me else "forward"
            order = [main]
        if main != "input":
            order.append("postrouting")
        for hook in order:
            verdict = self._hook(run, ctx, hook)
            if verdict is not None:
                return verdict
        accepter = self._accepter.get(main)
        return "ACCEPT", run.decisions.get((accepter, main)) if accepter is not None else None

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

    def _hook(self, run: _Run, ctx: _Ctx, hook: str) -> tuple[str, RuleRef | None] | None:
        """Walk one hook through its base chains by priority: ``accept`` ends only the base
        chain; a final verdict (DROP…) is returned, else None."""
        run.hooks.append(hook.upper())
        for cchain, nat, untracked in self._hooks[hook]:
            if nat and ctx.state != "NEW":
                continue  # NAT rules see only a connection's first packet
            ctx.hook = hook
            saved_state = ctx.state
            if untracked:  # conntrack has not run yet (raw): no ct attached
                ctx.state = "INVALID"
            result = self._chain(run, cchain, ctx, 0)
            if untracked:
                ctx.state = "UNTRACKED" if ctx.notrack else saved_state
            if result is None:
                policy = cchain.policy or "ACCEPT"
                ref = self._refs.get((cchain.tkey, hook))
                if ref is None:
                    table = cchain.table
                    base = cchain.hook
                    ref = self._refs[(cchain.tkey, hook)] = RuleRef(
                        table.name, cchain.name, None,
                        base.policy_text or f"policy {base.policy}", hook.upper(),
                        table.backend, table.family)
                if run.with_path:
                    run.path.append(Step(ref.table, ref.chain, None, ref.text,
                                         f"policy {policy}", ref.backend, ref.family))
                verdict = policy
            else:
                verdict, ref = result
            run.decisions[(cchain.tkey, hook)] = ref
            if verdict != "ACCEPT":
                return verdict, ref
        return None

    def _chain(self, run: _Run, cchain: _CChain, ctx: _Ctx, depth: int
               ) -> tuple[str, RuleRef] | None:
        """Walk a chain; None means it returned (RETURN or its end)."""
        if depth > 100:
            raise BadInput(f"chain {cchain.name} jumps too deep (a loop?)")
        for cr in self._matching(run, cchain, ctx):
            kind = cr.kind
            if kind == _NONE:
                self._step(run, cr, "match (no target)")
                continue
            if kind in (_JUMP, _GOTO):
                self._step(run, cr, ("goto " if kind == _GOTO else "jump ") + cr.target)
                sub = self._chains[(cchain.tkey, cr.target)]
                result = self._chain(run, sub, ctx, depth + 1)
                if result is not None or kind == _GOTO:
                    return result
                continue
            if kind == _RETURN:
                self._step(run, cr, "RETURN")
                return None
            if kind in (_ACCEPT, _VERDICT):
                verdict = "ACCEPT" if kind == _ACCEPT else cr.target
                self._step(run, cr, verdict)
                return verdict, self._ref(cr, ctx.hook)
            if kind == _ACTION:
                note = cr.action(ctx) if cr.action is not None else cr.target
                if cr.changes:
                    ctx.version += 1
                self._step(run, cr, note)
                if cr.ends:  # NAT ends the nat base chain
                    return "ACCEPT", self._ref(cr, ctx.hook)
                continue
            # A target trustwall does not know: it may decide the packet or let it continue.
            u = Unknown(cr.table, cr.chain, cr.number, self._text(cr),
                        f"target {cr.target} is not modelled: it may stop the packet")
            if run.decide(u):
                self._step(run, cr, f"{cr.target} (assumed to decide)")
                return "UNKNOWN", self._ref(cr, ctx.hook)
            self._step(run, cr, f"{cr.target} (assumed to continue)")
        return None

    def _matching(self, run: _Run, cchain: _CChain, ctx: _Ctx) -> Iterator[_CRule]:
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
                if self._matches(run, cr, ctx):
                    yield cr
            return
        while mask:
            low = mask & -mask
            mask ^= low
            cr = rules[low.bit_length() - 1]
            if cr.extra and not self._extra(run, cr, ctx):
                continue
            version = ctx.version
            yield cr
            if ctx.version != version:  # a MARK/CONNMARK changed what the later rules see
                fresh = cchain.fast_mask(ctx)
                if fresh is None:
                    for later in rules[low.bit_length():]:
                        if self._matches(run, later, ctx):
                            yield later
                    return
                mask = fresh & ~((low << 1) - 1)

    def _extra(self, run: _Run, cr: _CRule, ctx: _Ctx) -> bool:
        return self._hold(run, cr, ctx, cr.extra)

    def _hold(self, run: _Run, cr: _CRule, ctx: _Ctx, checks: Sequence[Check]) -> bool:
        """True when every check holds; one that cannot be decided makes the run follow
        both outcomes (the first reason names the unknown)."""
        reason = ""
        for check in checks:
            result = check(ctx)
            if result is False:
                return False
            if result is not True:
                reason = reason or str(result)
        if not reason:
            return True
        return run.decide(Unknown(cr.table, cr.chain, cr.number, self._text(cr), reason))

    def _step(self, run: _Run, cr: _CRule, action: str) -> None:
        if run.with_path:
            src = cr.rule.source
            run.path.append(Step(cr.table, cr.chain, cr.number, self._text(cr), action,
                                 src.backend, src.family, src.handle))

    def _matches(self, run: _Run, cr: _CRule, ctx: _Ctx) -> bool:
        """Every condition of the rule, one by one (a packet field is unknown)."""
        if cr.never:
            return False
        checks = cr.checks
        if checks is None:
            checks = cr.checks = tuple(condition_check(c, self.local, self.family)
                                       for c in cr.rule.conditions)
        return self._hold(run, cr, ctx, checks)


def _reverse_ties(chains: list[tuple[_CChain, bool, bool]]) -> list[tuple[_CChain, bool, bool]]:
    """Base chains by priority, each run of equal priorities in reverse."""
    out: list[tuple[_CChain, bool, bool]] = []
    for _, tied in itertools.groupby(chains, key=lambda c: c[0].hook.priority):
        out += reversed(list(tied))
    return out


def _where(cchain: _CChain) -> str:
    t = cchain.table
    return f"{t.backend} {t.family} {t.name} {cchain.name}"


def trace(ruleset: Ruleset | Frontend, packet: Packet, local: LocalAddresses | None = None
          ) -> TraceResult:
    """Trace one packet through ``ruleset`` (compiles it; use :class:`Tracer` for many). An
    IR ruleset holding both IP versions is traced for the packet's own version."""
    return Tracer(ruleset, local, family=_version_of(ruleset, packet)).trace(packet)


def trace_many(ruleset: Ruleset | Frontend, packets: Iterable[Packet],
               local: LocalAddresses | None = None, *, with_path: bool = False
               ) -> list[TraceResult]:
    """Trace many packets: the ruleset is compiled once per IP version the packets have."""
    if not isinstance(ruleset, Ruleset):  # a frontend's ruleset is one IP version
        return Tracer(ruleset, local).trace_many(packets, with_path=with_path)
    tracers: dict[int | None, Tracer] = {}
    out = []
    for p in packets:
        family = _version_of(ruleset, p)
        tracer = tracers.get(family)
        if tracer is None:
            tracer = tracers[family] = Tracer(ruleset, local, family=family)
        out.append(tracer.trace_many((p,), with_path=with_path)[0])
    return out


def _version_of(ruleset: Ruleset | Frontend, packet: Packet) -> int | None:
    """The packet's IP version when ``ruleset`` is an IR ruleset (None: the frontend's)."""
    if not isinstance(ruleset, Ruleset):
        return None
    try:
        return ipaddress.ip_address(packet.src).version
    except ValueError:
        return None  # the tracer says what is wrong with the address


__all__ = ["Assumption", "Outcome", "Packet", "RuleRef", "Step", "TraceResult", "Tracer",
           "Unknown", "trace", "trace_many"]
