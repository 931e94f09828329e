"""Lab hosts whose firewall has an owner: firewalld, ufw, plain nftables, iptables-persistent.

One shape for all of them (docs/owner-firewalld.md, docs/owner-ufw.md, "The lab host"):

* a server network namespace (:class:`~trustwall.lab.netns.Netns`) linked by a veth pair to a
  client namespace (server ``eth0`` 198.18.210.1, client ``eth0`` 198.18.210.2), with the
  JMX stand-in of the playground listening on tcp/18745 (:func:`topology.start_jmx_listener`);
* a private mount namespace held by one long-lived process (the *holder*: ``unshare --mount``
  running a shell that waits on its stdin, so it also dies with its creator), in which
  scratch copies of the owner's configuration are bind-mounted over the real paths, or /etc is
  an overlay whose upper layer is scratch (for owners that replace files by rename, which a
  bind-mounted file refuses), and tmpfs covers /run and /var/lib (so a ``trustwall`` run
  inside keeps its journal in a private, empty /var/lib/trustwall);
* everything runs inside with ``nsenter --target HOLDER --mount --net`` (lab.sandbox's
  :func:`~trustwall.lab.sandbox.enter_argv`: ``--wdns``, never ``--wd``), so the owner's tools
  and the trustwall CLI run exactly as on a server: the product needs no lab import.

A subclass says what it copies, how its manager starts (:meth:`ManagedHost.start_manager`,
run at start-up and again by :meth:`~ManagedHost.reboot`), stops and reloads.
``reboot()`` is the issue's simulated boot: the manager stops, the kernel ruleset is flushed
(nothing survives a reboot in the kernel), the manager's own start-up runs.

Scratch lives in ``/dev/shm/tw-<kind>-<pid>-<random>`` (the creator's PID is the clean-up
record: :func:`cleanup_stale`). Clean-up kills every process by PID, the holder (its mounts die
with it), both namespaces, then removes the scratch directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from trustwall.clients.login import SYSTEM_PATH
from trustwall.errors import EnvironmentMissing, TrustwallError
from trustwall.lab.netns import Netns, connect_tcp, kill_started, require_root, run_entered, veth
from trustwall.lab.sandbox import enter_argv
from trustwall.lab.topology import JMX_PORT, start_jmx_listener
from trustwall.proc import CommandFailed, pid_alive

SERVER_IP, CLIENT_IP = "198.18.210.1", "198.18.210.2"
SERVER_IF = "eth0"
START_TIMEOUT = 30.0
SCRATCH_PARENT = Path("/dev/shm")
_DIR_RE = re.compile(r"^tw-(?P<kind>managed|firewalld|ufw|nftables|iptpersist)-(?P<pid>\d+)-"
                     r"[A-Za-z0-9_]+$")
#: The environment of everything run inside: a plain root login, plus this interpreter's bin
#: directory first (the ``trustwall`` of the virtualenv that runs the lab).
DEFAULT_ENV = {"PATH": f"{os.path.dirname(sys.executable)}:{SYSTEM_PATH}", "HOME": "/root",
               "LANG": "C.UTF-8", "NO_COLOR": "1"}

#: A typical server's /etc/nftables.conf and /etc/iptables/rules.v4: input dropped except
#: replies, loopback and SSH (so tcp/18745, the JMX stand-in, is closed). The nft file also
#: drops INVALID packets on purpose (counted) and rejects the rest, as nftables' own examples
#: do: a plan must keep INVALID dropped and insert before the catch-all reject.
NFT_CONF = """#!/usr/sbin/nft -f
flush ruleset

table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tct state invalid counter drop
\t\tiif "lo" accept
\t\ttcp dport 22 accept
\t\treject
\t}
}
"""
RULES_V4 = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
"""

# Runs as the holder, in the new mount namespace: $1 scratch, $2 "1" for an overlay /etc, then
# pairs SOURCE TARGET to bind-mount. Every bind target exists on the host already (a mkdir
# would create it there: the tree under the mounts is shared); what is made is made inside the
# fresh tmpfs mounts.
_HOLDER = r"""set -eu
scratch=$1 overlay=$2
shift 2
mount --make-rprivate /
if [ "$overlay" = 1 ]; then
    up=$scratch/etc-up work=$scratch/etc-work
    mkdir -p "$up" "$work"
    mount -t overlay tw-lab-etc -o "lowerdir=/etc,upperdir=$up,workdir=$work" /etc
fi
while [ $# -ge 2 ]; do
    mount --bind "$1" "$2"
    shift 2
done
mount -t tmpfs -o mode=0755 tw-lab-run /run
mkdir -p /run/lock
mount -t tmpfs -o mode=0755 tw-lab-varlib /var/lib
mkdir -m 0700 /var/lib/trustwall
echo "ready $$"
exec cat >/dev/null
"""


