"""The trustwall.core collection as Ansible itself reads it: it builds with ansible-galaxy,
every module's DOCUMENTATION parses (ansible-doc) and matches its argument spec, and the
example playbooks in its docs pass ansible-playbook --syntax-check."""

from __future__ import annotations

import json
import os
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


# -- firewall_rule and trustwall_facts on firewalld and ufw hosts (issue 15) ------------------

PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: facts
      trustwall.core.trustwall_facts: {lint: false}
    - name: open jmx
      trustwall.core.firewall_rule: {action: allow, proto: tcp, dport: "18745"}
"""


def _owner_host(owner: str):  # type: ignore[no-untyped-def]
    from trustwall.lab.firewalld import FirewalldHost
    from trustwall.lab.ufw import UfwHost

    if owner == "firewalld":
        return FirewalldHost().start()
    host = UfwHost().start()
    try:
        host.enable()
        host.ufw("allow", "22/tcp")
        host.reload()
    except BaseException:
        host.close()
        raise
    return host


def _playbook(host, tmp_path: Path, *flags: str) -> dict:  # type: ignore[no-untyped-def]
    """ansible-playbook with a local connection INSIDE the lab host (its mount and network
    namespaces), the module run by this interpreter (trustwall importable), as on a server."""
    import sys

    book = tmp_path / "owner.yml"
    book.write_text(PLAYBOOK)
    env = {**_env(tmp_path), "ANSIBLE_STDOUT_CALLBACK": "trustwall.core.fleet_json",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "ANSIBLE_REMOTE_TEMP":
           str(tmp_path / "tmp"), "PATH": f"{BIN}:{Path(sys.executable).parent}:/usr/sbin:"
           "/usr/bin:/sbin:/bin"}
    done = host.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e",
                     f"ansible_python_interpreter={sys.executable}", *flags, str(book)],
                    env=env, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    tasks = json.loads(done.stdout[done.stdout.index("{"):])["plays"][0]["tasks"]
    return {t["task"]["name"]: t["hosts"]["localhost"] for t in tasks}


@pytest.mark.lab
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")
@pytest.mark.parametrize("owner", ["firewalld", "ufw"])
def test_firewall_rule_goes_through_the_owner(owner: str, tmp_path: Path) -> None:
    """Facts name the owner; check + diff mode plans the owner's commands and changes nothing;
    the real run opens the port through the owner (the client connects; the owner's own
    listing shows it); a second run is ok; ``trustwall undo`` restores the owner exactly."""
    host = _owner_host(owner)
    try:
        before = host.snapshot()
        assert host.connect(timeout=1).startswith("FAIL")
        checked = _playbook(host, tmp_path, "--check", "--diff")
        assert checked["facts"]["ansible_facts"]["trustwall"]["firewall"]["owner"] == owner
        planned = checked["open jmx"]
        assert planned["changed"] is True and planned["owner"] == owner, planned
        expected = {"firewalld": ["firewall-cmd --zone public --add-port 18745/tcp",
                                  "firewall-cmd --permanent --zone public --add-port 18745/tcp"],
                    "ufw": ["ufw allow from any to any port 18745 proto tcp"]}[owner]
        assert planned["commands"] == expected
        assert f"# through {owner}" in planned["diff"]["prepared"]
        assert all(c in planned["diff"]["after"] for c in expected)
        assert host.snapshot() == before and host.connect(timeout=1).startswith("FAIL")

        applied = _playbook(host, tmp_path, "--diff")["open jmx"]
        assert applied["changed"] is True and applied["txn_id"], applied
        assert host.connect(timeout=1) == "OK JMX lab listener"
        assert "18745" in " ".join(host.snapshot().values())
        again = _playbook(host, tmp_path)["open jmx"]
        assert again["changed"] is False and again["commands"] == [], again

        host.trustwall("undo")
        assert host.snapshot() == before
        assert host.connect(timeout=1).startswith("FAIL")
    finally:
        host.close()
