"""Append-only, keyed hash-chained audit log: who changed what, when, with before/after digests.

One JSON object per line in ``<state_dir>/audit.log``. Each record carries ``prev_hash`` (the
previous record's ``hash``; 64 zeros for the first) and ``hash`` = HMAC-SHA256 of the record's
canonical JSON without ``hash``, keyed with ``audit.key`` (32 random bytes, root-only, made on
first use). Without the key nobody can rewrite a record and recompute the chain. Editing,
reordering or deleting a line breaks the chain; cutting lines off the end is caught by
``audit.head`` (count, last hash and where the keyed chain starts, itself MACed, rewritten
atomically after each append); a deleted or cut log is also caught by the transactions in
``txns/`` whose audit record it no longer holds.

Records written before the key existed (no ``"chain"`` field) are plain SHA-256; the MACed
head says where the keyed part starts, so later records cannot be downgraded to plain ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pwd
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustwall.errors import StoreError
from trustwall.journal import fault
from trustwall.journal.atomic import (
    atomic_write,
    open_append,
    open_nofollow,
    read_nofollow,
    write_all,
)
from trustwall.journal.statedir import ensure

GENESIS = "0" * 64
KEYED = "hmac-sha256"
KEY_FILE = "audit.key"


def who() -> dict[str, Any]:
    """The acting user, and the human behind sudo when there is one."""
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return {"user": user, "uid": uid, "sudo_user": os.environ.get("SUDO_USER") or None}


def record_hash(record: dict[str, Any], key: bytes | None = None) -> str:
    """The record's hash: HMAC-SHA256 with ``key`` for a keyed record, else SHA-256."""
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode()
    if record.get("chain") == KEYED:
        return hmac.new(key, canonical, hashlib.sha256).hexdigest() if key else ""
    return hashlib.sha256(canonical).hexdigest()


