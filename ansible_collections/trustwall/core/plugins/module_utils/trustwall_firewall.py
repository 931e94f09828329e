"""Firewall helpers shared by firewall_policy and firewall_rule: one apply path with
Ansible's check mode (the API's dry run), diff mode (iptables-save text before/after plus the
semantic diff) and honest ``changed``."""

from __future__ import annotations

import os

FIREWALL_ARGS = dict(
    confirm_within=dict(type="int"),  # None: trustwall's default (60 s over SSH, else off)
    force=dict(type="bool", default=False),
    keep=dict(type="list", elements="str", default=[]),
    persist=dict(type="bool", default=True),
    persist_file=dict(type="path"),
    state_dir=dict(type="path"),
)


def options_from(module, family_files=None):
    """trustwall Options from the module's parameters. trustwall finds Ansible's SSH
    connection in the kernel (become strips SSH_CONNECTION), so the lockout check protects the
    controller's flow and, unless ``confirm_within`` says otherwise, the change rolls back in
    60 s unless a ``confirm: true`` task comes in over a new connection."""
    from trustwall.firewall.change.apply import Flow, Options

    p = module.params
    persist_files = dict(family_files or {})
    if p["persist_file"]:
        persist_files[4] = p["persist_file"]
    return Options(dry_run=module.check_mode, force=p["force"],
                   keep=[Flow.parse(text) for text in p["keep"]],
                   confirm_within=(float(p["confirm_within"])
                                   if p["confirm_within"] is not None else None),
                   persist=p["persist"],
                   persist_files=persist_files, state_dir=p["state_dir"],
                   environ=dict(os.environ))


def apply_targets(module, targets, live, description, kind):
    """Apply ``targets`` (family -> Ruleset) over ``live``; returns (result dict, diff)."""
    from ansible_collections.trustwall.core.plugins.module_utils.trustwall_common import (
        jsonable,
        text_diff,
    )

    from trustwall.firewall.change.apply import apply_rulesets
    from trustwall.firewall.iptables.render import render_save

    result = apply_rulesets(targets, description=description, kind=kind,
                            options=options_from(module), live=live)
    for warning in result.warnings:
        module.warn(warning)
    if result.confirm_deadline:
        module.warn(f"this change rolls back at {result.confirm_deadline} unless a task "
                    "`trustwall.core.firewall_policy: {confirm: true}` runs over a new "
                    "connection first (confirm_within: 0 turns the window off)")
    before = "".join(render_save(live[c.family], table=t)
                     for c in result.changes for t in c.tables if live[c.family].table(t))
    after = "".join(c.restore_text for c in result.changes)
    effect = [line for c in result.changes for line in c.effect]
    out = dict(changed=result.changed, txn_id=result.txn_id,
               confirm_deadline=result.confirm_deadline, persisted=list(result.persisted),
               kept_flows=list(result.kept_flows),
               changes=jsonable([dict(family=c.family, tables=list(c.tables),
                                      effect=list(c.effect)) for c in result.changes]),
               effect=effect)
    return out, text_diff(before, after, effect)


#: Hosts whose firewall belongs to a manager: firewall_rule goes through it (its commands,
#: its files), never as a raw iptables rule the manager would lose at its next reload.
MANAGERS = ("firewalld", "ufw")


def apply_through_owner(module, request, live, ownership):
    """Plan ``request`` through the host's owner (trustwall.firewall.owners.dispatch, as
    ``trustwall fw allow`` does) and, unless in check mode, apply it, journaled. Returns the
    task result; diff mode shows the owner's commands and the effect."""
    from ansible_collections.trustwall.core.plugins.module_utils.trustwall_common import (
        jsonable,
        text_diff,
    )

    from trustwall.errors import ProblemFound
    from trustwall.firewall.owners import dispatch

    plan = dispatch.plan(request, ruleset=live, ownership=ownership)
    if plan.refused is not None:
        raise ProblemFound(f"refused ({plan.owner}): {plan.refused}", hint=plan.next)
    commands = [c.text for c in plan.commands]
    effect = [str(e) for e in plan.effect]
    out = dict(changed=bool(commands), owner=plan.owner, commands=commands, effect=effect,
               persistent=plan.persistent, notes=list(plan.notes))
    if module._diff and commands:
        out["diff"] = text_diff("", "\n".join(commands) + "\n",
                                [f"# through {plan.owner}", *commands, *effect])
    if module.check_mode or not commands:
        return out
    result = dispatch.apply(plan, options_from(module))
    done = jsonable(result.to_json() if hasattr(result, "to_json") else result)
    for warning in done.get("warnings") or ():
        module.warn(warning)
    out.update(changed=bool(done.get("applied", True)),
               txn_id=done.get("txn_id") or done.get("txn"),
               confirm_deadline=done.get("confirm_deadline"))
    return out
