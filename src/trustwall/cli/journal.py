"""``trustwall log``, ``undo`` and ``recover``: read the audit journal, revert a transaction,
finish one a crash interrupted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import click

from trustwall.cli.options import state_dir_option
from trustwall.cli.output import console, emit, json_option, print_command, styled

root_option = click.option("--root", type=click.Path(file_okay=False), default=None,
                           help="Operate on the tree under DIR (an image or chroot).")
state_option = state_dir_option


@dataclass(frozen=True)
class LogResult:
    state_dir: str
    records: list[dict[str, Any]]
    total: int
    verified: bool | None
    problems: list[dict[str, Any]]


def _render_log(result: LogResult, verbose: bool = False) -> None:
    out = console()
    if result.verified is not None:  # --verify: the verdict, not the log again
        if result.verified:
            out.print(styled(("audit log intact", "green"),
                             f" ({result.total} records, chain ok)"), soft_wrap=True)
        for p in result.problems:
            out.print(f"line {p['line']}: {p['message']}", style="red", soft_wrap=True)
        return
    if not result.records:
        out.print(f"no transactions recorded in {result.state_dir}", soft_wrap=True)
    for rec in result.records:
        who = rec["who"]["user"] + (f" (sudo by {rec['who']['sudo_user']})"
                                    if rec["who"].get("sudo_user") else "")
        colour = {"committed": "green", "rolled-back": "yellow"}.get(rec["status"], "red")
        out.print(styled((f"#{rec['id']}", "bold"), f" {rec['time'][:19]} {who} ",
                         (rec["status"], colour), f" {rec['kind']}: ",
                         headline(rec["description"])), soft_wrap=True)
        if not verbose:
            continue
        for line in rec["description"].splitlines()[1:]:
            out.print(f"    {short_hashes(line)}", style="dim", soft_wrap=True)
        for f in rec["files"]:
            out.print(styled(f"    {f['path']}  ",
                             (short_hashes(f"{f['before']} -> {f['after']}"), "dim")),
                      soft_wrap=True)
        for argv in rec["commands"]:
            out.print(f"    $ {' '.join(argv)}", soft_wrap=True)
        for what in rec.get("records", []):
            out.print(f"    recorded {short_hashes(what)}", soft_wrap=True)


HASH_SHOWN = 12  # hex digits of a SHA-256 shown by log and undo alike (--json has them all)
_SHA256 = re.compile(r"\b[0-9a-f]{64}\b")


def short_hashes(text: str) -> str:
    """Every full SHA-256 in ``text`` cut to :data:`HASH_SHOWN` digits."""
    return _SHA256.sub(lambda m: m.group()[:HASH_SHOWN], text)


def headline(description: str) -> str:
    """A journal description's first line: the rule or certificate itself (the planner's
    reasons and the effect follow on the next lines; ``log -v`` shows them)."""
    lines = description.splitlines()
    return short_hashes(lines[0] if lines else "")


@click.command("log")
@root_option
@state_option
@click.option("--verify", is_flag=True, help="Check the hash chain; exit 1 if it was tampered.")
@click.option("-n", "--last", type=int, default=None, help="Only the last N records.")
@click.option("-v", "--verbose", is_flag=True,
              help="Also each change's reasons, files (before -> after) and commands.")
@json_option
def log(root: str | None, state_dir: str | None, verify: bool, last: int | None,
        verbose: bool, as_json: bool) -> None:
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
         lambda r: _render_log(r, verbose))
    if verdict is not None and not verdict.ok:
        raise ProblemFound(f"audit log {audit.path} fails verification "
                           f"({len(verdict.problems)} problem(s))")


def _render_undo(result: Any) -> None:
    out = console()
    if result.dry_run:
        out.print(f"would undo #{result.undone}: {headline(result.description)}",
                  soft_wrap=True)
    else:
        out.print(styled((f"undid #{result.undone}", "green"),
                         f": {headline(result.description)} (as transaction "
                         f"#{result.undo_txn})"), soft_wrap=True)
    for action in result.actions:
        out.print(f"    {short_hashes(action)}", soft_wrap=True)
    if not result.dry_run:
        print_command(out, f"trustwall undo {result.undo_txn}", prefix="redo with:")


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