def _head_mac(key: bytes, records: int, last: str | None, keyed_from: int | None) -> str:
    return hmac.new(key, f"{records}:{last}:{keyed_from}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditProblem:
    line: int
    message: str


@dataclass(frozen=True)
class AuditVerdict:
    path: str
    records: int
    ok: bool
    problems: tuple[AuditProblem, ...]


class AuditLog:
    """The log file plus its head marker. Callers append while holding the host lock."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / "audit.log"
        self.head_path = self.state_dir / "audit.head"
        self.key_path = self.state_dir / KEY_FILE

    def _key(self, *, create: bool = False) -> bytes | None:
        """The chain key; made (0600, never through a symlink) on the first append."""
        try:
            fd = open_nofollow(self.key_path, os.O_RDONLY)
        except FileNotFoundError:
            if not create:
                return None
            # Whole or absent, never empty (a kill mid-creation), and never clobbered.
            atomic_write(self.key_path, os.urandom(32), mode=0o600, overwrite=False)
            return self._key()
        try:
            st = os.fstat(fd)
            if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                    or stat.S_IMODE(st.st_mode) & 0o077):
                raise StoreError(f"{self.key_path}: must be a regular file owned by you with "
                                 "mode 0600; refusing to use it",
                                 hint=f"chown root {self.key_path}; chmod 0600 {self.key_path}")
            key = os.read(fd, 64)
        finally:
            os.close(fd)
        if len(key) != 32:
            raise StoreError(f"{self.key_path}: not a 32-byte key")
        return key

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record that parses; a verification is what finds the ones that do not."""
        try:
            data = read_nofollow(self.path)
        except FileNotFoundError:
            return
        for line in data.decode("utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                yield rec

    def _tail(self) -> tuple[str, int, int | None]:
        """Last hash, record count, and the number of the first keyed record."""
        last, count, keyed_from = GENESIS, 0, None
        for rec in self.records():
            last, count = rec.get("hash", GENESIS), count + 1
            if keyed_from is None and rec.get("chain") == KEYED:
                keyed_from = count
        return last, count, keyed_from

    def ids(self) -> set[str]:
        return {str(rec.get("id")) for rec in self.records()}

    def append(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Chain ``fields`` onto the log (fsynced) and return the full record."""
        ensure(self.state_dir)
        key = self._key(create=True)
        prev, count, keyed_from = self._tail()
        record = {**fields, "prev_hash": prev, "chain": KEYED}
        record["hash"] = record_hash(record, key)
        line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        fd = open_append(self.path)
        try:
            write_all(fd, line.encode())
            fault.point("fsync")
            os.fsync(fd)
        finally:
            os.close(fd)
        self._write_head(count + 1, record["hash"], keyed_from or count + 1)
        return record

    def _write_head(self, count: int, last: str, keyed_from: int | None) -> None:
        key = self._key(create=True)
        assert key is not None
        head = {"records": count, "hash": last, "keyed_from": keyed_from,
                "mac": _head_mac(key, count, last, keyed_from)}
        atomic_write(self.head_path, (json.dumps(head) + "\n").encode(), mode=0o600)

    def repair_head(self) -> None:
        """Point ``audit.head`` at the log's last record again (a kill between the append and
        the head's rename leaves it one behind). Only recovery calls this, for a record it
        knows it wrote; a head AHEAD of the log (records cut off) is never "repaired"."""
        last, count, keyed_from = self._tail()
        head = self._head()
        stale = head.get("records") != count or head.get("hash") != last
        if stale and int(head.get("records") or 0) <= count:
            self._write_head(count, last, keyed_from)

    def _head(self) -> dict[str, Any]:
        try:
            head = json.loads(read_nofollow(self.head_path))
        except (OSError, ValueError):
            return {}
        return head if isinstance(head, dict) else {}

    def verify(self) -> AuditVerdict:
        """Recompute the chain; report every line that was edited, inserted, removed or cut,
        and every finished transaction the log does not hold (a deleted or cut log)."""
        problems: list[AuditProblem] = []
        key = self._key()
        prev, count, keyed_from = GENESIS, 0, None
        ids: set[str] = set()
        try:
            text = read_nofollow(self.path).decode("utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        for number, line in enumerate(text.splitlines(), start=1):
            count = number
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError
            except ValueError:
                problems.append(AuditProblem(number, "not valid JSON"))
                prev = ""
                continue
            ids.add(str(rec.get("id")))
            if rec.get("chain") == KEYED:
                keyed_from = keyed_from or number
                if key is None:
                    problems.append(AuditProblem(number, f"keyed record but {KEY_FILE} is "
                                                 "missing (cannot be verified)"))
            elif keyed_from is not None or "chain" in rec:
                problems.append(AuditProblem(number, "record is not keyed like the ones "
                                             "before it (rewritten without the key)"))
            if rec.get("prev_hash") != prev:
                problems.append(AuditProblem(
                    number, "prev_hash does not match the previous record "
                    "(a record was removed, inserted or reordered)"))
            if rec.get("hash") != record_hash(rec, key):
                problems.append(AuditProblem(number, "hash does not match the record "
                                             "(the record was edited)"))
            prev = rec.get("hash", "")
        problems.extend(self._check_head(key, count, prev if count else None, keyed_from))
        problems.extend(AuditProblem(count, f"transaction {txn} finished but its record is "
                                     "missing from the log (the log was deleted or cut)")
                        for txn in self._audited_transactions() - ids)
        return AuditVerdict(str(self.path), count, not problems, tuple(problems))

    def _check_head(self, key: bytes | None, count: int, last: str | None,
                    keyed_from: int | None) -> list[AuditProblem]:
        if not os.path.lexists(self.head_path):
            return [AuditProblem(count, "audit.head is missing")] if count or key else []
        head = self._head()
        if key is not None and head.get("mac") != _head_mac(
                key, head.get("records"), head.get("hash"), head.get("keyed_from")):
            return [AuditProblem(count, "audit.head was not written by trustwall "
                                 "(its MAC does not match)")]
        if head.get("records") != count or head.get("hash") != last:
            if count < int(head.get("records") or 0):
                message = (f"log has {count} records but {head.get('records')} were "
                           "written (records were cut off the end)")
            else:
                message = "audit.head does not match the last record"
            return [AuditProblem(count, message)]
        if key is not None and head.get("keyed_from") != keyed_from:
            return [AuditProblem(count, "the keyed chain starts at record "
                                 f"{head.get('keyed_from')}, not {keyed_from} (records were "
                                 "rewritten without the key)")]
        return []

    def _audited_transactions(self) -> set[str]:
        """Ids of transactions whose audit record was written (their ``audited`` marker)."""
        txns = self.state_dir / "txns"
        try:
            names = os.listdir(txns)
        except OSError:
            return set()
        return {str(int(n)) for n in names
                if n.isdigit() and os.path.lexists(txns / n / "audited")}
