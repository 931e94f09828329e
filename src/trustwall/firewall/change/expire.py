"""Temporary rules: remove every rule whose ``tw:`` comment says it has expired.

``fw allow --for 2h`` and a policy's ``expires:`` both end up as ``expires=<ISO>`` in the rule's
comment, so the kernel itself carries the expiry and this works without the policy file; the
systemd timer in contrib/systemd runs it every minute. On a ufw host the record is in ufw's
rule comment instead, and the rule goes through ufw (:func:`trustwall.firewall.owners.ufw.expire`).
On a firewalld host firewalld's own ``--timeout`` removes the change; the record trustwall keeps
of it is cleaned here (:func:`trustwall.firewall.owners.firewalld.expire`).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import replace

from trustwall.firewall.change.apply import ApplyResult, Options, apply_rulesets
from trustwall.firewall.change.policy import rule_expiry
from trustwall.firewall.iptables.live import read_live
from trustwall.firewall.iptables.model import Ruleset


def without_expired(ruleset: Ruleset, now: _dt.datetime) -> tuple[Ruleset, list[str]]:
    """The ruleset minus expired rules, and a line per removed rule."""
    removed = []
    tables = []
    for table in ruleset.tables:
        chains = []
        for chain in table.chains:
            keep = []
            for number, rule in enumerate(chain.rules, 1):
                expiry = rule_expiry(rule)
                if expiry is not None and expiry <= now:
                    removed.append(f"{table.name} {chain.name} {number}: {rule.comment}")
                else:
                    keep.append(rule)
            chains.append(replace(chain, rules=tuple(keep)))
        tables.append(replace(table, chains=tuple(chains)))
    return replace(ruleset, tables=tuple(tables)), removed


def expire(*, families: tuple[int, ...] = (4, 6), now: _dt.datetime | None = None,
           options: Options | None = None) -> tuple[ApplyResult, list[str]]:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    options = options or Options()
    live = {f: read_live(family=f) for f in families}
    targets, removed = {}, []
    for family, ruleset in live.items():
        pruned, gone = without_expired(ruleset, now)
        targets[family] = pruned
        removed.extend(f"ipv{family} {line}" for line in gone)
    # The timer runs unattended: no confirm window, and the operator's flow is not ours.
    options = replace(options, confirm_within=0, environ={}, session=False)
    result = apply_rulesets(targets, description=f"expire {len(removed)} temporary rule(s)",
                            kind="fw-expire", options=options, live=live)
    # ufw keeps its rules (and their tw: comments) in its own files: removed through ufw.
    from trustwall.firewall.owners import firewalld, ufw

    if ufw.owns_host():
        removed.extend(ufw.expire(now=now, options=options)[1])
    # firewalld expired its own --timeout change; trustwall's record of it goes.
    removed.extend(firewalld.expire(now=now, options=options))
    return result, removed
