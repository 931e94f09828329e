"""The audit log is hash-chained: edits, deletions, reordering and truncation are detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustwall.journal.audit import AuditLog
from trustwall.journal.transaction import Transaction, state_dir_for


@pytest.fixture
def logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    monkeypatch.setenv("SUDO_USER", "alice")
    for n in range(4):
        with Transaction("test", f"change {n}", root=tmp_path) as txn:
            txn.write_file(tmp_path / f"f{n}", f"{n}\n".encode())
    return AuditLog(state_dir_for(tmp_path))


def _lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


def test_intact_log_verifies_and_names_who_with_sudo_user(logged: AuditLog) -> None:
    verdict = logged.verify()
    assert verdict.ok and verdict.records == 4
    first = next(iter(logged.records()))
    assert first["who"]["sudo_user"] == "alice"
    assert first["prev_hash"] == "0" * 64
    assert first["files"][0]["before"] == "absent"
    assert len(first["files"][0]["after"]) == 64


def test_edited_record_is_detected(logged: AuditLog) -> None:
    lines = _lines(logged)
    rec = json.loads(lines[1])
    rec["description"] = "nothing to see here"
    lines[1] = json.dumps(rec, sort_keys=True) + "\n"
    logged.path.write_text("".join(lines))
    verdict = logged.verify()
    assert not verdict.ok
    assert [p.line for p in verdict.problems] == [2]


def test_edited_record_with_recomputed_hash_breaks_the_chain(logged: AuditLog) -> None:
    from trustwall.journal.audit import record_hash

    lines = _lines(logged)
    rec = json.loads(lines[1])
    rec["who"]["user"] = "mallory"
    rec["hash"] = record_hash(rec)
    lines[1] = json.dumps(rec, sort_keys=True) + "\n"
    logged.path.write_text("".join(lines))
    assert [p.line for p in logged.verify().problems] == [3]


@pytest.mark.parametrize("mutation", ["delete", "swap", "truncate", "garbage"])
def test_removed_reordered_cut_or_garbled_lines_are_detected(logged: AuditLog,
                                                             mutation: str) -> None:
    lines = _lines(logged)
    if mutation == "delete":
        del lines[1]
    elif mutation == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    elif mutation == "truncate":
        lines = lines[:-1]
    else:
        lines[2] = "{not json\n"
    logged.path.write_text("".join(lines))
    assert not logged.verify().ok


def test_appending_after_verification_keeps_the_chain(logged: AuditLog, tmp_path: Path) -> None:
    with Transaction("test", "more", root=tmp_path) as txn:
        txn.remove_file(tmp_path / "f0")
    verdict = logged.verify()
    assert verdict.ok and verdict.records == 5
