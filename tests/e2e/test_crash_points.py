"""Issue 19's deterministic crash test: `ca install`, its `undo`, `fw apply` and `fw allow
--apply` are each killed at every one of their crash points in turn (crash_points.py); after
`trustwall recover` the stores / rulesets are wholly old or wholly new, no transaction is open
and `log --verify` passes. The kill-point counts are printed (-s shows them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from stores_tree import copy_tree, native_update
from test_fw_apply import big_ruleset  # a two-table change, like the soak's
from tls_pki import issue, write_pem

from trustwall.certs import load_certs
from trustwall.lab.netns import Netns
from trustwall.lab.topology import SEED_RULESET
from trustwall.stores.registry import install

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
DRIVER = Path(__file__).with_name("crash_points.py")


def _drive(spec: dict[str, Any], tmp_path: Path, ns: Netns | None = None) -> dict[str, Any]:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    argv = [sys.executable, str(DRIVER), str(path)]
    proc = subprocess.run(ns.argv(argv) if ns else argv, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    print(f"\n{spec['argv'][:2]}: {result['points']} kill points {result['kinds']}, "
          f"outcomes {result['outcomes']}")
    assert result["failures"] == [], result["failures"][:5]
    assert set(result["outcomes"]) == {"old", "new"}  # both sides of the commit point hit
    return result


def _small_root(top: Path) -> Path:
    """A Debian trust store with two CAs, compiled by the real update-ca-certificates: every
    file a bigger one has, at a fraction of the copying and parsing per kill point."""
    shared = top / "usr/share/ca-certificates/test"
    shared.mkdir(parents=True)
    for rel in ("etc/ssl/certs", "usr/local/share/ca-certificates"):
        (top / rel).mkdir(parents=True)
    names = []
    for n in range(2):
        write_pem(shared / f"ca{n}.crt", issue(f"Existing Root {n}", ca=True))
        names.append(f"test/ca{n}.crt")
    (top / "etc/ca-certificates.conf").write_text("\n".join(names) + "\n")
    native_update(top)
    return top


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store tree before trusting one CA (debian store), and the CA file."""
    top = tmp_path_factory.mktemp("crash")
    return _small_root(top / "before"), write_pem(top / "corp.pem",
                                                  issue("Crash Test Root", ca=True))


def test_ca_install_killed_at_every_point(trees: tuple[Path, Path], tmp_path: Path) -> None:
    before, ca = trees
    img = tmp_path / "img"
    _drive({"argv": ["ca", "install", "--root", str(img), "--store", "debian", "--yes",
                     str(ca)],
            "template": str(before), "root": str(img),
            "state_dir": str(img / "var/lib/trustwall")}, tmp_path)


def test_undo_killed_at_every_point(trees: tuple[Path, Path], tmp_path: Path) -> None:
    before, ca = trees
    img = copy_tree(before, tmp_path / "img")  # the journal names paths under img
    install(load_certs(ca), root=img, kinds=["debian"])
    after = copy_tree(img, tmp_path / "after")
    _drive({"argv": ["undo", "--root", str(img)], "template": str(after), "root": str(img),
            "state_dir": str(img / "var/lib/trustwall")}, tmp_path)


@pytest.mark.lab
def test_fw_apply_killed_at_every_point(tmp_path: Path) -> None:
    with Netns.create("crashapply") as ns:
        (tmp_path / "new.v4").write_text(big_ruleset(20, "new"))
        policy = tmp_path / "policy.yaml"
        policy.write_text(ns.run([sys.executable, "-m", "trustwall", "fw", "import", "--file",
                                  str(tmp_path / "new.v4")]).stdout)
        state = tmp_path / "state"
        _drive({"argv": ["fw", "apply", str(policy), "--yes", "--confirm-within", "0",
                         "--no-persist", "--state-dir", str(state)],
                "ruleset": big_ruleset(20, "old"), "fresh_state": True,
                "state_dir": str(state)}, tmp_path, ns)


@pytest.mark.lab
def test_fw_allow_apply_killed_at_every_point(tmp_path: Path) -> None:
    with Netns.create("crashallow") as ns:
        state = tmp_path / "state"
        _drive({"argv": ["fw", "allow", "--proto", "tcp", "--dport", "18745", "--name", "jmx",
                         "--apply", "--yes", "--confirm-within", "0", "--no-persist",
                         "--state-dir", str(state)],
                "ruleset": SEED_RULESET, "fresh_state": True, "state_dir": str(state)},
               tmp_path, ns)
