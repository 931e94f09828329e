"""A real ufw host for the lab: ufw 0.36 in a :class:`~trustwall.lab.managed.ManagedHost`
(docs/owner-ufw.md, "The lab's ufw host").

Scratch copies of /etc/ufw, /lib/ufw and /etc/default/ufw are bind-mounted over the real
paths; /run (ufw's lock file) and /var/lib (trustwall's journal) are private tmpfs. ufw starts
as the package leaves it (inactive, no user rules); :meth:`UfwHost.enable` turns it on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from trustwall.lab.managed import ManagedHost, cleanup_stale

__all__ = ["COPIES", "UfwHost", "cleanup_stale"]

#: What ufw reads and writes, copied per host: source path on the host -> name in scratch.
COPIES = {"/etc/ufw": "etc-ufw", "/lib/ufw": "lib-ufw", "/etc/default/ufw": "default-ufw"}


class UfwHost(ManagedHost):
    """``with UfwHost() as host: host.enable(); host.ufw("allow", "22/tcp")``."""

    kind = "ufw"
    programs = ("unshare", "nsenter", "nft", "ufw")
    install_hint = "apt-get install util-linux ufw"
    copies: ClassVar[Mapping[str, str]] = COPIES

    def ufw(self, *args: str, check: bool = True) -> str:
        return self.run(["ufw", *args], check=check).stdout

    def enable(self) -> None:
        self.ufw("--force", "enable")

    def start_manager(self) -> None:
        """``/lib/ufw/ufw-init start quiet``, as ufw.service runs it at boot (nothing while ufw
        is not enabled)."""
        self.run(["/lib/ufw/ufw-init", "start", "quiet"])

    def reload(self) -> None:
        """``ufw reload``: ufw rebuilds its chains from /etc/ufw."""
        self.ufw("reload")

    def status_numbered(self) -> str:
        return self.ufw("status", "numbered")

    def snapshot(self) -> dict[str, str]:
        """``ufw status numbered`` and the bytes of ufw's rule files."""
        return {"status": self.status_numbered(),
                **{path: self.read(path) for path in ("/etc/ufw/user.rules",
                                                       "/etc/ufw/user6.rules")}}
