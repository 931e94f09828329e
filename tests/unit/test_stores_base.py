"""Store helpers: symlinks resolved as inside a chroot, the JKS reader against keytool,
names that survive update-ca-certificates, and what may become an anchor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trustwall.certs import load_certs
from trustwall.errors import BadInput
from trustwall.stores.base import check_installable, file_slug, fp_of, resolve_in_root
from trustwall.stores.debian import pem_link_name
from trustwall.stores.java import read_jks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from tls_pki import issue, write_pem


def test_absolute_symlinks_resolve_inside_the_root_not_on_the_host(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/share/ca").mkdir(parents=True)
    (root / "usr/share/ca/a.crt").write_text("a")
    (root / "etc/ssl/certs").mkdir(parents=True)
    (root / "etc/ssl/certs/a.pem").symlink_to("/usr/share/ca/a.crt")
    (root / "etc/ssl/certs/rel.pem").symlink_to("a.pem")
    (root / "etc/escape").symlink_to("../../../../../../etc/passwd")
    assert resolve_in_root(root, root / "etc/ssl/certs/rel.pem") == root / "usr/share/ca/a.crt"
    # A chrooted process cannot climb above its root: .. stops at the root.
    assert not str(resolve_in_root(root, root / "etc/escape")).startswith("/etc")


def test_file_slug_is_safe_for_update_ca_certificates(tmp_path: Path) -> None:
    (cert,) = load_certs(write_pem(tmp_path / "c.pem",
                                   issue("Corp (Proxy), CA #2", org="Ex, Inc", ca=True)))
    slug = file_slug(cert)
    assert slug.startswith("corp-proxy-ca-2-") and slug.endswith(fp_of(cert)[:8])
    assert pem_link_name(slug + ".crt") == slug + ".pem"  # no mangling of our names
    assert pem_link_name("My CA (2), x.crt") == "My_CA_=2=__x.pem"


def test_non_ca_and_expired_refused_unless_forced(tmp_path: Path) -> None:
    root = issue("R", ca=True)
    (leaf,) = load_certs(write_pem(tmp_path / "l.pem", issue("l.test", issuer=root)))
    (old,) = load_certs(write_pem(tmp_path / "o.pem", issue("Old", ca=True, expired=True)))
    with pytest.raises(BadInput, match="not a CA"):
        check_installable(leaf, force=False)
    with pytest.raises(BadInput, match="expired"):
        check_installable(old, force=False)
    check_installable(leaf, force=True)
    check_installable(old, force=True)


def test_jks_reader_agrees_with_keytool(tmp_path: Path) -> None:
    store = tmp_path / "t.jks"
    pems = [write_pem(tmp_path / f"{n}.pem", issue(f"JKS CA {n}", ca=True)) for n in range(2)]
    for n, pem in enumerate(pems):
        subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", f"ca{n}", "-file",
                        str(pem), "-keystore", str(store), "-storepass", "changeit",
                        "-storetype", "JKS"], check=True, capture_output=True)
    entries = read_jks(store.read_bytes())
    assert sorted(a for a, _ in entries) == ["ca0", "ca1"]
    expected = {fp_of(load_certs(p)[0]) for p in pems}
    import hashlib

    assert {hashlib.sha256(d).hexdigest() for _, d in entries} == expected