class ManagedHost:
    """``with UfwHost() as host: host.run([...]); host.connect()``: see the module doc.

    ``startup_seconds`` is how long :meth:`start` took (namespaces, copies, holder, listener,
    the manager's start-up); ``env`` is the environment of every :meth:`run`.
    """

    #: Short name: namespaces ``tw-<kind>-…``, scratch ``/dev/shm/tw-<kind>-…``, messages.
    kind: ClassVar[str] = "managed"
    #: Programs the host needs, and the hint naming their packages.
    programs: ClassVar[tuple[str, ...]] = ("unshare", "nsenter", "nft")
    install_hint: ClassVar[str] = "apt-get install util-linux nftables"
    #: Host path -> name in scratch: copied at start, bind-mounted over the path.
    copies: ClassVar[Mapping[str, str]] = {}
    #: Host path -> name in scratch: an empty directory bind-mounted over the path.
    empty: ClassVar[Mapping[str, str]] = {}
    #: /etc as an overlay whose upper layer is in scratch (files written anywhere under /etc).
    overlay_etc: ClassVar[bool] = False

    def __init__(self, *, server_ip: str = SERVER_IP, client_ip: str = CLIENT_IP,
                 prefix: int = 24, listener: bool = True,
                 env: Mapping[str, str] | None = None) -> None:
        require_root()
        self.server_ip, self.client_ip, self.prefix = server_ip, client_ip, prefix
        self.listener = listener
        self.env = dict(env) if env is not None else dict(DEFAULT_ENV)
        self.server: Netns | None = None
        self.client: Netns | None = None
        self.scratch: Path | None = None
        self.holder: subprocess.Popen | None = None
        self.pid = 0
        self._procs: list[subprocess.Popen] = []
        self.startup_seconds = 0.0

    # -- life cycle --------------------------------------------------------------------------
    def __enter__(self) -> ManagedHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> ManagedHost:
        missing = [p for p in self.programs if shutil.which(p, path=SYSTEM_PATH) is None]
        if missing:
            raise EnvironmentMissing(f"the {self.kind} lab host needs {', '.join(missing)}",
                                     hint=self.install_hint)
        began = time.monotonic()
        try:
            self.scratch = Path(tempfile.mkdtemp(prefix=f"tw-{self.kind}-{os.getpid()}-",
                                                 dir=SCRATCH_PARENT))
            for source, name in self.copies.items():
                _copy(source, self.scratch / name)
            for name in self.empty.values():
                (self.scratch / name).mkdir()
            self.prepare_scratch(self.scratch)
            self.server = Netns.create(self.kind)
            self.client = Netns.create(self.kind + "client")
            veth(self.server, SERVER_IF, f"{self.server_ip}/{self.prefix}", self.client,
                 "eth0", f"{self.client_ip}/{self.prefix}")
            self._start_holder()
            if self.listener:
                start_jmx_listener(self.server, str(self.scratch))
            self.start_manager()
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _start_holder(self) -> None:
        assert self.server is not None and self.scratch is not None
        binds = [arg for source, name in (*self.copies.items(), *self.empty.items())
                 for arg in (str(self.scratch / name), source)]
        argv = self.server.argv(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                 _HOLDER, f"tw-{self.kind}-holder", str(self.scratch),
                                 "1" if self.overlay_etc else "0", *binds])
        self.holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True,
                                       env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
                                       start_new_session=True)
        assert self.holder.stdout is not None
        ready, _, _ = select.select([self.holder.stdout], [], [], START_TIMEOUT)
        line = self.holder.stdout.readline() if ready else ""
        words = line.split()
        if len(words) != 2 or words[0] != "ready" or not words[1].isdigit():
            self.holder.kill()
            _, err = self.holder.communicate(timeout=10)
            raise CommandFailed([f"{self.kind} lab holder"], self.holder.returncode or 1, line,
                                err)
        # ``ip netns exec`` and ``unshare`` exec, so the shell's $$ is the Popen's PID; the
        # holder's own word wins if a wrapper ever forks.
        self.pid = int(words[1])

    def close(self) -> None:
        """Stop the manager, kill what runs inside (by PID), the holder, the namespaces;
        remove the scratch directory."""
        if self.holder is not None:
            self.stop_manager()
        kill_started(self._procs)
        if self.holder is not None:
            kill_started([self.holder])  # its mount namespace and the binds die with it
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
                self.holder.communicate(timeout=5)  # closes its pipes
            self.holder = None
        for ns in (self.client, self.server):
            if ns is not None:
                ns.delete()  # kills whatever is still inside the netns first
        self.client = self.server = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    # -- what a subclass says ------------------------------------------------------------------
    def prepare_scratch(self, scratch: Path) -> None:
        """Adjust the copies before they are mounted (default: nothing)."""

    def start_manager(self) -> None:
        """The manager's own start-up, from its persistent configuration (default: none)."""

    def stop_manager(self) -> None:
        """Stop the manager's daemon, if it has one (default: none)."""

    def snapshot(self) -> dict[str, str]:
        """The manager's own view of the firewall, runtime and persistent (listings, file
        bytes): equal before a change and after its undo means the undo was exact."""
        raise NotImplementedError(f"the {self.kind} lab host has no manager")

    def reload(self) -> None:
        """The manager's reload: runtime rebuilt from its persistent configuration."""
        raise NotImplementedError(f"the {self.kind} lab host has no manager to reload")

    def reboot(self) -> None:
        """A simulated boot: the manager stops, nothing survives in the kernel (``nft flush
        ruleset``), the manager's own start-up runs."""
        self.stop_manager()
        self.run(["nft", "flush", "ruleset"])
        self.start_manager()

    # -- running inside ----------------------------------------------------------------------
    def argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside the host (its mount and net namespace)."""
        if self.holder is None:
            raise TrustwallError(f"the {self.kind} lab host is not running")
        return enter_argv(self.pid, argv, net=True)

    def run(self, argv: Sequence[str], *, input: str | bytes | None = None, check: bool = True,
            timeout: float = 120, env: Mapping[str, str] | None = None,
            text: bool = True) -> subprocess.CompletedProcess:
        """Run ``argv`` inside; a failure (with ``check``) raises CommandFailed naming it."""
        return run_entered(self.argv(argv), argv, input=input, check=check, timeout=timeout,
                           env=env if env is not None else self.env, text=text)

    def trustwall(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The trustwall CLI inside, as an operator on the server would run it."""
        return self.run([sys.executable, "-m", "trustwall", *args], check=check)

    def popen(self, argv: Sequence[str], **popen_kw: object) -> subprocess.Popen:
        """A process inside in the background, killed by :meth:`close`. nsenter (without
        ``--fork``) execs it, so the PID is the program's own."""
        popen_kw.setdefault("start_new_session", True)
        popen_kw.setdefault("env", self.env)
        popen_kw.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(self.argv(argv), **popen_kw)  # type: ignore[call-overload]
        self._procs.append(proc)
        return proc

    def daemon(self, argv: Sequence[str]) -> subprocess.Popen:
        """:meth:`popen` with its output appended to scratch/daemons.log (see :meth:`log_tail`)."""
        assert self.scratch is not None
        with open(self.scratch / "daemons.log", "ab") as log:
            return self.popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def read(self, path: str) -> str:
        """A file as the host sees it (``cat`` inside)."""
        return self.run(["cat", "--", path]).stdout

    def write(self, path: str, text: str) -> None:
        """Write a file inside (``tee``; its directory is made first)."""
        self.run(["mkdir", "-p", "--", os.path.dirname(path)])
        self.run(["tee", "--", path], input=text)

    def path(self, real_path: str) -> Path:
        """Host-side path of a file under one of the bind-mounted copies."""
        assert self.scratch is not None
        for source, name in self.copies.items():
            if real_path == source or real_path.startswith(source + "/"):
                return self.scratch / name / real_path[len(source):].lstrip("/")
        raise ValueError(f"{real_path} is not one of the {self.kind} host's copies")

    def wait_until(self, ready: Callable[[], bool], what: str, proc: subprocess.Popen,
                   timeout: float = START_TIMEOUT) -> None:
        """Poll ``ready`` until true; fail early if ``proc`` (what is starting) exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if proc.poll() is not None:
                raise TrustwallError(f"{what} exited with {proc.returncode} in the lab host"
                                     f"{self.log_tail()}")
            time.sleep(0.05)
        raise TrustwallError(f"{what} did not come up within {timeout:.0f}s{self.log_tail()}")

    def log_tail(self) -> str:
        """``: <last line>`` of the daemons' log, or empty."""
        log = (self.scratch / "daemons.log") if self.scratch else None
        if log is not None and log.exists():
            lines = log.read_text(errors="replace").strip().splitlines()
            return f": {lines[-1]}" if lines else ""
        return ""

    def listen(self, port: int) -> subprocess.Popen:
        """One more listener on the server, tcp/``port`` (the JMX stand-in's greeting),
        killed with the server namespace; returns once it listens."""
        assert self.server is not None and self.scratch is not None
        return start_jmx_listener(self.server, str(self.scratch), port=port)

    # -- the client ----------------------------------------------------------------------------
    def connect(self, port: int = JMX_PORT, *, source: str | None = None,
                timeout: float = 3) -> str:
        """A real connect from the client (from its address ``source``: see
        :meth:`add_client_address`): ``OK <greeting>`` or ``FAIL <reason>`` (e.g. No route to
        host for firewalld's reject; a DROP waits ``timeout``)."""
        assert self.client is not None
        return connect_tcp(self.client, self.server_ip, port, timeout=timeout, source=source)

    def add_client_address(self, address: str) -> None:
        """One more address on the client's eth0 (a second source on the same link)."""
        assert self.client is not None
        self.client.run(["ip", "addr", "add", f"{address}/{self.prefix}", "dev", "eth0"])


