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
  - "On a host whose firewall belongs to firewalld or ufw the change goes through the manager
    (firewall-cmd in the zone the packet lands in, runtime and permanent; ufw allow/insert/delete),
    journaled so C(trustwall undo) restores it exactly: check mode returns the plan, diff mode
    shows the manager's commands, and the result names the O(owner)."
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
  confirm_within: {description: 'Roll back after N seconds unless confirmed (firewall_policy confirm: true); unset: 60 over SSH, 0 turns it off', type: int}
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
owner: {description: The firewall's manager the change went through (firewalld or ufw), type: str, returned: on a managed host}
commands: {description: The manager's commands (planned in check mode), type: list, returned: on a managed host}
"""


from ansible.module_utils.basic import AnsibleModule
from ansible_collections.trustwall.core.plugins.module_utils.trustwall_common import (
    fail,
    require_trustwall,
)
from ansible_collections.trustwall.core.plugins.module_utils.trustwall_firewall import (
    FIREWALL_ARGS,
    MANAGERS,
    apply_targets,
    apply_through_owner,
)

VERDICTS = {"allow": "ACCEPT", "deny": "DROP", "reject": "REJECT"}


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
    from trustwall.firewall.analysis.plan import build_rule
    from trustwall.firewall.change.quick import parse_expiry, plan_target, rule_tag, with_chain
    from trustwall.firewall.iptables.live import read_live
    from trustwall.firewall.owners.detect import detect

    p = module.params
    try:
        family = p["ip_version"]
        live = read_live(family=family)
        ownership = detect(rulesets=[live])
        if ownership.host in MANAGERS:
            module.exit_json(**apply_through_owner(module, owner_request(p), live, ownership))
        rule = build_rule(VERDICTS[p["action"]], chain=p["chain"], proto=p["proto"],
                          dport=p["dport"], sport=p["sport"], src=p["src"], dst=p["dst"],
                          state=p["ctstate"], in_iface=p["in_interface"],
                          out_iface=p["out_interface"],
                          comment=rule_tag(p["name"],
                                           parse_expiry(p["expires"]) if p["expires"] else None,
                                           p["comment"]),
                          reject_with=p["reject_with"], family=family)
        live = with_chain(live, p["table"], p["chain"])
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


def owner_request(p):
    """The task as an owner request (trustwall.firewall.owners.base.Request), as ``trustwall
    fw allow|deny|reject|delete`` builds it: an IP family only when the task names an address
    or ip_version 6 (a manager opens a port for both families at once)."""
    import datetime as _dt

    from trustwall.firewall.change.quick import parse_expiry
    from trustwall.firewall.owners.base import Request

    duration = None
    if p["expires"]:
        left = parse_expiry(p["expires"]) - _dt.datetime.now(_dt.timezone.utc)
        duration = max(1, int(left.total_seconds()))
    family = p["ip_version"] if p["ip_version"] == 6 or p["src"] or p["dst"] else None
    absent = p["state"] == "absent"
    return Request("delete" if absent else p["action"], proto=p["proto"], dport=p["dport"],
                   sport=p["sport"], src=p["src"], dst=p["dst"], in_iface=p["in_interface"],
                   family=family, duration=duration, name=p["name"], comment=p["comment"],
                   chain=None if p["chain"] == "INPUT" else p["chain"], table=p["table"],
                   state=p["ctstate"], out_iface=p["out_interface"],
                   reject_with=p["reject_with"], removes=p["action"] if absent else None)


if __name__ == "__main__":
    main()
