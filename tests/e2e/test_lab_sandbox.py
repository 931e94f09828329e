"""The trust-store sandbox: stores are writable copies, the host stays read-only and untouched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trustwall.lab.netns import Netns
from trustwall.lab.sandbox import Sandbox, cleanup_stale, default_certifi_dirs

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount namespaces)")]

WATCHED = ["/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/java/cacerts",
           "/etc/passwd", "/etc/environment", "/etc/hosts", "/etc/ca-certificates.conf",
           "/var/log/dpkg.log", "/var/lib/dpkg/status"]


def _digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return "absent"


def _host_state() -> dict[str, object]:
    state: dict[str, object] = {p: _digest(p) for p in WATCHED}
    for directory in ("/etc/ssl/certs", "/usr/local/share/ca-certificates",
                      "/etc/profile.d", "/etc"):
        # /etc/netns comes and goes with the labs of tests running in parallel.
        state[directory] = sorted(set(os.listdir(directory)) - {"netns"})
    return state


def test_store_write_lands_in_the_copy_and_host_files_are_read_only() -> None:
    before = _host_state()
    with Sandbox() as sandbox:
        sandbox.run(["sh", "-c", "echo sandboxed > /etc/ssl/certs/tw-probe.pem"])
        assert sandbox.path("/etc/ssl/certs/tw-probe.pem").read_text() == "sandboxed\n"
        assert not Path("/etc/ssl/certs/tw-probe.pem").exists()

        # The journal's default state directory is writable too, and also sandboxed.
        sandbox.run(["touch", "/var/lib/trustwall/tw-probe"])
        assert sandbox.path("/var/lib/trustwall/tw-probe").exists()
        assert not Path("/var/lib/trustwall/tw-probe").exists()

        passwd = sandbox.run(["sh", "-c", "echo x >> /etc/passwd"], check=False)
        assert passwd.returncode != 0
        assert "Read-only file system" in passwd.stderr
        for target in ("/usr/tw-probe", "/var/tw-probe", "/root/tw-probe", "/var/lib/apt/tw-probe"):
            touched = sandbox.run(["touch", target], check=False)
            assert "Read-only file system" in touched.stderr, target
        replaced = sandbox.run(["sh", "-c", "echo x > /etc/tw-new && mv /etc/tw-new /etc/passwd"],
                               check=False)
        assert "Device or resource busy" in replaced.stderr
        assert not Path("/etc/tw-new").exists()
        # A fresh, empty NSS db under the sandbox HOME.
        nss = sandbox.run(["certutil", "-L", "-d", "sql:" + str(sandbox.home / ".pki/nssdb")])
        assert "Certificate Nickname" in nss.stdout
    assert _host_state() == before


def test_etc_environment_can_be_replaced_atomically_inside() -> None:
    """Later issues write /etc/environment with atomic_write (temp file + rename in /etc)."""
    before = _host_state()
    script = ("from trustwall.journal.atomic import atomic_write;"
              "atomic_write('/etc/environment', b'REQUESTS_CA_BUNDLE=/x\\n')")
    with Sandbox() as sandbox:
        env = sandbox.base_env(PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
        sandbox.run([sys.executable, "-c", script], env=env)
        assert sandbox.path("/etc/environment").read_text() == "REQUESTS_CA_BUNDLE=/x\n"
        seen = sandbox.run(["cat", "/etc/environment"]).stdout
        assert seen == "REQUESTS_CA_BUNDLE=/x\n"
    assert _host_state() == before


def test_sandbox_in_a_netns_sees_the_netns_hosts_and_network(tmp_path: Path) -> None:
    with Netns.create("sbx") as ns:
        hosts_dir = Path("/etc/netns") / ns.name
        hosts_dir.mkdir(parents=True)
        try:
            (hosts_dir / "hosts").write_text("198.18.9.9 probe.lab.test\n")
            with Sandbox(ns) as sandbox:
                assert "probe.lab.test" in sandbox.path("/etc/hosts").read_text()
                links = sandbox.run(["ip", "-o", "link"]).stdout
                assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
                resolved = sandbox.run(["getent", "hosts", "probe.lab.test"]).stdout
                assert resolved.split()[0] == "198.18.9.9"
        finally:
            (hosts_dir / "hosts").unlink()
            hosts_dir.rmdir()


def test_close_kills_what_runs_inside_and_removes_the_directory() -> None:
    sandbox = Sandbox()
    sleeper = sandbox.popen(["sleep", "300"])
    holder, root = sandbox.pid, sandbox.root
    sandbox.close()
    assert sleeper.poll() is not None
    assert not root.exists()
    assert not Path(f"/proc/{holder}").exists()
    assert str(root) not in cleanup_stale()


def test_cleanup_stale_after_the_creator_was_killed() -> None:
    """kill -9 of the creating process: the holder leaves by itself (EOF on its stdin); a
    command still running inside is found by its mount table and killed, the directory goes."""
    script = ("import sys, time\n"
              "from trustwall.lab.sandbox import Sandbox\n"
              "sandbox = Sandbox()\n"
              "sandbox.popen(['sleep', '300'])\n"
              "print(sandbox.root, sandbox.pid, flush=True)\n"
              "time.sleep(300)\n")
    creator = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert creator.stdout is not None
    root, holder = creator.stdout.readline().split()
    creator.kill()
    creator.wait()
    inside = [pid for pid in os.listdir("/proc") if pid.isdigit()
              and _mentions(Path(f"/proc/{pid}/mountinfo"), f" {root}/")]
    assert inside, "the command started inside should have outlived its creator"
    assert root in cleanup_stale()
    assert not Path(root).exists()
    for pid in (*inside, holder):
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _mentions(path: Path, text: str) -> bool:
    try:
        return text in path.read_text()
    except OSError:
        return False


def _zombie(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def test_certifi_bundles_of_the_project_and_a_test_venv_are_writable_copies(
        tmp_path: Path) -> None:
    test_venv_certifi = tmp_path / "venv/lib/python3.11/site-packages/certifi"
    test_venv_certifi.mkdir(parents=True)
    (test_venv_certifi / "cacert.pem").write_text("# test venv bundle\n")
    project = default_certifi_dirs()[0]
    project_before = (project / "cacert.pem").read_bytes()
    with Sandbox(certifi_dirs=[project, test_venv_certifi]) as sandbox:
        for bundle in (project / "cacert.pem", test_venv_certifi / "cacert.pem"):
            sandbox.run(["sh", "-c", f"echo '# appended' >> {bundle}"])
            assert sandbox.path(str(bundle)).read_text().endswith("# appended\n")
    assert (project / "cacert.pem").read_bytes() == project_before
    assert (test_venv_certifi / "cacert.pem").read_text() == "# test venv bundle\n"
