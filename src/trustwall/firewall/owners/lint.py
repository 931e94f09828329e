"""Lint findings seen through their owners: a layer on top of analysis.lint, which it never
changes.

A manager keeps structure on purpose — ufw's logging chains stay empty until logging is on,
its ``ufw-skip-to-policy-*`` chains are only reached for some policies, firewalld's zone
chains ``_pre``/``_log``/``_deny``/``_allow``/``_post`` are empty until used. Findings about that
structure are not the operator's to fix: they are hidden (counted) unless ``--all``. Findings
about the operator's own rules inside the manager (ufw's ``ufw-user-*`` chains, from
user.rules) stay, with the manager's command to fix them. And a rule inside a manager's chains
that the manager did not make (in none of its files) is a finding of its own, ``hand_added``:
it is lost at the next reload or boot, when the manager rebuilds its chains.

Docker, kube-proxy, libvirt and fail2ban chains are read only: findings there are hidden too,
except in DOCKER-USER, the operator's own place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustwall.firewall.owners.base import READ_ONLY_OWNERS
from trustwall.firewall.owners.detect import BUILTIN_CHAINS, Ownership, chain_owner

MANAGERS = frozenset({"ufw", "firewalld"})
#: Findings between tables of one hook (analysis.lint.lint_all): never hidden as structure.
CROSS_TABLE = frozenset({"equal_priority", "dropped_later"})
#: ufw's files (rules the manager loads); user*.rules hold the operator's own rules.
UFW_FILES = {4: ("before.rules", "after.rules", "user.rules"),
             6: ("before6.rules", "after6.rules", "user6.rules")}
UFW_USER_FILES = {4: "user.rules", 6: "user6.rules"}
_UFW_USER_CHAIN = re.compile(r"^ufw6?-user-(input|output|forward)$")
_UFW_LOG = "[UFW "


@dataclass(frozen=True)
class ManagerRules:
    """The rules a manager's own files make (``made``), and which of them are the operator's
    (``user``), as parsed rules (iptables.model.Rule) keyed by (table, chain)."""

    owner: str
    made: frozenset[tuple[str, Any]]
    user: frozenset[tuple[str, Any]]
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class OwnedFinding:
    """A lint finding with its owner; ``kept_on_purpose``: structure the owner keeps (hidden
    unless --all); ``next``: how to fix it the owner's way."""

    finding: Any  # analysis.lint.Finding
    owner: str
    kept_on_purpose: bool = False
    next: str | None = None

    def to_json(self) -> dict[str, object]:
        from trustwall.jsonable import to_jsonable

        out = to_jsonable(self.finding)
        out.update({"owner": self.owner, "kept_on_purpose": self.kept_on_purpose,
                    "next": self.next})
        return out


@dataclass(frozen=True)
class OwnedLintReport:
    """``findings`` shown; ``hidden``: structure findings left out (``--all`` shows them)."""

    findings: tuple[OwnedFinding, ...]
    rules: int
    hidden: tuple[OwnedFinding, ...] = ()
    partial: tuple[str, ...] = field(default=())
    owner: str = "none"

    def to_json(self) -> dict[str, object]:
        return {"owner": self.owner, "findings": list(self.findings), "rules": self.rules,
                "hidden": len(self.hidden), "partial": list(self.partial)}


def ufw_rules(family: int, root: str = "/") -> ManagerRules | None:
    """What ufw's files under ``root``/etc/ufw make (None when there is no ufw)."""
    from trustwall.errors import ParseError
    from trustwall.firewall.iptables.parse import parse_save

    made: set[tuple[str, Any]] = set()
    user: set[tuple[str, Any]] = set()
    sources = []
    for name in UFW_FILES[family]:
        path = Path(root) / "etc/ufw" / name
        try:
            text = path.read_text(errors="surrogateescape")
            parsed = parse_save(text, family=family, source=str(path))
        except (OSError, ParseError):
            continue
        sources.append(str(path))
        for table in parsed.tables:
            for chain in table.chains:
                for rule in chain.rules:
                    made.add((table.name, rule))
                    if name == UFW_USER_FILES[family]:
                        user.add((table.name, rule))
    if not sources:
        return None
    return ManagerRules("ufw", frozenset(made), frozenset(user), tuple(sources))


def ufw_generated(rule: Any) -> bool:
    """Rules ufw's code adds beside its files (ufw backend_iptables): jumps into its own
    chains, the skip-to-policy verdicts, connection tracking of new outgoing connections,
    rate limits and every log rule (prefix ``[UFW ``)."""
    target = rule.target_name or ""
    if target.startswith(("ufw-", "ufw6-")):
        return True
    chain = rule.chain
    if re.match(r"^ufw6?-(skip-to-policy|user-limit|user-limit-accept|reject)", chain):
        return True
    if re.match(r"^ufw6?-track-", chain) and target == "ACCEPT":
        return True
    return _UFW_LOG in rule.text


