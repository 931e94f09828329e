"""Append-only, hash-chained audit log: who changed what, when, with before/after digests.

One JSON object per line in ``<state_dir>/audit.log``. Each record carries ``prev_hash`` (the
previous record's ``hash``; 64 zeros for the first) and ``hash`` = SHA-256 of the record's
canonical JSON without ``hash``. Editing, reordering or deleting a line breaks the chain;
cutting lines off the end is caught by ``audit.head`` (count and last hash, rewritten
atomically after each append).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustwall.journal.atomic import atomic_write, open_append, read_nofollow, write_all

GENESIS = "0" * 64


def who() -> dict[str, Any]:
    """The acting user, and the human behind sudo when there is one."""
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return {"user": user, "uid": uid, "sudo_user": os.environ.get("SUDO_USER") or None}


def record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
        self.path = Path(state_dir) / "audit.log"
        self.head_path = Path(state_dir) / "audit.head"

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record that parses; a verification is what finds the ones that do not."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue

    def _tail_hash(self) -> tuple[str, int]:
        last, count = GENESIS, 0
        for rec in self.records():
            last, count = rec.get("hash", GENESIS), count + 1
        return last, count

    def ids(self) -> set[str]:
        return {str(rec.get("id")) for rec in self.records()}

    def append(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Chain ``fields`` onto the log (fsynced) and return the full record."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        prev, count = self._tail_hash()
        record = {**fields, "prev_hash": prev}
        record["hash"] = record_hash(record)
        line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        fd = open_append(self.path)
        try:
            write_all(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._write_head(count + 1, record["hash"])
        return record

    def _write_head(self, count: int, last: str) -> None:
        head = json.dumps({"records": count, "hash": last}) + "\n"
        atomic_write(self.head_path, head.encode(), mode=0o600)

    def repair_head(self) -> None:
        """Point ``audit.head`` at the log's last record again (a kill between the append and
        the head's rename leaves it one behind). Only recovery calls this, for a record it
        knows it wrote; a head AHEAD of the log (records cut off) is never "repaired"."""
        last, count = self._tail_hash()
        head = self._head()
        stale = head.get("records") != count or head.get("hash") != last
        if stale and int(head.get("records") or 0) <= count:
            self._write_head(count, last)

    def _head(self) -> dict[str, Any]:
        try:
            head = json.loads(read_nofollow(self.head_path))
        except (OSError, ValueError):
            return {}
        return head if isinstance(head, dict) else {}

    def verify(self) -> AuditVerdict:
        """Recompute the chain; report every line that was edited, inserted, removed or cut."""
        problems: list[AuditProblem] = []
        prev, count = GENESIS, 0
        if self.path.exists():
            with self.path.open(encoding="utf-8", errors="replace") as handle:
                for number, line in enumerate(handle, start=1):
                    count = number
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        problems.append(AuditProblem(number, "not valid JSON"))
                        prev = ""
                        continue
                    if rec.get("prev_hash") != prev:
                        problems.append(AuditProblem(
                            number, "prev_hash does not match the previous record "
                            "(a record was removed, inserted or reordered)"))
                    if rec.get("hash") != record_hash(rec):
                        problems.append(AuditProblem(number, "hash does not match the record "
                                                     "(the record was edited)"))
                    prev = rec.get("hash", "")
        if self.head_path.exists():
            try:
                head = json.loads(self.head_path.read_text())
            except (OSError, json.JSONDecodeError):
                head = {}
            if head.get("records") != count or head.get("hash") != (prev if count else None):
                if count < int(head.get("records") or 0):
                    message = (f"log has {count} records but {head.get('records')} were "
                               "written (records were cut off the end)")
                else:
                    message = "audit.head does not match the last record"
                problems.append(AuditProblem(count, message))
        elif count:
            problems.append(AuditProblem(count, "audit.head is missing"))
        return AuditVerdict(str(self.path), count, not problems, tuple(problems))
