"""Debian store on copies of this host's stores: byte-identical to update-ca-certificates,
verified with openssl, undone byte for byte. Never touches the host's stores."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from stores_tree import copy_tree, diff, in_tree, native_update, snapshot, template
from tls_pki import issue, write_pem

from trustwall.certs import load_certs
from trustwall.journal.transaction import undo
from trustwall.stores.debian import DebianStore
from trustwall.stores.registry import install, remove

pytestmark = pytest.mark.lab  # root: private mount namespaces for the distro tool

COMPARED = ("etc/ssl/certs", "usr/local/share/ca-certificates")


def _debian_view(tree: Path) -> dict[str, tuple]:
    snap = snapshot(tree)
    return {k: v for k, v in snap.items()
            if k.startswith(COMPARED) and not k.startswith("etc/ssl/certs/java")}


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    return write_pem(tmp_path / "corp.pem", issue("Corp Proxy CA", org="Example", ca=True))


def test_install_and_remove_match_update_ca_certificates_byte_for_byte(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, ca: Path) -> None:
    base = template(tmp_path_factory)
    ours, theirs = copy_tree(base, tmp_path / "ours"), copy_tree(base, tmp_path / "theirs")
    result = install(load_certs(ca), root=ours, kinds=["debian"])
    (written,) = (ours / "usr/local/share/ca-certificates").glob("corp-proxy-ca-*.crt")
    (theirs / "usr/local/share/ca-certificates" / written.name).write_bytes(written.read_bytes())
    assert "1 added, 0 removed" in native_update(theirs)
    assert result.txn is not None
    changed = diff(_debian_view(ours), _debian_view(theirs))
    assert changed == [], f"differs from update-ca-certificates: {changed[:5]}"

    remove([result.certs[0].sha256], root=ours, kinds=["debian"])
    (theirs / "usr/local/share/ca-certificates" / written.name).unlink()
    native_update(theirs, "--fresh")  # a plain run would leave the dangling links behind
    changed = diff(_debian_view(ours), _debian_view(theirs))
    assert changed == [], f"removal differs from update-ca-certificates --fresh: {changed[:5]}"


def test_openssl_trusts_the_ca_after_install_and_not_after_undo(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    root_ca = issue("Corp Inspect Root", ca=True)
    leaf = write_pem(tmp_path / "leaf.pem", issue("site.test", issuer=root_ca,
                                                  names=("site.test",)))
    tree = copy_tree(template(tmp_path_factory), tmp_path / "root")
    before = snapshot(tree)
    capath = ["openssl", "verify", "-no-CAfile", "-CApath", "/etc/ssl/certs", str(leaf)]
    bundle = ["openssl", "verify", "-no-CApath", "-CAfile",
              str(tree / "etc/ssl/certs/ca-certificates.crt"), str(leaf)]
    with pytest.raises(subprocess.CalledProcessError):
        in_tree(tree, capath)
    install(load_certs(write_pem(tmp_path / "ca.pem", root_ca)), root=tree, kinds=["debian"])
    assert in_tree(tree, capath).stdout.strip().endswith(": OK")
    assert subprocess.run(bundle, capture_output=True, text=True).returncode == 0
    undo(root=tree)
    assert diff(snapshot(tree), before) == []
    with pytest.raises(subprocess.CalledProcessError):
        in_tree(tree, capath)
    assert subprocess.run(bundle, capture_output=True, text=True).returncode != 0


def test_hand_dropped_pem_is_reported_as_ignored_like_the_tool_ignores_it(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, ca: Path) -> None:
    tree = copy_tree(template(tmp_path_factory), tmp_path / "root")
    dropped = tree / "usr/local/share/ca-certificates/corp.pem"
    dropped.write_bytes(ca.read_bytes())
    assert "0 added, 0 removed" in native_update(tree)
    (store,) = DebianStore.detect(tree)
    assert not store.contains(load_certs(ca)[0])
    assert any("corp.pem is ignored" in n and "*.crt" in n for n in store.notes())
