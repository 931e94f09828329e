"""Image- and user-supplied values never steer root (issue 18): a storepass from the image never
reaches keytool's argv, a virtualenv's cacert.pem link owned by its user never leads root into
another owner's file, npm's config must be root's own and name an npmrc, and programs come
from the system directories, never $PATH."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from stores_tree import copy_tree, diff, snapshot, template
from tls_pki import issue, write_pem

from trustwall import proc
from trustwall.certs import load_certs
from trustwall.errors import BadInput, EnvironmentMissing, StoreError, TrustwallError
from trustwall.stores.base import Scope, fingerprint, fp_of, pem_ders
from trustwall.stores.certifi import CertifiStore
from trustwall.stores.npm import global_npmrc
from trustwall.stores.registry import install

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
NOBODY = 65534
CACERTS = "etc/ssl/certs/java/cacerts"


@pytest.fixture
def tree(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return copy_tree(template(tmp_path_factory), tmp_path / "root")


def test_an_image_storepass_never_becomes_a_jvm_option(tree: Path, tmp_path: Path) -> None:
    """storepass=-J-Xlog:…:file=X: in argv the keytool launcher would hand it to the JVM (as
    it would -J-javaagent:evil.jar), which would create X. Through the environment it is just
    a wrong password."""
    pwned = tmp_path / "pwned.log"
    (tree / "etc/default").mkdir(parents=True, exist_ok=True)
    (tree / "etc/default/cacerts").write_text(f"storepass=-J-Xlog:all:file={pwned}\n")
    before = (tree / CACERTS).read_bytes()
    (cert,) = load_certs(write_pem(tmp_path / "ca.pem", issue("Storepass Root", ca=True)))
    with pytest.raises(TrustwallError):
        install([cert], root=tree, kinds=["java"])
    assert not pwned.exists()
    assert (tree / CACERTS).read_bytes() == before


def test_the_image_storepass_reaches_keytool(tree: Path, tmp_path: Path) -> None:
    """The other half: a right password from the image still works (by environment)."""
    store = tree / CACERTS
    subprocess.run(["keytool", "-storepasswd", "-keystore", str(store), "-storepass",
                    "changeit", "-new", "s3cret-pass"], check=True, capture_output=True)
    (tree / "etc/default").mkdir(parents=True, exist_ok=True)
    (tree / "etc/default/cacerts").write_text("storepass=s3cret-pass\n")
    (cert,) = load_certs(write_pem(tmp_path / "ca.pem", issue("Storepass Root", ca=True)))
    result = install([cert], root=tree, kinds=["java"])
    assert [s.kind for s in result.stores if s.added] == ["java"]
    listing = subprocess.run(["keytool", "-list", "-keystore", str(store), "-storepass",
                              "s3cret-pass"], capture_output=True, text=True, check=True)
    assert "trustwall-storepass-root" in listing.stdout


def _venv_with_linked_certifi(top: Path, target: Path, owner: int) -> Path:
    site = top / "venvs/app/lib/python3.11/site-packages/certifi"
    site.mkdir(parents=True)
    (top / "venvs/app/pyvenv.cfg").write_text("home = /usr/bin\n")
    link = site / "cacert.pem"
    link.symlink_to(target)
    os.lchown(link, owner, owner)
    return link


def test_a_users_cacert_link_into_roots_file_is_not_a_store(tmp_path: Path) -> None:
    img = tmp_path / "img"
    victim = img / "etc/victim.pem"  # root's own file in the image
    victim.parent.mkdir(parents=True)
    victim.write_bytes(b"root's file\n")
    _venv_with_linked_certifi(img, Path("/etc/victim.pem"), NOBODY)
    scope = Scope(venv_roots=("/venvs",))
    assert CertifiStore.detect_in(img, scope) == []
    (cert,) = load_certs(write_pem(tmp_path / "ca.pem", issue("Certifi Root", ca=True)))
    with pytest.raises(BadInput, match="no trust store found"):
        install([cert], root=img, kinds=["certifi"], scope=scope)
    assert victim.read_bytes() == b"root's file\n"


def test_a_users_cacert_link_to_their_own_file_still_is(tmp_path: Path) -> None:
    img = tmp_path / "img"
    own = img / "home/u/own.pem"
    own.parent.mkdir(parents=True)
    write_pem(own, issue("Old Root", ca=True))
    os.chown(own, NOBODY, NOBODY)
    _venv_with_linked_certifi(img, Path("/home/u/own.pem"), NOBODY)
    found = CertifiStore.detect_in(img, Scope(venv_roots=("/venvs",)))
    assert [s.real for s in found] == [own]


def _npm_tree(tmp_path: Path, builtin: str) -> Path:
    root = tmp_path / "img"
    npm = root / "usr/lib/node_modules/npm"
    npm.mkdir(parents=True)
    (npm / "npmrc").write_text(builtin)
    (root / "etc").mkdir()
    (root / "etc/shadow").write_text("root:x:\n")
    return root


def test_npm_globalconfig_must_name_an_npmrc_root_owns(tmp_path: Path) -> None:
    root = _npm_tree(tmp_path, "globalconfig=/etc/shadow\n")
    with pytest.raises(StoreError, match="not an npmrc"):
        global_npmrc(root)
    root = _npm_tree(tmp_path / "2", "globalconfig=/etc/npmrc\n")
    assert global_npmrc(root) == root / "etc/npmrc"
    os.chmod(root / "usr/lib/node_modules/npm/npmrc", 0o666)
    with pytest.raises(StoreError, match="writable by others"):
        global_npmrc(root)


def test_programs_come_from_system_directories_never_path(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("tw-only-in-path", "keytool"):
        fake = bindir / name
        fake.write_text("#!/bin/sh\ntouch " + str(tmp_path / "ran") + "\n")
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    with pytest.raises(EnvironmentMissing):
        proc.which("tw-only-in-path")
    assert not proc.which("keytool").startswith(str(bindir))
    proc.run(["keytool", "-help"], check=False)
    assert not (tmp_path / "ran").exists()


def test_an_image_link_to_host_certs_gets_the_ca_inside_the_image(tree: Path,
                                                                   tmp_path: Path) -> None:
    """Issue 18: IMG/etc/ssl/certs -> /usr/lib/ssl/certs put a planted root into the host's
    bundle. Here the "host" directory is a copy outside the image; it must stay untouched."""
    host = copy_tree(tree / "etc/ssl/certs", tmp_path / "host-certs")
    before = snapshot(host)
    shutil.rmtree(tree / "etc/ssl/certs")
    (tree / "etc/ssl/certs").symlink_to(host)  # absolute: the host kernel would follow it
    (cert,) = load_certs(write_pem(tmp_path / "ca.pem", issue("Planted Root", ca=True)))
    install([cert], root=tree, kinds=["debian"])
    assert diff(snapshot(host), before) == []
    inner = tree / str(host).lstrip("/") / "ca-certificates.crt"
    assert fp_of(cert) in {fingerprint(d) for d in pem_ders(inner.read_bytes())}


def test_a_keystore_alias_that_looks_like_an_option_never_reaches_keytool(
        tree: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    from trustwall.stores.registry import remove

    pwned = tmp_path / "pwned.log"
    issued = issue("Alias Root", ca=True)
    pem = write_pem(tmp_path / "alias.pem", issued)
    (cert,) = load_certs(pem)
    store = tmp_path / "app.p12"
    store.write_bytes(pkcs12.serialize_key_and_certificates(
        None, None, None,
        [pkcs12.PKCS12Certificate(cert.x509, f"-J-Xlog:all:file={pwned}".encode())],
        BestAvailableEncryption(b"changeit")))
    before = store.read_bytes()
    with pytest.raises(StoreError, match="cannot be passed to a tool"):
        remove([fp_of(cert)], root=tree, kinds=[f"java:{store}"], state_dir=tmp_path / "st")
    assert not pwned.exists() and store.read_bytes() == before