def _owner(finding: Any, ownership: Ownership, family: int) -> str:
    table = str(finding.table)
    if getattr(finding, "backend", "iptables") == "nft":
        return ownership.owner_of_nft_table(finding.family, table)
    if " " in table:  # a native nft table, "inet firewalld"
        fam, _, name = table.partition(" ")
        return ownership.owner_of_nft_table(fam, name)
    version = {"ip": 4, "ip6": 6}.get(getattr(finding, "family", ""), family)
    return ownership.owner_of(table, finding.chain, version)


def _ufw_user_next(finding: Any) -> str:
    return ("fix it in ufw: `ufw status numbered`, then `ufw delete N` or `ufw insert N …` "
            "(editing the chain directly is lost at the next ufw reload)")


def owner_lint(report: Any, ruleset: Any, ownership: Ownership, *, show_all: bool = False,
               manager_rules: ManagerRules | None = None) -> OwnedLintReport:
    """``report`` (analysis.lint.LintReport for ``ruleset``) seen through ``ownership``;
    ``manager_rules``: the host manager's own rules (for ``hand_added``; None: not checked,
    said in ``partial``)."""
    shown: list[OwnedFinding] = []
    hidden: list[OwnedFinding] = []
    family = ruleset.family
    for finding in report.findings:
        owner = _owner(finding, ownership, family)
        on_purpose = False
        next_ = None
        if finding.kind in CROSS_TABLE:
            pass  # between tables: the operator's to resolve, whoever owns either side
        elif owner in READ_ONLY_OWNERS and finding.chain != "DOCKER-USER":
            on_purpose = True
        elif owner == "ufw":
            if _UFW_USER_CHAIN.match(finding.chain) and finding.rule is not None:
                next_ = _ufw_user_next(finding)
            elif finding.chain not in BUILTIN_CHAINS:
                on_purpose = True
            else:
                on_purpose = finding.rule is None or _is_made(
                    ruleset, finding, manager_rules)
        elif owner == "firewalld":
            on_purpose = True
            next_ = "firewall-cmd (its zones, services, ports, rich rules)"
        item = OwnedFinding(finding, owner, on_purpose, next_)
        (hidden if on_purpose and not show_all else shown).append(item)
    partial = list(report.partial)
    if ownership.host in MANAGERS:
        if manager_rules is None:
            partial.append(f"{ownership.host}'s own files were not read: rules added by hand "
                           "inside its chains are not reported")
        else:
            shown.extend(OwnedFinding(f, ownership.host, False, _hand_next(ownership.host))
                         for f in hand_added(ruleset, ownership, manager_rules))
    return OwnedLintReport(tuple(shown), report.rules, tuple(hidden), tuple(partial),
                           ownership.host)


def _is_made(ruleset: Any, finding: Any, rules: ManagerRules | None) -> bool:
    chain = ruleset.chain(finding.table, finding.chain)
    if chain is None or finding.rule is None or not 1 <= finding.rule <= len(chain.rules):
        return False
    rule = chain.rules[finding.rule - 1]
    return ufw_generated(rule) or (rules is not None and (finding.table, rule) in rules.made)


def _hand_next(owner: str) -> str:
    if owner == "ufw":
        return ("make it a ufw rule (`ufw allow|deny …`, or /etc/ufw/before.rules for what ufw "
                "cannot say), then remove the raw one")
    return "make it through firewall-cmd (a port, service or rich rule), then remove the raw one"


def hand_added(ruleset: Any, ownership: Ownership, rules: ManagerRules) -> list[Any]:
    """Rules in the manager's chains (and in the built-in chains it hooks) that none of its
    files or code makes: gone at the next reload or boot."""
    from trustwall.firewall.analysis.lint import Finding

    out = []
    for table in ruleset.tables:
        for chain in table.chains:
            if ownership.owner_of(table.name, chain.name, ruleset.family) != rules.owner:
                continue
            for number, rule in enumerate(chain.rules, 1):
                if (table.name, rule) in rules.made or ufw_generated(rule):
                    continue
                target = rule.target_name or ""
                if chain_owner(target, ownership.host) in READ_ONLY_OWNERS:
                    continue  # Docker's, fail2ban's … own jumps into their chains
                when = ("at the next `ufw reload`" if chain.name not in BUILTIN_CHAINS else
                        "at the next boot (ufw-init rebuilds from /etc/ufw; `ufw reload` keeps "
                        "it only because MANAGE_BUILTINS=no)")
                out.append(Finding(
                    "hand_added", table.name, chain.name, number, rule.text,
                    explanation=f"added by hand inside {rules.owner}'s rules and in none of "
                                f"its files: lost {when}; `{rules.owner} status` never shows "
                                "it"))
    return out
