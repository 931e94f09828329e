"""Undo restores files byte-identical, with mode and owner; rollback on error; conflicts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from trustwall.errors import StoreError
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


def test_record_runs_the_undo_command_with_the_before_image(root: Path) -> None:
    """The firewall side: a non-file state (here a file only a command touches)."""
    state = root / "etc" / "rules"
    state.write_bytes(b"*filter\nCOMMIT\n")
    py = sys.executable
    save = [py, "-c", f"import sys; sys.stdout.buffer.write(open({str(state)!r},'rb').read())"]
    restore = [py, "-c", f"import sys; open({str(state)!r},'wb').write(sys.stdin.buffer.read())"]
    with Transaction("fw-apply", "open 443", root=root) as txn:
        txn.record("iptables", state.read_bytes(), restore, capture_argv=save, label="filter")
        txn.run([py, "-c", f"open({str(state)!r},'w').write('*filter\\n-A X\\nCOMMIT\\n')"])
    assert b"-A X" in state.read_bytes()
    result = undo(root=root)
    assert state.read_bytes() == b"*filter\nCOMMIT\n"
    undo(result.undo_txn, root=root)  # redo uses the captured state
    assert b"-A X" in state.read_bytes()


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
