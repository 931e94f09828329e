"""The iptables owner: a rule in the kernel plus the distro's boot file (iptables-persistent's
/etc/iptables/rules.v4|v6, iptables-services' /etc/sysconfig/iptables|ip6tables), or only the
kernel when the host has neither (owner ``none``: the plan says it is gone at reboot).

This is the path ``fw allow|deny|reject|delete`` always took, expressed as an owner: the
planner (analysis.plan) places the rule, change.quick applies it through change.apply (lockout
check, journal, confirm-or-rollback, boot file). Nothing is re-implemented here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trustwall.errors import ProblemFound
from trustwall.firewall.owners.base import Command, OwnerPlan, Request


@dataclass(frozen=True)
class Detail:
    """What the apply needs: the planner's answer and the ruleset it was made on."""

    plan: Any  # analysis.plan.Plan
    rule: Any  # iptables.model.Rule (None for a delete)
    live: Any  # iptables.model.Ruleset
    table: str
    name: str | None = None


def boot_file(family: int, options: Any = None) -> str | None:
    """The boot file an apply would rewrite (change.apply.persist_target decides)."""
    from trustwall.firewall.change.apply import Options, persist_target

    path = persist_target(family, options or Options())
    return str(path) if path is not None else None


def build(request: Request, family: int) -> Any:
    """The iptables rule a request asks for (analysis.plan.build_rule)."""
    from trustwall.firewall.analysis.plan import build_rule

    assert request.verdict is not None
    return build_rule(request.verdict, chain=request.chain or "INPUT", proto=request.proto,
                      dport=request.dport, sport=request.sport, src=request.src,
                      dst=request.dst, state=request.state, in_iface=request.in_iface,
                      out_iface=request.out_iface, comment=request.comment,
                      reject_with=request.reject_with, family=family)


def plan(request: Request, state: Any = None, *, owner: str | None = None,
         options: Any = None, rule: Any = None) -> OwnerPlan:
    """The owner's plan for ``request`` on ``state`` (the live ruleset of one family; read
    when None). ``rule``: an already-built rule (the Docker owner passes its DOCKER-USER one).
    """
    from trustwall.firewall.analysis import plan as api

    if state is None:
        from trustwall.firewall.iptables.live import read_live

        state = read_live(family=request.family or 4)
    if request.action == "delete":
        chain = request.chain or "INPUT"
        result = api.plan_delete(state, chain, request.rule_number, spec=request.spec,
                                 table=request.table)
        rule = None
    else:
        from trustwall.firewall.change.quick import with_chain

        rule = rule if rule is not None else build(request, state.family)
        # a fresh host has no filter table yet: plan against its built-in chains, as the
        # apply does (change.quick.apply_rule)
        state = with_chain(state, request.table or "filter", rule.chain)
        result = api.plan_insert(state, rule, table=request.table)
    path = boot_file(state.family, options)
    commands = [Command(tuple(_words(c)), runtime=True, permanent=False)
                for c in result.commands]
    if path is not None and result.commands:
        save = "iptables-save" if state.family == 4 else "ip6tables-save"
        commands.append(Command((save, "-f", path), runtime=False, permanent=True))
    who = owner or ("iptables" if path is not None else "none")
    notes = [result.explanation]
    if path is None:
        notes.append("no iptables boot file on this host (iptables-persistent, "
                     "iptables-services): the change lives only in the kernel and is gone "
                     "after a reboot")
    return OwnerPlan(who, tuple(commands), persistent=path is not None, effect=result.effect,
                     notes=tuple(notes), writes=(path,) if path and result.commands else (),
                     detail=Detail(result, rule, state, request.table, request.name))


def _words(command: str) -> list[str]:
    import shlex

    return shlex.split(command)


def apply(owner_plan: OwnerPlan, options: Any = None) -> Any:
    """Make the planned change (change.quick: checked, journaled, undoable). Returns
    (ApplyResult, position, explanation) as change.quick.apply_rule does."""
    from trustwall.firewall.change.quick import apply_rule, delete_rule

    detail = owner_plan.detail
    if not isinstance(detail, Detail):
        raise ProblemFound("this plan was not made by the iptables owner")
    if detail.rule is None:  # a delete
        position = detail.plan.position
        return (delete_rule(detail.table, detail.plan.chain, position,
                            family=detail.live.family, live=detail.live, options=options),
                position, detail.plan.explanation)
    return apply_rule(detail.rule, table=detail.table, name=detail.name,
                      family=detail.live.family, options=options, live=detail.live)
