"""git ``http.sslCAInfo``, npm ``cafile``, conda ``ssl_verify``, Docker certs.d and Firefox
profiles (profiles.ini) on sandbox trees. Oracles: real git and npm against a loopback TLS
server (run in a private mount namespace where the tree's /etc/ssl/certs is the real one),
``npm config get``, ``git config``, PyYAML, ``openssl verify`` and ``certutil -L``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from stores_tree import copy_tree, diff, snapshot, template
from tls_pki import https_server, issue, write_pem

from trustwall.certs import load_certs
from trustwall.errors import StoreError
from trustwall.journal.transaction import undo
from trustwall.stores.base import Scope, fp_of
from trustwall.stores.npm import global_npmrc
from trustwall.stores.nss import NssStore
from trustwall.stores.registry import detect_stores, install, list_certs, remove

pytestmark = pytest.mark.lab  # mount namespaces (unshare -m) need root

BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PATH = "/usr/local/bin:/usr/bin:/bin"


@pytest.fixture
def tree(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return copy_tree(template(tmp_path_factory), tmp_path / "root")


def _in_tree(tree: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """``argv`` seeing the tree's /etc/ssl/certs at the real path (private mount namespace)."""
    script = f'set -e; mount --bind {tree}/etc/ssl/certs /etc/ssl/certs; exec "$@"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           "sh", *argv], capture_output=True, text=True, env=env, timeout=60)


