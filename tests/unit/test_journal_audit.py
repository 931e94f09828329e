"""The audit log is hash-chained: edits, deletions, reordering and truncation are detected."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from trustwall.errors import BadInput, StoreError
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
    assert [p.line for p in logged.verify().problems] == [2, 3]


@pytest.mark.parametrize("downgrade", [False, True], ids=["keep-chain-field", "as-plain"])
def test_rewritten_descriptions_with_the_whole_chain_and_head_recomputed_are_detected(
        logged: AuditLog, downgrade: bool) -> None:
    """Issue 18: without the root-only key, recomputing every hash (and the head) after
    rewriting a description no longer passes as intact."""
    from trustwall.journal.audit import GENESIS, record_hash

    records = [json.loads(line) for line in _lines(logged)]
    records[1]["description"] = "nothing to see here"
    prev = GENESIS
    for rec in records:
        if downgrade:
            rec.pop("chain")
        rec["prev_hash"] = prev
        rec["hash"] = prev = hashlib.sha256(json.dumps(
            {k: v for k, v in rec.items() if k != "hash"}, sort_keys=True,
            separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
        assert downgrade is (record_hash(rec) == rec["hash"])
    logged.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    logged.head_path.write_text(json.dumps({"records": 4, "hash": prev, "keyed_from": None}))
    verdict = logged.verify()
    assert not verdict.ok and verdict.problems


def test_a_deleted_log_is_detected_while_transactions_exist(logged: AuditLog) -> None:
    logged.path.unlink()
    logged.head_path.unlink()
    verdict = logged.verify()
    assert not verdict.ok
    assert sum("missing from the log" in p.message for p in verdict.problems) == 4


def test_the_key_is_root_only_and_a_planted_key_is_refused(logged: AuditLog) -> None:
    assert logged.key_path.stat().st_mode & 0o777 == 0o600
    os.chmod(logged.key_path, 0o644)
    with pytest.raises(StoreError, match="mode 0600"):
        logged.verify()
    os.chmod(logged.key_path, 0o600)
    logged.key_path.rename(logged.key_path.with_name("k"))
    logged.key_path.symlink_to("k")
    with pytest.raises(BadInput, match="symlink"):
        logged.verify()


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
