"""certifi in a virtualenv created for the test (never the project's or the system's): the
venv's own python, verifying with ``certifi.where()``, is the oracle against a loopback TLS
server signed by a test CA -- fails before, works after install, fails after undo, and the
file is byte-identical again after undo and after ``ca remove``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import certifi
import pytest
from tls_pki import https_server, issue, write_pem

from trustwall.stores.base import Scope
from trustwall.stores.certifi import CertifiStore

TW = [sys.executable, "-m", "trustwall"]
CLEAN = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
ORACLE = """
import certifi, socket, ssl, sys
ctx = ssl.create_default_context(cafile=certifi.where())
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
            print("ok")
except ssl.SSLCertVerificationError as exc:
    print(exc.verify_message)
    sys.exit(1)
"""


def _base_python() -> str:
    return getattr(sys, "_base_executable", None) or shutil.which("python3.11") or "python3"


@pytest.fixture(scope="module")
def venv_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<tree>/opt/venvs/app: a fresh venv with a copy of the project venv's certifi package."""
    tree = tmp_path_factory.mktemp("certifi") / "root"
    venv = tree / "opt/venvs/app"
    subprocess.run([_base_python(), "-m", "venv", "--without-pip", str(venv)], check=True,
                   env=CLEAN, timeout=60)
    (site,) = venv.glob("lib/python3*/site-packages")
    shutil.copytree(Path(certifi.__file__).parent, site / "certifi")
    return tree


def _tw(*argv: str, **kw: object) -> subprocess.CompletedProcess:
    env = {**CLEAN, "HOME": "/nonexistent"}
    return subprocess.run([*TW, *argv], capture_output=True, text=True, env=env, timeout=120,
                          **kw)  # type: ignore[call-overload]


def _connects(venv: Path, port: int) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin/python"), "-c", ORACLE, str(port)],
                          capture_output=True, text=True, env=CLEAN, timeout=30)


def test_install_makes_the_venv_trust_the_ca_and_undo_and_remove_restore_the_bytes(
        venv_tree: Path, tmp_path: Path) -> None:
    ca = issue("Certifi Test CA", org="Example", ca=True)
    leaf = issue("127.0.0.1", issuer=ca, names=("127.0.0.1",))
    pem = write_pem(tmp_path / "ca.pem", ca)
    venv = venv_tree / "opt/venvs/app"
    (bundle,) = venv.glob("lib/python3*/site-packages/certifi/cacert.pem")
    original = bundle.read_bytes()
    state = str(tmp_path / "state")
    common = ["--root", str(venv_tree), "--venv-root", "/opt/venvs", "--store", "certifi",
              "--state-dir", state]
    with https_server(tmp_path, leaf) as port:
        before = _connects(venv, port)
        assert before.returncode == 1 and "unable to get local issuer" in before.stdout

        done = _tw("ca", "install", str(pem), *common, "--yes", "--json")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert [s["kind"] for s in result["stores"]] == ["certifi"]
        assert result["stores"][0]["path"] == str(bundle)
        assert _connects(venv, port).stdout.strip() == "ok"
        data = bundle.read_bytes()
        assert data.startswith(original) and data.endswith(ca.pem)
        assert data[len(original):].startswith(b"# trustwall: ")

        again = json.loads(_tw("ca", "install", str(pem), *common, "--yes", "--json").stdout)
        assert again["txn"] is None and again["stores"][0]["already"]
        listed = json.loads(_tw("ca", "list", "--added", "--json", *common[:-2]).stdout)
        assert [row["sha256"] for row in listed] == [result["stores"][0]["added"][0]]

        undone = _tw("undo", result["txn"], "--state-dir", state, "--json")
        assert undone.returncode == 0, undone.stderr
        assert bundle.read_bytes() == original
        assert _connects(venv, port).returncode == 1

        _tw("ca", "install", str(pem), *common, "--yes", check=True)
        removed = json.loads(_tw("ca", "remove", str(pem), *common, "--json").stdout)
        assert removed["stores"][0]["removed"]
        assert bundle.read_bytes() == original
        assert _connects(venv, port).returncode == 1


def test_certifi_shipped_roots_are_not_removable_and_venvs_are_found_by_virtual_env(
        venv_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = venv_tree / "opt/venvs/app"
    (store,) = CertifiStore.detect_in(venv_tree, Scope(venv_roots=("/opt",)))
    shipped = len(store.ders()) - len(store.added_ders())
    assert shipped > 100 and len(store.removable()) == len(store.added_ders())
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    found = [str(s.path) for s in CertifiStore.detect(Path("/"))]
    assert str(store.path) in found
    assert CertifiStore.detect_in(venv_tree, Scope()) == []  # no --venv-root: not looked for
    assert store.notes() == ()  # no pip, no start-up hook in this venv
    hook = store.path.parent.parent / "zz-certs.pth"
    hook.write_text("import certifi_patch_hook\n")
    try:
        assert "zz-certs.pth" in store.notes()[0]
    finally:
        hook.unlink()
