"""What iptables itself refuses or leaves dead, found in the model (the iptables half of lint).

Lint's coverage analysis reads only the IR; these checks are about iptables' own structure
and rules of placement (built-in chains per table, where each target may run, ``-i``/``-o``
per hook, chains that nothing jumps to, expired temporary rules), so they live with the
frontend and answer in plain tuples that ``analysis.lint`` turns into findings.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from trustwall.firewall.iptables import extensions as ext
from trustwall.firewall.iptables.model import (
    BUILTIN_CHAINS,
    HOOKS,
    NO_IN_HOOKS,
    NO_OUT_HOOKS,
    Rule,
    Ruleset,
    Table,
    is_valid_hook,
)


class Problem(NamedTuple):
    kind: str  # a lint finding kind: invalid, empty_chain, unreachable_chain, missing_chain, …
    table: str
    chain: str
    rule: int | None
    text: str
    explanation: str


def rule_text(rule: Rule) -> str:
    """The rule as read (or rendered, when built in code)."""
    from trustwall.firewall.iptables.render import render_rule  # render imports extensions

    return rule.text or render_rule(rule)


def _is_user_target(table: Table, name: str) -> bool:
    c = table.chain(name)
    return c is not None and not c.builtin


def structure(ruleset: Ruleset, now: dt.datetime) -> list[Problem]:
    """Chains and jumps iptables refuses or never runs, and expired temporary rules."""
    from trustwall.firewall.change.policy import rule_expiry  # policy imports the analyses

    out: list[Problem] = []
    for table in ruleset.tables:
        reached: set[str] = set()
        todo = [c.name for c in table.chains if c.builtin]
        while todo:
            name = todo.pop()
            if name in reached:
                continue
            reached.add(name)
            chain = table.chain(name)
            for rule in chain.rules if chain is not None else ():
                t = rule.target_name
                if t and _is_user_target(table, t):
                    todo.append(t)
        for chain in table.chains:
            if chain.builtin and not is_valid_hook(table.name, chain.name):
                out.append(Problem(
                    "invalid", table.name, chain.name, None, f":{chain.name} {chain.policy}",
                    f"table {table.name} has no built-in chain {chain.name} "
                    f"(it has {', '.join(BUILTIN_CHAINS.get(table.name, ()))}); "
                    "iptables-restore refuses this file"))
            if not chain.builtin and not chain.rules:
                out.append(Problem("empty_chain", table.name, chain.name, None,
                                   f":{chain.name} -", "user chain has no rules; "
                                   "a jump to it does nothing"))
            if not chain.builtin and chain.name not in reached:
                out.append(Problem(
                    "unreachable_chain", table.name, chain.name, None, f":{chain.name} -",
                    "no built-in chain jumps to it (directly or through other "
                    "chains), so none of its rules ever sees a packet"))
            for number, rule in enumerate(chain.rules, 1):
                t = rule.target_name
                if t and not (_is_user_target(table, t) or t in ext.TARGET_NAMES):
                    if table.chain(t) is not None:
                        out.append(Problem(
                            "invalid", table.name, chain.name, number, rule_text(rule),
                            f"jump to the built-in chain {t}; the kernel refuses "
                            "jumps to built-in chains"))
                    else:
                        out.append(Problem(
                            "missing_chain", table.name, chain.name, number, rule_text(rule),
                            f"jumps to {t}, which is neither a chain of table "
                            f"{table.name} nor a target iptables knows; iptables-restore "
                            "refuses the file (--test does not notice)"))
                when = rule_expiry(rule)  # tw:<name> expires=<ISO 8601>
                if when is not None and when <= now:
                    out.append(Problem(
                        "expired", table.name, chain.name, number, rule_text(rule),
                        f"temporary rule expired at {when.isoformat()}; "
                        f"remove it: iptables -t {table.name} -D {chain.name} {number}"))
    return out


def placement(table: str, hook: str, rule: Rule) -> str | None:
    """Why the kernel refuses ``rule`` in ``hook`` of ``table`` (also when a user chain
    reached from there holds it), or None."""
    row = ext.TARGET_EXTENSIONS.get(rule.target_name or "")
    if (row is not None and not (row.tables is None or table in row.tables)) or \
            (row is not None and not (row.hooks is None or hook in row.hooks)):
        tables = ", ".join(sorted(row.tables or ())) or "any"
        return (f"{rule.target_name} is valid only in table(s) {tables}"
                f", chains {', '.join(sorted(row.hooks or HOOKS))}")
    if rule.in_interface is not None and hook in NO_IN_HOOKS:
        return f"-i cannot be used in {hook} (no input interface there)"
    if rule.out_interface is not None and hook in NO_OUT_HOOKS:
        return f"-o cannot be used in {hook} (no output interface yet)"
    return None
