"""A planned change in iptables' own words: the rule ``fw allow|deny|reject`` builds, the
``iptables -I/-A/-D`` command that makes it, and the edits of the model a delete plans on.

``analysis.plan`` decides *where* and *what changes* on the IR; it asks this module (the
frontend) for everything that is iptables syntax.
"""

from __future__ import annotations

from dataclasses import replace

from trustwall.errors import BadInput
from trustwall.firewall.iptables import fields
from trustwall.firewall.iptables.model import Match, Option, Rule, Ruleset
from trustwall.firewall.iptables.parse import parse_rule_spec
from trustwall.firewall.iptables.render import render_command, render_rule


def build_rule(verdict: str, *, chain: str = "INPUT", proto: str | None = None,
               dport: str | None = None, sport: str | None = None, src: str | None = None,
               dst: str | None = None, state: str | None = None, in_iface: str | None = None,
               out_iface: str | None = None, comment: str | None = None,
               reject_with: str | None = None, family: int = 4) -> Rule:
    """The rule ``iptables`` would build from these options, in canonical (save) form."""
    words: list[str] = []
    for flag, value in (("-s", src), ("-d", dst), ("-i", in_iface), ("-o", out_iface),
                        ("-p", proto)):
        if value:
            words += [flag, value]
    if state:
        words += ["-m", "state", "--state", state.upper()]
    if (dport or sport) and not proto:
        raise BadInput("--dport/--sport need --proto (tcp, udp, sctp …)")
    if dport or sport:
        words += ["-m", proto]  # type: ignore[list-item]
        if sport:
            words += ["--sport", sport]
        if dport:
            words += ["--dport", dport]
    if comment:
        words += ["-m", "comment", "--comment", comment]
    words += ["-j", verdict]
    if verdict == "REJECT" and reject_with:
        words += ["--reject-with", reject_with]
    rule = parse_rule_spec(words, chain=chain, family=family)
    fields.check_rule(rule)  # --comment/--in/--out/--chain reach iptables-restore as text
    return rule


def keep_invalid_out(rule: Rule) -> Rule:
    """``rule`` with ``-m conntrack ! --ctstate INVALID``: every other state as asked."""
    return replace(rule, matches=(*rule.matches, Match("conntrack", (
        Option("ctstate", True, ("INVALID",)),))), text="")


def insert_command(rule: Rule, *, table: str, family: int, position: int | None) -> str:
    """``iptables -I CHAIN N …`` (``position`` None: ``-A CHAIN …``)."""
    if position is None:
        return render_command(rule, table=table, family=family, action="-A")
    return render_command(rule, table=table, family=family, action="-I", number=position)


def delete_command(*, table: str, chain: str, number: int, family: int) -> str:
    prefix = "ip6tables" if family == 6 else "iptables"
    table_opt = f" -t {table}" if table != "filter" else ""
    return f"{prefix}{table_opt} -D {chain} {number}"


def find_rule(ruleset: Ruleset, table: str, chain: str, spec: str) -> int:
    """The number of the first rule equal to ``spec`` (what ``iptables -D CHAIN spec`` removes)."""
    target = parse_rule_spec(spec, chain=chain, family=ruleset.family)
    c = ruleset.chain(table, chain)
    if c is None:
        raise BadInput(f"no chain {chain} in table {table}")
    for number, rule in enumerate(c.rules, 1):
        if rule == target:
            return number
    raise BadInput(f"no rule in {table} {chain} matches: {render_rule(target)}")


def without_rule(ruleset: Ruleset, table: str, chain: str, number: int) -> Ruleset:
    tables = []
    for t in ruleset.tables:
        if t.name == table:
            chains = tuple(replace(c, rules=c.rules[:number - 1] + c.rules[number:])
                           if c.name == chain else c for c in t.chains)
            t = replace(t, chains=chains)
        tables.append(t)
    return replace(ruleset, tables=tuple(tables))
