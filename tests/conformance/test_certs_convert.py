"""Formats in and out, with openssl and keytool as the judges.

Inputs are made by openssl itself (PKCS#12 with and without a password, TRUSTED CERTIFICATE,
PKCS#7 in DER and PEM); outputs are read back by ``openssl x509``, ``openssl pkcs7`` and
``keytool -printcert``.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import certifi
import pytest

from trustwall.certs import load_certs
from trustwall.cli.main import main as cli_main

OPENSSL = shutil.which("openssl")
KEYTOOL = shutil.which("keytool")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run([OPENSSL, *args], input=stdin, capture_output=True, env=ENV,
                          check=True).stdout


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> tuple[Path, list]:
    """Three certifi roots in one PEM file, plus the certificates."""
    d = tmp_path_factory.mktemp("three")
    certs = load_certs(certifi.where())[:3]
    path = d / "three.pem"
    path.write_text("".join(c.pem for c in certs))
    return path, certs


@pytest.fixture(scope="module")
def leaf_and_key(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("leaf")
    key, crt = d / "k.pem", d / "c.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(crt), "-days", "5", "-subj", "/CN=p12 test")
    return crt, key


def sha256_of(text: str) -> str:
    return re.search(r"(?:SHA256|sha256)[^=:]*[=:]\s*([0-9A-F:]{95})", text).group(1)


def test_p7b_is_read_back_by_openssl_pkcs7(three, tmp_path):
    src, certs = three
    out = tmp_path / "bundle.p7b"
    assert cli_main(["cert", "convert", str(src), str(out)]) == 0
    printed = openssl("pkcs7", "-inform", "DER", "-in", str(out), "-print_certs")
    # certificates in PKCS#7 are a DER SET OF: sorted by encoding, not kept in input order
    assert sorted(c.der for c in load_certs(printed)) == sorted(c.der for c in certs)


def test_der_is_read_back_by_openssl_x509(three, tmp_path):
    _, certs = three
    single = tmp_path / "one.pem"
    single.write_text(certs[1].pem)
    out = tmp_path / "one.der"
    assert cli_main(["cert", "convert", str(single), str(out)]) == 0
    text = openssl("x509", "-inform", "DER", "-in", str(out), "-noout", "-fingerprint",
                   "-sha256").decode()
    assert sha256_of(text) == certs[1].sha256


def test_der_of_a_bundle_is_refused_and_nothing_written(three, tmp_path, capsys):
    src, _ = three
    out = tmp_path / "x.der"
    assert cli_main(["cert", "convert", str(src), str(out)]) == 2
    assert "DER holds one certificate" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(KEYTOOL is None, reason="keytool not installed")
def test_keytool_printcert_reads_our_pem_and_p7b(three, tmp_path):
    src, certs = three
    for fmt in ("pem", "p7b"):
        out = tmp_path / f"k.{fmt}"
        assert cli_main(["cert", "convert", "--to", fmt, str(src), str(out)]) == 0
        text = subprocess.run([KEYTOOL, "-printcert", "-file", str(out)], capture_output=True,
                              text=True, env={**ENV, "JAVA_TOOL_OPTIONS": ""},
                              check=True).stdout
        found = re.findall(r"SHA256:\s*([0-9A-F:]{95})", text)
        assert sorted(found) == sorted(c.sha256 for c in certs)


def test_pem_round_trip_is_byte_identical_to_openssl_output(three, tmp_path):
    src, certs = three
    out = tmp_path / "again.pem"
    assert cli_main(["cert", "convert", str(src), str(out)]) == 0
    expected = b"".join(openssl("x509", stdin=c.pem.encode()) for c in certs)
    assert out.read_bytes() == expected


def test_loads_pkcs12_made_by_openssl(leaf_and_key, tmp_path):
    crt, key = leaf_and_key
    with_pw, without = tmp_path / "a.p12", tmp_path / "b.p12"
    openssl("pkcs12", "-export", "-in", str(crt), "-inkey", str(key), "-out", str(with_pw),
            "-passout", "pass:s3cret")
    openssl("pkcs12", "-export", "-in", str(crt), "-inkey", str(key), "-out", str(without),
            "-passout", "pass:")
    expected = load_certs(crt)
    assert load_certs(with_pw, password="s3cret") == expected
    assert load_certs(without) == expected


@pytest.mark.parametrize(("password", "needle"), [(None, "give its password"),
                                                  ("wrong", "wrong password")])
def test_pkcs12_password_problems_are_one_line_exit_2(leaf_and_key, tmp_path, capsys,
                                                      password, needle):
    crt, key = leaf_and_key
    p12 = tmp_path / "c.p12"
    openssl("pkcs12", "-export", "-in", str(crt), "-inkey", str(key), "-out", str(p12),
            "-passout", "pass:right")
    argv = ["cert", "show", str(p12)] + (["--password", password] if password else [])
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(p12) in err[0] and needle in err[0]


def test_loads_trusted_certificate_and_pkcs7_made_by_openssl(three, tmp_path):
    src, certs = three
    trusted = openssl("x509", "-in", str(src), "-trustout", "-addtrust", "serverAuth")
    assert b"BEGIN TRUSTED CERTIFICATE" in trusted
    assert load_certs(trusted) == certs[:1]
    p7_der = openssl("crl2pkcs7", "-nocrl", "-certfile", str(src), "-outform", "DER")
    p7_pem = openssl("crl2pkcs7", "-nocrl", "-certfile", str(src))
    assert sorted(c.der for c in load_certs(p7_der)) == sorted(c.der for c in certs)
    assert sorted(c.der for c in load_certs(p7_pem)) == sorted(c.der for c in certs)
    der = openssl("x509", "-in", str(src), "-outform", "DER")
    assert load_certs(der) == certs[:1]


def test_show_json_agrees_with_openssl_x509(three, capsys):
    import json

    src, certs = three
    assert cli_main(["cert", "show", "--json", str(src)]) == 0
    shown = json.loads(capsys.readouterr().out)["certificates"]
    assert len(shown) == 3
    for info, cert in zip(shown, certs, strict=True):
        text = openssl("x509", "-noout", "-serial", "-fingerprint", "-sha256", "-enddate",
                       "-subject_hash", stdin=cert.pem.encode()).decode()
        serial = re.search(r"serial=([0-9A-F]+)", text).group(1)
        assert int(info["serial"], 16) == int(serial, 16)
        assert info["sha256"] == sha256_of(text)
        assert info["subject_hash"] in text.split()
        end = re.search(r"notAfter=(.*)", text).group(1)
        parsed = dt.datetime.strptime(end, "%b %d %H:%M:%S %Y GMT")
        assert info["not_after"].startswith(parsed.strftime("%Y-%m-%dT%H:%M:%S"))
        sha1 = openssl("x509", "-noout", "-fingerprint", "-sha1", stdin=cert.pem.encode())
        assert info["sha1"] == sha1.decode().strip().split("=")[1]
