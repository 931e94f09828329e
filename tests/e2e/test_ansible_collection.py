"""The trustwall.core collection as Ansible itself reads it: it builds with ansible-galaxy,
every module's DOCUMENTATION parses (ansible-doc) and matches its argument spec, and the
example playbooks in its docs pass ansible-playbook --syntax-check."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv-ansible" / "bin"
COLLECTION = REPO / "ansible_collections" / "trustwall" / "core"
MODULES = ("trust_ca", "trust_fix", "firewall_policy", "firewall_rule", "trustwall_facts")

pytestmark = pytest.mark.skipif(
    not (BIN / "ansible-doc").exists(),
    reason="ansible-core not installed (.venv-ansible: scripts/setup.sh)")


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
            "ANSIBLE_COLLECTIONS_PATH": str(REPO), "ANSIBLE_NOCOLOR": "1"}


def test_collection_builds_and_installs(tmp_path: Path) -> None:
    env = _env(tmp_path)
    del env["ANSIBLE_COLLECTIONS_PATH"]  # else galaxy finds it installed (the repo) and skips
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION),
                    "--output-path", str(tmp_path)], check=True, env=env, capture_output=True)
    tarball = tmp_path / "trustwall-core-0.1.0.tar.gz"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "-p",
                    str(tmp_path / "installed"), str(tarball)], check=True, env=env,
                   capture_output=True)
    modules = tmp_path / "installed/ansible_collections/trustwall/core/plugins/modules"
    assert sorted(p.stem for p in modules.glob("*.py")) == sorted(MODULES)


def test_every_module_documents_its_arguments(tmp_path: Path) -> None:
    done = subprocess.run([str(BIN / "ansible-doc"), "--json",
                           *(f"trustwall.core.{m}" for m in MODULES)], check=True,
                          env=_env(tmp_path), capture_output=True, text=True)
    docs = json.loads(done.stdout)
    for module in MODULES:
        doc = docs[f"trustwall.core.{module}"]["doc"]
        source = (COLLECTION / "plugins/modules" / f"{module}.py").read_text()
        if "FIREWALL_ARGS" in source:
            source += (COLLECTION / "plugins/module_utils/trustwall_firewall.py").read_text()
        for option in doc["options"]:
            assert f"{option}=dict(" in source, (module, option)
    assert set(docs["trustwall.core.firewall_rule"]["doc"]["options"]) >= {
        "action", "state", "chain", "dport", "name", "expires", "confirm_within"}


@pytest.mark.parametrize("playbook", sorted((COLLECTION / "docs/playbooks").glob("*.yml")),
                         ids=lambda p: p.stem)
def test_example_playbook_syntax(playbook: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,",
                           str(playbook)], env=_env(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
