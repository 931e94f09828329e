"""``trustwall log``, ``undo`` and ``recover``: read the audit journal, revert a transaction,
finish one a crash interrupted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from trustwall.cli.output import console, emit, json_option

root_option = click.option("--root", type=click.Path(file_okay=False), default=None,
                           help="Operate on the tree under DIR (an image or chroot).")
state_option = click.option("--state-dir", type=click.Path(file_okay=False), default=None,
                            envvar="TRUSTWALL_STATE_DIR",
                            help="Journal directory [default: ROOT/var/lib/trustwall].")


@dataclass(frozen=True)
class LogResult:
    state_dir: str
    records: list[dict[str, Any]]
    total: int
    verified: bool | None
    problems: list[dict[str, Any]]


def _render_log(result: LogResult) -> None:
    out = console()
    if not result.records:
        out.print(f"no transactions recorded in {result.state_dir}")
    for rec in result.records:
        who = rec["who"]["user"] + (f" (sudo by {rec['who']['sudo_user']})"
                                    if rec["who"].get("sudo_user") else "")
        colour = {"committed": "green", "rolled-back": "yellow"}.get(rec["status"], "red")
        out.print(f"[bold]#{rec['id']}[/] {rec['time']} {who} [{colour}]{rec['status']}[/] "
                  f"{rec['kind']}: {rec['description']}")
        for f in rec["files"][:10]:
            out.print(f"    {f['path']}  [dim]{_short(f['before'])} -> {_short(f['after'])}[/]")
        if len(rec["files"]) > 10:
            out.print(f"    [dim]… and {len(rec['files']) - 10} more files (--json shows all)[/]")
        for argv in rec["commands"]:
            out.print(f"    $ {' '.join(argv)}")
        for what in rec.get("records", []):
            out.print(f"    recorded {what}")
    if result.verified is not None:
        if result.verified:
            out.print(f"[green]audit log intact[/] ({result.total} records, chain ok)")
        for p in result.problems:
            out.print(f"[red]line {p['line']}: {p['message']}[/]")


def _short(image: str) -> str:
    return image[:12] if len(image) == 64 else image


@click.command("log")
@root_option
@state_option
@click.option("--verify", is_flag=True, help="Check the hash chain; exit 1 if it was tampered.")
@click.option("-n", "--last", type=int, default=None, help="Only the last N records.")
@json_option
def log(root: str | None, state_dir: str | None, verify: bool, last: int | None,
        as_json: bool) -> None:
    """Show the audit journal: who changed what, when, with before/after digests."""
    from trustwall.errors import ProblemFound
    from trustwall.journal.audit import AuditLog
    from trustwall.journal.statedir import check, state_dir_for

    directory = state_dir_for(root, state_dir)
    check(directory)
    audit = AuditLog(directory)
    records = list(audit.records())
    total = len(records)
    if last is not None:
        records = records[-last:] if last > 0 else []
    verdict = audit.verify() if verify else None
    problems = [{"line": p.line, "message": p.message} for p in verdict.problems] \
        if verdict else []
    emit(LogResult(str(directory), records, total, verdict.ok if verdict else None, problems),
         _render_log)
    if verdict is not None and not verdict.ok:
        raise ProblemFound(f"audit log {audit.path} fails verification "
                           f"({len(verdict.problems)} problem(s))")


def _render_undo(result: Any) -> None:
    out = console()
    if result.dry_run:
        out.print(f"would undo #{result.undone}: {result.description}")
    else:
        out.print(f"[green]undid #{result.undone}[/]: {result.description} "
                  f"(as transaction #{result.undo_txn}; `trustwall undo {result.undo_txn}` "
                  "redoes it)")
    for action in result.actions:
        out.print(f"    {action}")


@click.command("undo")
@click.argument("txn", required=False)
@root_option
@state_option
@click.option("--dry-run", is_flag=True, help="Show what would be restored; change nothing.")
@click.option("--force", is_flag=True, help="Undo even if files were changed since.")
@json_option
def undo_cmd(txn: str | None, root: str | None, state_dir: str | None, dry_run: bool,
             force: bool, as_json: bool) -> None:
    """Restore what transaction TXN changed (default: the latest one not yet undone)."""
    from trustwall.journal.transaction import undo

    emit(undo(txn, root=root, state_dir=state_dir, dry_run=dry_run, force=force), _render_undo)


def _render_recover(result: Any) -> None:
    out = console()
    verb = "would " if result.dry_run else ""
    if not result.rolled_back and not result.finished:
        out.print(f"nothing to recover in {result.state_dir}")
    for txn in result.rolled_back:
        out.print(f"{verb}roll back interrupted transaction #{txn} to its before-state"
                  + ("" if result.dry_run else " (logged)"))
    for txn in result.finished:
        out.print(f"{verb}finish the audit record of transaction #{txn} (log and head)")


@click.command("recover")
@root_option
@state_option
@click.option("--dry-run", is_flag=True, help="Name what would be recovered; change nothing.")
@json_option
def recover_cmd(root: str | None, state_dir: str | None, dry_run: bool, as_json: bool) -> None:
    """Roll back a change a crash interrupted (to its before-state) and log it."""
    from trustwall.journal.transaction import recover_interrupted

    emit(recover_interrupted(root=root, state_dir=state_dir, dry_run=dry_run), _render_recover)
