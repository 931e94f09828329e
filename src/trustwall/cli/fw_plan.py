"""``trustwall fw allow|deny|reject|delete --plan|--apply`` and ``fw diff``: where a change must
go, what it does to packets, and (with ``--apply``) making it through the same checked, journaled
path as a policy apply (firewall.change.quick)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from trustwall.cli.fw import _load, _source_options, owners_of
from trustwall.cli.fw_policy import APPLY_OPTIONS, make_options, render_apply
from trustwall.cli.options import PORT_HELP, port_and_proto
from trustwall.cli.output import ask, console, emit, json_option, yes_option
from trustwall.errors import BadInput, ProblemFound


def _apply_rule(rule, table: str, name: str | None, live, yes: bool,  # type: ignore[no-untyped-def]
                as_json: bool, apply_args: dict[str, Any], owner: str = "iptables") -> None:
    """Plan, preview (unless --yes/--json), then apply one rule through firewall.change.quick."""
    from dataclasses import replace

    from trustwall.firewall.change.quick import apply_rule

    options = make_options(**apply_args)
    if not yes and not options.dry_run:
        preview, position, why = apply_rule(rule, table=table, name=name, family=live.family,
                                            options=replace(options, dry_run=True), live=live)
        if preview.changed:
            if not as_json:
                console().print(f"# position {position}: {why}", soft_wrap=True)
                render_apply(preview, preview=True)
            ask("Apply this change?", yes=yes, action="change the firewall")
    result, position, why = apply_rule(rule, table=table, name=name, family=live.family,
                                       options=options, live=live)
    emit({"owner": owner, "position": position, "explanation": why, "result": result},
         lambda _: (console().print(f"# position {position}: {why}", markup=False,
                                    soft_wrap=True), render_apply(result)))


def _show_plan(plan) -> None:  # type: ignore[no-untyped-def]
    out = console()
    for cmd in plan.commands:
        out.print(cmd, markup=False, soft_wrap=True)
    if not plan.commands:
        out.print("# nothing to do", markup=False)
    out.print(f"# {plan.explanation}", markup=False, soft_wrap=True)
    if plan.effect:
        out.print("# effect (packets whose verdict changes):", markup=False)
        for change in plan.effect:
            out.print(f"#   {change}", markup=False, soft_wrap=True)
        if plan.more:
            out.print(f"#   … and {plan.more} more", markup=False)
    for cmd in plan.alternative:
        out.print(f"# alternative: {cmd}", markup=False, soft_wrap=True)
        out.print(f"#   {plan.alternative_why}", markup=False, soft_wrap=True)
    for line in plan.in_the_way:
        out.print(f"# in the way: {line}", markup=False, soft_wrap=True)


def _need_plan(plan: bool, apply: bool = False) -> None:
    if plan == apply:
        raise BadInput("add --plan (print the iptables command and its effect) or --apply "
                       "(make the change, checked and journaled)")


def _owner_json(owner_plan, iptables_plan=None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """``{"owner", "commands", "persistent", "effect", …}``; the iptables planner's own fields
    (position, explanation, …) kept beside them when it made the plan."""
    from trustwall.jsonable import to_jsonable

    out: dict[str, Any] = {}
    if iptables_plan is not None:
        out.update(to_jsonable(iptables_plan))
    out.update(owner_plan.to_json())
    if iptables_plan is not None:
        out["effect"] = to_jsonable(iptables_plan.effect)
    return out


def _show_owner_plan(owner_plan) -> None:  # type: ignore[no-untyped-def]
    from trustwall.firewall.owners.iptables_files import Detail

    out = console()
    detail = owner_plan.detail
    if isinstance(detail, Detail):
        _show_plan(detail.plan)
    else:
        for cmd in owner_plan.commands:
            out.print(cmd.text, markup=False, soft_wrap=True)
        for change in owner_plan.effect:
            out.print(f"#   {change}", markup=False, soft_wrap=True)
    out.print(f"# owner: {owner_plan.owner}; "
              + ("persistent" if owner_plan.persistent else "NOT persistent (gone at reboot)")
              + "".join(f"; writes {w}" for w in owner_plan.writes), markup=False,
              soft_wrap=True)
    skip = {detail.plan.explanation} if isinstance(detail, Detail) else set()
    for note in owner_plan.notes:
        if note not in skip:
            out.print(f"# {note}", markup=False, soft_wrap=True)


def _refuse(owner_plan) -> None:  # type: ignore[no-untyped-def]
    emit(owner_plan.to_json(), lambda _: None)
    raise ProblemFound(f"refused ({owner_plan.owner}): {owner_plan.refused}",
                       hint=owner_plan.next)


def _apply_through_owner(owner_plan, yes: bool, as_json: bool,  # type: ignore[no-untyped-def]
                         apply_args: dict[str, Any]) -> None:
    """A manager's plan (firewalld, ufw, nftables.conf): preview, ask, apply through it."""
    from dataclasses import replace

    from trustwall.firewall.owners import dispatch

    options = make_options(**apply_args)
    if not yes and not options.dry_run:
        if not as_json:
            _show_owner_plan(owner_plan)
        ask("Apply this change?", yes=yes, action="change the firewall")
    if options.dry_run:
        options = replace(options, dry_run=True)
    result = dispatch.apply(owner_plan, options)
    emit({"owner": owner_plan.owner, "plan": owner_plan.to_json(), "result": result},
         lambda _: console().print(f"# applied through {owner_plan.owner}", markup=False))


