"""Undo restores files byte-identical, with mode and owner; rollback on error; conflicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustwall.errors import StoreError
from trustwall.journal import steps
from trustwall.journal.transaction import Transaction, recover, transactions, undo


def _image(path: Path) -> tuple:
    st = path.lstat()
    if path.is_symlink():
        return ("link", os.readlink(path))
    return ("file", path.read_bytes(), st.st_mode & 0o7777, st.st_uid, st.st_gid)


def _tree(top: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted(top.rglob("*")):
        if "var" in p.relative_to(top).parts[:1]:
            continue  # the state dir itself
        out[str(p.relative_to(top))] = ("dir",) if p.is_dir() and not p.is_symlink() \
            else _image(p)
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "keep.conf").write_bytes(b"keep\n")
    (r / "etc" / "secret").write_bytes(bytes(range(256)) * 4)
    os.chmod(r / "etc" / "secret", 0o640)
    (r / "etc" / "link").symlink_to("keep.conf")
    if os.geteuid() == 0:
        os.chown(r / "etc" / "secret", 1234, 5678)
    return r


def test_undo_restores_every_file_byte_identical_with_mode_and_owner(root: Path) -> None:
    before = _tree(root)
    with Transaction("test", "mixed changes", root=root) as txn:
        txn.write_file(root / "etc" / "secret", b"replaced", mode=0o600, owner=(0, 0))
        txn.write_file(root / "etc" / "new" / "deep" / "file.crt", b"fresh")
        txn.remove_file(root / "etc" / "keep.conf")
        txn.symlink(root / "etc" / "link", "secret")
        txn.write_file(root / "etc" / "secret", b"replaced twice")
    assert (root / "etc" / "secret").read_bytes() == b"replaced twice"
    assert not (root / "etc" / "keep.conf").exists()
    result = undo(root=root)
    assert result.undone == txn.id
    assert _tree(root) == before
    if os.geteuid() == 0:
        st = (root / "etc" / "secret").stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1234, 5678, 0o640)


def test_undo_of_the_undo_redoes_and_plain_undo_walks_back(root: Path) -> None:
    target = root / "etc" / "keep.conf"
    with Transaction("test", "first", root=root):
        pass
    with Transaction("test", "one", root=root) as t1:
        t1.write_file(target, b"one\n")
    with Transaction("test", "two", root=root) as t2:
        t2.write_file(target, b"two\n")
    u2 = undo(root=root)
    assert (u2.undone, target.read_bytes()) == (t2.id, b"one\n")
    u1 = undo(root=root)
    assert (u1.undone, target.read_bytes()) == (t1.id, b"keep\n")
    undo(u1.undo_txn, root=root)  # redo "one"
    assert target.read_bytes() == b"one\n"
    states = {s.id: s for s in transactions(root=root)}
    assert states[t2.id].undone_by == u2.undo_txn


def test_exception_inside_transaction_rolls_back_and_is_audited(root: Path) -> None:
    before = _tree(root)
    with pytest.raises(RuntimeError), Transaction("test", "fails", root=root) as txn:
        txn.write_file(root / "etc" / "keep.conf", b"half done")
        txn.write_file(root / "etc" / "other", b"x")
        raise RuntimeError("boom")
    assert _tree(root) == before
    (summary,) = transactions(root=root)
    assert summary.status == "rolled-back"


def test_undo_refuses_when_a_file_changed_since_unless_forced(root: Path) -> None:
    target = root / "etc" / "keep.conf"
    with Transaction("test", "edit", root=root) as txn:
        txn.write_file(target, b"ours\n")
    target.write_bytes(b"edited by hand\n")
    with pytest.raises(StoreError, match="changed since"):
        undo(txn.id, root=root)
    assert target.read_bytes() == b"edited by hand\n"
    undo(txn.id, root=root, force=True)
    assert target.read_bytes() == b"keep\n"


def test_dry_run_undo_and_dry_run_transaction_change_nothing(root: Path) -> None:
    before = _tree(root)
    with Transaction("test", "plan", root=root, dry_run=True) as txn:
        txn.write_file(root / "etc" / "keep.conf", b"never")
    assert txn.planned and _tree(root) == before
    with Transaction("test", "real", root=root) as txn:
        txn.write_file(root / "etc" / "keep.conf", b"real")
    plan = undo(root=root, dry_run=True)
    assert plan.dry_run and any("keep.conf" in a for a in plan.actions)
    assert (root / "etc" / "keep.conf").read_bytes() == b"real"


@pytest.fixture
def file_kind(root: Path) -> Iterator[Path]:
    """A step kind over a file only a command touches (the firewall's shape, without a
    kernel): registered by code, as the iptables kinds are."""
    state = root / "etc" / "rules"
    py = sys.executable
    kind = steps.StepKind(
        name="test-rules",
        capture=lambda data: state.read_bytes(),
        restore_argv=lambda data: [py, "-c", "import sys; open(sys.argv[1],'wb')"
                                   ".write(sys.stdin.buffer.read())", str(state)],
        fields={"tag": lambda v: v in ("a", "b")})
    steps.register(kind)
    yield state
    steps._KINDS.pop(kind.name)


def test_record_restores_the_before_image_the_way_its_kind_says(root: Path,
                                                                file_kind: Path) -> None:
    state = file_kind
    state.write_bytes(b"*filter\nCOMMIT\n")
    py = sys.executable
    with Transaction("fw-apply", "open 443", root=root) as txn:
        txn.record("test-rules", state.read_bytes(), label="filter", data={"tag": "a"})
        txn.run([py, "-c", f"open({str(state)!r},'w').write('*filter\\n-A X\\nCOMMIT\\n')"])
    assert b"-A X" in state.read_bytes()
    result = undo(root=root)
    assert state.read_bytes() == b"*filter\nCOMMIT\n"
    undo(result.undo_txn, root=root)  # redo uses the state captured by the kind
    assert b"-A X" in state.read_bytes()


def test_unknown_record_kinds_and_bad_data_are_refused_before_the_journal_is_written(
        root: Path, file_kind: Path) -> None:
    with pytest.raises(steps.JournalRefused), Transaction("t", "x", root=root) as txn:
        txn.record("no-such-kind", b"")
    with pytest.raises(steps.JournalRefused), Transaction("t", "x", root=root) as txn:
        txn.record("test-rules", b"", data={"tag": "-J-javaagent"})


def _planted(root: Path, entries: list[dict], *, meta_root: str | None = None) -> Path:
    """An open transaction written by someone else into root's state dir."""
    txn = root / "var" / "lib" / "trustwall" / "txns" / "000001"
    (txn / "blobs").mkdir(parents=True)
    for p in (root / "var" / "lib" / "trustwall", root / "var" / "lib" / "trustwall" / "txns"):
        os.chmod(p, 0o700)
    (txn / "meta.json").write_text(json.dumps({
        "id": "1", "kind": "x", "description": "planted", "root": meta_root or str(root),
        "started": "2026-01-01T00:00:00", "who": {}, "undoes": None}))
    (txn / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    return txn


@pytest.mark.parametrize("entry", [
    {"op": "run", "argv": ["true"], "undo_argv": ["sh", "-c", "touch {pwned}"]},
    {"op": "record", "kind": "shell", "before": "0" * 64, "undo_argv": ["sh"]},
    {"op": "record", "kind": "iptables-v4", "before": "0" * 64,
     "data": {"backend": "x; touch {pwned}"}},
    {"op": "exec", "argv": ["sh", "-c", "touch {pwned}"]},
    {"op": "file", "path": "{outside}", "before": {"type": "absent"}},
    {"op": "file", "path": "{root}/etc/../../outside", "before": {"type": "absent"}},
    {"op": "tree", "path": "{root}/etc", "names": ["../../outside"]},
    {"op": "file", "before": {"type": "absent"}},
    ["not", "an", "entry"],
    {"op": "file", "path": "{root}/etc/x", "before": {"type": "file", "sha256": "../../x",
                                                     "mode": 420, "uid": 0, "gid": 0}},
], ids=["run-undo-argv", "unknown-kind", "bad-data", "unknown-op", "path-outside",
        "dotdot", "tree-dotdot", "no-path", "not-a-dict", "blob-traversal"])
def test_a_planted_journal_is_refused_and_never_executed(root: Path, tmp_path: Path,
                                                         entry: dict) -> None:
    pwned, outside = tmp_path / "pwned", tmp_path / "outside"
    outside.write_text("victim")
    text = json.dumps(entry).replace("{pwned}", str(pwned)).replace(
        "{outside}", str(outside)).replace("{root}", str(root))
    _planted(root, [json.loads(text)])
    with pytest.raises(steps.JournalRefused):
        recover(root=root)
    assert not pwned.exists() and outside.read_text() == "victim"
    listed = subprocess.run([sys.executable, "-m", "trustwall", "undo", "--dry-run", "--root",
                             str(root)], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 2, listed.stderr  # a clear refusal, never an internal error


def test_a_planted_transaction_claiming_the_host_root_is_confined_to_the_given_root(
        root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("victim")
    _planted(root, [{"op": "file", "path": str(outside), "before": {"type": "absent"}}],
             meta_root="/")
    with pytest.raises(steps.JournalRefused, match="made under root /"):
        recover(root=root)
    assert outside.read_text() == "victim"


def test_snapshot_tree_undo_removes_files_a_command_created(root: Path) -> None:
    certs = root / "etc" / "certs"
    certs.mkdir()
    (certs / "a.pem").write_bytes(b"a")
    before = _tree(root)
    with Transaction("test", "tool", root=root) as txn:
        txn.snapshot_tree(certs)
        txn.run(["sh", "-c", f"echo b > {certs}/b.pem; ln -s a.pem {certs}/1234.0; "
                             f"echo changed > {certs}/a.pem"])
    undo(root=root)
    assert _tree(root) == before


def test_recover_is_a_no_op_without_state(tmp_path: Path) -> None:
    assert recover(root=tmp_path) == []


def test_undo_dry_run_on_a_planted_image_runs_nothing(root: Path, tmp_path: Path) -> None:
    """Issue 18's reproduction: `undo --dry-run --root IMG` ran the planted undo_argv (the
    recovery ran before the dry run). Now a dry run recovers nothing, and the journal is
    refused before any step when it is acted upon."""
    pwned = tmp_path / "pwned"
    _planted(root, [{"op": "run", "argv": ["true"],
                     "undo_argv": ["sh", "-c", f"touch {pwned}"]}])
    for args in (["undo", "--dry-run"], ["undo"], ["recover"], ["ca", "list"]):
        proc = subprocess.run([sys.executable, "-m", "trustwall", *args, "--root", str(root)],
                              capture_output=True, text=True, timeout=60)
        assert not pwned.exists(), (args, proc.stderr)
        if args[0] == "recover":
            assert proc.returncode == 2 and "never runs commands read from a journal" in \
                proc.stderr
