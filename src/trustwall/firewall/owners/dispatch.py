"""One entry point for a change, whoever owns the host: plan it through the owner, apply it
through the owner.

Each writable owner is a module of this package exposing::

    plan(request: Request, state=None) -> OwnerPlan      # state: the owner's own reading
    apply(plan: OwnerPlan, options: change.apply.Options) -> result   # journaled

Modules are imported by name when needed (firewalld and ufw may not be installed in this
build): a missing one is a one-line "not supported yet" error, never a raw iptables rule that
the manager would wipe. Docker and the read-only owners are decided first, whoever the
host's writer is: a port Docker publishes bypasses ufw and firewalld as much as INPUT.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

from trustwall.errors import BadInput, ProblemFound
from trustwall.firewall.owners import docker
from trustwall.firewall.owners.base import OwnerPlan, Request
from trustwall.firewall.owners.detect import NATIVE, Ownership

#: The module that writes for each owner ("none" is the iptables owner without a boot file;
#: Docker's module writes only DOCKER-USER, through change.apply like the iptables owner).
MODULES = {
    "firewalld": "trustwall.firewall.owners.firewalld",
    "ufw": "trustwall.firewall.owners.ufw",
    "nftables": "trustwall.firewall.owners.nftables_conf",
    "iptables": "trustwall.firewall.owners.iptables_files",
    "none": "trustwall.firewall.owners.iptables_files",
    "docker": "trustwall.firewall.owners.docker",
}


def owner_module(owner: str) -> ModuleType:
    """The module that changes the firewall through ``owner``."""
    name = MODULES.get(owner)
    if name is None:
        raise ProblemFound(f"{owner} owns this part of the firewall and trustwall never "
                           "writes there", hint=f"use {NATIVE.get(owner, owner)}")
    try:
        module = import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise BadInput(f"changing a firewall owned by {owner} is not supported yet by this "
                       f"trustwall ({name} is missing)",
                       hint=f"make the change with {NATIVE.get(owner, owner)}") from None
    for needed in ("plan", "apply"):
        if not callable(getattr(module, needed, None)):
            raise BadInput(f"{name} has no {needed}(): not supported yet")
    return module


def plan(request: Request, *, ruleset: Any = None, ownership: Ownership | None = None,
         explicit_chain: bool = False, options: Any = None) -> OwnerPlan:
    """The owner's plan for ``request``. ``ruleset``: the live iptables ruleset of the
    request's family (read when None); ``explicit_chain``: the user named the chain (an
    INPUT rule for a Docker-published port is then refused instead of moved to
    DOCKER-USER)."""
    if ruleset is None:
        from trustwall.firewall.iptables.live import read_live

        ruleset = read_live(family=request.family or 4)
    if ownership is None:
        from trustwall.firewall.owners.detect import detect

        ownership = detect(rulesets=[ruleset])
    routed, refused, owner = docker.route(request, ruleset, ownership, explicit_chain)
    if refused is not None:
        return refused
    host = ownership.host
    if owner is None and host in ("firewalld", "ufw", "nftables"):
        return owner_module(host).plan(request)
    if owner == "docker" and routed.action != "delete":
        rule = docker.user_rule(routed, ruleset.family) \
            if docker.is_published(routed, ruleset, ownership) else None
        return docker.plan(routed, ruleset, rule=rule, options=options, ownership=ownership)
    from trustwall.firewall.owners import iptables_files

    return native_tables_in_the_way(
        iptables_files.plan(routed, ruleset, owner=owner, options=options))


def native_tables_in_the_way(owner_plan: OwnerPlan) -> OwnerPlan:
    """An iptables plan seen across every base chain of its hook: when native nft tables
    (beside iptables-nft's) still drop or reject the packets the new rule accepts, before or
    after the iptables table, the plan is refused, naming those rules: the accept alone
    would not let the packets in."""
    detail = owner_plan.detail
    rule = getattr(detail, "rule", None)
    if rule is None or not owner_plan.commands or owner_plan.refused is not None:
        return owner_plan
    from trustwall.errors import EnvironmentMissing
    from trustwall.firewall.analysis.plan import plan_hook_insert
    from trustwall.firewall.nftables.live import whole_picture

    try:
        picture = whole_picture().ruleset
    except (EnvironmentMissing, BadInput):
        return owner_plan
    if not any(t.backend == "nft" for t in picture.tables):
        return owner_plan
    family = "ip6" if getattr(detail.live, "family", 4) == 6 else "ip"
    table = next((t for t in picture.tables
                  if (t.backend, t.family, t.name) == ("iptables", family, detail.table)), None)
    if table is None or table.chain(rule.chain) is None:
        return owner_plan
    hook_plan = plan_hook_insert(picture, table, rule.chain, rule.to_ir())
    native = [w for w in hook_plan.in_the_way if ": nft " in w]
    if not native:
        return owner_plan
    from dataclasses import replace

    return replace(owner_plan, refused="not a plan: native nftables base chains of the hook "
                   "still decide some of these packets otherwise: " + " | ".join(native),
                   next="change those nft rules too (named above), then plan again")


def apply(owner_plan: OwnerPlan, options: Any = None) -> Any:
    """Make a plan's change through its owner (refused plans raise, naming the owner)."""
    if owner_plan.refused is not None:
        raise ProblemFound(f"refused ({owner_plan.owner}): {owner_plan.refused}",
                           hint=owner_plan.next)
    return owner_module(owner_plan.owner).apply(owner_plan, options)
