"""iptables model -> the firewall IR (:mod:`trustwall.firewall.ir`).

One :class:`~trustwall.firewall.ir.Table` per (family, iptables table), backend ``iptables``,
family ``ip``/``ip6``. A built-in chain becomes a base chain at its table's fixed priority
(:func:`~trustwall.firewall.ir.iptables_priority`); a rule becomes its header conditions
(``-p -s -d -i -o -f``) + every match's conditions as the extension registry declares them
(:func:`~trustwall.firewall.iptables.extensions.conditions`) + an action read from the target's
row (``effect``, ``rewrite``) + a :class:`~trustwall.firewall.ir.Source` that links back to
the model rule and renders it lazily. :meth:`model.Ruleset.to_ir` caches the result per
ruleset value, so repeated traces and analyses compile once.
"""

from __future__ import annotations

from functools import partial

from trustwall.firewall import ir
from trustwall.firewall.iptables import extensions as ext
from trustwall.firewall.iptables.model import Address, Chain, Rule, Ruleset, Target, is_valid_hook
from trustwall.firewall.protocols import BadValue, protocol_number

#: The IR family of each iptables family (4: iptables, 6: ip6tables).
FAMILIES = {4: "ip", 6: "ip6"}

#: ``effect="final"`` targets by the IR action kind they are (the rest end like DROP).
_FINAL_KINDS = {"REJECT": "reject", "QUEUE": "queue", "NFQUEUE": "queue"}


def compile_ruleset(ruleset: Ruleset) -> ir.Ruleset:
    """The IR of one iptables family's ruleset (use ``ruleset.to_ir()``: it is cached)."""
    family = FAMILIES[ruleset.family]
    memo = _Memo()
    tables = []
    for table in ruleset.tables:
        names = frozenset(c.name for c in table.chains)
        chains = tuple(_chain(ruleset.family, family, table.name, c, names, memo)
                       for c in table.chains)
        tables.append(ir.Table("iptables", family, table.name, chains))
    return ir.Ruleset(tuple(tables))


class _Memo:
    """Conditions and actions already made in this compile, by the model value they come
    from: real rulesets repeat ``-p tcp``, ``-i eth0``, ``-m state …`` and ``-j ACCEPT``
    thousands of times, and equal IR values can be shared (they are immutable)."""

    def __init__(self) -> None:
        self.headers: dict[tuple[object, ...], tuple[ir.Condition, ...]] = {}
        self.matches: dict[object, tuple[ir.Condition, ...]] = {}
        self.actions: dict[tuple[object, bool], ir.Action] = {}


def _chain(version: int, family: str, table: str, chain: Chain, names: frozenset[str],
           memo: _Memo) -> ir.Chain:
    base = None
    if chain.policy is not None and is_valid_hook(table, chain.name):
        base = ir.Hook(chain.name.lower(), ir.iptables_priority(table, chain.name),
                       "nat" if table == "nat" else "filter", chain.policy.lower(),
                       f"-P {chain.name} {chain.policy}")
    rules = []
    for i, rule in enumerate(chain.rules, 1):
        key = (rule.protocol, rule.source, rule.destination, rule.in_interface,
               rule.out_interface, rule.fragment)
        conditions = memo.headers.get(key)
        if conditions is None:
            conditions = memo.headers[key] = header_conditions(rule, version)
        for m in rule.matches:
            meaning = memo.matches.get(m)
            if meaning is None:
                meaning = memo.matches[m] = ext.conditions(m)
            conditions += meaning
        target = rule.target
        jump = target is not None and target.name in names
        act = memo.actions.get((target, jump))
        if act is None:
            act = memo.actions[(target, jump)] = action(target, names)
        rules.append(ir.Rule(conditions, act, _source(rule, family, table, chain.name, i)))
    return ir.Chain(chain.name, tuple(rules), base)


def _source(rule: Rule, family: str, table: str, chain: str, position: int | None
            ) -> ir.Source:
    return ir.Source("iptables", family, table, chain, position, origin=rule,
                     render=partial(rule_text, rule), line=rule.text)


def compile_rule(rule: Rule, version: int, *, table: str = "filter", chain: str | None = None,
                 position: int | None = None, chains: frozenset[str] = frozenset(),
                 family: str | None = None) -> ir.Rule:
    """One rule as IR conditions + action + source (``chains``: the chain names of its table,
    which ``-j``/``-g`` may enter)."""
    conditions = list(header_conditions(rule, version))
    for m in rule.matches:
        conditions += ext.conditions(m)
    source = _source(rule, family or FAMILIES[version], table, chain or rule.chain, position)
    return ir.Rule(tuple(conditions), action(rule.target, chains), source)


def rule_text(rule: Rule) -> str:
    """The rule as iptables-save prints it (the input line if the renderer has a gap)."""
    from trustwall.firewall.iptables.render import render_rule  # render imports extensions

    try:
        return render_rule(rule)
    except Exception:  # a renderer gap must not hide an answer; fall back to the input
        return rule.text.strip()


def header_conditions(rule: Rule, version: int) -> tuple[ir.Condition, ...]:
    """``-p``, ``-s``, ``-d``, ``-i``, ``-o`` and ``-f`` as IR conditions, in that order."""
    out: list[ir.Condition] = []
    proto = rule.protocol
    if proto is not None:
        try:
            number = protocol_number(proto.name)
        except BadValue:
            out.append(ir.Condition("opaque", ir.Opaque(
                f"-p {proto.name}", f"protocol {proto.name!r} is not known to trustwall")))
        else:
            if number != 0 or proto.negated:  # -p all: any packet; ! -p all: none
                out.append(ir.Condition("proto", ir.Protocol(number, proto.negated)))
    for name, addr in (("src", rule.source), ("dst", rule.destination)):
        if addr is not None:
            out.append(ir.Condition(name, address_mask(addr)))
    for name, iface in (("iif", rule.in_interface), ("oif", rule.out_interface)):
        if iface is not None:
            out.append(ir.Condition(name, iface.to_ir()))
    if rule.fragment is not None:
        out.append(ir.Condition("fragment", ir.Fragment(negated=not rule.fragment)))
    return tuple(out)


def address_mask(addr: Address) -> ir.AddressMask:
    if addr.mask is not None:
        value, mask = addr.mask
    else:
        value, mask = int(addr.network.network_address), int(addr.network.netmask)
    return ir.AddressMask(addr.network.version, value, mask, addr.negated)


def action(target: Target | None, chains: frozenset[str] = frozenset()) -> ir.Action:
    """What ``-j``/``-g`` does, from the target's registry row (``effect``, ``rewrite``)."""
    if target is None:
        return ir.Action("continue")
    name = target.name
    if name in chains:
        return ir.Action("goto" if target.goto else "jump", chain=name, name=name)
    row = ext.TARGET_EXTENSIONS.get(name)
    effect = row.effect if row is not None else None
    rewrite = row.rewrite(target) if row is not None and row.rewrite is not None else None
    if effect == "final":
        kind = _FINAL_KINDS.get(name, "drop")
        return ir.Action(kind, name=reject_text(target) if name == "REJECT" else name,
                         verdict="QUEUE" if kind == "queue" else name)
    if effect in ("accept", "return", "nat", "continue", "ends"):
        return ir.Action(effect, rewrite=rewrite, name=name)
    return ir.Action("unknown", name=name)


def reject_text(target: Target) -> str:
    """REJECT with its ``--reject-with`` (two REJECTs answer differently)."""
    opt = target.option("reject-with")
    return f"REJECT {opt.value if opt and opt.value else 'icmp-port-unreachable'}"

