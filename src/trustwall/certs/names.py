"""Distinguished names read from their raw DER: OpenSSL's subject hashes and a one-line string.

OpenSSL's ``X509_NAME_hash_ex`` (what ``openssl x509 -subject_hash`` prints and CApath lookups
use) is SHA-1 over a *canonical* encoding of the name (crypto/x509/x_name.c, x509_name_canon):
each value of a string type is converted to UTF-8, leading/trailing whitespace is dropped,
internal whitespace runs become one space, ASCII is lower-cased and the value is re-tagged
UTF8String; each RDN is re-encoded as a DER SET OF (members sorted by encoding) and the SETs
are concatenated without the outer SEQUENCE. The hash is the first four digest bytes read
little-endian. The old hash (``-subject_hash_old``, OpenSSL < 1.0) is MD5 over the name's DER
as received.

We work on raw bytes on purpose: a T61String holding Latin-1 bytes makes cryptography's
``cert.subject`` raise, while OpenSSL (which treats T61String as Latin-1) hashes it fine.
"""

from __future__ import annotations

import hashlib

from trustwall.certs.der import SEQUENCE, SET, encode_tlv, read_tlv
from trustwall.errors import BadInput

UTF8STRING = 0x0C
PRINTABLESTRING = 0x13
T61STRING = 0x14
IA5STRING = 0x16
UNIVERSALSTRING = 0x1C
BMPSTRING = 0x1E
VISIBLESTRING = 0x1A

# ASN1_MASK_CANON: the string types OpenSSL canonicalises; any other value is copied as is.
_ONE_BYTE = frozenset({PRINTABLESTRING, T61STRING, IA5STRING, VISIBLESTRING})
_CANON_TYPES = _ONE_BYTE | {UTF8STRING, BMPSTRING, UNIVERSALSTRING}

# Value tags OpenSSL's X509_NAME decoder accepts (ASN1_PRINTABLE: B_ASN1_PRINTABLE plus the
# tags ASN1_tag2bit maps to B_ASN1_UNKNOWN). Any other tag -- VisibleString, GeneralString,
# OCTET STRING, INTEGER... -- makes d2i_X509 fail, so OpenSSL cannot use the certificate at all.
_DECODABLE = frozenset({0x03, 0x07, 0x09, 0x0A, 0x0C, 0x0D, 0x0E, 0x0F, 0x12, 0x13, 0x14,
                        0x16, 0x1C, 0x1D, 0x1E, 0x30})
_TAG_NAMES = {0x01: "BOOLEAN", 0x02: "INTEGER", 0x04: "OCTET STRING", 0x05: "NULL",
              0x06: "OBJECT IDENTIFIER", 0x15: "VideotexString", 0x17: "UTCTime",
              0x18: "GeneralizedTime", 0x19: "GraphicString", 0x1A: "VisibleString",
              0x1B: "GeneralString", 0x31: "SET"}

# ossl_isspace: space, \t, \n, \v, \f, \r (ASCII only; bytes >= 0x80 are never space).
_SPACE = frozenset(b" \t\n\v\f\r")
_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


def decode_string(tag: int, content: bytes) -> str:
    """The text of a directory string value, as OpenSSL's ASN1_STRING_to_UTF8 reads it."""
    if tag == UTF8STRING:
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput("name holds an invalid UTF8String") from exc
    if tag in _ONE_BYTE:
        return content.decode("latin-1")  # OpenSSL maps T61String byte-for-byte to U+00xx
    if tag in (BMPSTRING, UNIVERSALSTRING):
        # UCS-2 / UCS-4 big-endian. OpenSSL does not pair surrogates: each one is an illegal
        # character and the name does not decode (a_mbstr.c, is_unicode_valid).
        width = 2 if tag == BMPSTRING else 4
        if len(content) % width:
            raise BadInput(f"name holds a {_kind(tag)} of length {len(content)}")
        chars = [int.from_bytes(content[i:i + width], "big")
                 for i in range(0, len(content), width)]
        if any(c > 0x10FFFF or 0xD800 <= c <= 0xDFFF for c in chars):
            raise BadInput(f"name holds a {_kind(tag)} with an invalid character")
        return "".join(map(chr, chars))
    raise BadInput(f"not a string type (tag 0x{tag:02x})")


def _kind(tag: int) -> str:
    return {BMPSTRING: "BMPString", UNIVERSALSTRING: "UniversalString"}.get(
        tag, _TAG_NAMES.get(tag, f"value with tag 0x{tag:02x}"))


def _undecodable(tag: int) -> BadInput:
    return BadInput(f"name holds a value of type {_kind(tag)}, which OpenSSL cannot decode")


def check_decodable(name_der: bytes) -> None:
    """Raise BadInput when OpenSSL's decoder would reject this Name (so every OpenSSL-based
    client rejects the certificate): a value of a type it does not allow, or a string that
    does not convert to UTF-8."""
    for rdn in rdns(name_der):
        for _, vtag, content, _ in rdn:
            if vtag not in _DECODABLE:
                raise _undecodable(vtag)
            if vtag in _CANON_TYPES:
                decode_string(vtag, content)


def _canon_value(tag: int, content: bytes) -> bytes:
    if tag == UTF8STRING:
        decode_string(tag, content)  # validates
        data = content
    else:
        data = decode_string(tag, content).encode("utf-8")
    start, end = 0, len(data)
    while start < end and data[start] in _SPACE:
        start += 1
    while end > start and data[end - 1] in _SPACE:
        end -= 1
    out = bytearray()
    i = start
    while i < end:
        b = data[i]
        if b in _SPACE:
            out.append(0x20)
            while data[i] in _SPACE:  # the last byte is not a space, so this stops in range
                i += 1
        else:
            out.append(b)
            i += 1
    return encode_tlv(UTF8STRING, bytes(out).translate(_LOWER))


