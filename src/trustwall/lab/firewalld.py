"""A real firewalld server for the lab: its own network namespace, mount namespace, D-Bus.

firewalld must never run on the host, so the host here is (docs/owner-firewalld.md, "The lab
host"):

* a network namespace (:class:`~trustwall.lab.netns.Netns`) linked to a client namespace by a
  veth pair (server ``eth0`` 198.18.210.1, client ``eth0`` 198.18.210.2), with the JMX
  stand-in of the playground listening on tcp/18745;
* a private mount namespace held by one long-lived ``unshare -m sleep`` process (the
  *holder*), in which tmpfs covers /run (a private system bus socket and /run/firewalld) and
  /var/lib (so a ``trustwall`` run inside keeps its journal in a private, empty
  /var/lib/trustwall), and scratch copies of the host's /etc/firewalld and an empty /var/log
  are bind-mounted;
* ``dbus-daemon --system --nofork --nopidfile`` and ``firewalld --nofork --nopid`` started
  inside with ``nsenter -t HOLDER -m -n`` (``--fork`` would daemonize them and lose the PID).

Everything runs inside through :meth:`FirewalldHost.run` (``nsenter -t HOLDER -m -n``), so
trustwall itself is used inside exactly as on a real server: the product needs no lab import.
Clean-up kills every process by PID and deletes both namespaces; the scratch directory goes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from trustwall.errors import EnvironmentMissing, TrustwallError
from trustwall.lab.netns import Netns, connect_tcp, veth
from trustwall.lab.proxy import wait_listening
from trustwall.lab.topology import _JMX_LISTENER, JMX_PORT
from trustwall.proc import CommandFailed

SERVER_IP, CLIENT_IP = "198.18.210.1", "198.18.210.2"
SERVER_IF = "eth0"
START_TIMEOUT = 30.0
#: Programs the host needs (Debian packages firewalld, dbus, util-linux, nftables).
PROGRAMS = ("firewalld", "firewall-cmd", "dbus-daemon", "nsenter", "unshare", "nft")


class FirewalldHost:
    """``with FirewalldHost() as host: host.run(["firewall-cmd", "--list-all"])``.

    ``startup_seconds`` is how long the namespaces, D-Bus and firewalld took to be ``running``.
    ``env`` is passed to every :meth:`run` (e.g. the PATH of a virtualenv's ``trustwall``).
    """

    def __init__(self, *, default_zone: str = "public", listener: bool = True,
                 env: Mapping[str, str] | None = None) -> None:
        self.default_zone = default_zone
        self.listener = listener
        self.env = dict(env) if env is not None else None
        self.server: Netns | None = None
        self.client: Netns | None = None
        self.scratch: Path | None = None
        self.holder: subprocess.Popen | None = None
        self.dbus: subprocess.Popen | None = None
        self.firewalld: subprocess.Popen | None = None
        self.startup_seconds = 0.0
        self.firewalld_seconds = 0.0  # firewalld alone, the last time it was (re)started

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> FirewalldHost:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        missing = [p for p in PROGRAMS if shutil.which(p) is None]
        if missing:
            raise EnvironmentMissing(f"the firewalld lab host needs {', '.join(missing)}",
                                     hint="apt-get install firewalld dbus nftables")
        began = time.monotonic()
        self.scratch = Path(tempfile.mkdtemp(prefix="tw-firewalld-"))
        etc = self.scratch / "etc-firewalld"
        shutil.copytree("/etc/firewalld", etc, symlinks=True)
        conf = etc / "firewalld.conf"
        text = conf.read_text()
        conf.write_text("\n".join(
            f"DefaultZone={self.default_zone}" if line.startswith("DefaultZone=") else line
            for line in text.splitlines()) + "\n")
        (self.scratch / "var-log").mkdir()
        self.server = Netns.create("fwd")
        self.client = Netns.create("fwdclient")
        veth(self.server, SERVER_IF, f"{SERVER_IP}/24", self.client, "eth0",
             f"{CLIENT_IP}/24")
        # The holder keeps the mount namespace alive; unshare makes / recursively private
        # (--propagation private is its default), so nothing mounted inside reaches the host.
        self.holder = self.server.popen(["unshare", "--mount", "--propagation", "private",
                                         "sleep", "infinity"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self._wait_holder()
        for argv in (["mount", "-t", "tmpfs", "-o", "mode=0755", "tw-run", "/run"],
                     ["mkdir", "-p", "/run/dbus", "/run/firewalld", "/run/lock"],
                     ["mount", "-t", "tmpfs", "-o", "mode=0755", "tw-varlib", "/var/lib"],
                     ["mount", "--bind", str(etc), "/etc/firewalld"],
                     ["mount", "--bind", str(self.scratch / "var-log"), "/var/log"]):
            self.run(argv)
        if self.listener:
            jmx = self.server.popen([sys.executable, "-c", _JMX_LISTENER.format(port=JMX_PORT),
                                     str(self.scratch)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            wait_listening(jmx, (JMX_PORT,), "the JMX stand-in")
        self.dbus = self.popen(["dbus-daemon", "--system", "--nofork", "--nopidfile"])
        self._wait(lambda: self.run(["test", "-S", "/run/dbus/system_bus_socket"],
                                    check=False).returncode == 0, "dbus-daemon", self.dbus)
        self.start_firewalld()
        self.startup_seconds = time.monotonic() - began

    def _wait_holder(self) -> None:
        """Until the holder's mount namespace differs from ours (unshare has run)."""
        assert self.holder is not None
        mine = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            # the holder is `ip netns exec` until it execs unshare, then sleep: same pid
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{self.holder.pid}/ns/mnt") != mine and \
                        Path(f"/proc/{self.holder.pid}/comm").read_text().strip() == "sleep":
                    return
            if self.holder.poll() is not None:
                break
            time.sleep(0.01)
        raise TrustwallError("the firewalld lab host's mount namespace did not come up")

    def _wait(self, ready: object, what: str, proc: subprocess.Popen,
              timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():  # type: ignore[operator]
                return
            if proc.poll() is not None:
                raise TrustwallError(f"{what} exited with {proc.returncode} in the lab host"
                                     f"{self._log_tail()}")
            time.sleep(0.05)
        raise TrustwallError(f"{what} did not come up within {timeout:.0f}s{self._log_tail()}")

    def _log_tail(self) -> str:
        log = (self.scratch / "var-log" / "firewalld") if self.scratch else None
        if log is not None and log.exists():
            lines = log.read_text(errors="replace").strip().splitlines()
            return f": {lines[-1]}" if lines else ""
        return ""

    def state(self) -> str:
        """``firewall-cmd --state``: running, not running, …"""
        proc = self.run(["firewall-cmd", "--state"], check=False)
        return (proc.stdout.strip() or proc.stderr.strip())

    def start_firewalld(self) -> None:
        """Start firewalld (from its permanent configuration) and wait until it runs."""
        began = time.monotonic()
        self.firewalld = self.popen(["firewalld", "--nofork", "--nopid"])
        self._wait(lambda: self.state() == "running", "firewalld", self.firewalld)
        self.firewalld_seconds = time.monotonic() - began

    def stop_firewalld(self) -> None:
        """Stop firewalld by its PID (SIGTERM, as systemd would), waiting for it to exit."""
        proc, self.firewalld = self.firewalld, None
        if proc is not None:
            _stop(proc)

    def reload(self) -> None:
        """``firewall-cmd --reload``: runtime rebuilt from the permanent configuration."""
        self.run(["firewall-cmd", "--reload"])

    def reboot(self) -> None:
        """A simulated boot: firewalld stops, the kernel ruleset is flushed (nothing survives
        a reboot in the kernel), firewalld starts again from its permanent configuration."""
        self.stop_firewalld()
        self.run(["nft", "flush", "ruleset"])
        self.start_firewalld()

    def close(self) -> None:
        """Kill every process by PID, delete both namespaces and the scratch directory."""
        self.stop_firewalld()
        for proc in (self.dbus, self.holder):
            if proc is not None:
                _stop(proc)
        self.dbus = self.holder = None
        for ns in (self.client, self.server):
            if ns is not None:
                ns.delete()
        self.client = self.server = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    # -- running inside ----------------------------------------------------------------------
    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run inside the host: its network and mount namespaces. Entering a mount
        namespace puts the working directory at its root (never ``nsenter --wd``: it resolves
        the directory on the host, docs/quirks-found.md)."""
        if self.holder is None:
            raise TrustwallError("the firewalld lab host is not running")
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-n", *argv]

    def run(self, argv: Sequence[str], *, input: str | None = None, check: bool = True,
            timeout: float = 60, env: Mapping[str, str] | None = None
            ) -> subprocess.CompletedProcess:
        full = self.argv(argv)
        environ = dict(env) if env is not None else self.env
        proc = subprocess.run(full, input=input, capture_output=True, text=True,
                              timeout=timeout, env=environ, check=False, cwd="/")
        if check and proc.returncode != 0:
            raise CommandFailed(list(argv), proc.returncode, proc.stdout, proc.stderr)
        return proc

    def popen(self, argv: Sequence[str]) -> subprocess.Popen:
        """A daemon inside; nsenter (without --fork) execs it, so the PID is the daemon's."""
        assert self.scratch is not None
        with open(self.scratch / "daemons.log", "ab") as log:
            return subprocess.Popen(self.argv(argv), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    cwd="/")

    def connect(self, port: int = JMX_PORT, *, source: str | None = None) -> str:
        """From the client (from its address ``source``: see :meth:`add_client_address`):
        ``OK <greeting>`` or ``FAIL <reason>`` (e.g. No route to host)."""
        assert self.client is not None
        return connect_tcp(self.client, SERVER_IP, port, source=source)

    def add_client_address(self, address: str) -> None:
        """One more address on the client's eth0 (a second source on the same link)."""
        assert self.client is not None
        self.client.run(["ip", "addr", "add", f"{address}/24", "dev", "eth0"])

    def listing(self, zone: str | None = None, *, permanent: bool = False) -> str:
        """``firewall-cmd [--permanent] --list-all`` (of ``zone``, default: the default)."""
        argv = ["firewall-cmd"]
        if permanent:
            argv.append("--permanent")
        if zone:
            argv += ["--zone", zone]
        return self.run([*argv, "--list-all"]).stdout


def _stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=5)
