"""Changing the running firewall safely: one journaled, atomic restore per family.

The sequence for every change (a policy apply, a quick ``fw allow --apply``, an expiry):

1. read the live ruleset; work out which tables change (text of each table as iptables-save
   would print it, counters ignored) — nothing to do when none does;
2. ``iptables-restore --test`` of the new text (the kernel's own parser as validator);
3. **static lockout check**: the operator's own session — found in the kernel, from the
   process tree (session.py), since sudo strips ``SSH_CONNECTION`` — and every ``--keep`` flow
   must still be accepted, both the established session and a new one, by a trace through the
   *new* ruleset; otherwise refuse unless forced. When an SSH session is evident but cannot
   be read, refuse unless a confirm window or ``--force`` is given;
4. a journal transaction records the full ``iptables-save`` before-image and then runs one
   ``iptables-restore`` per family holding only the changed tables. iptables-restore commits
   per table (QUIRKS), so if a later table fails the transaction's rollback restores the
   before-image — no half-applied state survives, not even a kill -9 (the next run's
   recovery restores it). Then the kernel's own ``iptables-save`` is read back and compared
   with the intended ruleset (every table of the family): any difference — a field the
   kernel read differently, a rule nobody planned — rolls the transaction back and is
   reported;
5. optionally **confirm-or-rollback**: a detached watcher (its own session, outliving the
   operator's SSH connection) restores the previous ruleset unless ``fw confirm`` runs from a
   new connection within the deadline;
6. **persistence**: the distro's boot file (/etc/iptables/rules.v4|v6, /etc/sysconfig/iptables)
   is rewritten atomically from the applied state, inside the same transaction.

This is ARCHITECTURE.md's ``live.py`` apply half, kept in its own module: reading the live
state (live.py) is needed by every read-only command and must not import the journal.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustwall.errors import EXIT_PROBLEM, BadInput, LockoutRisk, ParseError, TrustwallError
from trustwall.firewall.change.session import Session, find_session
from trustwall.firewall.iptables import fields
from trustwall.firewall.iptables.live import encode, tool
from trustwall.firewall.iptables.model import Ruleset
from trustwall.firewall.semantics.routing import LocalAddresses
from trustwall.journal.atomic import atomic_write
from trustwall.journal.lock import HostLock
from trustwall.journal.transaction import Transaction, state_dir_for

PENDING = "fw-pending-confirm.json"
MAX_NAMED_LINES = 40  # rule-by-name lines in a preview and the audit record
ROLLING_BACK = "fw-rolling-back.json"

#: Boot files the distro's iptables service loads, by family, in order of preference.
PERSIST_FILES = {
    4: ("/etc/iptables/rules.v4", "/etc/sysconfig/iptables"),
    6: ("/etc/iptables/rules.v6", "/etc/sysconfig/ip6tables"),
}


@dataclass(frozen=True)
class Flow:
    """A connection that must survive a change: ``tcp 198.18.0.2:51234 -> 198.18.0.1:22``."""

    proto: str
    src: str
    sport: int | None
    dst: str
    dport: int

    @classmethod
    def parse(cls, text: str) -> Flow:
        """``[tcp|udp:]SRC[:SPORT]->DST:DPORT`` (IPv6 addresses in brackets)."""
        proto = "tcp"
        body = text.strip()
        if body[:4] in ("tcp:", "udp:"):
            proto, body = body[:3], body[4:]
        try:
            left, right = (part.strip() for part in body.split("->"))
            src, sport = _host_port(left, optional_port=True)
            dst, dport = _host_port(right, optional_port=False)
        except ValueError:
            raise BadInput(f"bad flow {text!r}: expected [tcp:]SRC[:PORT]->DST:PORT") from None
        assert dport is not None
        return cls(proto, src, sport, dst, dport)

    @classmethod
    def from_ssh_connection(cls, value: str) -> Flow | None:
        """SSH_CONNECTION is ``client_ip client_port server_ip server_port``."""
        parts = value.split()
        if len(parts) != 4:
            return None
        return cls("tcp", parts[0], int(parts[1]), parts[2], int(parts[3]))

    def __str__(self) -> str:
        sport = f":{self.sport}" if self.sport else ""
        return f"{self.proto} {self.src}{sport} -> {self.dst}:{self.dport}"


def _host_port(text: str, *, optional_port: bool) -> tuple[str, int | None]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":") or None
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif optional_port and ":" not in text:
        host, port = text, None
    elif optional_port and text.count(":") > 1:
        host, port = text, None  # a bare IPv6 address
    else:
        raise ValueError(text)
    if port is None and not optional_port:
        raise ValueError(text)
    return host, int(port) if port is not None else None


@dataclass(frozen=True)
class FamilyChange:
    family: int
    tables: tuple[str, ...]
    restore_text: str  # only the changed tables
    effect: tuple[str, ...] = ()  # semantic differences, one rule-like line each


@dataclass(frozen=True)
class ApplyResult:
    changes: tuple[FamilyChange, ...]
    applied: bool
    dry_run: bool
    txn_id: str | None = None
    confirm_deadline: str | None = None
    persisted: tuple[str, ...] = ()
    kept_flows: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.changes)


@dataclass
class Options:
    """How to apply: the knobs every entry point (CLI, Ansible, expiry timer) shares."""

    dry_run: bool = False
    force: bool = False
    keep: Sequence[Flow] = ()
    confirm_within: float | None = None  # seconds; None: on (60 s) over SSH, else off
    persist: bool = True
    persist_files: dict[int, str] = field(default_factory=dict)  # override detection
    root: str | None = None
    state_dir: str | None = None
    environ: dict[str, str] | None = None  # for SSH_CONNECTION (tests pass their own)
    session: bool = True  # look for the operator's session (off for the unattended timer)


class KernelMismatch(TrustwallError):
    """After a restore the kernel held something other than the plan; rolled back."""

    exit_code = EXIT_PROBLEM


def changed_tables(live: Ruleset, target: Ruleset) -> tuple[str, ...]:
    """Tables that differ as values (the model compares as iptables-save prints, counters
    excluded). A table the target does not mention is left alone; a new one is changed."""
    return tuple(t.name for t in target.tables if live.table(t.name) != t)


def restore_text(target: Ruleset, tables: Sequence[str]) -> str:
    from trustwall.firewall.iptables.render import render_save

    return "".join(render_save(target, table=name) for name in tables)


def _effect(live: Ruleset, target: Ruleset, tables: Sequence[str]) -> tuple[str, ...]:
    """The semantic difference (packets whose verdict changes) and the named rule changes,
    one line each, for the preview and the audit record."""
    from trustwall.firewall.analysis.plan import diff
    from trustwall.firewall.change.policy import rule_changes

    lines = [f"{hook.table} {hook.hook}: {change}"
             for hook in diff(live, target, tables=tuple(tables)).hooks
             for change in hook.changes]
    if not lines:
        lines.append("no packet changes verdict")
    named = rule_changes(live, target)
    if len(named) > MAX_NAMED_LINES:
        named = [*named[:MAX_NAMED_LINES],
                 f"… and {len(named) - MAX_NAMED_LINES} more rule changes"]
    return (*lines, *named)


def check_lockout(target: Ruleset, flows: Sequence[Flow],
                  local: LocalAddresses | None = None) -> list[str]:
    """Flows the target ruleset would cut: the session itself (ESTABLISHED, both directions)
    and a new connection (NEW), which ``fw confirm`` needs. A verdict the trace cannot be sure
    of counts as a cut: a lockout check that guesses is no check."""
    if not flows:
        return []
    from trustwall.firewall.semantics import routing
    from trustwall.firewall.semantics.trace import Packet, Tracer

    if local is None:
        try:
            local = routing.read_live()
        except TrustwallError:
            local = routing.from_args([f.dst for f in flows])
    tracer = Tracer(target, local)
    problems = []
    for flow in flows:
        if (":" in flow.dst) != (target.family == 6):
            continue
        iface = _interface_of(local, flow.dst)
        sport = flow.sport or 40000
        checks = [
            ("the session", Packet(src=flow.src, dst=flow.dst, proto=flow.proto, sport=sport,
                                   dport=flow.dport, in_iface=iface, state="ESTABLISHED")),
            ("a new connection", Packet(src=flow.src, dst=flow.dst, proto=flow.proto,
                                        sport=sport, dport=flow.dport, in_iface=iface,
                                        state="NEW")),
            ("the replies", Packet(src=flow.dst, dst=flow.src, proto=flow.proto,
                                   sport=flow.dport, dport=sport, out_iface=iface,
                                   state="ESTABLISHED", local=True)),
        ]
        for what, packet in checks:
            result = tracer.trace(packet, with_path=False)
            if result.verdict == "ACCEPT" and result.certain:
                continue
            who = result.decided_by
            where = f" by {who.table} {who.chain} rule {who.rule}: {who.text}" if who else ""
            verdict = result.verdict if result.certain else f"{result.verdict} (uncertain)"
            problems.append(f"{flow}: {what} would be {verdict}{where}")
    return problems


def _interface_of(local: LocalAddresses, address: str) -> str | None:
    import ipaddress

    wanted = ipaddress.ip_address(address)
    for iface, addresses in local.by_interface.items():
        if wanted in addresses:
            return iface
    return None


def _session(options: Options) -> Session:
    if not options.session:
        return Session((), None, unknown=False)
    return find_session(environ=options.environ)


def _flows(options: Options, session: Session) -> list[Flow]:
    """``--keep`` flows, the session's real connection(s), and SSH_CONNECTION if set (a claim
    that can only add protection)."""
    env = options.environ if options.environ is not None else dict(os.environ)
    flows = list(options.keep)
    flows += [Flow("tcp", p.client, p.client_port, p.server, p.server_port)
              for p in session.peers]
    ssh = Flow.from_ssh_connection(env.get("SSH_CONNECTION", "")) if options.session else None
    if ssh is not None and ssh not in flows:
        flows.append(ssh)
    return flows


def _confirm_seconds(options: Options, session: Session) -> float | None:
    env = options.environ if options.environ is not None else dict(os.environ)
    if options.confirm_within is None:
        remote = session.peers or (options.session and env.get("SSH_CONNECTION"))
        return 60.0 if remote else None
    return options.confirm_within or None


def persist_target(family: int, options: Options) -> Path | None:
    if family in options.persist_files:
        return Path(options.persist_files[family])
    root = Path(options.root or "/")
    for candidate in PERSIST_FILES[family]:
        path = root / candidate.lstrip("/")
        if path.parent.is_dir():
            return path
    return None


def apply_rulesets(targets: dict[int, Ruleset], *, description: str, kind: str = "fw-apply",
                   options: Options | None = None,
                   live: dict[int, Ruleset] | None = None) -> ApplyResult:
    """Make the kernel hold ``targets`` (per family), safely. See the module docstring."""
    from trustwall.proc import CommandFailed, run

    options = options or Options()
    if live is None:
        from trustwall.firewall.iptables.live import read_live

        live = {f: read_live(family=f) for f in targets}
    changes = []
    for family, target in sorted(targets.items()):
        tables = changed_tables(live[family], target)
        if tables:
            changes.append(FamilyChange(family, tables, restore_text(target, tables),
                                        _effect(live[family], target, tables)))
    for family, target in targets.items():
        fields.check_added(target, live.get(family))
    session = _session(options)
    flows = _flows(options, session)
    kept = tuple(str(f) for f in flows)
    if not changes:
        return ApplyResult((), applied=False, dry_run=options.dry_run, kept_flows=kept)
    for change in changes:
        try:
            run([tool(change.family, "restore"), "--test"], input=encode(change.restore_text),
                text=False)
        except CommandFailed as exc:
            raise BadInput(f"the kernel refuses the new ruleset: {exc}") from None
    problems = [p for change in changes for p in check_lockout(targets[change.family], flows)]
    warnings: list[str] = []
    if problems:
        if not options.force:
            raise LockoutRisk("refusing: " + "; ".join(problems),
                              hint="fix the policy, or --force with --confirm-within N")
        warnings.extend(f"forced despite lockout risk: {p}" for p in problems)
    confirm = _confirm_seconds(options, session)
    if session.unknown and confirm is None:
        if not options.force:
            raise LockoutRisk("refusing: this runs in an SSH session whose connection cannot "
                              "be found (so the lockout check cannot protect it)",
                              hint="add --confirm-within SECONDS (rolled back unless confirmed)"
                                   ", --keep FLOW, or --force")
        warnings.append("forced although the SSH session's connection could not be found")
    if options.dry_run:
        return ApplyResult(tuple(changes), applied=False, dry_run=True, kept_flows=kept,
                           warnings=tuple(warnings))
    from trustwall.firewall.change.undo import where as made_where
    from trustwall.firewall.iptables.live import chosen_backend, save_text

    where = {"backend": chosen_backend(), **made_where()}

    persisted: list[str] = []
    deadline = None
    effect = "; ".join(line for change in changes for line in change.effect)
    befores: dict[int, bytes] = {}
    try:
        with Transaction(kind, f"{description}: {effect}"[:2000], root=options.root,
                         state_dir=options.state_dir) as txn:
            if confirm is not None:
                # Armed before anything changes: if this process dies mid-way (kill -9, lost
                # SSH session), the watcher's recovery still brings the old ruleset back.
                deadline = _arm_rollback(txn.id, confirm, options, [c.family for c in changes],
                                         session)
            try:
                for change in changes:
                    before = encode(save_text(family=change.family))
                    befores[change.family] = before
                    txn.record(f"iptables-v{change.family}", before,
                               label=", ".join(change.tables), data=where)
                    txn.run([tool(change.family, "restore")],
                            input=encode(change.restore_text))
                for change in changes:
                    expected = _with_tables(live[change.family], targets[change.family])
                    differences = kernel_differences(change.family, expected)
                    if differences:
                        raise KernelMismatch(
                            f"IPv{change.family}: after the restore the kernel holds something "
                            "other than the plan, so the change was rolled back: "
                            + "; ".join(differences))
            except BaseException:
                # The transaction rolls back as this propagates; nothing is left to confirm.
                (state_dir_for(options.root, options.state_dir) / PENDING).unlink(
                    missing_ok=True)
                raise
            if options.persist and confirm is None:
                persisted = _persist(txn, [c.family for c in changes], options)
    except KernelMismatch as exc:
        raise KernelMismatch(f"{exc}{_rollback_report(befores)}") from None
    return ApplyResult(tuple(changes), applied=True, dry_run=False, txn_id=txn.id,
                       confirm_deadline=deadline, persisted=tuple(persisted), kept_flows=kept,
                       warnings=tuple(warnings))


def _with_tables(live: Ruleset, target: Ruleset) -> Ruleset:
    """``live`` with the tables ``target`` holds replaced: what the kernel should hold."""
    from dataclasses import replace

    names = {t.name for t in target.tables}
    return replace(live, tables=(*(t for t in live.tables if t.name not in names),
                                 *target.tables))


def _unequal(wanted: dict[str, Any], held: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """(name, wanted, held) for every name whose two values differ (None: not there)."""
    for name in sorted(set(wanted) | set(held)):
        if wanted.get(name) != held.get(name):
            yield name, wanted.get(name), held.get(name)


def ruleset_differences(expected: Ruleset, actual: Ruleset, limit: int = 5) -> list[str]:
    """How ``actual`` differs from ``expected``, table by table (counters ignored), as at most
    ``limit`` lines; rule text is shown escaped (it may hold anything the kernel accepts)."""
    import difflib

    from trustwall.firewall.iptables.render import render_rule

    out: list[str] = []
    for name, a, b in _unequal({t.name: t for t in expected.tables},
                               {t.name: t for t in actual.tables}):
        if a is None or b is None:
            out.append(f"table {name} {'appeared' if a is None else 'is missing'}")
            continue
        for chain, ca, cb in _unequal({c.name: c for c in a.chains},
                                      {c.name: c for c in b.chains}):
            if ca is None or cb is None:
                out.append(f"{name} chain {chain!a} {'appeared' if ca is None else 'is missing'}")
                continue
            if ca.policy != cb.policy:
                out.append(f"{name} {chain} policy {cb.policy} (planned {ca.policy})")
            lines = difflib.unified_diff([render_rule(r) for r in ca.rules],
                                         [render_rule(r) for r in cb.rules], n=0, lineterm="")
            out.extend(f"{name} {ascii(line)[1:-1]}" for line in lines
                       if line[:1] in "+-" and line[:3] not in ("+++", "---"))
    if len(out) > limit:
        out = [*out[:limit], f"… and {len(out) - limit} more"]
    return out


def kernel_differences(family: int, expected: Ruleset) -> list[str]:
    """Read the kernel back (iptables-save) and say how it differs from ``expected``."""
    from trustwall.firewall.iptables.live import read_live

    try:
        actual = read_live(family=family)
    except ParseError as exc:
        return [f"its ruleset no longer reads back ({exc})"]
    return ruleset_differences(expected, actual)


def _rollback_report(befores: dict[int, bytes]) -> str:
    """After a rollback: does the kernel hold the before-image again?"""
    from trustwall.firewall.iptables.live import decode
    from trustwall.firewall.iptables.parse import parse_save

    bad = []
    for family, before in befores.items():
        try:
            expected = parse_save(decode(before), family=family)
        except ParseError:
            continue  # the before-image itself was restored byte for byte; nothing to compare
        if kernel_differences(family, expected):
            bad.append(f"IPv{family}")
    if bad:
        return (f" — WARNING: after the rollback {', '.join(bad)} still differs from the "
                "previous ruleset; check with iptables-save")
    return " (the previous ruleset is back in place)"


def _persist(txn: Transaction, families: Sequence[int], options: Options) -> list[str]:
    from trustwall.firewall.iptables.live import save_text

    written = []
    for family in families:
        path = persist_target(family, options)
        if path is None:
            continue
        txn.write_file(path, encode(save_text(family=family)), mode=0o640)
        written.append(str(path))
    return written


# -- confirm or roll back ------------------------------------------------------------------


def _arm_rollback(txn_id: str | None, seconds: float, options: Options,
                  families: Sequence[int], session: Session) -> str:
    # Absolute: the watcher runs with cwd / (a relative dir would name another place).
    state = Path(os.path.abspath(state_dir_for(options.root, options.state_dir)))
    env = options.environ if options.environ is not None else dict(os.environ)
    deadline = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=seconds)
    pending = {"txn": txn_id, "deadline": deadline.isoformat(), "families": list(families),
               "ssh_connection": env.get("SSH_CONNECTION"),
               "session": [str(p) for p in session.peers], "persist": options.persist,
               "persist_files": {str(k): v for k, v in options.persist_files.items()},
               "root": options.root, "state_dir": str(state)}
    atomic_write(state / PENDING, json.dumps(pending).encode(), mode=0o600)
    # Double fork into a new session: the watcher must survive the operator's SSH session
    # and the applying process (even a kill -9 of it).
    argv = [sys.executable, "-m", "trustwall.firewall.change.apply", "--watch", str(state),
            str(txn_id), str(seconds)]
    subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                     cwd="/")
    return deadline.isoformat()


@dataclass(frozen=True)
class ConfirmResult:
    txn_id: str
    persisted: tuple[str, ...]


def confirm(*, root: str | None = None, state_dir: str | None = None,
            environ: dict[str, str] | None = None) -> ConfirmResult:
    """Keep the pending change: the new ruleset let this (new) connection in."""
    env = environ if environ is not None else dict(os.environ)
    state = state_dir_for(root, state_dir)
    with HostLock(state):
        path = state / PENDING
        if not path.exists():
            if (state / ROLLING_BACK).exists():
                raise TrustwallError("too late: the change was already rolled back")
            raise BadInput("no firewall change is waiting for confirmation")
        pending = json.loads(path.read_text())
        ssh = env.get("SSH_CONNECTION")
        # The real peer, from the kernel: SSH_CONNECTION is whatever the caller set (empty
        # after sudo, or on purpose).
        mine = {str(p) for p in find_session(environ=env).peers}
        if mine & set(pending.get("session") or ()) or (
                ssh and pending.get("ssh_connection") == ssh):
            raise BadInput("confirm from a NEW connection: this is the session that applied "
                           "the change, so it does not prove that new connections get in")
        path.unlink()
    persisted: list[str] = []
    if pending.get("persist"):
        options = Options(root=pending.get("root"), state_dir=state_dir,
                          persist_files={int(k): v
                                         for k, v in pending.get("persist_files", {}).items()})
        with Transaction("fw-persist", f"persist confirmed change {pending['txn']}",
                         root=options.root, state_dir=state_dir) as txn:
            persisted = _persist(txn, pending["families"], options)
    return ConfirmResult(str(pending["txn"]), tuple(persisted))


def watch(state: Path, txn_id: str, seconds: float) -> bool:
    """The detached watcher: wait, then roll back unless confirmed. True if it rolled back."""
    import time

    from trustwall.journal.transaction import recover, transactions, undo

    time.sleep(seconds)
    with HostLock(state):
        path = state / PENDING
        if not path.exists():
            return False
        pending = json.loads(path.read_text())
        if str(pending.get("txn")) != txn_id:
            return False
        os.replace(path, state / ROLLING_BACK)
    try:
        recover(state_dir=state)  # an apply that died mid-way is rolled back right here
        summary = next((t for t in transactions(state_dir=state) if t.id == txn_id), None)
        if summary is not None and summary.status == "committed" and summary.undone_by is None:
            undo(txn_id, state_dir=state, force=True)
    finally:
        (state / ROLLING_BACK).unlink(missing_ok=True)
    return True


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--watch":
        watch(Path(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