def rdns(name_der: bytes) -> list[list[tuple[bytes, int, bytes, bytes]]]:
    """The name's RDNs, each a list of ``(oid_tlv, value_tag, value_content, value_tlv)``."""
    tag, start, end = read_tlv(name_der, 0)
    if tag != SEQUENCE:
        raise BadInput("a Name must be a SEQUENCE")
    out = []
    pos = start
    while pos < end:
        stag, sstart, send = read_tlv(name_der, pos, end)
        if stag != SET:
            raise BadInput("an RDN must be a SET")
        entries = []
        p = sstart
        while p < send:
            atag, astart, aend = read_tlv(name_der, p, send)
            if atag != SEQUENCE:
                raise BadInput("an attribute must be a SEQUENCE")
            otag, _, oend = read_tlv(name_der, astart, aend)
            if otag != 0x06:
                raise BadInput("an attribute type must be an OID")
            vtag, vstart, vend = read_tlv(name_der, oend, aend)
            entries.append((name_der[astart:oend], vtag, name_der[vstart:vend],
                            name_der[oend:vend]))
            p = aend
        out.append(entries)
        pos = send
    return out


def canonical_name(name_der: bytes) -> bytes:
    """OpenSSL's canonical encoding of a DER Name (the input of the new subject hash)."""
    parts = []
    for rdn in rdns(name_der):
        encoded = []
        for oid, vtag, content, value_tlv in rdn:
            if vtag not in _DECODABLE:
                raise _undecodable(vtag)
            value = _canon_value(vtag, content) if vtag in _CANON_TYPES else value_tlv
            encoded.append(encode_tlv(SEQUENCE, oid + value))
        if not encoded:
            continue  # an empty RDN holds no entries, so OpenSSL's canon has nothing for it
        encoded.sort()  # DER SET OF order: bytewise, a shorter prefix first (der_cmp)
        parts.append(encode_tlv(SET, b"".join(encoded)))
    return b"".join(parts)


def _hash8(digest: bytes) -> str:
    return f"{int.from_bytes(digest[:4], 'little'):08x}"


def name_hash(name_der: bytes) -> str:
    """``X509_NAME_hash_ex``: 8 hex digits, as ``openssl x509 -subject_hash`` prints."""
    return _hash8(hashlib.sha1(canonical_name(name_der)).digest())


def name_hash_old(name_der: bytes) -> str:
    """``X509_NAME_hash_old``: MD5 over the name's DER as received (``-subject_hash_old``)."""
    return _hash8(hashlib.md5(name_der).digest())


# Short names for the one-line form; unknown types print as their dotted OID (RFC 4514 2.3).
_SHORT = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "STREET",
    "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.5": "serialNumber", "2.5.4.4": "SN",
    "2.5.4.42": "GN", "2.5.4.12": "title", "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
    "1.2.840.113549.1.9.1": "emailAddress",
}


def oid_dotted(oid_tlv: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER TLV."""
    _, start, end = read_tlv(oid_tlv, 0)
    arcs: list[int] = []
    value = 0
    for b in oid_tlv[start:end]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return ""
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def _escape(text: str) -> str:
    out = []
    for i, ch in enumerate(text):
        if ch in ',+"\\<>;' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(text) - 1)):
            out.append("\\" + ch)
        elif ch < " " or ch == "\x7f":  # control characters as \XX (RFC 4514 2.4)
            out.append(f"\\{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def name_string(name_der: bytes) -> str:
    """RFC 4514 one-line form (most specific RDN first), from raw DER, never raising on
    string values OpenSSL accepts."""
    parts = []
    for rdn in reversed(rdns(name_der)):
        avas = []
        for oid, vtag, content, value_tlv in rdn:
            dotted = oid_dotted(oid)
            key = _SHORT.get(dotted, dotted)
            try:
                value = _escape(decode_string(vtag, content))
            except BadInput:
                value = "#" + value_tlv.hex()
            avas.append(f"{key}={value}")
        parts.append("+".join(avas))
    return ",".join(parts)


def friendly_name(name_der: bytes) -> bytes:
    """The same Name as cryptography will read it: each multi-valued RDN's members in DER SET
    OF order and every string value re-tagged UTF8String (text as OpenSSL reads it, else the
    value's hex). OpenSSL accepts unsorted SETs, PrintableStrings with any byte and T61String
    holding Latin-1; cryptography refuses them (at load or on ``.subject``)."""
    sets = []
    for rdn in rdns(name_der):
        members = []
        for oid, vtag, content, value_tlv in rdn:
            if vtag in _CANON_TYPES:
                try:
                    value = encode_tlv(UTF8STRING, decode_string(vtag, content).encode())
                except BadInput:
                    value = encode_tlv(UTF8STRING, value_tlv.hex().encode())
            else:  # cryptography allows few non-string types (BIT STRING only for one OID)
                value = encode_tlv(UTF8STRING, b"#" + value_tlv.hex().encode())
            members.append(encode_tlv(SEQUENCE, oid + value))
        sets.append(encode_tlv(SET, b"".join(sorted(members))))
    return encode_tlv(SEQUENCE, b"".join(sets))