class _BootFileHost(ManagedHost):
    """A manager that is one boot file loaded by one command (at boot and at reload).
    /etc is an overlay: the owners replace the file by rename, which a bind mount refuses."""

    overlay_etc = True
    boot_file: ClassVar[str]
    load: ClassVar[tuple[str, ...]]

    default_content: ClassVar[str]

    def __init__(self, content: str | None = None, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.content = self.default_content if content is None else content
        self._written = False

    def start_manager(self) -> None:
        if not self._written:  # the host is installed with this file; boots only load it
            self.write(self.boot_file, self.content)
            self._written = True
        self.run([*self.load, self.boot_file])

    def reload(self) -> None:
        self.run([*self.load, self.boot_file])

    def listing(self) -> str:
        raise NotImplementedError

    def snapshot(self) -> dict[str, str]:
        """The live listing and the boot file's bytes."""
        return {"live": self.listing(), self.boot_file: self.read(self.boot_file)}


class NftablesHost(_BootFileHost):
    """Plain nftables: /etc/nftables.conf loaded with ``nft -f`` at boot and at ``systemctl
    reload nftables``, as nftables.service does (the file's own ``flush ruleset`` first)."""

    kind = "nftables"
    boot_file = "/etc/nftables.conf"
    load = ("nft", "-f")
    default_content = NFT_CONF

    def listing(self) -> str:
        """``nft list ruleset`` with every counter at zero: what the ruleset is (packets a
        test sends move counters; a boot starts them at zero)."""
        return zero_counters(self.run(["nft", "list", "ruleset"]).stdout)


class IptablesPersistentHost(_BootFileHost):
    """iptables with boot files (iptables-persistent): /etc/iptables/rules.v4 restored with
    ``iptables-restore`` at boot and at ``netfilter-persistent reload``."""

    kind = "iptpersist"
    programs = ("unshare", "nsenter", "nft", "iptables-restore", "iptables-save")
    install_hint = "apt-get install util-linux nftables iptables"
    boot_file = "/etc/iptables/rules.v4"
    load = ("iptables-restore",)
    default_content = RULES_V4

    def listing(self) -> str:
        """``iptables-save`` without its comments and counters: what the ruleset is."""
        return "\n".join(re.sub(r" \[\d+:\d+\]$", "", line)
                         for line in self.run(["iptables-save"]).stdout.splitlines()
                         if line.startswith(("-A", ":", "*", "COMMIT")))


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM (as systemd stops a daemon), wait; SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=5)


def zero_counters(nft_listing: str) -> str:
    """An nft listing with its counters at zero."""
    return re.sub(r"counter packets \d+ bytes \d+", "counter packets 0 bytes 0", nft_listing)


def _copy(source: str, dest: Path) -> None:
    if os.path.isdir(source):
        shutil.copytree(source, dest, symlinks=True)
        shutil.copystat(source, dest)
    else:
        shutil.copy2(source, dest, follow_symlinks=False)


def cleanup_stale() -> list[str]:
    """Remove scratch directories of dead creators (their namespaces: netns.cleanup_stale)."""
    removed = []
    for entry in SCRATCH_PARENT.glob("tw-*"):
        match = _DIR_RE.match(entry.name)
        if match is not None and not pid_alive(int(match["pid"])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(str(entry))
    return removed
