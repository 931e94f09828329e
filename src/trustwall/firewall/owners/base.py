"""The shapes every owner shares: what the user asks, and the owner's plan for it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

#: Owner names, as ``"owner"`` in JSON output.
OWNERS = ("firewalld", "ufw", "nftables", "iptables", "docker", "kube-proxy", "libvirt",
          "fail2ban", "none")

#: Owners whose rules trustwall reads but never writes: a plan that needs them is refused.
READ_ONLY_OWNERS = frozenset({"docker", "kube-proxy", "libvirt", "fail2ban"})


@dataclass(frozen=True)
class Request:
    """One change as the user asks it (``fw allow|deny|reject|delete``, Ansible's
    ``firewall_rule``): ``action`` is allow, deny, reject or delete (delete: remove what an
    earlier allow/deny/reject of the same fields added); ``family`` 4, 6 or None for both;
    ``duration`` in seconds for ``--for``."""

    action: str
    proto: str | None = None
    dport: str | None = None
    sport: str | None = None
    src: str | None = None
    dst: str | None = None
    in_iface: str | None = None
    family: int | None = None
    duration: int | None = None
    name: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class Command:
    """One command of a plan, as argv (never through a shell). ``runtime``/``permanent``:
    which state it changes (firewalld has both; ``ufw`` changes both at once)."""

    argv: tuple[str, ...]
    runtime: bool = True
    permanent: bool = False

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class OwnerPlan:
    """What the owner must do. ``refused`` (with ``next``, the owner's own way) when the
    change cannot or must not be made through trustwall; ``effect`` lists the packet classes
    whose verdict changes, across every base chain of the hook."""

    owner: str
    commands: tuple[Command, ...]
    persistent: bool
    effect: tuple[object, ...] = ()
    refused: str | None = None
    next: str | None = None
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {"owner": self.owner, "commands": [c.text for c in self.commands],
                "persistent": self.persistent, "effect": [str(e) for e in self.effect],
                "refused": self.refused, "next": self.next, "notes": list(self.notes)}