def _rule_command(verdict: str) -> Callable[..., Any]:
    def command(file: str | None, live: bool, ipv6: bool, chain: str | None, table: str,
                proto: str | None, dport: str | None, sport: str | None, src: str | None,
                dst: str | None, state: str | None, in_iface: str | None,
                out_iface: str | None, comment: str | None, plan: bool, as_json: bool,
                apply: bool, duration: str | None, name: str | None, yes: bool,
                reject_with: str | None = None, **apply_args: Any) -> None:
        from dataclasses import replace

        from trustwall.firewall.change.quick import derived_name, parse_expiry, rule_tag
        from trustwall.firewall.owners import dispatch
        from trustwall.firewall.owners.base import Request
        from trustwall.firewall.owners.iptables_files import Detail

        _need_plan(plan, apply)
        dport, proto = port_and_proto(dport, proto)
        sport, proto = port_and_proto(sport, proto, "--sport")
        if apply and file is not None:
            raise BadInput("--apply changes the running firewall; it cannot take --file")
        expires = parse_expiry(duration) if duration else None
        if expires is not None and not name:
            name = derived_name(verdict, proto=proto, dport=dport, sport=sport, src=src)
            console(stderr=True).print(f"temporary rule named {name} (give --name to choose)",
                                       markup=False, soft_wrap=True)
        tagged = rule_tag(name, expires, comment)
        ruleset = _load(file, live, ipv6, counters=False)
        action = {"ACCEPT": "allow", "DROP": "deny", "REJECT": "reject"}[verdict]
        seconds = None
        if expires is not None:
            import datetime as _dt

            seconds = max(1, int((expires - _dt.datetime.now(_dt.timezone.utc))
                                 .total_seconds()))
        # A manager (firewalld, ufw) opens a port for IPv4 and IPv6 at once: the request
        # names a family only when the user did (-6, or an address of one version).
        request = Request(action, proto=proto, dport=dport, sport=sport, src=src, dst=dst,
                          in_iface=in_iface, family=ruleset.family if ipv6 or src or dst
                          else None, duration=seconds,
                          name=name, comment=tagged, chain=chain, table=table, state=state,
                          out_iface=out_iface, reject_with=reject_with)
        ownership = owners_of(ruleset, file)
        if file is not None and ownership.host in ("firewalld", "ufw", "nftables"):
            # A saved dump has no running manager to plan through: plan it the iptables way
            # and say who owns it.
            manager = ownership.host
            ownership = replace(ownership, host="none")
        else:
            manager = None
        owner_plan = dispatch.plan(request, ruleset=ruleset, ownership=ownership,
                                   explicit_chain=chain is not None,
                                   options=make_options(**apply_args) if apply else None)
        if manager is not None:
            owner_plan = replace(owner_plan, notes=(
                *owner_plan.notes, f"this dump's chains show that {manager} owns its "
                f"firewall: on that host trustwall plans the change through {manager}"))
        if owner_plan.refused is not None:
            _refuse(owner_plan)
        detail = owner_plan.detail
        if not isinstance(detail, Detail):  # a manager's own commands
            if apply:
                _apply_through_owner(owner_plan, yes, as_json, apply_args)
            else:
                emit(owner_plan.to_json(), lambda _: _show_owner_plan(owner_plan))
            return
        if apply:
            _apply_rule(detail.rule, table, name, ruleset, yes, as_json, apply_args,
                        owner_plan.owner)
            return
        result = detail.plan
        emit(_owner_json(owner_plan, result), lambda _: _show_owner_plan(owner_plan))
        if not result.feasible:
            raise ProblemFound("no position in this chain decides all of these packets")

    command.__doc__ = (f"Plan a rule that {verdict}s the described packets, at the latest "
                       "position where it decides all of them (before the first rule that "
                       "would decide some of them differently), and show its effect.")
    options = [
        *APPLY_OPTIONS,
        yes_option,
        click.option("--name", help="Name the rule (comment tw:NAME, as a policy entry's)."),
        click.option("--for", "duration", metavar="DURATION",
                     help="Temporary rule: expires after e.g. 2h (named after what it "
                          "does, e.g. allow-tcp-18745, unless --name is given); removed by "
                          "`fw expire`."),
        click.option("--apply", is_flag=True,
                     help="Make the change: checked, journaled, undoable (`trustwall undo`)."),
        click.option("--plan", is_flag=True, help="Print the command and its effect."),
        click.option("--comment", help="Comment for the rule (-m comment)."),
        click.option("--out", "-o", "out_iface", help="Output interface ('eth+' wildcards)."),
        click.option("--in", "-i", "in_iface", help="Input interface ('eth+' wildcards)."),
        click.option("--state", help="Conntrack states, e.g. NEW or NEW,ESTABLISHED."),
        click.option("--dst", "-d", help="Destination address or CIDR."),
        click.option("--src", "-s", help="Source address or CIDR."),
        click.option("--sport", metavar="PORT", help=f"Source port: {PORT_HELP}."),
        click.option("--dport", metavar="PORT", help=f"Destination port: {PORT_HELP}."),
        click.option("--proto", "-p", help="Protocol: tcp, udp, icmp, … (tcp when a port "
                                           "is given)."),
        click.option("--table", "-t", default="filter", show_default=True),
        click.option("--chain", default=None,
                     help="Chain [default: INPUT, or the owner's place for it: DOCKER-USER "
                          "for a port Docker publishes]."),
    ]
    if verdict == "REJECT":
        options.insert(0, click.option("--reject-with", help="ICMP error or tcp-reset."))
    for opt in options:
        command = opt(command)
    return click.command(name=verdict.lower())(json_option(_source_options(command)))


