"""``trustwall fix URL`` with the CA the user brings (``--ca FILE``), as a plan (``--dry-run``)
and on an image tree (``--root DIR``): the tree's stores change, openssl trusts the site with
them, ``undo --root`` gives the tree back byte for byte; a leaf is refused as ``--ca``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from stores_tree import copy_tree, diff, snapshot, template
from tls_pki import issue, write_pem

pytestmark = pytest.mark.lab  # the tree's update runs in a private mount namespace

TRUSTWALL = [sys.executable, "-m", "trustwall"]
URL = "https://site.test/"  # never contacted: --root skips the clients, --ca the fetch


def _fix(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TRUSTWALL, "fix", URL, *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_fix_with_ca_file_on_a_root_tree_dry_run_then_real_then_undo(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    corp = issue("Corp Inspect Root", ca=True)
    ca = write_pem(tmp_path / "enterprise-ca.pem", corp)
    leaf = write_pem(tmp_path / "leaf.pem", issue("site.test", issuer=corp, names=("site.test",)))
    tree = copy_tree(template(tmp_path_factory), tmp_path / "root")
    state = tmp_path / "state"
    before = snapshot(tree)
    bundle = ["openssl", "verify", "-no-CApath", "-CAfile",
              str(tree / "etc/ssl/certs/ca-certificates.crt"), str(leaf)]
    common = ("--ca", str(ca), "--root", str(tree), "--store", "debian", "--state-dir",
              str(state))

    plan = _fix(*common, "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    result = json.loads(plan.stdout)
    assert result["install"]["dry_run"] is True and result["after"] is None
    assert [s["kind"] for s in result["install"]["stores"] if s["added"]] == ["debian"]
    assert diff(snapshot(tree), before) == []  # a plan changes nothing

    refused = _fix(*common)  # no terminal and no --yes: a one-line refusal
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert diff(snapshot(tree), before) == []

    done = _fix(*common, "--yes")
    assert done.returncode == 0, done.stderr
    assert "not verified" in done.stdout and "undo with:\ntrustwall undo" in done.stdout
    assert subprocess.run(bundle, capture_output=True).returncode == 0

    undone = subprocess.run([*TRUSTWALL, "undo", "--root", str(tree), "--state-dir",
                             str(state)], capture_output=True, text=True, timeout=120)
    assert undone.returncode == 0, undone.stderr
    assert diff(snapshot(tree), before) == []
    assert subprocess.run(bundle, capture_output=True).returncode != 0


def test_fix_refuses_a_leaf_given_as_the_ca(tmp_path: Path) -> None:
    leaf = write_pem(tmp_path / "leaf.pem", issue("site.test", names=("site.test",)))
    out = _fix("--ca", str(leaf), "--root", str(tmp_path), "--dry-run")
    assert out.returncode == 2
    assert "is not a CA certificate" in out.stderr.splitlines()[0]
