#!/usr/bin/python
# ruff: noqa: E402, E501  (Ansible: DOCUMENTATION/EXAMPLES/RETURN come before the imports)
"""Ansible module trustwall.core.firewall_rule: one position-aware rule through the planner."""

from __future__ import annotations

DOCUMENTATION = r"""
module: firewall_rule
short_description: Allow, deny or delete one iptables rule at the position where it works
description:
  - "Unlike C(ansible.builtin.iptables), the rule goes where it takes effect: directly before
    the first rule that would otherwise decide some of its packets differently (so
    ESTABLISHED,RELATED and other early rules stay first), or appended when nothing is in the
    way. trustwall's planner works this out from the live ruleset."
  - "Idempotent by position, not only by presence: the same rule already in effect is C(ok);
    a copy at a position where it decides nothing is moved where it does."
  - Applied like a policy (one atomic restore, lockout check against Ansible's own SSH
    connection, optional confirm-or-rollback); check mode and diff mode as firewall_policy.
options:
  action: {description: What the rule does, type: str, choices: [allow, deny, reject], default: allow}
  state: {description: present or absent, type: str, choices: [present, absent], default: present}
  chain: {description: Chain, type: str, default: INPUT}
  table: {description: Table, type: str, default: filter}
  ip_version: {description: 4 or 6, type: int, choices: [4, 6], default: 4}
  proto: {description: Protocol (tcp, udp, icmp ...), type: str}
  dport: {description: Destination port or range a:b, type: str}
  sport: {description: Source port or range, type: str}
  src: {description: Source address or CIDR, type: str}
  dst: {description: Destination address or CIDR, type: str}
  ctstate: {description: Conntrack states such as NEW, type: str}
  in_interface: {description: Input interface, type: str}
  out_interface: {description: Output interface, type: str}
  comment: {description: Rule comment (ignored when O(name) is set), type: str}
  name:
    description:
      - Names the rule (comment C(tw:NAME), as a policy entry's); a rule of that name is
        replaced, so re-running with new matches or a new expiry moves it rather than adding one.
    type: str
  expires:
    description:
      - With O(name), when C(trustwall fw expire) (the systemd timer) removes the rule
        from the kernel. An ISO 8601 time (UTC if no zone) or a duration from now, C(2h),
        C(30m), C(1d). A duration gives a new expiry on every run (the rule is replaced).
    type: str
  reject_with: {description: ICMP error or tcp-reset for reject, type: str}
  confirm_within: {description: 'Roll back after N seconds unless confirmed (firewall_policy confirm: true)', type: int, default: 0}
  force: {description: Apply despite the lockout check, type: bool, default: false}
  keep: {description: More flows that must survive, type: list, elements: str, default: []}
  persist: {description: Write the distro boot file if it has one, type: bool, default: true}
  persist_file: {description: IPv4 boot file to write, type: path}
  state_dir: {description: trustwall journal directory, type: path}
"""

EXAMPLES = r"""
- name: Open JMX to the monitoring network
  trustwall.core.firewall_rule:
    action: allow
    proto: tcp
    dport: "9010"
    src: 10.20.0.0/16
    comment: jmx
"""

RETURN = r"""
position: {description: The rule's planned number in its chain, type: int, returned: present}
explanation: {description: Why that position, type: str, returned: always}
effect: {description: Semantic diff lines, type: list, returned: always}
"""

import dataclasses
import datetime

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.trustwall.core.plugins.module_utils.trustwall_common import (
    fail,
    require_trustwall,
)
from ansible_collections.trustwall.core.plugins.module_utils.trustwall_firewall import (
    FIREWALL_ARGS,
    apply_targets,
)

VERDICTS = {"allow": "ACCEPT", "deny": "DROP", "reject": "REJECT"}
UNITS = {"m": 60, "h": 3600, "d": 86400}


def rule_comment(name, expires, comment):
    """``tw:NAME[ expires=ISO]`` for a named rule (what ``fw expire`` reads), else ``comment``."""
    from trustwall.errors import BadInput
    from trustwall.firewall.policy import COMMENT_PREFIX, format_time, parse_time

    if not name:
        if expires:
            raise BadInput("expires needs a name (the rule's comment carries both)")
        return comment
    text = f"{COMMENT_PREFIX}{name}"
    if expires:
        value = expires.strip()
        if value[:-1].isdigit() and value[-1:] in UNITS:
            now = datetime.datetime.now(datetime.timezone.utc)
            moment = now + datetime.timedelta(seconds=int(value[:-1]) * UNITS[value[-1]])
        else:
            try:
                moment = parse_time(value)
            except ValueError:
                raise BadInput(f"expires {expires!r}: not an ISO time or a duration "
                               "such as 2h") from None
        text += f" expires={format_time(moment)}"
    return text


