"""Properties of OpenSSL's name canonicalisation and of the one-line name form.

The differential tests (tests/conformance/test_certs_hash.py) prove agreement with OpenSSL;
these state the rules themselves, so a regression names the rule it broke.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustwall.certs.names import canonical_name, name_hash, name_hash_old, name_string
from trustwall.certs.synth import name_der

UTF8, PRINTABLE, IA5, BMP = 0x0C, 0x13, 0x16, 0x1E
OIDS = ["2.5.4.3", "2.5.4.10", "2.5.4.11", "2.5.4.6", "2.5.4.7", "2.5.4.8",
        "0.9.2342.19200300.100.1.25", "0.9.2342.19200300.100.1.1"]
ASCII_WORD = st.text(alphabet="abcXYZ019-.", min_size=1, max_size=8)
ASCII_TEXT = st.lists(ASCII_WORD, min_size=1, max_size=4)

_ENCODE = {UTF8: str.encode, PRINTABLE: str.encode, IA5: str.encode,
           BMP: lambda s: s.encode("utf-16-be")}


def one(oid: str, tag: int, text: str) -> bytes:
    return name_der([[(oid, tag, _ENCODE[tag](text))]])


@settings(max_examples=80)
@given(st.sampled_from(OIDS), ASCII_TEXT, st.sampled_from(list(_ENCODE)),
       st.sampled_from(list(_ENCODE)))
def test_hash_ignores_string_type_for_the_same_text(oid, words, tag_a, tag_b):
    text = " ".join(words)
    assert name_hash(one(oid, tag_a, text)) == name_hash(one(oid, tag_b, text))


@settings(max_examples=80)
@given(st.sampled_from(OIDS), ASCII_TEXT, st.data())
def test_hash_ignores_ascii_case_and_whitespace_layout(oid, words, data):
    plain = " ".join(words)
    seps = [data.draw(st.text(alphabet=" \t\r\n\x0b\x0c", min_size=1, max_size=3))
            for _ in words[1:]]
    pad = data.draw(st.text(alphabet=" \t\n", max_size=3))
    messy = pad + "".join(w + s for w, s in zip(words, [*seps, ""], strict=True)) + pad
    swapped = messy.swapcase()
    assert name_hash(one(oid, UTF8, swapped)) == name_hash(one(oid, UTF8, plain))


def test_non_ascii_case_is_significant():
    assert name_hash(one("2.5.4.3", UTF8, "É")) != name_hash(one("2.5.4.3", UTF8, "é"))


@settings(max_examples=50)
@given(st.lists(st.tuples(st.sampled_from(OIDS), ASCII_WORD), min_size=2, max_size=4),
       st.randoms(use_true_random=False))
def test_hash_ignores_member_order_of_a_multi_valued_rdn(members, rnd):
    attrs = [(oid, UTF8, text.encode()) for oid, text in members]
    shuffled = list(attrs)
    rnd.shuffle(shuffled)
    assert canonical_name(name_der([attrs])) == canonical_name(name_der([shuffled]))


@settings(max_examples=50)
@given(st.sampled_from(OIDS), ASCII_TEXT)
def test_old_hash_is_over_the_bytes_as_received(oid, words):
    text = " ".join(words)
    a, b = one(oid, UTF8, text), one(oid, PRINTABLE, text)
    assert name_hash_old(a) != name_hash_old(b)
    assert name_hash(a) == name_hash(b)


def test_rdn_order_matters():
    a = name_der([[("2.5.4.6", PRINTABLE, b"DE")], [("2.5.4.3", UTF8, b"x")]])
    b = name_der([[("2.5.4.3", UTF8, b"x")], [("2.5.4.6", PRINTABLE, b"DE")]])
    assert name_hash(a) != name_hash(b)


_VALUE = st.text(alphabet=st.sampled_from(list("aZ9 ,+=\"\\<>;#é中")), min_size=1,
                 max_size=10).filter(lambda s: s.strip() == s)


@pytest.mark.filterwarnings("ignore:Attribute's length")  # C= of any length, on purpose
@settings(max_examples=100)
@given(st.lists(st.tuples(st.sampled_from(OIDS[:6]), _VALUE), min_size=1, max_size=4))
def test_one_line_form_equals_cryptography_rfc4514(attrs):
    from cryptography import x509
    from cryptography.x509.oid import ObjectIdentifier

    der = name_der([[(oid, UTF8, v.encode())] for oid, v in attrs])
    theirs = x509.Name([x509.NameAttribute(ObjectIdentifier(oid), v, _validate=False)
                        for oid, v in attrs])
    assert name_string(der) == theirs.rfc4514_string()
