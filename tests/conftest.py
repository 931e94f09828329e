"""Shared fixtures for every test, and the promise that the suite leaves the host untouched.

* ``lab``: one :class:`trustwall.lab.topology.Lab` for the whole session, built the first time
  a test asks for it (about 2 s) and torn down at the end. Tests that need the origin's own
  chains use ``lab_direct`` (interception off for that test only).
* Host fingerprint: taken when the session starts and again when it ends: trust stores
  (/etc/ssl/certs incl. java/cacerts, /usr/local/share/ca-certificates,
  /etc/ca-certificates.conf, certifi bundles), /etc/hosts, the host firewall (iptables-save,
  ip6tables-save, nft), trustwall's own state dir and the firewall managers' config and boot
  files (/var/lib/trustwall, /etc/iptables, /etc/sysconfig, /etc/nftables.conf, /etc/firewalld,
  /etc/ufw) and the network namespaces. Any difference fails the session, and so
  does a namespace, process or record this session's labs left behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustwall.clients.login import SYSTEM_PATH, base_environment
from trustwall.proc import pid_alive

IS_ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parents[1]

TRUST_TREES = ("/etc/ssl/certs", "/usr/local/share/ca-certificates")
# A test that journals into the host's state dir or rewrites a boot file (rules.v4, a zone)
# changes what the next `trustwall undo` or reboot does to the host, even if the kernel's
# ruleset is untouched.
STATE_TREES = ("/var/lib/trustwall", "/etc/iptables", "/etc/sysconfig", "/etc/firewalld",
               "/etc/ufw")
# certifi bundles are only read here: running the system python would run its start-up hooks.
CERTIFI_GLOBS = (
    str(REPO / ".venv/lib/python3*/site-packages/certifi/cacert.pem"),
    "/root/.pyenv/versions/*/lib/python3*/site-packages/certifi/cacert.pem",
    "/usr/lib/python3/dist-packages/certifi/cacert.pem",
    "/usr/local/lib/python3*/dist-packages/certifi/cacert.pem",
)
FILES = ("/etc/ca-certificates.conf", "/etc/hosts", "/etc/nftables.conf")
_NETNS_NAME = re.compile(r"^tw-[a-z0-9]+-(?P<pid>\d+)-\d+$")


# -- host fingerprint ------------------------------------------------------------------------------
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _file(path: Path) -> str:
    try:
        if path.is_symlink():
            return "link:" + os.readlink(path)
        return _sha(path.read_bytes())
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        return f"error:{exc.errno}"


def _tree(root: str) -> dict[str, str]:
    out: dict[str, str] = {}
    base = Path(root)
    if not base.exists():
        return {root: "absent"}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            path = Path(dirpath, name)
            out[str(path)] = _file(path)
    return out


def _command(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False,
                              env={"PATH": SYSTEM_PATH, "LANG": "C"})
    except FileNotFoundError:
        return "absent"
    text = proc.stdout
    # Drop what changes with time or traffic: comments with dates, chain counters.
    text = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return re.sub(r"\[\d+:\d+\]", "[]", text) + f"\nexit {proc.returncode}"


def host_fingerprint() -> dict[str, str]:
    """Everything the suite must not change on the host, as name -> digest."""
    import glob

    print_: dict[str, str] = {}
    for tree in (*TRUST_TREES, *STATE_TREES):
        print_.update(_tree(tree))
    for pattern in CERTIFI_GLOBS:
        for path in sorted(glob.glob(pattern)):
            print_[path] = _file(Path(path))
    for path in FILES:
        print_[path] = _file(Path(path))
    if IS_ROOT:
        for argv in (["iptables-save"], ["ip6tables-save"], ["nft", "-s", "list", "ruleset"]):
            print_[" ".join(argv)] = _sha(_command(argv).encode())
    return print_


def _namespaces() -> set[str]:
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}


def leaked_namespaces(before: set[str]) -> list[str]:
    """Namespaces this session leaves behind: ours, or new ones whose creator is gone.

    Namespaces of other live processes are someone else's (parallel runs share the host).
    """
    leaked = []
    for name in sorted(_namespaces() - before):
        match = _NETNS_NAME.match(name)
        if match is None or int(match["pid"]) == os.getpid() or not pid_alive(int(match["pid"])):
            leaked.append(name)
    return leaked


def leaked_lab_processes() -> list[str]:
    """Processes still running for a lab this session built (their argv names the lab)."""
    marker = f"/run/trustwall-lab/lab-{os.getpid()}-"
    found = []
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in argv:
            found.append(f"{proc_dir.name}: {argv[:120]}")
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    if IS_ROOT:
        from trustwall.lab.sandbox import cleanup_stale as cleanup_sandboxes
        from trustwall.lab.topology import cleanup_labs

        cleanup_labs()  # labs of runs that were killed; never a live owner's
        cleanup_sandboxes()  # sandboxes whose creator died (kill -9 of an earlier run)
    session.config.stash[_BEFORE] = (host_fingerprint(), _namespaces() if IS_ROOT else set())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before, namespaces_before = session.config.stash.get(_BEFORE, ({}, set()))
    if not before:
        return
    after = host_fingerprint()
    problems = [f"host changed: {key}: {before.get(key, 'absent')} -> {after.get(key, 'absent')}"
                for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
    if IS_ROOT:
        problems += [f"namespace left behind: {name}"
                     for name in leaked_namespaces(namespaces_before)]
        problems += [f"lab process left behind: {p}" for p in leaked_lab_processes()]
        problems += [f"lab record left behind: {p}"
                     for p in Path("/run/trustwall-lab").glob(f"lab-{os.getpid()}-*")]
        problems += [f"sandbox left behind: {p}"
                     for p in Path("/dev/shm").glob(f"tw-sandbox-{os.getpid()}-*")]
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["HOST NOT LEFT AS FOUND (the suite fails):", *problems[:50]]
        if reporter is not None:
            reporter.write_sep("=", "host fingerprint", red=True)
            for line in lines:
                reporter.write_line(line, red=True)
        else:
            print("\n".join(lines))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BEFORE = pytest.StashKey[tuple[dict[str, str], set[str]]]()


# -- lab fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def lab() -> Iterator[object]:
    """The session's lab (client, edge with mitmproxy, origin sites, firewalled server)."""
    if not IS_ROOT:
        pytest.skip("the lab needs root (network namespaces)")
    from trustwall.errors import EnvironmentMissing
    from trustwall.lab.topology import Lab

    try:
        built = Lab().start()
    except EnvironmentMissing as exc:
        pytest.skip(f"lab unavailable: {exc}")
    try:
        yield built
    finally:
        built.stop()


@pytest.fixture
def lab_direct(lab: object) -> Iterator[object]:
    """The lab with interception off for one test: the client reaches the origin itself."""
    with lab.intercepting(None):  # type: ignore[attr-defined]
        yield lab


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """An environment with none of the host's CA variables (SSL_CERT_FILE, *_CA_BUNDLE…)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return base_environment(str(home))