allow = _rule_command("ACCEPT")
allow.name = "allow"
deny = _rule_command("DROP")
deny.name = "deny"
reject = _rule_command("REJECT")


_DELETE_FLAGS = {"--plan": "plan", "--json": "as_json", "--apply": "apply", "--yes": "yes",
                 "-y": "yes", "--dry-run": "dry_run", "--force": "force",
                 "--no-persist": "no_persist"}
_DELETE_VALUES = {"--file": "file", "--state-dir": "state_dir", "--keep": "keep",
                  "--confirm-within": "confirm_within", "--persist-file": "persist_file"}


def _trailing_options(words: list[str], params: dict[str, Any]) -> list[str]:
    """Options written after the rule words arrive with them (the rule may hold "-f", "-t"
    …): take trustwall's own out of ``words`` into ``params``."""
    rest: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in _DELETE_FLAGS:
            params[_DELETE_FLAGS[word]] = True
        elif word in _DELETE_VALUES and i + 1 < len(words):
            key, value = _DELETE_VALUES[word], words[i + 1]
            if key in ("keep", "persist_file"):
                params[key] = (*params[key], value)
            elif key == "confirm_within":
                try:
                    params[key] = float(value)
                except ValueError:
                    raise BadInput(f"--confirm-within needs seconds, not {value!r}") from None
            else:
                params[key] = value
            i += 1
        else:
            rest.append(word)
        i += 1
    return rest


