"""Docker's chains, and the read-only owners (kube-proxy, libvirt, fail2ban).

Docker (iptables mode) publishes a port with a DNAT in nat ``DOCKER`` (from PREROUTING): the
packet's destination becomes the container's, it is routed, and it travels FORWARD — never
INPUT (QUIRKS). So an INPUT rule for a published port changes nothing; Docker's documented
place for the operator's own rules is ``DOCKER-USER`` (jumped to first from FORWARD, never
flushed by Docker). There the packet already carries the container's address and port, so
the rule matches the port the client asked for by conntrack's original destination
(``-m conntrack --ctorigdstport P --ctdir ORIGINAL``), as Docker's documentation does.

Everything else Docker, kube-proxy, libvirt and fail2ban make is rewritten by them at will:
trustwall never writes there, and a plan that would is refused, naming the owner.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from typing import Any

from trustwall.firewall.owners.base import READ_ONLY_OWNERS, OwnerPlan, Request
from trustwall.firewall.owners.detect import NATIVE, Ownership

USER_CHAIN = "DOCKER-USER"


@dataclass(frozen=True)
class Published:
    """A DNAT'ed port: ``proto`` host ``port`` → ``to`` (ADDR[:PORT]), made by ``owner``."""

    proto: str
    port: str
    to: str
    owner: str
    chain: str
    text: str


def published_ports(ruleset: Any, ownership: Ownership) -> list[Published]:
    """Every nat-table DNAT with a destination port, and who made it."""
    nat = ruleset.table("nat")
    if nat is None:
        return []
    out = []
    for chain in nat.chains:
        for rule in chain.rules:
            if rule.target_name != "DNAT" or rule.protocol is None:
                continue
            port = None
            for match in rule.matches:
                option = match.option("dport") or match.option("dports")
                if option is not None and not option.negated:
                    port = option.value
            to = rule.target.option("to-destination") if rule.target else None
            if port is None or to is None:
                continue
            out.append(Published(rule.protocol.name, str(port), str(to.value),
                                 ownership.owner_of("nat", chain.name, ruleset.family),
                                 chain.name, rule.text))
    return out


def _covers(published: Published, request: Request) -> bool:
    if request.proto and request.proto != published.proto:
        return False
    if request.dport is None:
        return False
    return _ports(request.dport) & _ports(published.port) != set()


def _ports(text: str) -> set[int]:
    found: set[int] = set()
    for part in text.replace(",", " ").split():
        low, _, high = part.partition(":")
        if low.isdigit() and (high.isdigit() or not high):
            found.update(range(int(low), int(high or low) + 1))
    return found


def refusal(owner: str, why: str, next_: str | None = None) -> OwnerPlan:
    return OwnerPlan(owner, (), persistent=False, refused=why,
                     next=next_ or f"change it through {owner}'s own tool: {NATIVE[owner]}")


def route(request: Request, ruleset: Any, ownership: Ownership,
          explicit_chain: bool) -> tuple[Request, OwnerPlan | None, str | None]:
    """Where an iptables-shaped request must go on a host with Docker/read-only chains:
    ``(request, refusal, owner)`` — the request possibly moved into DOCKER-USER (owner
    "docker"), or a refusal naming the owner; both None/None when nothing here applies."""
    chain = request.chain or "INPUT"
    owner = ownership.owner_of(request.table, chain, ruleset.family)
    if owner in READ_ONLY_OWNERS and not (owner == "docker" and chain == USER_CHAIN):
        return request, refusal(owner, f"{request.table} {chain} belongs to {owner}, which "
                                       "rewrites it at will: trustwall never writes there"), None
    if request.action == "delete" or request.table != "filter":
        return request, None, "docker" if chain == USER_CHAIN else None
    hits = [p for p in published_ports(ruleset, ownership) if _covers(p, request)]
    if not hits:
        return request, None, "docker" if chain == USER_CHAIN else None
    first = hits[0]
    if first.owner != "docker":
        return request, refusal(first.owner, f"{first.proto} port {first.port} is DNAT'ed by "
                                             f"{first.owner} to {first.to} ({first.text}): "
                                             "its packets never reach INPUT, and "
                                             f"{first.owner}'s chains are not trustwall's to "
                                             "write"), None
    if chain == "INPUT" and explicit_chain:
        return request, refusal(
            "docker", f"{first.proto} port {first.port} is published by Docker (DNAT to "
                      f"{first.to}: {first.text}): its packets go PREROUTING → FORWARD and "
                      "never pass INPUT, so an INPUT rule would change nothing",
            f"trustwall fw {request.action} --chain {USER_CHAIN} -p {first.proto} --dport "
            f"{first.port} … (Docker's place for your rules)"), None
    if chain in ("INPUT", USER_CHAIN):
        if ruleset.chain("filter", USER_CHAIN) is None:
            return request, refusal(
                "docker", f"{first.proto} port {first.port} is published by Docker (DNAT to "
                          f"{first.to}), and this Docker has no {USER_CHAIN} chain (Docker "
                          "before 17.06): a rule anywhere else is rewritten by Docker",
                "upgrade Docker, or publish the port on one address only (-p ADDR:PORT:PORT)"), \
                None
        return replace(request, chain=USER_CHAIN), None, "docker"
    return request, None, None


