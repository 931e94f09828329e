"""A minimal DER walker: just enough to find a certificate's names without a full parser.

The subject hash and ``rehash`` must handle every certificate OpenSSL handles, including
subjects cryptography refuses to decode (T61String with Latin-1 bytes), and must be cheap to
start: this module imports nothing beyond the standard library.
"""

from __future__ import annotations

from trustwall.errors import BadInput

SEQUENCE = 0x30
SET = 0x31


def read_tlv(buf: bytes, pos: int, end: int | None = None) -> tuple[int, int, int]:
    """Return ``(tag, content_start, content_end)`` of the element starting at ``pos``.

    Only single-byte tags occur in the structures we walk; a high tag number is rejected.
    Raises BadInput when the element runs past ``end`` (truncated input).
    """
    limit = len(buf) if end is None else end
    if pos + 2 > limit:
        raise BadInput("truncated DER (element header past the end)")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise BadInput("unsupported DER (multi-byte tag)")
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > limit:
            raise BadInput("malformed DER length")
        length = int.from_bytes(buf[pos:pos + count], "big")
        pos += count
    if pos + length > limit:
        raise BadInput("truncated DER (element runs past the end)")
    return tag, pos, pos + length


def encode_tlv(tag: int, content: bytes) -> bytes:
    """DER-encode ``content`` under ``tag`` with a minimal length."""
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content


def children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The elements inside ``buf[start:end]`` as ``(tag, element_start, content_start, end)``."""
    out = []
    pos = start
    while pos < end:
        tag, cstart, cend = read_tlv(buf, pos, end)
        out.append((tag, pos, cstart, cend))
        pos = cend
    return out


def certificate_names(der: bytes) -> tuple[bytes, bytes]:
    """``(issuer_der, subject_der)``: the raw encoded Names of a DER certificate.

    Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serial,
    signature, issuer, validity, subject, ... }, ... } (RFC 5280 4.1).
    """
    tag, start, end = read_tlv(der, 0)
    if tag != SEQUENCE:
        raise BadInput("not a DER certificate (no outer SEQUENCE)")
    tag, tstart, tend = read_tlv(der, start, end)
    if tag != SEQUENCE:
        raise BadInput("not a DER certificate (no tbsCertificate)")
    elems = []
    pos = tstart
    while pos < tend and len(elems) < 7:
        etag, _, cend = read_tlv(der, pos, tend)
        elems.append((etag, pos, cend))
        pos = cend
    if elems and elems[0][0] == 0xA0:  # explicit [0] version
        elems = elems[1:]
    if len(elems) < 5 or elems[2][0] != SEQUENCE or elems[4][0] != SEQUENCE:
        raise BadInput("not a DER certificate (tbsCertificate too short)")
    issuer = der[elems[2][1]:elems[2][2]]
    subject = der[elems[4][1]:elems[4][2]]
    return issuer, subject


def crl_issuer(der: bytes) -> bytes:
    """The raw issuer Name of a DER CRL (RFC 5280 5.1: tbsCertList { version?, sig, issuer })."""
    tag, start, end = read_tlv(der, 0)
    tag, tstart, tend = read_tlv(der, start, end)
    if tag != SEQUENCE:
        raise BadInput("not a DER CRL")
    elems = children(der, tstart, tend)[:3]
    if elems and elems[0][0] == 0x02:  # optional version INTEGER
        elems = elems[1:]
    if len(elems) < 2 or elems[1][0] != SEQUENCE:
        raise BadInput("not a DER CRL (no issuer)")
    return der[elems[1][1]:elems[1][3]]


def replace_certificate_names(der: bytes, issuer: bytes, subject: bytes) -> bytes:
    """The certificate with its issuer and subject Names replaced (signature left as is, so
    it no longer verifies: for parsing only)."""
    _, start, end = read_tlv(der, 0)
    parts = children(der, start, end)
    _, tbs_start, tbs_cstart, tbs_end = parts[0]
    fields = [der[s:e] for _, s, _, e in children(der, tbs_cstart, tbs_end)]
    offset = 1 if der[tbs_cstart] == 0xA0 else 0
    fields[offset + 2] = issuer
    fields[offset + 4] = subject
    tbs = encode_tlv(der[tbs_start], b"".join(fields))
    return encode_tlv(SEQUENCE, tbs + der[tbs_end:end])