def _git(tree: Path, home: Path, port: int) -> str:
    env = {"PATH": PATH, "HOME": str(home), "GIT_CONFIG_SYSTEM": str(tree / "etc/gitconfig"),
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    return _in_tree(tree, ["git", "ls-remote", f"https://127.0.0.1:{port}/x"], env).stderr


def _npm(tree: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": PATH, "HOME": str(home), "LC_ALL": "C"}
    return _in_tree(tree, ["npm", *args, "--globalconfig", str(tree / "usr/etc/npmrc")], env)


def test_git_and_npm_pointed_at_the_merged_bundle_connect_and_undo_restores_them(
        tree: Path, tmp_path: Path) -> None:
    """An old setup pointed git and npm at a lone, outdated CA file: both fail. Installing
    (system store + git + npm) points them at the merged bundle: the TLS handshake passes (git
    then fails on HTTP: not a repository; npm ping gets its PONG). Undo: byte-identical, and
    both fail again."""
    ca = issue("Tools Test CA", org="Example", ca=True)
    leaf = issue("127.0.0.1", issuer=ca, names=("127.0.0.1",))
    old = write_pem(tmp_path / "old-corp.pem", issue("Old Corp CA", ca=True))
    (cert,) = load_certs(write_pem(tmp_path / "ca.pem", ca))
    (tree / "etc/gitconfig").write_text(f"[user]\n\tname = ops\n[http]\n\tsslCAInfo = {old}\n")
    (tree / "usr/lib/node_modules/npm").mkdir(parents=True)
    (tree / "usr/etc").mkdir(parents=True)
    (tree / "usr/etc/npmrc").write_text(f"registry=https://registry.example/\ncafile={old}\n")
    home = tmp_path / "home"
    home.mkdir()
    before = snapshot(tree)
    kinds = {s.kind for s in detect_stores(tree)}
    assert {"git", "npm"} <= kinds and "conda" not in kinds and "docker" not in kinds
    with https_server(tmp_path, leaf) as port:
        assert "certificate" in _git(tree, home, port)
        ping = ["ping", "--registry", f"https://127.0.0.1:{port}/", "--fetch-retries=0"]
        assert "UNABLE_TO_VERIFY_LEAF_SIGNATURE" in _npm(tree, home, *ping).stderr

        result = install([cert], root=tree, kinds=["debian", "git", "npm"],
                         state_dir=tmp_path / "state")
        assert {s.kind for s in result.stores if s.added} == {"debian", "git", "npm"}
        got = subprocess.run(["git", "config", "--file", str(tree / "etc/gitconfig"), "--get",
                              "http.sslCAInfo"], capture_output=True, text=True).stdout
        assert got.strip() == BUNDLE
        assert _npm(tree, home, "config", "get", "cafile").stdout.strip() == BUNDLE
        assert _npm(tree, home, "config", "get", "registry").stdout.strip() == \
            "https://registry.example/"
        stderr = _git(tree, home, port)
        assert "not valid: is this a git repository" in stderr and "certificate" not in stderr
        pong = _npm(tree, home, *ping)
        assert pong.returncode == 0 and "PONG" in pong.stderr, pong.stderr

        added = list_certs(tree, ["debian", "git", "npm"], added=True)
        assert fp_of(cert) in {row.sha256 for row in added}
        assert {row.kind for row in added} == {"debian"}  # the pointers add nothing of their own
        again = install([cert], root=tree, kinds=["debian", "git", "npm"],
                        state_dir=tmp_path / "state")
        assert again.txn is None
        user = tree / "home/u"
        user.mkdir(parents=True)
        (user / ".gitconfig").write_text("[http]\n\tsslcainfo = /home/u/ca.pem\n")
        (user / ".npmrc").write_text("cafile=/home/u/ca.pem\n")
        notes = [n for s in detect_stores(tree, ["git", "npm"]) for n in s.notes()]
        assert len(notes) == 2 and all("/home/u/ca.pem: that user's" in n for n in notes)
        (user / ".gitconfig").unlink()
        (user / ".npmrc").unlink()
        user.rmdir()
        (tree / "home").rmdir()
        gone = remove([fp_of(cert)], root=tree, kinds=["git", "npm"],
                      state_dir=tmp_path / "state")
        assert gone.txn is None  # pointing at the system bundle stays right

        undo(result.txn, root=tree, state_dir=tmp_path / "state")
        assert diff(before, snapshot(tree)) == []
        assert "certificate" in _git(tree, home, port)
        assert _npm(tree, home, *ping).returncode != 0


def test_pointing_at_a_bundle_without_the_ca_is_refused(tree: Path, tmp_path: Path) -> None:
    (cert,) = load_certs(write_pem(tmp_path / "ca.pem", issue("Not Yet CA", ca=True)))
    (tree / "etc/gitconfig").write_text("[http]\n\tsslCAInfo = /etc/corp.pem\n")
    before = snapshot(tree)
    with pytest.raises(StoreError, match="does not trust"):
        install([cert], root=tree, kinds=["git"], state_dir=tmp_path / "state")
    assert diff(before, snapshot(tree)) == []


def test_git_unset_follows_the_system_bundle_so_nothing_is_written(
        tree: Path, tmp_path: Path) -> None:
    """Unset sslCAInfo = libcurl's default = the system bundle: the dry run and the install
    both leave the gitconfig alone, and git still contains the CA through the bundle."""
    (cert,) = load_certs(write_pem(tmp_path / "ca.pem", issue("Plain CA", ca=True)))
    gitconfig = tree / "etc/gitconfig"
    gitconfig.write_text("[user]\n\tname = ops\n")
    plan = install([cert], root=tree, kinds=["debian", "git"], dry_run=True)
    assert [(s.kind, bool(s.added), bool(s.already)) for s in plan.stores] == \
        [("debian", True, False), ("git", False, True)]
    done = install([cert], root=tree, kinds=["debian", "git"], state_dir=tmp_path / "state")
    assert [(s.kind, bool(s.added)) for s in done.stores] == [("debian", True), ("git", False)]
    assert gitconfig.read_text() == "[user]\n\tname = ops\n"
    assert detect_stores(tree, ["git"])[0].contains(cert)


def test_npm_global_config_is_found_where_npm_reads_it(tmp_path: Path) -> None:
    env = {"PATH": PATH, "HOME": str(tmp_path)}
    npm = subprocess.run(["npm", "config", "get", "globalconfig"], capture_output=True,
                         text=True, env=env, check=True).stdout.strip()
    assert str(global_npmrc(Path("/"))) == npm


def test_conda_and_docker(tree: Path, tmp_path: Path) -> None:
    """conda: ``ssl_verify: false`` becomes the bundle path, the rest of the file kept.
    Docker: the registry named gets ca.crt holding exactly the CA; ``openssl verify`` with it
    accepts a leaf it issued; remove leaves no empty ca.crt; undo is byte-identical."""
    ca = issue("Registry CA", ca=True)
    pem = write_pem(tmp_path / "ca.pem", ca)
    leaf = write_pem(tmp_path / "leaf.pem", issue("reg.lab", issuer=ca, names=("reg.lab",)))
    (cert,) = load_certs(pem)
    condarc = tree / "etc/conda/.condarc"
    condarc.parent.mkdir(parents=True)
    condarc.write_text("# site settings\nchannels:\n  - defaults\nssl_verify: false\n")
    before = snapshot(tree)
    scope = Scope(registries=("reg.lab:5000",))
    state = tmp_path / "state"
    result = install([cert], root=tree, kinds=["debian", "conda", "docker"], scope=scope,
                     state_dir=state)
    assert {s.kind for s in result.stores if s.added} == {"debian", "conda", "docker"}
    text = condarc.read_text()
    assert text.startswith("# site settings\n")
    assert yaml.safe_load(text) == {"channels": ["defaults"], "ssl_verify": BUNDLE}
    crt = tree / "etc/docker/certs.d/reg.lab:5000/ca.crt"
    assert load_certs(crt)[0].der == cert.der and crt.read_bytes().endswith(ca.pem)
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(crt), str(leaf)],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    gone = remove([fp_of(cert)], root=tree, kinds=["docker"], scope=scope, state_dir=state)
    assert gone.stores[0].removed and not crt.exists()
    undo(gone.txn, root=tree, state_dir=state)
    assert crt.exists()
    undo(result.txn, root=tree, state_dir=state)
    assert diff(before, snapshot(tree)) == []


def _certutil(db: Path) -> str:
    return subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True,
                          text=True, check=True).stdout


