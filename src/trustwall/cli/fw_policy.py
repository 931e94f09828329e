"""``trustwall fw import|compile|apply|confirm|expire``: the firewall as a policy file."""

from __future__ import annotations

import os

import click

from trustwall.cli.options import state_dir_option
from trustwall.cli.output import (
    ask,
    console,
    emit,
    json_option,
    print_command,
    styled,
    yes_option,
)
from trustwall.errors import ProblemFound


def make_options(dry_run: bool, force: bool, keep: tuple[str, ...],
                 confirm_within: float | None, no_persist: bool, persist_file: tuple[str, ...],
                 state_dir: str | None):  # type: ignore[no-untyped-def]
    """ApplyOptions from the shared apply flags (APPLY_OPTIONS)."""
    from trustwall.firewall.change.apply import Flow, Options

    files = {}
    for item in persist_file:
        family, _, path = item.partition("=")
        if family not in ("4", "6") or not path:
            raise click.BadParameter("use 4=PATH or 6=PATH", param_hint="--persist-file")
        files[int(family)] = path
    return Options(dry_run=dry_run, force=force, keep=[Flow.parse(k) for k in keep],
                   confirm_within=confirm_within, persist=not no_persist,
                   persist_files=files,
                   state_dir=os.path.abspath(state_dir) if state_dir else None)


APPLY_OPTIONS = [
    click.option("--dry-run", is_flag=True, help="Check and show the change; apply nothing."),
    click.option("--force", is_flag=True,
                 help="Apply even if the lockout check fails (fw apply: or firewalld/ufw "
                      "manages the firewall)."),
    click.option("--keep", multiple=True, metavar="FLOW",
                 help="A flow that must survive, [tcp:]SRC[:PORT]->DST:PORT (repeatable)."),
    click.option("--confirm-within", type=float, default=None, metavar="SECONDS",
                 help="Roll back unless `fw confirm` runs from a new connection in time "
                      "(default 60 over SSH, else off; 0 turns it off)."),
    click.option("--no-persist", is_flag=True, help="Do not rewrite the boot-time file."),
    click.option("--persist-file", multiple=True, metavar="4=PATH|6=PATH",
                 help="Boot-time file to write instead of the distro's."),
    state_dir_option,
]


def _apply_options(func):  # type: ignore[no-untyped-def]
    for decorator in reversed(APPLY_OPTIONS):
        func = decorator(func)
    return func


def render_apply(result, *, preview: bool = False) -> None:  # type: ignore[no-untyped-def]
    """An apply's outcome; ``preview``: the change about to be asked for (no "dry run" line,
    which would contradict the question that follows)."""
    out = console()
    if not result.changed:
        out.print("Nothing to do: the running firewall already matches.")
        return
    for change in result.changes:
        out.print(styled((f"IPv{change.family}", "bold"),
                         f": tables {', '.join(change.tables)} change"), soft_wrap=True)
        for line in change.effect:
            out.print(f"  {line}", soft_wrap=True)
    for warning in result.warnings:
        out.print(styled(("warning:", "yellow"), f" {warning}"), soft_wrap=True)
    if result.dry_run:
        if not preview:
            out.print("Dry run: nothing applied.")
        return
    print_command(out, f"trustwall undo {result.txn_id}",
                  prefix=f"Applied as transaction {result.txn_id}; undo with:")
    for path in result.persisted:
        out.print(f"Saved for boot: {path}", soft_wrap=True)
    if result.confirm_deadline:
        out.print(f"Confirm from a NEW connection before {result.confirm_deadline}, otherwise "
                  "the previous ruleset comes back:", style="bold", soft_wrap=True)
        print_command(out, "trustwall fw confirm")


@click.command("import")
@click.option("--file", "-f", "files", multiple=True, type=click.Path(dir_okay=False),
              help="iptables-save / ip6tables-save file(s) instead of the live firewall.")
@click.option("--live", is_flag=True, help="Read the running firewall (the default).")
@click.option("--owner", default="unknown", show_default=True, help="Owner for every rule.")
def import_(files: tuple[str, ...], live: bool, owner: str) -> None:
    """Write a policy (YAML) that compiles back to the running (or saved) ruleset."""
    from trustwall.firewall.change.policy import import_policy
    from trustwall.firewall.iptables.live import read_file, read_live

    if files and live:
        raise click.UsageError("give either --file or --live, not both")
    if files:
        rulesets = [read_file(f) for f in files]
    else:
        rulesets = [read_live(family=4), read_live(family=6)]
    click.echo(import_policy(rulesets, owner=owner), nl=False)


@click.command("compile")
@click.argument("policy", type=click.Path(dir_okay=False))
@click.option("-6", "--ipv6", is_flag=True, help="Print the IPv6 part.")
def compile_(policy: str, ipv6: bool) -> None:
    """Print the iptables-restore text a policy compiles to (deterministic)."""
    from trustwall.firewall.change.policy import compile_text, load_policy

    texts = compile_text(load_policy(policy))
    click.echo(texts.get(6 if ipv6 else 4, ""), nl=False)


@click.command()
@click.argument("policy", type=click.Path(dir_okay=False))
@_apply_options
@yes_option
@json_option
def apply(policy: str, dry_run: bool, force: bool, keep: tuple[str, ...],
          confirm_within: float | None, no_persist: bool, persist_file: tuple[str, ...],
          state_dir: str | None, yes: bool, as_json: bool) -> None:
    """Make the running firewall match POLICY: checked, atomic, journaled, undoable."""
    from trustwall.firewall.change.policy_apply import apply_policy

    options = make_options(dry_run, force, keep, confirm_within, no_persist, persist_file,
                       state_dir)
    if not yes and not dry_run:
        preview = apply_policy(policy, options=make_options(True, force, keep, confirm_within,
                                                        no_persist, persist_file, state_dir))
        if preview.changed:
            if not as_json:
                render_apply(preview, preview=True)
            ask("Apply this change?", yes=yes, action="change the firewall")
    emit(apply_policy(policy, options=options), render_apply)


@click.command()
@state_dir_option
@json_option
def confirm(state_dir: str | None, as_json: bool) -> None:
    """Keep a pending change (run from a NEW connection before the deadline)."""
    from trustwall.firewall.change.apply import confirm as confirm_change

    result = confirm_change(state_dir=state_dir)
    emit(result, lambda r: console().print(f"Confirmed transaction {r.txn_id}."))


@click.command()
@_apply_options
@json_option
def expire(dry_run: bool, force: bool, keep: tuple[str, ...], confirm_within: float | None,
           no_persist: bool, persist_file: tuple[str, ...], state_dir: str | None,
           as_json: bool) -> None:
    """Remove temporary rules whose time is up (run by the trustwall-expire timer)."""
    from trustwall.firewall.change.expire import expire as expire_rules

    result, removed = expire_rules(options=make_options(dry_run, force, keep, confirm_within,
                                                    no_persist, persist_file, state_dir))
    emit({"removed": removed, "result": result},
         lambda _: [console().print(f"removed {line}") for line in removed]
         or console().print("No expired rules."))
    if removed and dry_run:
        raise ProblemFound(f"{len(removed)} expired rule(s) would be removed")
