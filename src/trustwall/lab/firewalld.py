"""A real firewalld server for the lab (docs/owner-firewalld.md, "The lab host").

firewalld must never run on the host, so it runs in a :class:`~trustwall.lab.managed.ManagedHost`
(network namespace + private mount namespace held by one process; module doc there) with a
scratch copy of /etc/firewalld (its ``DefaultZone`` set) and an empty /var/log bind-mounted;
``dbus-daemon --system --nofork --nopidfile`` and ``firewalld --nofork --nopid`` start inside
(``--fork`` would daemonize them and lose the PID) and are stopped by PID.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from trustwall.lab.managed import CLIENT_IP, SERVER_IF, SERVER_IP, ManagedHost, stop

__all__ = ["CLIENT_IP", "SERVER_IF", "SERVER_IP", "FirewalldHost"]


class FirewalldHost(ManagedHost):
    """``with FirewalldHost() as host: host.run(["firewall-cmd", "--list-all"])``.

    ``firewalld_seconds`` is how long firewalld alone took to be ``running`` the last time it
    was (re)started.
    """

    kind = "firewalld"
    programs = ("firewalld", "firewall-cmd", "dbus-daemon", "nsenter", "unshare", "nft")
    install_hint = "apt-get install firewalld dbus nftables"
    copies: ClassVar[Mapping[str, str]] = {"/etc/firewalld": "etc-firewalld"}
    empty: ClassVar[Mapping[str, str]] = {"/var/log": "var-log"}  # not the host's logs

    def __init__(self, *, default_zone: str = "public", **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.default_zone = default_zone
        self.dbus: subprocess.Popen | None = None
        self.firewalld: subprocess.Popen | None = None
        self.firewalld_seconds = 0.0

    def prepare_scratch(self, scratch: Path) -> None:
        conf = scratch / "etc-firewalld" / "firewalld.conf"
        conf.write_text("\n".join(
            f"DefaultZone={self.default_zone}" if line.startswith("DefaultZone=") else line
            for line in conf.read_text().splitlines()) + "\n")

    def state(self) -> str:
        """``firewall-cmd --state``: running, not running, …"""
        proc = self.run(["firewall-cmd", "--state"], check=False)
        return proc.stdout.strip() or proc.stderr.strip()

    def start_manager(self) -> None:
        """Start D-Bus (once) and firewalld from its permanent configuration; wait for both."""
        if self.dbus is None:
            self.run(["mkdir", "-p", "/run/dbus", "/run/firewalld"])  # in the private /run
            self.dbus = self.daemon(["dbus-daemon", "--system", "--nofork", "--nopidfile"])
            self.wait_until(lambda: self.run(["test", "-S", "/run/dbus/system_bus_socket"],
                                             check=False).returncode == 0,
                            "dbus-daemon", self.dbus)
        began = time.monotonic()
        self.firewalld = self.daemon(["firewalld", "--nofork", "--nopid"])
        self.wait_until(lambda: self.state() == "running", "firewalld", self.firewalld)
        self.firewalld_seconds = time.monotonic() - began

    def stop_manager(self) -> None:
        """Stop firewalld by its PID (SIGTERM, as systemd would), waiting for it to exit."""
        proc, self.firewalld = self.firewalld, None
        if proc is not None:
            stop(proc)

    # The old names, kept for callers.
    start_firewalld = start_manager
    stop_firewalld = stop_manager

    def reload(self) -> None:
        """``firewall-cmd --reload``: runtime rebuilt from the permanent configuration."""
        self.run(["firewall-cmd", "--reload"])

    def snapshot(self) -> dict[str, str]:
        """``firewall-cmd --list-all`` and ``--permanent --list-all`` (the default zone)."""
        return {"runtime": self.listing(), "permanent": self.listing(permanent=True)}

    def listing(self, zone: str | None = None, *, permanent: bool = False) -> str:
        """``firewall-cmd [--permanent] --list-all`` (of ``zone``, default: the default)."""
        argv = ["firewall-cmd"]
        if permanent:
            argv.append("--permanent")
        if zone:
            argv += ["--zone", zone]
        return self.run([*argv, "--list-all"]).stdout