def _with_chain(ruleset, table, chain):
    """``ruleset`` with ``table``/``chain`` present (a fresh host has no tables at all)."""
    from trustwall.firewall.model import Chain, Table, builtin_chains

    t = ruleset.table(table)
    if t is not None and t.chain(chain) is not None:
        return ruleset
    if t is None:
        t = Table(table, tuple(Chain(name, "ACCEPT") for name in builtin_chains(table)))
    if t.chain(chain) is None:
        t = dataclasses.replace(t, chains=(*t.chains, Chain(chain)))
    others = tuple(x for x in ruleset.tables if x.name != table)
    return dataclasses.replace(ruleset, tables=(*others, t))


def _set_rules(ruleset, table, chain, rules):
    tables = []
    for t in ruleset.tables:
        if t.name == table:
            t = dataclasses.replace(t, chains=tuple(
                dataclasses.replace(c, rules=tuple(rules)) if c.name == chain else c
                for c in t.chains))
        tables.append(t)
    return dataclasses.replace(ruleset, tables=tuple(tables))


def plan_target(live, rule, table, state, name=None):
    """The ruleset to hold. present: the rule as it is if it is there and in effect (some
    packets' verdict depends on it), else every copy removed and the rule inserted where the
    planner says it decides its packets; absent: every copy removed.
    Returns (target, position, explanation)."""
    from trustwall.errors import ProblemFound
    from trustwall.firewall.plan import diff, plan_insert
    from trustwall.firewall.policy import rule_name

    current = live.chain(table, rule.chain).rules
    others = [r for r in current if r != rule and not (name and rule_name(r) == name)]
    base = _set_rules(live, table, rule.chain, others)
    if state == "present" and rule in current and len(others) == len(current) - 1 \
            and diff(live, base, tables=(table,)).different:
        # Present and deciding packets: keep it where it is. A later exception placed before
        # it (a narrower allow in front of a catch-all deny) must not move it back on top.
        return live, current.index(rule) + 1, "already in place and in effect"
    if state == "absent":
        return base, None, f"removes {len(current) - len(others)} copies of the rule"
    plan = plan_insert(base, rule, table=table)
    if not plan.feasible:
        raise ProblemFound("no position in this chain decides all of these packets: "
                           + "; ".join(plan.in_the_way))
    if plan.position is None:  # nothing decides these packets differently even without it
        return live, None, plan.explanation
    rules = [*others[:plan.position - 1], rule, *others[plan.position - 1:]]
    return _set_rules(live, table, rule.chain, rules), plan.position, plan.explanation


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", choices=list(VERDICTS), default="allow"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            chain=dict(type="str", default="INPUT"), table=dict(type="str", default="filter"),
            ip_version=dict(type="int", choices=[4, 6], default=4),
            proto=dict(type="str"), dport=dict(type="str"), sport=dict(type="str"),
            src=dict(type="str"), dst=dict(type="str"), ctstate=dict(type="str"),
            in_interface=dict(type="str"), out_interface=dict(type="str"),
            comment=dict(type="str"), reject_with=dict(type="str"), name=dict(type="str"),
            expires=dict(type="str"), **FIREWALL_ARGS),
        supports_check_mode=True,
    )
    require_trustwall(module)
    from trustwall.errors import TrustwallError
    from trustwall.firewall.live import read_live
    from trustwall.firewall.plan import build_rule

    p = module.params
    try:
        family = p["ip_version"]
        rule = build_rule(VERDICTS[p["action"]], chain=p["chain"], proto=p["proto"],
                          dport=p["dport"], sport=p["sport"], src=p["src"], dst=p["dst"],
                          state=p["ctstate"], in_iface=p["in_interface"],
                          out_iface=p["out_interface"],
                          comment=rule_comment(p["name"], p["expires"], p["comment"]),
                          reject_with=p["reject_with"], family=family)
        live = _with_chain(read_live(family=family), p["table"], p["chain"])
        target, position, why = plan_target(live, rule, p["table"], p["state"], p["name"])
        out, diff = apply_targets(module, {family: target}, {family: live},
                                  f"ansible: {p['state']} rule {p['action']} in {p['chain']}",
                                  "fw-rule")
        out.update(position=position, explanation=why)
        if module._diff and out["changed"]:
            out["diff"] = diff
        module.exit_json(**out)
    except TrustwallError as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