def user_rule(request: Request, family: int, published: list[Published] | None = None) -> Any:
    """The DOCKER-USER rule for ``request``: the client's port matched as conntrack's
    original destination port (the packet itself already carries the container's)."""
    from trustwall.firewall.iptables.fields import check_rule
    from trustwall.firewall.iptables.parse import parse_rule_spec

    assert request.verdict is not None
    words: list[str] = []
    for flag, value in (("-s", request.src), ("-i", request.in_iface),
                        ("-o", request.out_iface), ("-p", request.proto)):
        if value:
            words += [flag, value]
    if request.sport:
        words += ["-m", str(request.proto), "--sport", request.sport]
    words += ["-m", "conntrack", "--ctorigdstport", str(request.dport).replace("-", ":"),
              "--ctdir", "ORIGINAL"]
    if request.comment:
        words += ["-m", "comment", "--comment", request.comment]
    words += ["-j", request.verdict]
    if request.verdict == "REJECT" and request.reject_with:
        words += ["--reject-with", request.reject_with]
    rule = parse_rule_spec(words, chain=USER_CHAIN, family=family)
    check_rule(rule)
    return rule


def is_published(request: Request, ruleset: Any, ownership: Ownership) -> bool:
    """Whether the request's port is one Docker publishes (then the DOCKER-USER rule matches
    it as conntrack's original destination port)."""
    return any(p.owner == "docker" and _covers(p, request)
               for p in published_ports(ruleset, ownership))


def plan(request: Request, state: Any = None, *, rule: Any = None, options: Any = None,
         ownership: Ownership | None = None) -> OwnerPlan:
    """The rule at the top of DOCKER-USER, as Docker documents (``iptables -I DOCKER-USER``):
    Docker jumps there first from FORWARD and ends the chain with its own RETURN, so the top
    is the one place that decides every packet the rule describes."""
    from trustwall.firewall.analysis.plan import diff
    from trustwall.firewall.change.quick import set_rules, with_chain
    from trustwall.firewall.iptables.render import render_command
    from trustwall.firewall.owners.base import Command
    from trustwall.firewall.owners.iptables_files import boot_file, build

    if state is None:
        from trustwall.firewall.iptables.live import read_live

        state = read_live(family=request.family or 4)
    request = replace(request, chain=USER_CHAIN)
    published = [p for p in published_ports(state, ownership) if p.owner == "docker"
                 and _covers(p, request)] if ownership is not None else []
    rule = rule if rule is not None else build(request, state.family)
    # The effect as FORWARD sees it: conntrack's original port is not modelled, so the same
    # packets are described after the DNAT (the container's address and port).
    seen = rule
    if published:
        address, _, port = published[0].to.partition(":")
        seen = build(replace(request, dst=address, dport=port or request.dport),
                     state.family)
    live = with_chain(state, "filter", USER_CHAIN)
    current = live.chain("filter", USER_CHAIN)
    assert current is not None
    if current.rules[:1] == (rule,):
        return OwnerPlan("docker", (), persistent=boot_file(state.family, options) is not None,
                         notes=("already the first rule of DOCKER-USER",))
    target = set_rules(live, "filter", USER_CHAIN, [rule, *current.rules])
    described = set_rules(live, "filter", USER_CHAIN, [seen, *current.rules])
    effect = tuple(f"{hook.hook}: {change}"
                   for hook in diff(live, described, tables=("filter",)).hooks
                   for change in hook.changes)
    path = boot_file(state.family, options)
    commands = [Command(tuple(shlex.split(render_command(rule, table="filter",
                                                         family=state.family, action="-I",
                                                         number=1))))]
    if path is not None:
        save = "iptables-save" if state.family == 4 else "ip6tables-save"
        commands.append(Command((save, "-f", path), runtime=False, permanent=True))
    return OwnerPlan("docker", tuple(commands), persistent=path is not None, effect=effect,
                     notes=("DOCKER-USER: Docker jumps there first from FORWARD and never "
                            "flushes it; its published ports never pass INPUT",),
                     writes=(path,) if path else (), detail=(rule, live, target))


def apply(owner_plan: OwnerPlan, options: Any = None) -> Any:
    """Through change.apply (lockout check, journal, confirm-or-rollback, boot file)."""
    from trustwall.errors import ProblemFound
    from trustwall.firewall.change.apply import apply_rulesets
    from trustwall.firewall.iptables.render import rule_spec

    if owner_plan.detail is None:
        return {"applied": False, "changed": False}
    if not isinstance(owner_plan.detail, tuple) or len(owner_plan.detail) != 3:
        raise ProblemFound("this plan was not made by the Docker owner")
    rule, live, target = owner_plan.detail
    return apply_rulesets({live.family: target}, live={live.family: live}, kind="fw-rule",
                          options=options,
                          description=f"add filter {USER_CHAIN} rule 1: {rule_spec(rule)}")
