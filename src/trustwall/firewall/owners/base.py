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
    # iptables-shaped details (``fw allow --chain/--table/--state/--out/--reject-with``,
    # ``fw delete CHAIN N|SPEC``): the iptables-file and Docker owners honour them; a manager
    # that cannot express one refuses the request rather than dropping it silently.
    chain: str | None = None  # None: the owner's place for incoming traffic (INPUT …)
    table: str = "filter"
    state: str | None = None
    out_iface: str | None = None
    reject_with: str | None = None
    rule_number: int | None = None  # delete: rule N of ``chain`` as --line-numbers counts
    spec: str | None = None  # delete: the first rule equal to this iptables spec
    removes: str | None = None  # delete: the action the removed rule had (allow/deny/reject)

    @property
    def verdict(self) -> str | None:
        """The iptables target of allow/deny/reject (None for delete)."""
        return {"allow": "ACCEPT", "deny": "DROP", "reject": "REJECT"}.get(self.action)


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
    # Files the apply rewrites (atomically, journaled), e.g. /etc/nftables.conf.
    writes: tuple[str, ...] = field(default=())
    # The owner's own detail for its apply (e.g. the iptables Plan); not part of the JSON.
    detail: object = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, object]:
        return {"owner": self.owner, "commands": [c.text for c in self.commands],
                "persistent": self.persistent, "effect": [str(e) for e in self.effect],
                "refused": self.refused, "next": self.next, "notes": list(self.notes),
                "writes": list(self.writes)}
