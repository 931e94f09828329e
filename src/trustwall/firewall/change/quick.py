"""Quick changes without a policy file: one rule, placed by the planner, applied safely.

``fw allow … --apply [--for 2h]`` and Ansible's ``firewall_rule`` both come here: the rule is
put where :func:`trustwall.firewall.analysis.plan.plan_insert` says it decides all of its
packets, and the resulting ruleset goes through
:func:`trustwall.firewall.change.apply.apply_rulesets` (the same checks, journal, confirmation
window and persistence as a policy apply). A temporary rule
carries ``tw:<name> expires=<time>`` in its comment, which ``fw expire`` reads in the kernel.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import replace

from trustwall.errors import BadInput, ProblemFound
from trustwall.firewall.change.apply import ApplyResult, Options, apply_rulesets
from trustwall.firewall.change.policy import COMMENT_PREFIX, NAME_RE, format_time, parse_time
from trustwall.firewall.iptables.model import Chain, Rule, Ruleset, Table, builtin_chains

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_expiry(value: str, now: _dt.datetime | None = None) -> _dt.datetime:
    """An ISO 8601 time, or a duration from now such as ``90m``, ``2h``, ``1d``."""
    text = value.strip()
    found = re.fullmatch(r"(\d+)([smhd])", text)
    if found:
        now = now or _dt.datetime.now(_dt.timezone.utc)
        return now + _dt.timedelta(seconds=int(found[1]) * _UNITS[found[2]])
    try:
        return parse_time(text)
    except ValueError:
        raise BadInput(f"{value!r} is neither an ISO time nor a duration such as 2h") from None


def derived_name(verdict: str, *, proto: str | None = None, dport: str | None = None,
                 sport: str | None = None, src: str | None = None) -> str:
    """A name for a temporary rule the user did not name: what it does, e.g.
    ``allow-tcp-18745`` (ports ``a:b`` and lists ``a,b`` kept readable, ``/`` as ``_``)."""
    command = {"ACCEPT": "allow", "DROP": "deny"}.get(verdict.upper(), verdict.lower())
    parts = [command, proto or "all", dport or sport or "", src or ""]
    text = "-".join(p for p in parts if p).replace(",", "_").replace("/", "_")
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", text)[:63]


def rule_tag(name: str | None, expires: _dt.datetime | None, comment: str | None = None
             ) -> str | None:
    """The comment a quick rule carries: ``tw:NAME[ expires=ISO]`` when named, else
    ``comment`` as given. A temporary rule needs a name: the comment carries both."""
    if not name:
        if expires is not None:
            raise BadInput("a temporary rule needs --name (its comment carries the expiry)")
        return comment
    if not NAME_RE.match(name):
        raise BadInput(f"bad rule name {name!r} (letters, digits, _ . : -; at most 63)")
    text = f"{COMMENT_PREFIX}{name}"
    if expires is not None:
        text += f" expires={format_time(expires)}"
    return text


def with_chain(ruleset: Ruleset, table: str, chain: str) -> Ruleset:
    """``ruleset`` with ``table``/``chain`` present (a fresh host has no tables at all)."""
    t = ruleset.table(table)
    if t is not None and t.chain(chain) is not None:
        return ruleset
    if t is None:
        t = Table(table, tuple(Chain(name, "ACCEPT") for name in builtin_chains(table)))
    if t.chain(chain) is None:
        t = replace(t, chains=(*t.chains, Chain(chain)))
    others = tuple(x for x in ruleset.tables if x.name != table)
    return replace(ruleset, tables=(*others, t))


def set_rules(ruleset: Ruleset, table: str, chain: str, rules: list[Rule]) -> Ruleset:
    return replace(ruleset, tables=tuple(
        replace(t, chains=tuple(replace(c, rules=tuple(rules)) if c.name == chain else c
                                for c in t.chains)) if t.name == table else t
        for t in ruleset.tables))


def plan_target(live: Ruleset, rule: Rule, table: str, state: str = "present",
                name: str | None = None) -> tuple[Ruleset, int | None, str]:
    """The ruleset to hold, the rule's position and why.

    present: the rule stays where it is if it is there and in effect (some packets' verdict
    depends on it) — so a narrower exception placed in front of it later does not make it
    move back on every run; otherwise every copy (and every rule of the same name) is removed
    and the rule is inserted where the planner says it decides its packets.
    absent: every copy removed.
    """
    from trustwall.firewall.analysis.plan import diff, plan_insert
    from trustwall.firewall.change.policy import rule_name

    live = with_chain(live, table, rule.chain)
    chain = live.chain(table, rule.chain)
    assert chain is not None
    current = list(chain.rules)
    others = [r for r in current if r != rule and not (name and rule_name(r) == name)]
    base = set_rules(live, table, rule.chain, others)
    if state == "absent":
        return base, None, f"removes {len(current) - len(others)} rule(s)"
    if (rule in current and len(others) == len(current) - 1
            and diff(live, base, tables=(table,)).different):
        return live, current.index(rule) + 1, "already in place and in effect"
    plan = plan_insert(base, rule, table=table)
    if not plan.feasible:
        raise ProblemFound("no position in this chain decides all of these packets: "
                           + "; ".join(plan.in_the_way))
    if plan.position is None:  # earlier rules already give these packets this verdict
        return base if len(others) != len(current) else live, None, plan.explanation
    rules = [*others[:plan.position - 1], plan.rule or rule, *others[plan.position - 1:]]
    return set_rules(live, table, rule.chain, rules), plan.position, plan.explanation


def apply_rule(rule: Rule, *, table: str = "filter", state: str = "present",
               name: str | None = None, family: int = 4, options: Options | None = None,
               live: Ruleset | None = None) -> tuple[ApplyResult, int | None, str]:
    """Plan and apply one rule (or its removal) on the live firewall of ``family``."""
    from trustwall.firewall.iptables.live import read_live

    live = live if live is not None else read_live(family=family)
    target, position, why = plan_target(live, rule, table, state, name)
    result = apply_rulesets({live.family: target}, live={live.family: live},
                            description=_headline(rule, table, state, position) + "\n" + why,
                            kind="fw-rule", options=options)
    return result, position, why


def _headline(rule: Rule, table: str, state: str, position: int | None) -> str:
    """The journal's first line for a quick rule: the rule itself (``log`` shows this line)."""
    from trustwall.firewall.iptables.render import rule_spec

    where = f"{table} {rule.chain}" + (f" rule {position}" if position else "")
    return f"{'add' if state == 'present' else 'remove'} {where}: {rule_spec(rule)}"


def delete_rule(table: str, chain: str, number: int, *, family: int = 4,
                options: Options | None = None, live: Ruleset | None = None) -> ApplyResult:
    """Remove rule ``number`` of ``chain`` (as ``--line-numbers`` counts) from the kernel."""
    from trustwall.firewall.analysis.plan import without_rule
    from trustwall.firewall.iptables.live import read_live

    live = live if live is not None else read_live(family=family)
    chain_ = live.chain(table, chain)
    if chain_ is None or not 1 <= number <= len(chain_.rules):
        raise BadInput(f"{table} {chain} has no rule {number}")
    return apply_rulesets({family: without_rule(live, table, chain, number)},
                          live={family: live}, kind="fw-rule", options=options,
                          description=f"delete {table} {chain} rule {number}: "
                                      f"{chain_.rules[number - 1].text}")
