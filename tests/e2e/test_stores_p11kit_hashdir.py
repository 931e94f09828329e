"""p11-kit sources (checked with the real `trust` command), OpenSSL hashed directories
(checked against `openssl rehash` and `openssl verify -CApath`) and PEM bundles."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from stores_tree import diff, snapshot
from tls_pki import issue, write_pem

from trustwall.certs import load_certs
from trustwall.journal.transaction import undo
from trustwall.stores.base import fp_of
from trustwall.stores.p11kit import trusted_certificate_pem
from trustwall.stores.registry import detect_stores, install, remove

SOURCE = "etc/pki/ca-trust/source"
MODULE = "/usr/share/p11-kit/modules/p11-kit-trust.module"


def _trust_extract(tree: Path, tmp: Path, purpose: str) -> list[str]:
    """Fingerprints `trust extract` exports for ``purpose`` when p11-kit reads only the tree
    (its module config is replaced in a private mount namespace)."""
    module = tmp / "trust.module"
    module.write_text("module: p11-kit-trust.so\npriority: 1\ntrust-policy: yes\n"
                      f"x-init-reserved: paths={tree / SOURCE}\n")
    out = tmp / f"out-{purpose}.pem"
    subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-ec",
                    f"mount --bind {module} {MODULE}; trust extract --overwrite "
                    f"--filter=ca-anchors --format=pem-bundle --purpose={purpose} {out}"],
                   check=True, capture_output=True)
    return [fp_of(c) for c in load_certs(out)] if out.read_bytes().strip() else []


@pytest.mark.lab
def test_p11kit_trusts_for_server_auth_only_by_default_and_undo_restores(
        tmp_path: Path) -> None:
    tree = tmp_path / "root"
    (tree / SOURCE / "anchors").mkdir(parents=True)
    (cert,) = load_certs(write_pem(tmp_path / "corp.pem", issue("Corp RHEL CA", ca=True)))
    before = snapshot(tree)
    (store,) = detect_stores(tree, ["p11kit"])
    assert store.family.name == "redhat"
    install([cert], root=tree, kinds=["p11kit"])
    assert _trust_extract(tree, tmp_path, "server-auth") == [fp_of(cert)]
    assert _trust_extract(tree, tmp_path, "email") == []
    undo(root=tree)
    assert diff(snapshot(tree), before) == []
    install([cert], root=tree, kinds=["p11kit"], all_purposes=True)
    assert _trust_extract(tree, tmp_path, "email") == [fp_of(cert)]
    remove([fp_of(cert)], root=tree, kinds=["p11kit"])
    assert _trust_extract(tree, tmp_path, "server-auth") == []


def test_trusted_certificate_is_what_openssl_trustout_writes(tmp_path: Path) -> None:
    pem = write_pem(tmp_path / "ca.pem", issue("Corp Trustout CA", ca=True))
    (cert,) = load_certs(pem)
    theirs = subprocess.run(["openssl", "x509", "-in", str(pem), "-addtrust", "serverAuth",
                             "-setalias", "corp-alias", "-trustout"], capture_output=True,
                            text=True, check=True).stdout
    assert trusted_certificate_pem(cert, "corp-alias") == theirs


def _hashdir(tmp: Path, name: str, *certs: object) -> Path:
    directory = tmp / name
    directory.mkdir()
    for n, c in enumerate(certs):
        write_pem(directory / f"existing-{n}.pem", c)  # type: ignore[arg-type]
    subprocess.run(["openssl", "rehash", str(directory)], check=True, capture_output=True)
    return directory


def test_hashdir_links_match_openssl_rehash_and_openssl_verifies(tmp_path: Path) -> None:
    # Two CAs with the same subject: the new one must take the next collision number.
    same_a, same_b = issue("Twin CA", ca=True), issue("Twin CA", ca=True)
    ours = _hashdir(tmp_path, "ours", same_a, issue("Other CA", ca=True))
    theirs = tmp_path / "theirs"
    shutil.copytree(ours, theirs, symlinks=True)
    (cert,) = load_certs(write_pem(tmp_path / "b.pem", same_b))
    leaf = write_pem(tmp_path / "leaf.pem", issue("twin.test", issuer=same_b,
                                                  names=("twin.test",)))
    verify = ["openssl", "verify", "-no-CAfile", "-CApath", str(ours), str(leaf)]
    assert subprocess.run(verify, capture_output=True).returncode != 0
    install([cert], root=tmp_path, kinds=[f"hashdir:{ours}"])
    (added,) = [p.name for p in ours.iterdir() if p.name.startswith("twin-ca-")]
    shutil.copyfile(ours / added, theirs / added)
    subprocess.run(["openssl", "rehash", str(theirs)], check=True, capture_output=True)
    assert diff(snapshot(ours), snapshot(theirs)) == []
    assert subprocess.run(verify, capture_output=True).returncode == 0
    remove([fp_of(cert)], root=tmp_path, kinds=[f"hashdir:{ours}"])
    (theirs / added).unlink()
    subprocess.run(["openssl", "rehash", str(theirs)], check=True, capture_output=True)
    assert diff(snapshot(ours), snapshot(theirs)) == []


def test_bundle_gets_the_ca_appended_and_removed(tmp_path: Path) -> None:
    bundle = write_pem(tmp_path / "bundle.pem", issue("Existing Root", ca=True))
    original = bundle.read_bytes()
    root_ca = issue("Corp Bundle CA", ca=True)
    (cert,) = load_certs(write_pem(tmp_path / "ca.pem", root_ca))
    leaf = write_pem(tmp_path / "leaf.pem", issue("b.test", issuer=root_ca, names=("b.test",)))
    verify = ["openssl", "verify", "-no-CApath", "-CAfile", str(bundle), str(leaf)]
    install([cert], root=tmp_path, kinds=[f"bundle:{bundle}"])
    assert subprocess.run(verify, capture_output=True).returncode == 0
    assert install([cert], root=tmp_path, kinds=[f"bundle:{bundle}"]).txn is None
    remove([fp_of(cert)], root=tmp_path, kinds=[f"bundle:{bundle}"])
    assert bundle.read_bytes() == original
