"""Java (keytool) and NSS (certutil) stores, all stores together, the CLI, concurrency and
kill -9: on sandbox copies only, checked with keytool -list, certutil -L and byte-identical
undo."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stores_tree import copy_tree, diff, snapshot, template
from tls_pki import issue, write_pem

from trustwall.certs import load_certs
from trustwall.errors import BadInput
from trustwall.journal.audit import AuditLog
from trustwall.journal.transaction import recover, state_dir_for, transactions, undo
from trustwall.stores.base import fp_of
from trustwall.stores.registry import detect_stores, install

pytestmark = pytest.mark.lab

TW = [sys.executable, "-m", "trustwall"]
CACERTS = "etc/ssl/certs/java/cacerts"
NSSDB = "root/.pki/nssdb"


def _keytool_list(keystore: Path, *extra: str) -> str:
    return subprocess.run(["keytool", "-list", "-v", "-keystore", str(keystore), "-storepass",
                           "changeit", *extra], capture_output=True, text=True).stdout


def _certutil_list(db: Path) -> str:
    return subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True,
                          text=True, check=True).stdout


def _colon(fp: str) -> str:
    return ":".join(fp[i:i + 2] for i in range(0, 64, 2)).upper()


@pytest.fixture
def tree(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return copy_tree(template(tmp_path_factory), tmp_path / "root")


def test_every_store_gets_the_ca_and_undo_restores_them_byte_identical(
        tree: Path, tmp_path: Path) -> None:
    pem = write_pem(tmp_path / "corp.pem", issue("Corp Proxy CA", org="Example", ca=True))
    (cert,) = load_certs(pem)
    before = snapshot(tree)
    kinds = sorted(s.kind for s in detect_stores(tree))
    assert kinds == ["debian", "env", "java", "nss"]
    result = install([cert], root=tree)
    assert all(s.added == (fp_of(cert),) for s in result.stores)
    environment = (tree / "etc/environment").read_text()
    assert 'REQUESTS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt"' in environment
    assert 'NODE_EXTRA_CA_CERTS="/etc/ssl/certs/ca-certificates.crt"' in environment
    assert "export NODE_EXTRA_CA_CERTS=" in (tree / "etc/profile.d/trustwall-ca.sh").read_text()
    listing = _keytool_list(tree / CACERTS)
    assert "trustwall-corp-proxy-ca-" in listing and _colon(fp_of(cert)) in listing
    assert "trustedCertEntry" in listing
    nss = _certutil_list(tree / NSSDB)
    assert any(line.startswith("trustwall-corp-proxy-ca-") and line.split()[-1] == "C,,"
               for line in nss.splitlines())
    again = install([cert], root=tree)  # idempotent by fingerprint: nothing to do
    assert again.txn is None and not again.changed
    undo(root=tree)
    assert diff(snapshot(tree), before) == []
    assert "trustwall-" not in _keytool_list(tree / CACERTS)
    assert "trustwall-" not in _certutil_list(tree / NSSDB)


def test_pkcs12_keystore_named_explicitly(tree: Path, tmp_path: Path) -> None:
    store = tmp_path / "app.p12"
    other = write_pem(tmp_path / "other.pem", issue("Other Root", ca=True))
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "other", "-file", str(other),
                    "-keystore", str(store), "-storepass", "changeit", "-storetype", "PKCS12"],
                   check=True, capture_output=True)
    (cert,) = load_certs(write_pem(tmp_path / "corp.pem", issue("Corp P12 CA", ca=True)))
    original = store.read_bytes()
    # A store outside the root: its journal must live outside the root too (issue 18).
    with pytest.raises(BadInput, match="outside the root"):
        install([cert], root=tree, kinds=[f"java:{store}"])
    assert store.read_bytes() == original
    state = tmp_path / "state"
    result = install([cert], root=tree, kinds=[f"java:{store}"], state_dir=state)
    assert result.stores[0].added == (fp_of(cert),)
    listing = _keytool_list(store, "-storetype", "PKCS12")
    assert "Your keystore contains 2 entries" in listing and _colon(fp_of(cert)) in listing
    (java,) = detect_stores(tree, [f"java:{store}"])
    assert java.contains(cert)  # read back without keytool
    undo(root=tree, state_dir=state)
    assert store.read_bytes() == original


def test_refuses_non_ca_and_expired_unless_forced(tree: Path, tmp_path: Path) -> None:
    root_ca = issue("Issuing Root", ca=True)
    leaf = load_certs(write_pem(tmp_path / "leaf.pem", issue("www.test", issuer=root_ca,
                                                             names=("www.test",))))
    expired = load_certs(write_pem(tmp_path / "old.pem", issue("Old CA", ca=True,
                                                               expired=True)))
    with pytest.raises(BadInput, match="not a CA"):
        install(leaf, root=tree, kinds=["nss"])
    with pytest.raises(BadInput, match="expired"):
        install(expired, root=tree, kinds=["nss"])
    assert install(expired, root=tree, kinds=["nss"], force=True).changed


def test_cli_install_log_verify_undo(tree: Path, tmp_path: Path) -> None:
    pem = write_pem(tmp_path / "corp.pem", issue("Corp CLI CA", ca=True))
    env = {**os.environ, "TRUSTWALL_STATE_DIR": ""}
    refused = subprocess.run([*TW, "ca", "install", str(pem), "--root", str(tree),
                              "--store", "nss"], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, env=env)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert "SHA-256" in refused.stderr  # the fingerprint is shown before anything is asked
    done = subprocess.run([*TW, "ca", "install", str(pem), "--root", str(tree), "--store",
                           "nss", "--yes", "--json"], capture_output=True, text=True,
                          check=True, env=env)
    result = json.loads(done.stdout)
    assert result["txn"] and result["stores"][0]["added"]
    log = json.loads(subprocess.run([*TW, "log", "--root", str(tree), "--verify", "--json"],
                                    capture_output=True, text=True, check=True,
                                    env=env).stdout)
    assert log["verified"] is True and log["records"][-1]["kind"] == "ca-install"
    listed = subprocess.run([*TW, "ca", "list", "--root", str(tree), "--store", "nss",
                             "--json"], capture_output=True, text=True, check=True, env=env)
    assert [r["subject"] for r in json.loads(listed.stdout)] == ["CN=Corp CLI CA"]
    undone = subprocess.run([*TW, "undo", "--root", str(tree), "--json"], capture_output=True,
                            text=True, check=True, env=env)
    assert json.loads(undone.stdout)["undone"] == result["txn"]
    assert "Corp CLI" not in _certutil_list(tree / NSSDB)


def test_two_installs_at_once_are_serialized(tree: Path, tmp_path: Path) -> None:
    pems = [write_pem(tmp_path / f"ca{n}.pem", issue(f"Parallel CA {n}", ca=True))
            for n in range(2)]
    procs = [subprocess.Popen([*TW, "ca", "install", str(p), "--root", str(tree), "--store",
                               "debian", "--store", "nss", "--yes"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for p in pems]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read() if p.stderr else ""
    stores = detect_stores(tree, ["debian", "nss"])
    for pem in pems:
        (cert,) = load_certs(pem)
        assert all(s.contains(cert) for s in stores)
    assert AuditLog(state_dir_for(tree)).verify().ok
    assert [t.status for t in transactions(root=tree)] == ["committed", "committed"]


def test_kill_9_during_install_never_leaves_a_store_half_written(tree: Path,
                                                                 tmp_path: Path) -> None:
    pem = write_pem(tmp_path / "corp.pem", issue("Corp Kill CA", ca=True))
    before = snapshot(tree)
    rng = random.Random(3)
    txns = state_dir_for(tree) / "txns"
    # debian + nss: the JVM start would make each round seconds long; the Java store goes
    # through the same copy-then-atomic-write path as NSS.
    argv = [*TW, "ca", "install", str(pem), "--root", str(tree), "--store", "debian",
            "--store", "nss", "--yes"]

    def start_and_wait_for_first_change() -> tuple[subprocess.Popen, float]:
        seen = set(txns.glob("*/journal.jsonl"))
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while set(txns.glob("*/journal.jsonl")) == seen and time.monotonic() < deadline:
            time.sleep(0.002)  # the first change is under way
        return child, time.monotonic()

    # How long the changing part takes on this machine now: kill points are drawn inside it,
    # so the test exercises mid-transaction kills whether the box is idle or loaded.
    child, started = start_and_wait_for_first_change()
    child.wait()
    window = time.monotonic() - started
    undo(root=tree)
    assert diff(snapshot(tree), before) == []
    # Kill until two kills have landed mid-transaction (a fixed count of kills flaked: under
    # load a run can end before its drawn kill time). Every round, whatever the kill hit,
    # must leave the tree exactly as before.
    rolled_back = rounds = 0
    while rolled_back < 2:
        rounds += 1
        assert rounds <= 40, "no kill landed mid-transaction in 40 rounds"
        child, _started = start_and_wait_for_first_change()
        time.sleep(rng.uniform(0, 0.7 * window))
        child.send_signal(signal.SIGKILL)
        child.wait()
        recover(root=tree)
        last = transactions(root=tree)[-1]
        if last.status == "committed" and not last.undone_by:
            undo(root=tree)  # the kill came after the commit point
        elif last.status == "rolled-back":
            rolled_back += 1
        assert diff(snapshot(tree), before) == []
        if child.returncode == 0:  # it finished first: this machine is faster than drawn
            window *= 0.7


def test_nss_cert_present_but_untrusted_gets_trusted(tmp_path: Path) -> None:
    db = tmp_path / "nssdb"
    db.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    pem = write_pem(tmp_path / "corp.pem", issue("Corp NSS CA", ca=True))
    subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "corp", "-t", ",,", "-i",
                    str(pem)], check=True)
    (cert,) = load_certs(pem)
    (store,) = detect_stores(tmp_path, [f"nss:{db}"])
    assert not store.contains(cert)  # in the db, trusted for nothing
    result = install([cert], root=tmp_path, kinds=[f"nss:{db}"])
    assert result.stores[0].added == (fp_of(cert),)
    assert store.contains(cert)
    assert "C,," in _certutil_list(db)
