"""Paths under --root resolve inside the root (issue 18): a link in the image that points at a
host path never leads a write, a snapshot or an undo out of the image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trustwall.errors import BadInput
from trustwall.journal.rootfs import resolve
from trustwall.journal.transaction import Transaction, transactions, undo


@pytest.fixture
def img(tmp_path: Path) -> Path:
    root = tmp_path / "img"
    (root / "usr/lib/ssl/certs").mkdir(parents=True)
    (root / "etc/ssl").mkdir(parents=True)
    return root


@pytest.mark.parametrize(("link", "target", "asked", "expected"), [
    ("etc/ssl/certs", "/usr/lib/ssl/certs", "etc/ssl/certs/x", "usr/lib/ssl/certs/x"),
    ("etc/ssl/certs", "../../usr/lib/ssl/certs", "etc/ssl/certs/x", "usr/lib/ssl/certs/x"),
    ("etc/ssl/certs", "../../../../../../../usr", "etc/ssl/certs/x", "usr/x"),  # .. stops
    ("etc/ssl/certs", "/", "etc/ssl/certs/usr/lib", "usr/lib"),
    ("etc/ssl/certs", "/missing/dir", "etc/ssl/certs/x", "missing/dir/x"),
])
def test_links_resolve_as_a_chrooted_process_sees_them(img: Path, link: str, target: str,
                                                       asked: str, expected: str) -> None:
    (img / link).symlink_to(target)
    assert resolve(img, img / asked) == img / expected


def test_the_last_component_is_followed_only_when_asked(img: Path) -> None:
    (img / "etc/ssl/cert.pem").symlink_to("/usr/lib/ssl/certs/bundle")
    assert resolve(img, img / "etc/ssl/cert.pem") == img / "etc/ssl/cert.pem"
    assert resolve(img, img / "etc/ssl/cert.pem", follow_last=True) == \
        img / "usr/lib/ssl/certs/bundle"


def test_loops_and_paths_outside_are_refused(img: Path, tmp_path: Path) -> None:
    (img / "a").symlink_to("b")
    (img / "b").symlink_to("/a")
    with pytest.raises(BadInput, match="too many levels"):
        resolve(img, img / "a" / "x")
    with pytest.raises(BadInput, match="outside the root"):
        resolve(img, tmp_path / "elsewhere")


def test_a_write_through_an_image_link_to_a_host_path_stays_in_the_image(
        img: Path, tmp_path: Path) -> None:
    """IMG/etc/ssl/certs -> /<host dir>: the planted root must not reach the host's bundle."""
    host = tmp_path / "host-certs"
    host.mkdir()
    (host / "ca-certificates.crt").write_bytes(b"host bundle\n")
    (img / "etc/ssl/certs").symlink_to(host)  # absolute: the host kernel would follow it
    inner = img / str(host).lstrip("/")
    inner.mkdir(parents=True)
    (inner / "ca-certificates.crt").write_bytes(b"image bundle\n")
    with Transaction("test", "write", root=img) as txn:
        txn.write_file(img / "etc/ssl/certs/ca-certificates.crt", b"planted\n")
        txn.write_file(img / "etc/ssl/certs/new.pem", b"planted\n")
        txn.symlink(img / "etc/ssl/certs/abcd1234.0", "new.pem")
    assert (host / "ca-certificates.crt").read_bytes() == b"host bundle\n"
    assert sorted(os.listdir(host)) == ["ca-certificates.crt"]
    assert (inner / "ca-certificates.crt").read_bytes() == b"planted\n"
    assert (inner / "abcd1234.0").is_symlink()
    undo(root=img)
    assert (inner / "ca-certificates.crt").read_bytes() == b"image bundle\n"
    assert sorted(os.listdir(inner)) == ["ca-certificates.crt"]
    assert sorted(os.listdir(host)) == ["ca-certificates.crt"]
    assert [t.status for t in transactions(root=img)] == ["committed", "committed"]


def test_an_undo_never_follows_a_directory_swapped_for_a_host_link(img: Path,
                                                                   tmp_path: Path) -> None:
    host = tmp_path / "host-etc"
    host.mkdir()
    with Transaction("test", "write", root=img) as txn:
        txn.write_file(img / "etc/ssl/new.pem", b"x")
    (img / "etc/ssl/new.pem").unlink()
    (img / "etc/ssl").rmdir()
    (img / "etc/ssl").symlink_to(host)  # after the fact, pointing at the host
    undo(root=img, force=True)
    assert list(host.iterdir()) == []
