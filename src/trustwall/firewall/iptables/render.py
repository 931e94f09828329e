"""The model -> text: iptables-save, the ``iptables -L -n -v --line-numbers`` table, commands.

``render_save`` prints what the kernel's iptables-save (1.8.9, nft backend) prints for the same
rules, apart from the two ``#`` comment lines with a date; the parser has already brought every
value to its save spelling, so this is a walk over the model plus the quoting rules of
xtables_save_string.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from trustwall.errors import BadInput
from trustwall.firewall.iptables import extensions as ext
from trustwall.firewall.iptables.extensions import save_string
from trustwall.firewall.iptables.model import (
    HOOKS,
    Address,
    Chain,
    Match,
    Option,
    Rule,
    Ruleset,
    Target,
)
from trustwall.firewall.protocols import protocol_number


def _plain(value: str) -> str:
    """A value iptables prints with printf: quoted only if it would not survive restore."""
    if value and not any(c in value for c in " \t\"'\\"):
        return value
    return save_string(value)


def _always_quoted(value: str) -> str:
    escaped = "".join("\\" + c if c in "\"\\" else c for c in value)
    return f'"{escaped}"'


def _option_words(opt: Option, string_opts: frozenset[str],
                  quoted_opts: frozenset[str] = frozenset()) -> list[str]:
    words = ["!"] if opt.negated else []
    words.append("--" + opt.name)
    quote = save_string if opt.name in string_opts else _plain
    if opt.name in quoted_opts:
        quote = _always_quoted
    words.extend(quote(v) for v in opt.values)
    return words


def _string_options(spec: ext.ExtSpec | None,
                    kinds: frozenset[str] = ext.STRING_KINDS) -> frozenset[str]:
    if spec is None:
        return frozenset()
    return frozenset(o.name for o in spec.options if o.kind in kinds)


def match_words(match: Match) -> list[str]:
    words = ["-m", match.module]
    spec = ext.MATCHES.get(match.module)
    strings = _string_options(spec)
    quoted = _string_options(spec, ext.QUOTED_KINDS)
    for opt in match.options:
        words += _option_words(opt, strings, quoted)
    return words


def target_words(target: Target) -> list[str]:
    words = ["-g" if target.goto else "-j", target.name]
    spec = ext.TARGETS.get(target.name)
    strings = _string_options(spec)
    quoted = _string_options(spec, ext.QUOTED_KINDS)
    for opt in target.options:
        words += _option_words(opt, strings, quoted)
    return words


def rule_words(rule: Rule) -> list[str]:
    """The words after ``-A CHAIN`` in iptables-save order."""
    words: list[str] = []

    def neg(flag: bool) -> None:
        if flag:
            words.append("!")

    if rule.source is not None:
        neg(rule.source.negated)
        words += ["-s", rule.source.text]
    if rule.destination is not None:
        neg(rule.destination.negated)
        words += ["-d", rule.destination.text]
    if rule.in_interface is not None:
        neg(rule.in_interface.negated)
        words += ["-i", rule.in_interface.name]
    if rule.out_interface is not None:
        neg(rule.out_interface.negated)
        words += ["-o", rule.out_interface.name]
    if rule.protocol is not None:
        neg(rule.protocol.negated)
        words += ["-p", rule.protocol.name]
    if rule.fragment is not None:
        neg(not rule.fragment)
        words.append("-f")
    for m in rule.matches:
        words += match_words(m)
    if rule.target is not None:
        words += target_words(rule.target)
    return words


def rule_spec(rule: Rule) -> str:
    """``-p tcp -m tcp --dport 22 -j ACCEPT`` (no chain)."""
    return " ".join(rule_words(rule))


def render_rule(rule: Rule, *, counters: bool = False) -> str:
    """One iptables-save line: ``-A CHAIN ...`` (with ``[p:b]`` first when ``counters``)."""
    line = " ".join(["-A", rule.chain, *rule_words(rule)])
    if counters:
        c = rule.counters
        line = f"[{c.packets if c else 0}:{c.bytes if c else 0}] {line}"
    return line


def render_command(rule: Rule, *, table: str = "filter", family: int = 4, action: str = "-A",
                   number: int | None = None) -> str:
    """The shell command that adds ``rule`` (``iptables -t nat -I PREROUTING 3 ...``)."""
    argv = ["ip6tables" if family == 6 else "iptables"]
    if table != "filter":
        argv += ["-t", table]
    argv += [action, rule.chain]
    if number is not None:
        argv.append(str(number))
    return " ".join([*argv, *(shlex.quote(w) if w != "!" else w for w in
                              _unquoted_words(rule))])


def _unquoted_words(rule: Rule) -> list[str]:
    """Rule words for argv use: values raw, not restore-quoted."""
    return [w[1:-1].replace('\\"', '"').replace("\\\\", "\\").replace("\\'", "'")
            if len(w) >= 2 and w[0] == '"' and w[-1] == '"' else w for w in rule_words(rule)]


def save_order(chains: tuple[Chain, ...]) -> list[Chain]:
    """Built-in chains in hook order, then user chains sorted by name, as iptables-save does."""
    builtin = [c for c in chains if c.builtin]
    hooks = {name: i for i, name in enumerate(HOOKS)}
    builtin.sort(key=lambda c: hooks.get(c.name, len(hooks)))
    return builtin + sorted((c for c in chains if not c.builtin), key=lambda c: c.name)


def render_save(ruleset: Ruleset, *, table: str | None = None, counters: bool = False) -> str:
    """iptables-save text (without the dated ``#`` comment lines)."""
    out: list[str] = []
    for t in ruleset.tables:
        if table is not None and t.name != table:
            continue
        out.append(f"*{t.name}")
        chains = save_order(t.chains)
        for c in chains:
            cc = c.counters
            ctr = f"[{cc.packets if cc else 0}:{cc.bytes if cc else 0}]"
            out.append(f":{c.name} {c.policy or '-'} {ctr}")
        for c in chains:
            out.extend(render_rule(r, counters=counters) for r in c.rules)
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""


# -- iptables -L -n [-v] [-x] --line-numbers ---------------------------------------------------

def _num(n: int, exact: bool, width: int = 5) -> str:
    """xtables_print_num: exact ``%8llu`` or K/M/G/T with rounding in 5 columns."""
    if exact:
        return f"{n:8d} "
    if n <= 99999:
        return f"{n:{width}d} "
    for unit in "KMGT":
        n = (n + 500) // 1000
        if n <= 9999 or unit == "T":
            return f"{n:{width - 1}d}{unit} "
    raise AssertionError("unreachable")


def _policy_num(n: int, exact: bool) -> str:
    if exact or n <= 99999:
        return f"{n} "
    for unit in "KMGT":
        n = (n + 500) // 1000
        if n <= 9999 or unit == "T":
            return f"{n}{unit} "
    raise AssertionError("unreachable")


def _match_l(m: Match) -> str:
    """The trailing text ``iptables -L -n`` prints for one match (libxt_*.c print functions)."""
    row = ext.MATCH_EXTENSIONS.get(m.module)
    text = row.listing(m) if row is not None and row.listing is not None else None
    return f" {m.module}" + ext.dashless(m.options) if text is None else text


def _target_l(t: Target) -> str:
    row = ext.TARGET_EXTENSIONS.get(t.name)
    text = row.listing(t) if row is not None and row.listing is not None else None
    return ext.dashless(t.options) if text is None else text


def _addr_l(addr: Address | None, family: int) -> str:
    if addr is None:
        return "0.0.0.0/0" if family == 4 else "::/0"
    return addr.short


def listing_line(rule: Rule, number: int, *, family: int = 4, verbose: bool = False,
                 exact: bool = False) -> str:
    """One rule as ``iptables -L -n [-v] [-x] --line-numbers`` prints it (nft backend)."""
    out = [f"{number:<4d} "]
    if verbose:
        c = rule.counters
        out.append(_num(c.packets if c else 0, exact) + _num(c.bytes if c else 0, exact))
    target = rule.target.name if rule.target is not None else ""
    if target == "NOTRACK":
        target = "CT"  # nft stores -j NOTRACK as a CT expression and lists it so
    out.append(f"{target:<9} ")
    proto = rule.protocol
    out.append("!" if proto is not None and proto.negated else " ")
    number_of = protocol_number(proto.name) if proto is not None else 0
    out.append(f"{number_of:<5d}")
    frag = rule.fragment
    out.append(("!" if frag is False else "-") + ("f" if frag is not None else "-") + " ")
    if verbose:
        for lead, iface in ((" ", rule.in_interface), ("", rule.out_interface)):
            name = "*" if iface is None else ("!" if iface.negated else "") + iface.name
            out.append(f"{lead}{name:<6} ")
    for addr in (rule.source, rule.destination):
        out.append("!" if addr is not None and addr.negated else " ")
        out.append(f"{_addr_l(addr, family):<19} ")
    if rule.target is not None and rule.target.goto:
        out.append("[goto] ")
    for m in rule.matches:
        out.append(_match_l(m))
    if rule.target is not None:
        out.append(_target_l(rule.target))
    return "".join(out)


@dataclass(frozen=True)
class ListedRule:
    """One row of ``fw show --json``."""

    number: int
    packets: int | None
    bytes: int | None
    target: str | None
    rule: str  # the save form after -A CHAIN
    text: str  # the line iptables -L prints


@dataclass(frozen=True)
class ListedChain:
    name: str
    policy: str | None
    references: int
    rules: tuple[ListedRule, ...]


@dataclass(frozen=True)
class Listing:
    """What ``fw show`` shows: one table (and optionally one chain) of one family."""

    family: int
    table: str
    chains: tuple[ListedChain, ...]


def _references(ruleset: Ruleset, table: str) -> dict[str, int]:
    refs: dict[str, int] = {}
    t = ruleset.table(table)
    if t is None:
        return refs
    for r in t.rules:
        if r.target is not None:
            refs[r.target.name] = refs.get(r.target.name, 0) + 1
    return refs


def _chains_to_list(ruleset: Ruleset, table: str, chain: str | None) -> list[Chain]:
    t = ruleset.table(table)
    if t is None:
        raise BadInput(f"table {table!r} is not in this ruleset",
                       hint="tables here: " + (", ".join(x.name for x in ruleset.tables) or
                                               "none"))
    if chain is None:
        return save_order(t.chains)
    c = t.chain(chain)
    if c is None:
        raise BadInput(f"no chain {chain!r} in table {table}")
    return [c]


def listing_view(ruleset: Ruleset, table: str = "filter", chain: str | None = None) -> Listing:
    """The typed result behind ``fw show`` (also its --json)."""
    refs = _references(ruleset, table)
    chains = []
    for c in _chains_to_list(ruleset, table, chain):
        rows = tuple(ListedRule(
            i, r.counters.packets if r.counters else None, r.counters.bytes if r.counters else None,
            r.target_name, rule_spec(r),
            listing_line(r, i, family=ruleset.family, verbose=True, exact=True))
            for i, r in enumerate(c.rules, 1))
        chains.append(ListedChain(c.name, c.policy, refs.get(c.name, 0), rows))
    return Listing(ruleset.family, table, tuple(chains))


def render_listing(ruleset: Ruleset, table: str = "filter", chain: str | None = None, *,
                   verbose: bool = False, exact: bool = False) -> str:
    """``iptables [-t T] -L [CHAIN] -n [-v] [-x] --line-numbers``, as the nft backend prints."""
    refs = _references(ruleset, table)
    blocks = []
    for c in _chains_to_list(ruleset, table, chain):
        if c.builtin:
            head = f"Chain {c.name} (policy {c.policy}"
            if verbose:
                cc = c.counters
                head += (f" {_policy_num(cc.packets if cc else 0, exact)}packets, "
                         f"{_policy_num(cc.bytes if cc else 0, exact)}bytes")
            head += ")"
        else:
            head = f"Chain {c.name} ({refs.get(c.name, 0)} references)"
        cols = "num  "
        if verbose:
            cols += f"{'pkts':>8} {'bytes':>10} " if exact else f"{'pkts':>5} {'bytes':>5} "
        cols += f"{'target':<9}  prot opt"
        if verbose:
            cols += f" {'in':<6} {'out':<6} "
        cols += f" {'source':<19}  {'destination':<19} "
        lines = [head, cols]
        lines += [listing_line(r, i, family=ruleset.family, verbose=verbose, exact=exact)
                  for i, r in enumerate(c.rules, 1)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)
