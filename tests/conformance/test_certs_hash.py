"""Subject hashes (new and old) agree with ``openssl x509 -subject_hash[_old]``.

Oracles: the openssl binary on certificates whose subjects are built byte by byte (every
string type, T61String with Latin-1 bytes, multi-valued RDNs, whitespace runs, case, empty
subjects) and on a sample of certifi; the same libcrypto the binary uses (ctypes:
d2i_X509 + X509_subject_name_hash[_old]) on every certifi certificate and on generated
names, because one openssl process per certificate costs ~50-200 ms on this box. Where OpenSSL
cannot load the certificate at all (a VisibleString value, say), we must refuse too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess

import certifi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustwall.certs import Cert, load_certs, subject_hash
from trustwall.certs.synth import make_cert, name_der, new_key
from trustwall.cli.main import main as cli_main
from trustwall.errors import BadInput

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
KEY = new_key()

CN, ORG, OU, C = "2.5.4.3", "2.5.4.10", "2.5.4.11", "2.5.4.6"
EMAIL, DC, UID, SERIAL = "1.2.840.113549.1.9.1", "0.9.2342.19200300.100.1.25", \
    "0.9.2342.19200300.100.1.1", "2.5.4.5"
UTF8, PRINTABLE, T61, IA5, UNIVERSAL, BMP, NUMERIC, VISIBLE = \
    0x0C, 0x13, 0x14, 0x16, 0x1C, 0x1E, 0x12, 0x1A


def openssl_hashes(der: bytes) -> list[str] | None:
    """``[new, old]`` from openssl, or None when openssl cannot load the certificate."""
    proc = subprocess.run([OPENSSL, "x509", "-inform", "DER", "-noout", "-subject_hash",
                           "-subject_hash_old"], input=der, capture_output=True, env=ENV,
                          check=False)
    return proc.stdout.decode().split() if proc.returncode == 0 else None


def _libcrypto() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("crypto"))
    lib.d2i_X509.restype = ctypes.c_void_p
    lib.d2i_X509.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_long]
    for fn in (lib.X509_subject_name_hash, lib.X509_subject_name_hash_old):
        fn.restype = ctypes.c_ulong
        fn.argtypes = [ctypes.c_void_p]
    lib.X509_free.argtypes = [ctypes.c_void_p]
    return lib


LIBCRYPTO = _libcrypto()


def libcrypto_hashes(der: bytes) -> list[str] | None:
    """What openssl prints, computed by the library it links (None: d2i_X509 fails)."""
    ptr = ctypes.c_char_p(der)
    x = LIBCRYPTO.d2i_X509(None, ctypes.byref(ptr), len(der))
    if not x:
        return None
    try:
        return [f"{LIBCRYPTO.X509_subject_name_hash(x):08x}",
                f"{LIBCRYPTO.X509_subject_name_hash_old(x):08x}"]
    finally:
        LIBCRYPTO.X509_free(x)


def our_hashes(der: bytes) -> list[str] | None:
    try:
        cert = Cert.from_der(der)
        return [subject_hash(cert), subject_hash(cert, old=True)]
    except BadInput:
        return None


def test_libcrypto_oracle_agrees_with_the_openssl_binary():
    certs = load_certs(certifi.where())[::20]
    der = make_cert(name_der([[("2.5.4.3", 0x14, "Tést".encode("latin-1"))]]), key=KEY)
    for d in [c.der for c in certs] + [der]:
        assert libcrypto_hashes(d) == openssl_hashes(d)


def test_hashes_match_openssl_on_every_certifi_certificate():
    certs = load_certs(certifi.where())
    assert len(certs) > 100
    mismatches = [c.subject_str for c in certs if libcrypto_hashes(c.der) != our_hashes(c.der)]
    assert mismatches == []


HOSTILE = {
    "t61_latin1": [[(CN, T61, "Café Straße Ærø".encode("latin-1"))]],
    "t61_control_bytes": [[(CN, T61, b"\x1b(B\x85\xa0x")]],
    "bmp_whitespace_case": [[(CN, BMP, "  Héllo\tWORLD  \n".encode("utf-16-be"))]],
    "bmp_surrogate_pair": [[(CN, BMP, "😀".encode("utf-16-be"))]],
    "universal_astral": [[(CN, UNIVERSAL, "Ünï 😀 X".encode("utf-32-be"))]],
    "universal_beyond_unicode": [[(CN, UNIVERSAL, b"\x00\x11\x00\x00")]],
    "ia5_email_mixed_case": [[(EMAIL, IA5, b"Foo.Bar@Example.COM")]],
    "dc_components": [[(DC, IA5, b"COM")], [(DC, IA5, b"Example")], [(CN, UTF8, b"x")]],
    "multi_valued_rdn": [[(ORG, UTF8, b"Zeta"), (CN, PRINTABLE, b"alpha  BETA"),
                          (OU, BMP, "Unit".encode("utf-16-be"))]],
    "multi_valued_same_type": [[(CN, UTF8, b"b"), (CN, UTF8, b"A")]],
    "empty_subject": [],
    "empty_rdn_set": [[]],
    "empty_rdn_between": [[(C, PRINTABLE, b"DE")], [], [(CN, UTF8, b"x")]],
    "empty_value": [[(CN, UTF8, b"")]],
    "only_whitespace": [[(CN, UTF8, b" \t\r\n ")]],
    "all_whitespace_kinds": [[(CN, UTF8, b"\t\n a \x0b\x0c b\r ")]],
    "nbsp_is_not_space": [[(CN, UTF8, "\u00a0x\u00a0".encode())]],
    "non_ascii_upper_kept": [[(CN, UTF8, "ÄÖÜ ÉCOLE".encode())]],
    "numeric_not_canonicalised": [[(SERIAL, NUMERIC, b"1234  56 ")]],
    "printable_vs_utf8_same_text": [[(C, PRINTABLE, b"DE")], [(ORG, UTF8, b"DE")]],
    "uid": [[(UID, UTF8, b"JDoe")]],
    "very_long_value": [[(CN, UTF8, b"A  b" * 2000)]],
    "visible_string": [[(CN, VISIBLE, b"Hello")]],
    "invalid_utf8": [[(CN, UTF8, b"\xff\xfe")]],
    "utf8_surrogate": [[(CN, UTF8, b"\xed\xa0\x80")]],
    "bmp_odd_length": [[(CN, BMP, b"\x00a\x00")]],
    "bit_string_value": [[(CN, 0x03, b"\x00abc")]],
    "sequence_value": [[(CN, 0x30, b"\x0c\x01a")]],
    "unknown_oid": [[("1.3.6.1.4.1.99999.1", UTF8, b"Odd  ONE")]],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hashes_match_openssl_on_hostile_names(case):
    der = make_cert(name_der(HOSTILE[case]), key=KEY)
    assert our_hashes(der) == openssl_hashes(der)


def test_loaded_t61_latin1_certificate_still_hashes_and_shows():
    der = make_cert(name_der(HOSTILE["t61_latin1"]), key=KEY)
    cert = Cert.from_der(der)
    assert cert.subject_str == "CN=Café Straße Ærø"
    assert [cert.subject_hash, cert.subject_hash_old] == openssl_hashes(der)


# Text drawn from what tends to break canonicalisation: case, every whitespace kind,
# Latin-1 letters, non-BMP characters.
_TEXT = st.text(alphabet=st.sampled_from(list("aZ09 \t\n\r\x0b\x0c.-@ÄéßÆ\u00a0中😀")),
                max_size=12)
_OIDS = st.sampled_from([CN, ORG, OU, C, EMAIL, DC, UID, "2.5.4.7"])


@st.composite
def attributes(draw):
    oid = draw(_OIDS)
    tag = draw(st.sampled_from([UTF8, PRINTABLE, T61, IA5, BMP, UNIVERSAL]))
    text = draw(_TEXT)
    if tag in (PRINTABLE, T61, IA5):
        value = text.encode("latin-1", "replace")
    elif tag == BMP:
        value = "".join(c for c in text if ord(c) < 0x10000).encode("utf-16-be")
    elif tag == UNIVERSAL:
        value = text.encode("utf-32-be")
    else:
        value = text.encode()
    return oid, tag, value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(attributes(), min_size=1, max_size=3), max_size=4))
def test_hashes_match_openssl_on_generated_names(rdns):
    der = make_cert(name_der(rdns), key=KEY)
    assert our_hashes(der) == libcrypto_hashes(der)


def test_cli_hash_prints_what_openssl_prints_for_each_certificate(tmp_path, capsys):
    certs = load_certs(certifi.where())[:25]
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("".join(c.pem for c in certs))
    for flag, oflag in (([], "-subject_hash"), (["--old"], "-subject_hash_old")):
        assert cli_main(["cert", "hash", *flag, str(bundle)]) == 0
        ours = capsys.readouterr().out.splitlines()
        assert ours == [libcrypto_hashes(c.der)[1 if flag else 0] for c in certs]
        # and the binary itself, on the first and the last certificate of the bundle
        for index in (0, -1):
            one = subprocess.run([OPENSSL, "x509", "-noout", oflag], input=certs[index].pem,
                                 text=True, capture_output=True, env=ENV, check=True)
            assert one.stdout.strip() == ours[index]
