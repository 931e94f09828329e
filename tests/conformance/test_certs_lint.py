"""``cert lint`` claims which clients reject an anchor; ``openssl verify`` checks each claim.

For every defect we build a CA with exactly that defect and a leaf it issues, then verify the
leaf against the CA in three modes: plain, ``-x509_strict`` (what Python >= 3.13 uses) and
``-auth_level 2`` (Debian's default security level). A finding must name the code OpenSSL
reports in the mode its ``rejected_by`` implies, and a strict-only finding must pass plain.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess

import pytest

from trustwall.certs import Cert
from trustwall.certs.lint import OPENSSL, SECLEVEL2, STRICT, lint_anchor

OPENSSL_BIN = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL_BIN is None, reason="openssl not installed")
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
MODES = {OPENSSL: [], STRICT: ["-x509_strict"], SECLEVEL2: ["-auth_level", "2"]}


def build(defect: str) -> tuple[bytes, bytes]:
    """A proxy CA with one ``defect``, and a leaf it issued (the product's factory)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from trustwall.certs.factory import issue, validity

    start, end = validity(days=90)
    if defect == "expired":
        start, end = start - dt.timedelta(days=89), validity(expired=True)[1]
    if defect == "not_yet_valid":
        start = start + dt.timedelta(days=3)
    ca = issue(f"Proxy CA {defect}", ca=defect != "ca_false", serial=11,
               key=rsa.generate_private_key(65537, 1024) if defect == "rsa1024" else None,
               not_before=start, not_after=end, basic_constraints=defect != "no_bc",
               bc_critical=defect != "bc_not_critical", key_usage=defect != "no_ku",
               key_cert_sign=defect != "no_cert_sign", ski=defect != "no_ski",
               aki=defect != "no_aki", server_auth=False)
    leaf = issue("site.test", issuer=ca, names=("site.test",), serial=12, days=9)
    return ca.der, leaf.pem


def verify_codes(ca_der: bytes, leaf_pem: bytes, flags: list[str], tmp_path) -> set[int]:
    anchor = tmp_path / "anchor.pem"
    anchor.write_text(Cert.from_der(ca_der).pem)
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(leaf_pem)
    proc = subprocess.run([OPENSSL_BIN, "verify", *flags, "-CAfile", str(anchor), str(leaf)],
                          capture_output=True, text=True, env=ENV, check=False)
    codes = {int(c) for c in re.findall(r"error (\d+) at", proc.stdout + proc.stderr)}
    assert (proc.returncode == 0) == (not codes)
    return codes


DEFECTS = ["ca_false", "no_bc", "bc_not_critical", "no_ku", "no_cert_sign", "no_ski",
           "expired", "not_yet_valid", "rsa1024"]


@pytest.mark.parametrize("defect", DEFECTS)
def test_lint_names_the_code_openssl_reports(defect, tmp_path):
    ca_der, leaf_pem = build(defect)
    report = lint_anchor(Cert.from_der(ca_der))
    failed = [f for f in report.findings if f.severity == "fail"]
    assert not report.fit and len(failed) == 1, report
    finding = failed[0]
    for client, flags in MODES.items():
        if client in finding.rejected_by:
            codes = verify_codes(ca_der, leaf_pem, flags, tmp_path)
            assert finding.openssl_code in codes, (client, codes)
    if OPENSSL not in finding.rejected_by:  # claimed strict/level-2 only: plain must pass
        assert verify_codes(ca_der, leaf_pem, [], tmp_path) == set()


@pytest.mark.parametrize("defect", ["good", "no_aki"])
def test_fit_anchor_passes_every_mode(defect, tmp_path):
    ca_der, leaf_pem = build(defect)
    report = lint_anchor(Cert.from_der(ca_der))
    assert report.fit
    for flags in MODES.values():
        assert verify_codes(ca_der, leaf_pem, flags, tmp_path) == set()
    assert any(f.severity == "warn" for f in report.findings) == (defect == "no_aki")


def test_certificate_openssl_cannot_load_is_unfit(tmp_path):
    from trustwall.certs.synth import make_cert, name_der

    der = make_cert(name_der([[("2.5.4.3", 0x1A, b"Visible CA")]]))
    report = lint_anchor(Cert.from_der(der))
    failed = [f.check for f in report.findings if f.severity == "fail"]
    assert "openssl_load" in failed
    proc = subprocess.run([OPENSSL_BIN, "x509", "-inform", "DER", "-noout"], input=der,
                          capture_output=True, env=ENV, check=False)
    assert proc.returncode != 0
