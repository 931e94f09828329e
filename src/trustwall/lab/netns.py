"""Network namespaces for the lab: create, run inside, link with veth pairs, clean up by name.

Every namespace trustwall makes is named ``tw-<purpose>-<pid>-<n>`` where ``pid`` is the
process that created it. That name is the whole bookkeeping: :func:`cleanup_stale` deletes the
namespaces whose creator is dead (a test run killed with -9), and :meth:`Netns.delete` first
kills every process still inside (``ip netns pids``), because a daemon that detached itself
with setsid outlives the test that started it (docs/quirks-found.md).

veth pairs are created with both ends placed directly in their namespaces, so no interface
ever appears on the host side.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from trustwall.errors import EnvironmentMissing
from trustwall.proc import CommandFailed, pid_alive

PREFIX = "tw-"
_NAME_RE = re.compile(r"^tw-(?P<purpose>[a-z0-9]+)-(?P<pid>\d+)-(?P<n>\d+)$")
_counter = itertools.count(1)
NETNS_DIR = Path("/run/netns")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise CommandFailed(["ip", *args], proc.returncode, proc.stdout, proc.stderr)
    return proc


def require_root() -> None:
    if os.geteuid() != 0:
        raise EnvironmentMissing("the lab needs root (network and mount namespaces)",
                                 hint="run as root, e.g. sudo trustwall lab ...")


class Netns:
    """One network namespace. Use :meth:`create`; delete with :meth:`delete` or ``with``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._procs: list[subprocess.Popen] = []

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    @classmethod
    def create(cls, purpose: str) -> Netns:
        require_root()
        purpose = re.sub(r"[^a-z0-9]", "", purpose.lower()) or "ns"
        name = f"{PREFIX}{purpose}-{os.getpid()}-{next(_counter)}"
        _ip("netns", "add", name)
        ns = cls(name)
        try:
            ns.run(["ip", "link", "set", "lo", "up"])
        except BaseException:
            ns.delete()
            raise
        return ns

    def __enter__(self) -> Netns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()

    @property
    def exists(self) -> bool:
        return (NETNS_DIR / self.name).exists()

    def argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | bytes | None = None,
        check: bool = True,
        timeout: float = 60,
        env: Mapping[str, str] | None = None,
        text: bool = True,
    ) -> subprocess.CompletedProcess:
        return run_entered(self.argv(argv), argv, input=input, check=check, timeout=timeout,
                           env=env, text=text)

    def popen(self, argv: Sequence[str], **popen_kw: object) -> subprocess.Popen:
        """Start a background process inside; it is killed by :meth:`delete`."""
        popen_kw.setdefault("start_new_session", True)
        proc = subprocess.Popen(self.argv(argv), **popen_kw)  # type: ignore[call-overload]
        self._procs.append(proc)
        return proc

    def pids(self) -> list[int]:
        out = _ip("netns", "pids", self.name, check=False).stdout
        return [int(p) for p in out.split()]

    def delete(self) -> None:
        """Kill everything inside (our Popens first, then whatever ``ip netns pids`` shows)."""
        kill_started(self._procs)
        if not self.exists:
            return
        kill_inside(self.name)
        _ip("netns", "del", self.name, check=False)


def run_entered(full: Sequence[str], argv: Sequence[str], *,
                input: str | bytes | None = None, check: bool = True, timeout: float = 60,
                env: Mapping[str, str] | None = None, text: bool = True
                ) -> subprocess.CompletedProcess:
    """Run ``full`` (``argv`` wrapped to run inside a lab namespace); a failure names ``argv``,
    the command the caller asked for, not the wrapper."""
    proc = subprocess.run(list(full), input=input, capture_output=True, text=text,
                          timeout=timeout, env=dict(env) if env is not None else None,
                          check=False)
    if check and proc.returncode != 0:
        out = proc.stdout if text else proc.stdout.decode(errors="replace")
        err = proc.stderr if text else proc.stderr.decode(errors="replace")
        raise CommandFailed(list(argv), proc.returncode, out, err)
    return proc


def kill_started(procs: list[subprocess.Popen]) -> None:
    """SIGKILL each background process (its whole process group) by PID, wait, forget them."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    procs.clear()


def kill_inside(name: str) -> None:
    """SIGKILL every process in namespace ``name`` and wait (briefly) until none is left."""
    for _ in range(50):
        pids = [int(p) for p in _ip("netns", "pids", name, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def veth(a: Netns, a_if: str, a_cidr: str | None, b: Netns, b_if: str,
         b_cidr: str | None) -> None:
    """Link two namespaces with a veth pair, addresses given as CIDR (e.g. 198.18.0.1/24)."""
    _ip("link", "add", a_if, "netns", a.name, "type", "veth", "peer", "name", b_if,
        "netns", b.name)
    for ns, ifname, cidr in ((a, a_if, a_cidr), (b, b_if, b_cidr)):
        if cidr:
            family = "-6" if ":" in cidr else "-4"
            extra = ["nodad"] if family == "-6" else []
            ns.run(["ip", family, "addr", "add", cidr, "dev", ifname, *extra])
        ns.run(["ip", "link", "set", ifname, "up"])


def list_lab_namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(PREFIX)]


def cleanup_stale(*, all_of_them: bool = False) -> list[str]:
    """Delete lab namespaces whose creating process is dead (or every one, if asked)."""
    removed = []
    for name in list_lab_namespaces():
        match = _NAME_RE.match(name)
        if match is None:
            continue
        if all_of_them or not pid_alive(int(match["pid"])):
            kill_inside(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


_CONNECT = ("import socket,sys\n"
            "try:\n"
            "    s=socket.create_connection((sys.argv[1],int(sys.argv[2])),"
            "timeout=float(sys.argv[3]),"
            "source_address=(sys.argv[4],0) if sys.argv[4] else None)\n"
            "    print('OK', s.recv(100).decode(errors='replace').strip())\n"
            "except OSError as e:\n"
            "    print('FAIL', e.strerror or e)\n")


def connect_tcp(ns: Netns, host: str, port: int, timeout: float = 3,
                source: str | None = None) -> str:
    """A real TCP connect from inside ``ns`` (from its address ``source`` if given): ``OK
    <first line received>`` or ``FAIL <reason>`` as the client sees it (``No route to host``
    for firewalld's reject)."""
    import sys

    return ns.run([sys.executable, "-I", "-c", _CONNECT, host, str(port), str(timeout),
                   source or ""], timeout=timeout + 30).stdout.strip()
