"""Loading: formats sniffed from content, the Cert value, and bad input handled in one line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os

import pytest

from trustwall.certs import Cert, load_certs
from trustwall.certs.model import pem_encode
from trustwall.certs.synth import cn, make_cert, make_crl, new_key
from trustwall.cli.main import main as cli_main
from trustwall.errors import BadInput

KEY = new_key()


@pytest.fixture(scope="module")
def ca_der() -> bytes:
    return make_cert(cn("Unit CA"), key=KEY)


def _key_pem(der: bool = False) -> bytes:
    from cryptography.hazmat.primitives import serialization

    enc = serialization.Encoding.DER if der else serialization.Encoding.PEM
    return KEY.private_bytes(enc, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_cert_value_facts(ca_der):
    cert = Cert.from_der(ca_der, source="x.pem")
    assert cert.der == ca_der and cert.source == "x.pem"
    assert cert.pem.startswith("-----BEGIN CERTIFICATE-----\n")
    assert len(cert.sha256) == 95 and cert.sha256 == cert.sha256.upper()
    assert cert.sha1.count(":") == 19
    assert cert.is_ca and cert.path_length is None and cert.is_self_issued
    assert cert.not_before.tzinfo is not None and cert.not_before < cert.not_after
    assert cert.subject_str == cert.issuer_str == "CN=Unit CA"
    assert cert.ski is None and cert.aki is None
    assert cert.x509.serial_number == cert.serial
    with pytest.raises(dataclasses.FrozenInstanceError):
        cert.source = "other"  # type: ignore[misc]
    assert Cert.from_der(ca_der, source="elsewhere") == cert


def test_pem_with_text_crlf_and_several_blocks(ca_der):
    other = make_cert(cn("Second"), key=KEY)
    text = ("Bag Attributes\r\n  friendlyName: x\r\n" + pem_encode(ca_der).replace("\n", "\r\n")
            + "garbage between\n" + pem_encode(other) + pem_encode(make_crl(cn("C"), KEY),
                                                                   "X509 CRL"))
    certs = load_certs(text.encode())
    assert [c.der for c in certs] == [ca_der, other]


def test_der_and_trusted_certificate(ca_der):
    assert load_certs(ca_der)[0].der == ca_der
    trusted = pem_encode(ca_der + bytes.fromhex("300a300806062b0601050507"),
                         "TRUSTED CERTIFICATE")
    assert load_certs(trusted.encode())[0].der == ca_der


def test_pkcs7_made_by_cryptography(ca_der):
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    certs = [Cert.from_der(ca_der), Cert.from_der(make_cert(cn("B"), key=KEY))]
    der = pkcs7.serialize_certificates([c.x509 for c in certs], Encoding.DER)
    pem = pkcs7.serialize_certificates([c.x509 for c in certs], Encoding.PEM)
    assert sorted(load_certs(der), key=lambda c: c.der) == sorted(certs, key=lambda c: c.der)
    assert len(load_certs(pem)) == 2


def _bad_inputs(tmp_path, ca_der) -> dict[str, os.PathLike]:
    pem = pem_encode(ca_der)
    cases = {
        "truncated PEM": pem[: len(pem) // 2],
        "garbled PEM": pem.replace("\n", "\n!!", 3),
        "garbled PEM header": pem.replace("CERTIFICATE", "CERT!FICATE"),
        "truncated DER": ca_der[:-40],
        "empty file": b"",
        "private key (PEM)": _key_pem(),
        "private key (DER)": _key_pem(der=True),
        "CRL only": pem_encode(make_crl(cn("C"), KEY), "X509 CRL"),
        "junk": os.urandom(4096),
    }
    out = {}
    for i, (label, data) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.crt"
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        out[label] = path
    out["directory"] = tmp_path
    out["missing file"] = tmp_path / "does-not-exist.pem"
    return out


@pytest.mark.parametrize("command", [["cert", "show"], ["cert", "hash"], ["cert", "lint"]])
def test_bad_input_is_one_line_naming_the_file_exit_2(command, tmp_path, ca_der, capsys):
    for label, path in _bad_inputs(tmp_path, ca_der).items():
        assert cli_main([*command, str(path)]) == 2, label
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0], (label, lines)
        assert "Traceback" not in captured.err and captured.out == "", label


def test_bad_input_messages_say_what_is_wrong(tmp_path, ca_der):
    expected = {"truncated PEM": "truncated PEM", "garbled PEM": "garbled PEM",
                "garbled PEM header": "garbled PEM",
                "empty file": "empty file", "private key (PEM)": "private key",
                "private key (DER)": "private key", "CRL only": "X509 CRL",
                "directory": "is a directory", "missing file": "no such file",
                "truncated DER": "DER"}
    cases = _bad_inputs(tmp_path, ca_der)
    for label, needle in expected.items():
        with pytest.raises(BadInput, match=needle):
            load_certs(cases[label])


def test_convert_bad_input_writes_nothing(tmp_path, ca_der, capsys):
    for label, path in _bad_inputs(tmp_path, ca_der).items():
        out = tmp_path / "out" / "x.pem"
        out.parent.mkdir(exist_ok=True)
        assert cli_main(["cert", "convert", str(path), str(out)]) == 2, label
        assert not out.exists(), label
        assert [p.name for p in out.parent.iterdir()] == [], label
    capsys.readouterr()


def test_fifty_megabytes_of_junk_is_refused_quickly(tmp_path, capsys):
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"\x30\x82" + os.urandom(1 << 20) * 50)
    start = dt.datetime.now()
    assert cli_main(["cert", "show", str(junk)]) == 2
    assert (dt.datetime.now() - start).total_seconds() < 30
    assert str(junk) in capsys.readouterr().err


def test_convert_refuses_to_overwrite_without_force(tmp_path, ca_der, capsys):
    src = tmp_path / "ca.pem"
    src.write_text(pem_encode(ca_der))
    dst = tmp_path / "ca.der"
    dst.write_bytes(b"keep me")
    assert cli_main(["cert", "convert", str(src), str(dst)]) == 2
    assert dst.read_bytes() == b"keep me"
    assert cli_main(["cert", "convert", "--force", str(src), str(dst)]) == 0
    assert dst.read_bytes() == ca_der
    out = tmp_path / "noext"
    assert cli_main(["cert", "convert", str(src), str(out)]) == 2  # format unknown
    assert not out.exists()
    capsys.readouterr()


def test_show_and_lint_human_output(tmp_path, ca_der, capsys):
    src = tmp_path / "ca.pem"
    src.write_text(pem_encode(ca_der))
    cert = Cert.from_der(ca_der)
    assert cli_main(["cert", "show", str(src)]) == 0
    out = capsys.readouterr().out
    assert cert.sha256 in out and "expires in" in out and cert.subject_hash in out
    # synth CAs have no keyUsage/SKI: strict verifiers reject them, so lint says unfit
    assert cli_main(["cert", "lint", str(src)]) == 1
    captured = capsys.readouterr()
    assert "NOT fit" in captured.out and "OpenSSL code 92" in captured.out
    assert "rejected by: Python >= 3.13" in captured.out
    assert captured.err.strip().splitlines() == [
        "trustwall: 1 of 1 certificate(s) not fit as a trust anchor"]  # a finding, not an error
