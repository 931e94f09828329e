"""atomic_write: all-or-nothing replacement with the right mode, and refusal to clobber."""

from __future__ import annotations

import os
import stat

import pytest

from trustwall.errors import BadInput
from trustwall.journal.atomic import atomic_write


def test_replaces_content_and_sets_mode(tmp_path):
    target = tmp_path / "ca.crt"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    atomic_write(target, b"new", mode=0o644)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["ca.crt"]  # no temp file left


def test_refuses_to_overwrite_when_asked(tmp_path):
    target = tmp_path / "out.pem"
    target.write_bytes(b"keep")
    with pytest.raises(BadInput, match="exists"):
        atomic_write(target, b"other", overwrite=False)
    assert target.read_bytes() == b"keep"


def test_directory_target_and_missing_parent_are_bad_input(tmp_path):
    with pytest.raises(BadInput, match="is a directory"):
        atomic_write(tmp_path, b"x")
    with pytest.raises(BadInput, match="does not exist"):
        atomic_write(tmp_path / "nope" / "f", b"x")


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "bundle.pem"
    target.write_bytes(b"old")

    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.pem"]