def test_firefox_profiles_from_profiles_ini(tree: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative profile and one elsewhere (IsRelative=0) get the CA ("C,,"); undo restores
    both databases byte for byte. The invoking user's XDG profiles.ini is read too."""
    firefox = tree / "home/u/.mozilla/firefox"
    profiles = [firefox / "abcd.default-release", tree / "data/ff/work"]
    for db in profiles:
        db.mkdir(parents=True)
        subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    (firefox / "profiles.ini").write_text(
        "[General]\nStartWithLastProfile=1\n\n[Profile0]\nName=default\nIsRelative=1\n"
        "Path=abcd.default-release\n\n[Profile1]\nName=work\nIsRelative=0\nPath=/data/ff/work\n"
        "\n[Install4F96D1932A9F858E]\nDefault=abcd.default-release\n")
    (cert,) = load_certs(write_pem(tmp_path / "ca.pem", issue("Browser CA", ca=True)))
    found = {s.path for s in detect_stores(tree, ["nss"])}
    assert set(profiles) <= found
    before = snapshot(tree)
    result = install([cert], root=tree, kinds=["nss"], state_dir=tmp_path / "state")
    for db in profiles:
        line = next(x for x in _certutil(db).splitlines() if x.startswith("trustwall-"))
        assert line.split()[-1] == "C,,"
    undo(result.txn, root=tree, state_dir=tmp_path / "state")
    assert diff(before, snapshot(tree)) == []

    xdg = tmp_path / "xdg"
    (xdg / "mozilla/firefox/p1").mkdir(parents=True)
    (xdg / "mozilla/firefox/p1/cert9.db").write_bytes(b"")
    (xdg / "mozilla/firefox/profiles.ini").write_text("[Profile0]\nPath=p1\nIsRelative=1\n")
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert xdg / "mozilla/firefox/p1" in {s.path for s in NssStore.detect(Path("/"))}
