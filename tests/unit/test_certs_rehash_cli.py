"""``trustwall rehash`` as a command: default directory, dry run, JSON, exit codes.

Every run names a temporary directory or sets SSL_CERT_DIR to one: the host's own CApath is
never touched.
"""

from __future__ import annotations

import json
import os

import pytest

from trustwall.certs.model import Cert, pem_encode
from trustwall.certs.rehash import default_dirs
from trustwall.certs.synth import cn, make_cert, new_key
from trustwall.cli.main import main as cli_main

KEY = new_key()


@pytest.fixture
def certdir(tmp_path):
    d = tmp_path / "capath"
    d.mkdir()
    der = make_cert(cn("Rehash CA"), key=KEY)
    (d / "ca.crt").write_text(pem_encode(der))
    (d / "two.pem").write_text(pem_encode(der) + pem_encode(make_cert(cn("X"), key=KEY)))
    return d, Cert.from_der(der).subject_hash


def test_default_directory_comes_from_ssl_cert_dir(certdir, monkeypatch, capsys):
    d, h = certdir
    monkeypatch.setenv("SSL_CERT_DIR", f"{d}:")
    assert default_dirs() == [str(d)]
    assert cli_main(["rehash"]) == 0
    assert os.readlink(d / f"{h}.0") == "ca.crt"
    err = capsys.readouterr().err
    assert "two.pem" in err and "exactly one" in err


def test_without_ssl_cert_dir_the_default_is_openssls_directory(monkeypatch):
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert default_dirs() == ["/usr/lib/ssl/certs"]  # Debian's OPENSSLDIR/certs


def test_dry_run_lists_and_changes_nothing(certdir, capsys):
    d, h = certdir
    assert cli_main(["rehash", "--dry-run", str(d)]) == 0
    assert f"would link ca.crt -> {h}.0" in capsys.readouterr().out
    assert not any(p.is_symlink() for p in d.iterdir())


def test_json_result(certdir, capsys):
    d, h = certdir
    assert cli_main(["rehash", "--json", str(d)]) == 0
    result = json.loads(capsys.readouterr().out)["directories"][0]
    assert result["changes"] == [{"link": f"{h}.0", "target": "ca.crt", "action": "created"}]
    assert any("two.pem" in w for w in result["warnings"])


def test_missing_directory_is_bad_input(tmp_path, capsys):
    assert cli_main(["rehash", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_unhandled_file_exits_1(certdir, capsys):
    from cryptography.hazmat.primitives import serialization

    d, _ = certdir
    (d / "key.pem").write_bytes(KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    assert cli_main(["rehash", str(d)]) == 1
    assert "key.pem" in capsys.readouterr().err
