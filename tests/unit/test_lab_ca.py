"""The lab CA factory, checked with `openssl verify` as the oracle."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from trustwall.lab import ca


def verify(tmp_path: Path, leaf: ca.Credential, anchors: bytes, *, untrusted: bytes = b"",
           extra: tuple[str, ...] = ()) -> tuple[bool, str]:
    """Run `openssl verify`; return (ok, output)."""
    (tmp_path / "leaf.pem").write_bytes(leaf.cert_pem)
    (tmp_path / "anchors.pem").write_bytes(anchors)
    argv = ["openssl", "verify", "-CAfile", str(tmp_path / "anchors.pem"), *extra]
    if untrusted:
        (tmp_path / "untrusted.pem").write_bytes(untrusted)
        argv += ["-untrusted", str(tmp_path / "untrusted.pem")]
    proc = subprocess.run([*argv, str(tmp_path / "leaf.pem")], capture_output=True, text=True,
                          check=False)
    return proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def cas() -> ca.LabCAs:
    return ca.lab_cas()


def test_good_chain_verifies_against_public_root(tmp_path: Path, cas: ca.LabCAs) -> None:
    leaf = ca.issue_leaf(cas.public_inter, ["good.lab.test"])
    assert leaf.anchor_pem == cas.public_root.cert_pem
    assert leaf.chain == (cas.public_inter.cert_pem,)
    ok, out = verify(tmp_path, leaf, leaf.anchor_pem, untrusted=b"".join(leaf.chain),
                     extra=("-verify_hostname", "good.lab.test"))
    assert ok, out


def test_leaf_without_its_intermediate_has_no_local_issuer(tmp_path: Path,
                                                          cas: ca.LabCAs) -> None:
    leaf = ca.issue_leaf(cas.public_inter, ["nointer.lab.test"])
    ok, out = verify(tmp_path, leaf, cas.public_root.cert_pem)
    assert not ok
    assert "unable to get local issuer certificate" in out


def test_expired_leaf_and_expired_ca_are_rejected(tmp_path: Path, cas: ca.LabCAs) -> None:
    ok, out = verify(tmp_path, ca.issue_leaf(cas.public_inter, ["expired.lab.test"],
                                             expired=True),
                     cas.public_root.cert_pem, untrusted=cas.public_inter.cert_pem)
    assert not ok and "certificate has expired" in out
    leaf = ca.issue_leaf(cas.acme_expired, ["good.lab.test"])
    ok, out = verify(tmp_path, leaf, cas.acme_expired.cert_pem)
    assert not ok and "error 10 at 1 depth" in out


def test_wrong_host_and_self_signed_fail(tmp_path: Path, cas: ca.LabCAs) -> None:
    leaf = ca.issue_leaf(cas.public_inter, ["other.lab.test"])
    ok, out = verify(tmp_path, leaf, cas.public_root.cert_pem, untrusted=leaf.chain[0],
                     extra=("-verify_hostname", "wronghost.lab.test"))
    assert not ok and "hostname mismatch" in out
    selfsigned = ca.issue_leaf(None, ["selfsigned.lab.test"])
    assert selfsigned.anchor_pem == selfsigned.cert_pem
    ok, out = verify(tmp_path, selfsigned, cas.public_root.cert_pem)
    assert not ok and "self-signed certificate" in out


def test_weak_inspection_ca_passes_openssl_but_not_strict_mode(tmp_path: Path,
                                                              cas: ca.LabCAs) -> None:
    weak = cas.acme_weak.cert
    assert not weak.extensions.get_extension_for_class(x509.BasicConstraints).critical
    with pytest.raises(x509.ExtensionNotFound):
        weak.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    leaf = ca.issue_leaf(cas.acme_weak, ["good.lab.test"])
    assert verify(tmp_path, leaf, cas.acme_weak.cert_pem)[0]
    ok, out = verify(tmp_path, leaf, cas.acme_weak.cert_pem, extra=("-x509_strict",))
    assert not ok and "Basic Constraints of CA cert not marked critical" in out


def test_inspection_intermediate_chains_to_inspection_root(tmp_path: Path,
                                                          cas: ca.LabCAs) -> None:
    assert cas.acme_variant("intermediate") is cas.acme_inter
    leaf = ca.issue_leaf(cas.acme_inter, ["good.lab.test", "198.18.0.10"])
    assert leaf.anchor_pem == cas.acme_root.cert_pem
    ok, out = verify(tmp_path, leaf, cas.acme_root.cert_pem, untrusted=cas.acme_inter.cert_pem,
                     extra=("-verify_ip", "198.18.0.10"))
    assert ok, out
    assert cas.acme_root.common_name == "Acme Widgets Inspection CA"
    with pytest.raises(ValueError):
        cas.acme_variant("nope")


def test_same_seed_same_keys_other_seed_other_keys() -> None:
    first, again = ca.lab_cas(), ca.lab_cas(b"trustwall-lab")
    assert first.acme_root.key_pem == again.acme_root.key_pem
    rebuilt = ca.make_ca("Acme Widgets Inspection CA", org="Acme Widgets")
    assert rebuilt.key_pem == first.acme_root.key_pem
    assert rebuilt.cert.serial_number == first.acme_root.cert.serial_number
    assert ca.lab_cas(b"other").acme_root.key_pem != first.acme_root.key_pem
