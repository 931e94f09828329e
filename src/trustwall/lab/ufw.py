"""A real ufw host for the lab: ufw 0.36 in its own network and mount namespace.

Layout (docs/owner-ufw.md, "The lab's ufw host"):

- a network namespace ``tw-ufwhost-<pid>-<n>`` (:class:`~trustwall.lab.netns.Netns`) linked by
  a veth pair to a client namespace, so real connects cross ufw's INPUT chain;
- a long-lived *holder* process (``unshare --mount --propagation private``, inside the netns)
  whose mount namespace has scratch copies of /etc/ufw, /lib/ufw and /etc/default/ufw
  bind-mounted over the real paths, a tmpfs on /run (ufw's lock file, /run/ufw.lock, stays off
  the host) and a tmpfs on /var/lib holding an empty /var/lib/trustwall (the journal of a
  trustwall run inside is never the host's);
- commands enter with ``nsenter --target <holder> --mount --net`` (``--wdns``, never
  ``--wd``: docs/quirks-found.md), so ``ufw``, ``iptables-save`` and the trustwall CLI run
  inside exactly as they would on a server.

The scratch copies live in ``/dev/shm/tw-ufw-<pid>-<random>`` (tmpfs: nothing to sync; the creator's
PID in the name is the clean-up record). ``with UfwHost() as host: host.run(["ufw", ...])``;
leaving the block kills every process started inside by PID, the holder, then deletes both
namespaces and the scratch directory. :attr:`UfwHost.startup_seconds` is the time
:meth:`UfwHost.start` took (namespaces, copies, holder; not ``ufw enable``).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from trustwall.clients.login import SYSTEM_PATH
from trustwall.errors import EnvironmentMissing
from trustwall.lab.netns import Netns, kill_started, require_root, run_entered, veth
from trustwall.lab.sandbox import enter_argv
from trustwall.proc import CommandFailed, pid_alive

#: What ufw reads and writes, copied per host: source path on the host -> name in the scratch dir.
COPIES = {"/etc/ufw": "etc-ufw", "/lib/ufw": "lib-ufw", "/etc/default/ufw": "default-ufw"}
SCRATCH_PARENT = Path("/dev/shm")
_DIR_PREFIX = "tw-ufw-"
_DIR_RE = re.compile(r"^tw-ufw-(?P<pid>\d+)-[A-Za-z0-9_]+$")

# Runs as the holder, in the new mount namespace: $1 is the scratch directory. Every target
# exists on the host already (a mkdir would create it there: the tree under the mounts is
# shared); /var/lib/trustwall is made inside the fresh tmpfs.
_HOLDER = r"""set -eu
mount --make-rprivate /
mount --bind "$1/etc-ufw" /etc/ufw
mount --bind "$1/lib-ufw" /lib/ufw
mount --bind "$1/default-ufw" /etc/default/ufw
mount -t tmpfs -o mode=0755 tw-ufw-run /run
mount -t tmpfs -o mode=0755 tw-ufw-varlib /var/lib
mkdir -m 0700 /var/lib/trustwall
echo "ready $$"
exec cat >/dev/null
"""


class UfwHost:
    """A ufw server namespace (``server_ip``) and a client namespace (``client_ip``) on one
    veth pair. ufw starts as the package leaves it (inactive, no user rules); :meth:`enable`
    turns it on."""

    def __init__(self, *, server_ip: str = "198.18.210.1", client_ip: str = "198.18.210.2",
                 prefix: int = 24, name: str = "ufwhost") -> None:
        require_root()
        for tool in ("unshare", "nsenter", "ufw"):
            if shutil.which(tool, path=SYSTEM_PATH) is None:
                raise EnvironmentMissing(f"{tool} is not installed",
                                         hint="apt-get install util-linux ufw")
        self.server_ip, self.client_ip, self.prefix, self.name = (server_ip, client_ip,
                                                                  prefix, name)
        self.server: Netns | None = None
        self.client: Netns | None = None
        self.scratch: Path | None = None
        self._holder: subprocess.Popen | None = None
        self._procs: list[subprocess.Popen] = []
        self.startup_seconds: float | None = None

    # ---- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> UfwHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> UfwHost:
        started = time.perf_counter()
        try:
            self.scratch = _new_scratch_dir()
            for source, name in COPIES.items():
                _copy(source, self.scratch / name)
            self.server = Netns.create(self.name)
            self.client = Netns.create("ufwclient")
            veth(self.server, "eth0", f"{self.server_ip}/{self.prefix}", self.client, "eth0",
                 f"{self.client_ip}/{self.prefix}")
            self._start_holder()
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.perf_counter() - started
        return self

    def _start_holder(self) -> None:
        assert self.server is not None and self.scratch is not None
        argv = self.server.argv(["unshare", "--mount", "--propagation", "private",
                                 "sh", "-c", _HOLDER, "tw-ufw-holder", str(self.scratch)])
        self._holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
                                        start_new_session=True)
        assert self._holder.stdout is not None
        ready, _, _ = select.select([self._holder.stdout], [], [], 30)
        line = self._holder.stdout.readline() if ready else ""
        words = line.split()
        if len(words) != 2 or words[0] != "ready" or not words[1].isdigit():
            self._holder.kill()
            _, err = self._holder.communicate(timeout=10)
            raise CommandFailed(["ufw lab holder"], self._holder.returncode or 1, line, err)
        # ``ip netns exec`` and ``unshare`` exec, so the shell's $$ is the Popen's PID; the
        # holder's own word wins if a wrapper ever forks.
        self.pid = int(words[1])

    def close(self) -> None:
        """Kill what runs inside (by PID), the holder, the namespaces; remove the copies."""
        kill_started(self._procs)
        if self._holder is not None:
            kill_started([self._holder])  # its mount namespace and the binds die with it
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
                self._holder.communicate(timeout=5)  # closes its pipes
            self._holder = None
        for ns in (self.client, self.server):
            if ns is not None:
                ns.delete()  # kills whatever is still inside the netns first
        self.client = self.server = None
        if self.scratch is not None and self.scratch.exists():
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch = None

    # ---- running inside ---------------------------------------------------------------------
    def argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` on the ufw host (its mount and net namespace)."""
        if self._holder is None:
            raise RuntimeError("the ufw host is not running")
        return enter_argv(self.pid, argv, net=True)

    def run(self, argv: Sequence[str], *, input: str | bytes | None = None, check: bool = True,
            timeout: float = 120, env: Mapping[str, str] | None = None,
            text: bool = True) -> subprocess.CompletedProcess:
        """Run ``argv`` on the host; ``env`` defaults to a plain root environment."""
        env = dict(env) if env is not None else {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8",
                                                 "HOME": "/root"}
        return run_entered(self.argv(argv), argv, input=input, check=check, timeout=timeout,
                           env=env, text=text)

    def popen(self, argv: Sequence[str], **popen_kw: object) -> subprocess.Popen:
        """Start ``argv`` on the host in the background; killed by :meth:`close`."""
        popen_kw.setdefault("start_new_session", True)
        popen_kw.setdefault("env", {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"})
        proc = subprocess.Popen(self.argv(argv), **popen_kw)  # type: ignore[call-overload]
        self._procs.append(proc)
        return proc

    def path(self, real_path: str) -> Path:
        """Host-side path of a file under one of the copies (e.g. /etc/ufw/user.rules)."""
        assert self.scratch is not None
        for source, name in COPIES.items():
            if real_path == source or real_path.startswith(source + "/"):
                return self.scratch / name / real_path[len(source):].lstrip("/")
        raise ValueError(f"{real_path} is not one of the ufw host's copies")

    # ---- ufw ----------------------------------------------------------------------------------
    def ufw(self, *args: str, check: bool = True) -> str:
        return self.run(["ufw", *args], check=check).stdout

    def enable(self) -> None:
        self.ufw("--force", "enable")

    def reload(self) -> None:
        """``ufw reload``: ufw rebuilds its chains from /etc/ufw."""
        self.ufw("reload")

    def reboot(self) -> None:
        """A simulated boot: nothing survives in the kernel (``nft flush ruleset``), then ufw's
        own start-up (``/lib/ufw/ufw-init start quiet``, as ufw.service runs it)."""
        self.run(["nft", "flush", "ruleset"])
        self.run(["/lib/ufw/ufw-init", "start", "quiet"])

    def status_numbered(self) -> str:
        return self.ufw("status", "numbered")


def _new_scratch_dir() -> Path:
    """``/dev/shm/tw-ufw-<pid>-<random>``: the creator's PID is the clean-up record."""
    return Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-", dir=SCRATCH_PARENT))


def _copy(source: str, dest: Path) -> None:
    if os.path.isdir(source):
        shutil.copytree(source, dest, symlinks=True)
        shutil.copystat(source, dest)
    else:
        shutil.copy2(source, dest, follow_symlinks=False)


def cleanup_stale() -> list[str]:
    """Remove scratch directories of dead creators (their namespaces: netns.cleanup_stale)."""
    removed = []
    for entry in SCRATCH_PARENT.glob(f"{_DIR_PREFIX}*"):
        match = _DIR_RE.match(entry.name)
        if match is not None and not pid_alive(int(match["pid"])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(str(entry))
    return removed
