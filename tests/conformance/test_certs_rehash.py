"""trustwall rehash vs ``openssl rehash`` on copies of the same messy directory.

Only temporary directories are ever rehashed, and openssl runs with a clean environment so
SSL_CERT_DIR from the session cannot point it anywhere else.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustwall.certs.model import pem_encode
from trustwall.certs.names import name_hash
from trustwall.certs.rehash import rehash_dir
from trustwall.certs.synth import cn, make_cert, make_crl, name_der, new_key

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}


def _key_pem(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """A directory with every case openssl rehash distinguishes."""
    d = tmp_path_factory.mktemp("messy")
    key, key2 = new_key(), new_key()
    alpha = make_cert(cn("Alpha"), key=key)
    alpha_other_key = make_cert(cn("  ALPHA "), key=key2)  # same hash, different cert
    (d / "a.pem").write_text(pem_encode(alpha))
    (d / "b.crt").write_text(pem_encode(alpha_other_key))
    (d / "c.cer").write_text(pem_encode(alpha))  # duplicate of a.pem
    (d / "d.pem").write_bytes(b"Subject: Delta\r\n" + pem_encode(make_cert(cn("Delta"), key=key))
                              .replace("\n", "\r\n").encode() + b"trailing words\r\n")
    (d / "e.pem").write_text(pem_encode(make_cert(cn("E1"), key=key))
                             + pem_encode(make_cert(cn("E2"), key=key)))
    (d / "f.crl").write_text(pem_encode(make_crl(cn("Alpha"), key), "X509 CRL"))
    (d / "g.txt").write_text(pem_encode(make_cert(cn("Golf"), key=key)))
    (d / "h.crt").write_bytes(make_cert(cn("Hotel DER"), key=key))
    (d / "i.pem").write_text(_key_pem(key))
    (d / "j.pem").write_text(pem_encode(make_cert(cn("Juliet"), key=key)) + _key_pem(key))
    (d / "k.pem").write_text(pem_encode(make_cert(cn("Kilo"), key=key))[:-60] + "@@@\n"
                             "-----END CERTIFICATE-----\n")
    (d / "l.PEM").write_text(pem_encode(make_cert(cn("Lima"), key=key)))
    (d / "m.pem").write_text(pem_encode(make_cert(cn("Mike"), key=key) + bytes.fromhex("3000"),
                                        "TRUSTED CERTIFICATE"))
    visible = name_der([[("2.5.4.3", 0x1A, b"November")]])
    (d / "n.pem").write_text(pem_encode(make_cert(visible, key=key)))
    (d / "o.pem").write_text(pem_encode(make_crl(cn("Oscar"), key), "X509 CRL")
                             + pem_encode(make_cert(cn("Oscar"), key=key)))
    (d / "p.pem").write_text("")
    (d / "q.cer").write_text(pem_encode(make_cert(cn("alpha"), key=new_key())))  # 3rd collision
    (d / "r.pem").write_text(pem_encode(make_cert(cn("Romeo"), key=key)) + pem_encode(
        make_crl(cn("Romeo"), key), "X509 CRL"))
    (d / "s.pem").mkdir()
    (d / "T61.crt").write_text(pem_encode(make_cert(cn("Tëst  Straße", 0x14), key=key)))
    os.symlink("a.pem", d / "link-to-a.pem")  # not a hash name: read as a file (duplicate)
    os.symlink(str(d / "l.PEM"), d / "DEADBEEF.2")  # upper-case hex, absolute target
    os.symlink("d.pem", d / "abcdef01.")  # OpenSSL reads an empty number as 0
    (d / "0early.pem").write_text(pem_encode(make_cert(cn("Alpha"), key=new_key())))
    (d / "f2.crl").write_text(pem_encode(make_crl(cn("alpha"), key2), "X509 CRL"))
    (d / "f3.crl").write_text((d / "f.crl").read_text())  # duplicate CRL
    (d / "u.pem").write_text("  " + pem_encode(make_cert(cn("Uniform"), key=key)))
    (d / "v.pem").write_text(pem_encode(make_cert(cn("Victor"), key=key))
                             + "-----BEGIN PUBLIC KEY-----\n@@notbase64@@\n"
                             "-----END PUBLIC KEY-----\n")
    (d / "w.pem").write_text(pem_encode(make_cert(cn("Whiskey"), key=key))
                             + pem_encode(b"\x30\x03\x02\x01\x01", "X509 CRL"))
    (d / "x.pem").write_text(pem_encode(make_cert(cn("Xray"), key=key))
                             + pem_encode(b"\x30\x00", "CERTIFICATE REQUEST"))
    os.symlink("gone.pem", d / "deadbeef.0")  # stale link
    os.symlink("a.pem", d / "deadbeef.r1")  # link under a wrong hash
    os.symlink("l.PEM", d / "12345678.1")
    return d


def _links(d: Path) -> dict[str, str]:
    return {p.name: os.readlink(p) for p in d.iterdir() if p.is_symlink()}


def _compare(src: Path, tmp: Path, oflags: list[str], **kw) -> tuple[dict, dict]:
    ours, theirs = tmp / "ours", tmp / "theirs"
    shutil.copytree(src, ours, symlinks=True)
    shutil.copytree(src, theirs, symlinks=True)
    for _ in range(2):  # the second pass checks that existing links are kept or fixed alike
        subprocess.run([OPENSSL, "rehash", *oflags, str(theirs)], env=CLEAN_ENV,
                       capture_output=True, check=False)
        rehash_dir(str(ours), **kw)
        assert _links(ours) == _links(theirs)
    return _links(ours), _links(theirs)


def test_rehash_links_match_openssl_on_messy_dir(messy, tmp_path):
    ours, _ = _compare(messy, tmp_path, [])
    targets = sorted(ours.values())
    assert "a.pem" in targets and "b.crt" in targets and "c.cer" not in targets
    assert "e.pem" not in targets and "f.crl" in targets


@pytest.mark.parametrize(("oflags", "kw"), [
    (["-old"], {"old": True}),
    (["-compat"], {"compat": True}),
    (["-n"], {"remove_links": False}),
])
def test_rehash_modes_match_openssl(messy, tmp_path, oflags, kw):
    _compare(messy, tmp_path, oflags, **kw)


def test_rehash_keeps_numbers_of_correct_links_and_fills_gaps(tmp_path):
    key = new_key()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"c{i}.pem").write_text(pem_encode(make_cert(cn("Same"), key=new_key())))
    (src / "z.pem").write_text(pem_encode(make_cert(cn("Other"), key=key)))
    h = rehash_dir(str(src)).changes[0].link.split(".")[0]
    os.unlink(src / f"{h}.0")
    os.rename(src / f"{h}.3", src / f"{h}.7")  # a number beyond the count needed
    os.unlink(src / "c1.pem")  # one stale link remains
    _compare(src, tmp_path / "cmp", [])


def test_rehash_dry_run_changes_nothing(messy, tmp_path):
    d = tmp_path / "dry"
    shutil.copytree(messy, d, symlinks=True)
    before = _links(d)
    result = rehash_dir(str(d), dry_run=True)
    assert _links(d) == before
    assert any(c.action == "created" for c in result.changes)
    assert any(c.action == "removed" for c in result.changes)


# --- generated directories --------------------------------------------------------------
# A pool made once: colliding subjects (same name, other key), CRLs, junk. Hypothesis picks
# which files exist under which names and which hash links (right, wrong, stale, numbered
# anyhow) are already there; openssl and we must leave the same link set behind.
def _pool() -> list[str]:
    keys = [new_key() for _ in range(3)]
    out = [pem_encode(make_cert(cn(subject), key=key))
           for subject in ("Pool A", "pool  a", "Pool B") for key in keys[:2]]
    out.append(pem_encode(make_crl(cn("Pool A"), keys[0]), "X509 CRL"))
    out.append(pem_encode(make_crl(cn("Pool B"), keys[2]), "X509 CRL"))
    out.append(out[0] + out[1])  # two certificates: skipped
    out.append("junk\n")
    return out


POOL = _pool()
LINK_HASHES = [name_hash(cn("Pool A")), name_hash(cn("Pool B")), "deadbeef"]
FILE_NAMES = ["a.pem", "b.crt", "c.cer", "d.crl", "e.PEM", "f.pem", "0.pem"]

directories = st.fixed_dictionaries({
    "files": st.dictionaries(st.sampled_from(FILE_NAMES), st.integers(0, len(POOL) - 1),
                             max_size=6),
    "links": st.dictionaries(
        st.tuples(st.sampled_from(LINK_HASHES), st.sampled_from(["", "r"]),
                  st.integers(0, 4)),
        st.sampled_from([*FILE_NAMES, "gone.pem"]), max_size=5),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(layout=directories, remove_links=st.booleans())
def test_rehash_matches_openssl_on_generated_directories(layout, remove_links, tmp_path):
    run = tmp_path / f"run{next(_RUNS)}"
    ours, theirs = run / "ours", run / "theirs"
    for d in (ours, theirs):
        d.mkdir(parents=True)
        for name, index in layout["files"].items():
            (d / name).write_text(POOL[index])
        for (h, r, n), target in layout["links"].items():
            os.symlink(target, d / f"{h}.{r}{n}")
    flags = [] if remove_links else ["-n"]
    subprocess.run([OPENSSL, "rehash", *flags, str(theirs)], env=CLEAN_ENV,
                   capture_output=True, check=False)
    rehash_dir(str(ours), remove_links=remove_links)
    assert _links(ours) == _links(theirs)


_RUNS = itertools.count()
