"""The one certificate factory, checked with OpenSSL as the oracle, and the one fingerprint:
``Cert.fingerprint`` (what stores and the journal use) and ``Cert.sha256`` (what people see)
are the same digest, equal to ``openssl x509 -fingerprint -sha256``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509

from trustwall.certs import Cert
from trustwall.certs.factory import empty_crl, issue
from trustwall.certs.model import normalize_fingerprint
from trustwall.stores.base import fp_of


def _openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)


def test_a_leaf_from_the_factory_verifies_under_its_ca_with_openssl(tmp_path: Path) -> None:
    root = issue("Factory Root", org="Example", ca=True)
    inter = issue("Factory Issuing CA", issuer=root, ca=True, path_length=0)
    leaf = issue("site.test", issuer=inter, names=("site.test", "192.0.2.7"))
    (tmp_path / "root.pem").write_bytes(root.pem)
    (tmp_path / "inter.pem").write_bytes(inter.pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    ok = _openssl("verify", "-x509_strict", "-CAfile", str(tmp_path / "root.pem"),
                  "-untrusted", str(tmp_path / "inter.pem"), "-verify_hostname", "site.test",
                  str(tmp_path / "leaf.pem"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    ip = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in ip.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    crl = _openssl("crl", "-noout", "-issuer", data=empty_crl(root))
    assert crl.returncode == 0 and b"Factory Root" in crl.stdout


def test_switches_make_the_defects_strict_verifiers_reject(tmp_path: Path) -> None:
    weak = issue("Weak Root", ca=True, aki=False, bc_critical=False)
    assert not any(isinstance(e.value, x509.AuthorityKeyIdentifier)
                   for e in weak.cert.extensions)
    assert not weak.cert.extensions.get_extension_for_class(x509.BasicConstraints).critical
    bare = issue("Bare", ca=True, key_usage=False, ski=False, aki=False)
    assert [type(e.value) for e in bare.cert.extensions] == [x509.BasicConstraints]
    leaf = issue("site.test", issuer=bare, names=("site.test",))
    (tmp_path / "bare.pem").write_bytes(bare.pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    strict = _openssl("verify", "-x509_strict", "-CAfile", str(tmp_path / "bare.pem"),
                      str(tmp_path / "leaf.pem"))
    assert strict.returncode != 0  # a CA without key usage / SKI is not a strict anchor


def test_one_fingerprint_for_cert_stores_and_people() -> None:
    made = issue("Fingerprint CA", ca=True)
    cert = Cert.from_der(made.der)
    shown = _openssl("x509", "-noout", "-fingerprint", "-sha256", data=made.pem)
    openssl_colons = shown.stdout.decode().strip().split("=", 1)[1]
    assert cert.sha256 == openssl_colons
    assert cert.fingerprint == normalize_fingerprint(openssl_colons) == fp_of(cert)
    assert len(cert.fingerprint) == 64 and cert.fingerprint == cert.fingerprint.lower()