@click.command(context_settings={"ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@_source_options
@click.option("--table", "-t", default="filter", show_default=True)
@click.option("--plan", is_flag=True, help="Print the command and its effect.")
@click.option("--apply", is_flag=True, help="Delete it: checked, journaled, undoable.")
@yes_option
@json_option
@click.argument("chain")
@click.argument("rule", nargs=-1, required=True)
def delete(chain: str, rule: tuple[str, ...], **params: Any) -> None:
    """Plan (--plan) or make (--apply [--yes]) the deletion of CHAIN rule N, or of the first
    rule equal to SPEC, and show its effect. --apply takes the same safety options as
    `fw allow --apply` (--dry-run, --keep, --confirm-within, --state-dir, --no-persist …).

    Example: trustwall fw delete --plan INPUT 5   or   fw delete --apply INPUT -p tcp --dport 22
    -j ACCEPT
    """
    from trustwall.firewall.owners import dispatch, iptables_files
    from trustwall.firewall.owners.base import Request

    words = _trailing_options(list(rule), params)
    if params["as_json"]:
        click.get_current_context().params["as_json"] = True
    if not words:
        raise BadInput("give the rule number or the rule to delete after CHAIN")
    _need_plan(params["plan"], params["apply"])
    file = params["file"]
    if params["apply"] and file is not None:
        raise BadInput("--apply changes the running firewall; it cannot take --file")
    ruleset = _load(file, params["live"], params["ipv6"], counters=False)
    table = params["table"]
    number = int(words[0]) if len(words) == 1 and words[0].isdigit() else None
    request = Request("delete", chain=chain, table=table, family=ruleset.family,
                      rule_number=number, spec=None if number else " ".join(words))
    ownership = owners_of(ruleset, file)
    apply_args = {k: params[k] for k in ("dry_run", "force", "keep", "confirm_within",
                                         "no_persist", "persist_file", "state_dir")}
    if file is None and ownership.host in ("firewalld", "ufw", "nftables") and \
            ownership.owner_of(table, chain, ruleset.family) == ownership.host:
        if number is not None:
            raise BadInput(f"{ownership.host} owns this firewall: name the rule to remove by "
                           "its fields (e.g. INPUT -p tcp --dport 18745 -j ACCEPT), not by "
                           "an iptables rule number")
        request = _request_from_spec(words, chain, table, ruleset.family)
    owner_plan = dispatch.plan(request, ruleset=ruleset, ownership=ownership,
                               explicit_chain=True)
    if owner_plan.refused is not None:
        _refuse(owner_plan)
    detail = owner_plan.detail
    if not isinstance(detail, iptables_files.Detail):
        if params["apply"]:
            _apply_through_owner(owner_plan, params["yes"], params["as_json"], apply_args)
        else:
            emit(owner_plan.to_json(), lambda _: _show_owner_plan(owner_plan))
        return
    result = detail.plan
    emit(_owner_json(owner_plan, result), lambda _: _show_owner_plan(owner_plan))
    if params["apply"]:
        from trustwall.firewall.change.quick import delete_rule

        options = make_options(**apply_args)
        if not options.dry_run:
            ask("Delete this rule?", yes=params["yes"], action="change the firewall")
        assert result.position is not None
        done = delete_rule(table, chain, result.position, family=ruleset.family, live=ruleset,
                           options=options)
        emit(done, render_apply)


def _request_from_spec(words: list[str], chain: str, table: str, family: int):  # type: ignore[no-untyped-def]
    """A removal request for a manager (ufw, firewalld, nftables.conf): the fields of an
    iptables rule spec (what an earlier allow/deny of the same fields added)."""
    from trustwall.firewall.iptables.parse import parse_rule_spec
    from trustwall.firewall.owners.base import Request

    rule = parse_rule_spec(words, chain=chain, family=family)
    dport = sport = None
    for match in rule.matches:
        for option in match.options:
            if option.name in ("dport", "dports") and not option.negated:
                dport = option.value
            elif option.name in ("sport", "sports") and not option.negated:
                sport = option.value
    verdict = rule.target_name or ""
    return Request("delete", proto=rule.protocol.name if rule.protocol else None,
                   dport=dport, sport=sport,
                   src=rule.source.text if rule.source else None,
                   dst=rule.destination.text if rule.destination else None,
                   in_iface=rule.in_interface.name if rule.in_interface else None,
                   family=family, chain=chain, table=table,
                   removes={"ACCEPT": "allow", "DROP": "deny", "REJECT": "reject"}.get(verdict),
                   spec=" ".join(words))


for _option in reversed(APPLY_OPTIONS):
    delete = _option(delete)


def _ruleset_or_policy(path: str, other):  # type: ignore[no-untyped-def]
    """An iptables-save file, or a policy compiled for the other side's family (its unmanaged
    chains filled from the other side, as apply would)."""
    from trustwall.firewall.change.policy import is_policy_file, policy_ruleset

    if is_policy_file(path):
        return policy_ruleset(path, live=other)
    return _load(path, False, False, False)


def _live_pairs(path: str, ipv6: bool) -> list[tuple[Any, Any]]:
    """(live, file) rulesets to compare: with -6 the IPv6 side; else, for a policy, every
    family it has (an ip6tables-only host's policy has no IPv4 part), for a save file IPv4."""
    from trustwall.firewall.change.policy import is_policy_file, load_policy

    families: tuple[int, ...] = (6,) if ipv6 else (4,)
    if not ipv6 and is_policy_file(path):
        families = load_policy(path).families() or (4,)
    out = []
    for family in families:
        live = _load(None, True, family == 6, counters=False)
        out.append((live, _ruleset_or_policy(path, live)))
    return out


def _show_diff(result) -> None:  # type: ignore[no-untyped-def]
    out = console()
    if not result.different:
        out.print("no packet changes verdict", markup=False)
    for hook in result.hooks:
        label = f"{hook.table} {hook.hook}" if hook.family == 4 else \
            f"IPv{hook.family} {hook.table} {hook.hook}"
        out.print(f"{label}:", markup=False)
        for change in hook.changes:
            out.print(f"  {change}", markup=False, soft_wrap=True)
        if hook.more:
            out.print(f"  … and {hook.more} more", markup=False)


@click.command()
@click.option("--live", is_flag=True,
              help="Compare the running firewall with FILE (the default with one FILE).")
@click.option("-6", "--ipv6", "ipv6", is_flag=True, help="Live: read ip6tables.")
@json_option
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def diff(live: bool, ipv6: bool, as_json: bool, files: tuple[str, ...]) -> None:
    """Semantic difference of two rulesets (A B, or the running firewall and B): the packets
    whose verdict changes, not a text diff. Exit 1 when they differ."""
    from trustwall.firewall.analysis import plan as api
    from trustwall.firewall.change.policy import rule_changes

    if len(files) == 1:  # like every other fw command, the running firewall by default
        pairs = _live_pairs(files[0], ipv6)
    elif not live and len(files) == 2:
        a = _ruleset_or_policy(files[0], None)
        pairs = [(a, _ruleset_or_policy(files[1], a))]
    else:
        raise BadInput("give two files (A B), or one file to compare with the running "
                       "firewall")
    result = api.Diff(tuple(h for a, b in pairs for h in api.diff(a, b).hooks))
    names = [line for a, b in pairs for line in rule_changes(a, b)]
    emit({"different": result.different, "hooks": result.hooks, "rules": names},
         lambda _: (_show_diff(result),
                    [console().print(line, markup=False, soft_wrap=True) for line in names]))
    if result.different:
        raise ProblemFound("the rulesets differ")
