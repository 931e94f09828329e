"""Read certificates from any file users are handed: the format is sniffed from the content.

PEM (several blocks, text around them, CRLF, ``BEGIN TRUSTED CERTIFICATE`` with OpenSSL trust
settings, ``BEGIN PKCS7``), DER, PKCS#7 (PEM or DER) and PKCS#12 (password optional). Every
failure is a BadInput whose one-line message names the file and says what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import warnings

from trustwall.certs import der as _der
from trustwall.certs.model import Cert
from trustwall.errors import BadInput

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 #]+)-----(.*?)(?:-----END \1-----|(?=-----BEGIN )|\Z)", re.S)
_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
_PKCS7_LABELS = {b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS"}
_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")  # 1.2.840.113549.1.7.2


def read_input(path_or_bytes: str | os.PathLike[str] | bytes,
               source: str | None = None) -> tuple[bytes, str]:
    """``(content, name used in messages)``; file-system problems become BadInput."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), source or "<bytes>"
    name = source or os.fspath(path_or_bytes)
    try:
        with open(path_or_bytes, "rb") as handle:
            return handle.read(), name
    except IsADirectoryError as exc:
        raise BadInput(f"{name}: is a directory, not a certificate file") from exc
    except FileNotFoundError as exc:
        raise BadInput(f"{name}: no such file") from exc
    except PermissionError as exc:
        raise BadInput(f"{name}: permission denied") from exc
    except OSError as exc:
        raise BadInput(f"{name}: cannot read ({exc.strerror or exc})") from exc


def pem_blocks(data: bytes, name: str) -> list[tuple[str, bytes]]:
    """Every PEM block as ``(label, der)``; headers (``Proc-Type:``…) are skipped."""
    out = []
    for match in _PEM_BLOCK.finditer(data):
        label = match.group(1).decode("ascii")
        if not match.group(0).rstrip().endswith(b"-----END " + match.group(1) + b"-----"):
            raise BadInput(f"{name}: truncated PEM (BEGIN {label} without END {label})")
        body = match.group(2)
        lines = [ln for ln in body.splitlines() if b":" not in ln]
        text = b"".join(b"".join(ln.split()) for ln in lines)
        try:
            der = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadInput(f"{name}: garbled PEM (bad base64 in BEGIN {label} block)") from exc
        if not der:
            raise BadInput(f"{name}: empty PEM block BEGIN {label}")
        out.append((label, der))
    return out


def _pkcs7_certs(der: bytes, name: str) -> list[Cert]:
    from cryptography.hazmat.primitives.serialization import pkcs7

    try:
        with warnings.catch_warnings():
            # openssl crl2pkcs7 writes the SET OF certificates unsorted (BER); cryptography
            # reads it with a warning. Nothing the user can act on.
            warnings.simplefilter("ignore")
            certs = pkcs7.load_der_pkcs7_certificates(der)
    except ValueError as exc:
        raise BadInput(f"{name}: not a valid PKCS#7 certificate bundle") from exc
    return [Cert.from_der(c.public_bytes(_encoding_der()), source=name) for c in certs]


def _encoding_der() -> object:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def _pkcs12_certs(data: bytes, name: str, password: bytes | None) -> list[Cert]:
    from cryptography.hazmat.primitives.serialization import pkcs12

    tries = [password] if password is not None else [None, b""]
    last: Exception | None = None
    for pw in tries:
        try:
            bundle = pkcs12.load_pkcs12(data, pw)
            break
        except ValueError as exc:
            last = exc
    else:
        if password is None:
            raise BadInput(f"{name}: PKCS#12 file is protected; give its password (--password)"
                           ) from last
        raise BadInput(f"{name}: wrong password for PKCS#12 file (or the file is damaged)"
                       ) from last
    certs = ([bundle.cert.certificate] if bundle.cert is not None else []) + [
        c.certificate for c in bundle.additional_certs]
    return [Cert.from_der(c.public_bytes(_encoding_der()), source=name) for c in certs]


def _der_kind(data: bytes) -> str:
    """Tell DER structures apart by the first element inside the outer SEQUENCE."""
    tag, start, end = _der.read_tlv(data, 0)
    if tag != _der.SEQUENCE:
        return "unknown"
    if end == start:
        return "unknown"
    inner, istart, iend = _der.read_tlv(data, start, end)
    if inner == _der.SEQUENCE:
        return "certificate"
    if inner == 0x06:
        return "pkcs7" if data[start:iend] == _OID_SIGNED_DATA else "unknown"
    if inner == 0x02:
        return "pkcs12" if data[istart:iend] == b"\x03" else "private key"
    return "unknown"


def load_certs(path_or_bytes: str | os.PathLike[str] | bytes, *,
               password: str | bytes | None = None, source: str | None = None) -> list[Cert]:
    """All certificates in a file (or in bytes), in file order; the format is sniffed.

    Raises BadInput with a one-line message naming the file when nothing usable is found.
    """
    data, name = read_input(path_or_bytes, source)
    if not data.strip():
        raise BadInput(f"{name}: empty file")
    pw = password.encode() if isinstance(password, str) else password
    if b"-----BEGIN " in data:
        return _from_pem(data, name)
    try:
        kind = _der_kind(data)
    except BadInput as exc:
        raise BadInput(f"{name}: not a certificate (neither PEM nor valid DER: {exc})") from exc
    if kind == "certificate":
        return [Cert.from_der(data, source=name)]
    if kind == "pkcs7":
        return _pkcs7_certs(data, name)
    if kind == "pkcs12":
        return _pkcs12_certs(data, name, pw)
    if kind == "private key":
        raise BadInput(f"{name}: holds a private key, not a certificate")
    raise BadInput(f"{name}: not a certificate (not PEM, DER, PKCS#7 or PKCS#12)")


def _from_pem(data: bytes, name: str) -> list[Cert]:
    certs: list[Cert] = []
    others: list[str] = []
    for label, der in pem_blocks(data, name):
        raw = label.encode()
        if raw in _CERT_LABELS:
            # TRUSTED CERTIFICATE is the certificate followed by OpenSSL's trust settings;
            # from_der keeps the first element only.
            certs.append(Cert.from_der(der, source=name))
        elif raw in _PKCS7_LABELS:
            certs.extend(_pkcs7_certs(der, name))
        else:
            others.append(label)
    if not certs:
        if not others:
            raise BadInput(f"{name}: garbled PEM (a BEGIN line but no complete block)")
        if any("PRIVATE KEY" in o for o in others):
            raise BadInput(f"{name}: holds a private key, not a certificate")
        found = ", ".join(sorted(set(others))) or "nothing"
        raise BadInput(f"{name}: no certificate in PEM file (found: {found})")
    return certs
