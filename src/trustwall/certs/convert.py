"""Write certificates as PEM, DER or PKCS#7 -- bytes only; the caller writes them atomically."""

from __future__ import annotations

from collections.abc import Sequence

from trustwall.certs.model import Cert
from trustwall.errors import BadInput

FORMATS = ("pem", "der", "p7b")
# Extension -> format when --to is not given. ".cer" is DER by Windows habit; ".crt" is PEM
# by Debian habit (update-ca-certificates wants PEM in *.crt).
_BY_EXTENSION = {"pem": "pem", "crt": "pem", "der": "der", "cer": "der", "p7b": "p7b",
                 "p7c": "p7b"}


def format_for(path: str) -> str | None:
    """The output format implied by a file name, or None when the name does not say."""
    dot = path.rfind(".")
    return _BY_EXTENSION.get(path[dot + 1:].lower()) if dot >= 0 else None


def encode(certs: Sequence[Cert], fmt: str) -> bytes:
    """``certs`` encoded as ``fmt``: PEM (all, concatenated), DER (exactly one) or a DER
    PKCS#7 certs-only bundle (``.p7b``, what Windows and Java tools exchange). PKCS#7 holds
    the certificates as a DER SET OF, so their order there is by encoding, not input order."""
    if not certs:
        raise BadInput("nothing to convert: no certificate")
    if fmt == "pem":
        return "".join(c.pem for c in certs).encode("ascii")
    if fmt == "der":
        if len(certs) != 1:
            raise BadInput(f"DER holds one certificate, the input has {len(certs)};"
                           " use --to pem or --to p7b")
        return certs[0].der
    if fmt == "p7b":
        from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

        return pkcs7.serialize_certificates([c.x509 for c in certs], Encoding.DER)
    raise BadInput(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")
