"""Certificates with names built byte by byte, for tests, benchmarks and the lab.

cryptography's builders only emit names it can represent; the interesting cases (T61String
holding Latin-1 bytes, VisibleString, multi-valued RDNs in any order, empty subjects) need
raw DER. We build a certificate normally, then splice the raw names into the TBS and re-sign.
EC P-256 keys keep bulk generation fast.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from trustwall.certs.der import SEQUENCE, SET, children, encode_tlv, read_tlv
from trustwall.certs.factory import new_key

Attr = tuple[str, int, bytes]  # (dotted OID, value tag, value content)


def encode_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return encode_tlv(0x06, bytes(body))


def name_der(rdns: Sequence[Sequence[Attr]]) -> bytes:
    """A DER Name from RDNs in the given order (a SET's members are kept in the given order
    too, so non-canonical orderings can be produced on purpose)."""
    sets = [encode_tlv(SET, b"".join(encode_tlv(SEQUENCE, encode_oid(oid) + encode_tlv(tag, v))
                                     for oid, tag, v in rdn)) for rdn in rdns]
    return encode_tlv(SEQUENCE, b"".join(sets))


def make_cert(subject: bytes, issuer: bytes | None = None, *, key: Any = None,
              serial: int = 1, ca: bool = True, days: int = 365) -> bytes:
    """DER of a certificate with the raw ``subject`` (and ``issuer``, default the subject),
    signed by ``key`` (EC P-256; generated when None) -- self-signed when issuer is None."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from trustwall.certs.factory import issue

    key = key or new_key()
    # Bare on purpose (basicConstraints only): the names are what these certificates test.
    der = issue("placeholder", ca=ca, key=key, serial=serial, days=days, key_usage=False,
                ski=False, aki=False, server_auth=False).der
    _, start, end = read_tlv(der, 0)
    parts = children(der, start, end)
    tbs_tag, _, tbs_cstart, tbs_end = parts[0]
    fields = [der[s:e] for _, s, _, e in children(der, tbs_cstart, tbs_end)]
    offset = 1 if der[tbs_cstart] == 0xA0 else 0
    fields[offset + 2] = issuer if issuer is not None else subject
    fields[offset + 4] = subject
    tbs = encode_tlv(tbs_tag, b"".join(fields))
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    sig_alg = der[parts[1][1]:parts[1][3]]
    return encode_tlv(SEQUENCE, tbs + sig_alg + encode_tlv(0x03, b"\x00" + signature))


def make_crl(issuer: bytes, key: Any) -> bytes:
    """DER of an empty CRL whose issuer is the raw Name ``issuer``, signed by ``key``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    placeholder = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "placeholder")])
    der = (x509.CertificateRevocationListBuilder().issuer_name(placeholder)
           .last_update(now).next_update(now + dt.timedelta(days=7))
           .sign(key, hashes.SHA256()).public_bytes(Encoding.DER))
    _, start, end = read_tlv(der, 0)
    parts = children(der, start, end)
    tbs_tag, _, tbs_cstart, tbs_end = parts[0]
    fields = [der[s:e] for _, s, _, e in children(der, tbs_cstart, tbs_end)]
    offset = 1 if der[tbs_cstart] == 0x02 else 0
    fields[offset + 1] = issuer
    tbs = encode_tlv(tbs_tag, b"".join(fields))
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    sig_alg = der[parts[1][1]:parts[1][3]]
    return encode_tlv(SEQUENCE, tbs + sig_alg + encode_tlv(0x03, b"\x00" + signature))


def cn(text: str, tag: int = 0x0C) -> bytes:
    """A one-attribute Name ``CN=text`` (UTF8String unless told otherwise)."""
    return name_der([[("2.5.4.3", tag, text.encode("utf-8" if tag == 0x0C else "latin-1"))]])
