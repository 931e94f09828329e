"""What a trace answers: the packet as described, the steps of its path, the unknowns met
and every outcome (the types the CLI, the doctor and the API hand on)."""

from __future__ import annotations

from dataclasses import dataclass

from trustwall.firewall.ir import CT_STATES

STATES = CT_STATES  # the conntrack states a described packet may have


@dataclass(frozen=True)
class Packet:
    """A packet as the user describes it. Addresses are strings; ports and types are numbers.

    ``state`` is the conntrack state the packet has (NEW, ESTABLISHED, RELATED, INVALID,
    UNTRACKED); ``local`` marks a packet the host itself sends (OUTPUT instead of PREROUTING).
    ``tcp_flags`` None means "SYN for NEW, ACK otherwise". A field left None is unknown: a
    rule that tests it makes the trace follow both outcomes.
    """

    src: str
    dst: str
    proto: str = "tcp"
    sport: int | None = None
    dport: int | None = None
    in_iface: str | None = None
    out_iface: str | None = None
    state: str = "NEW"
    icmp_type: int | None = None
    icmp_code: int | None = None
    mark: int = 0
    tcp_flags: frozenset[str] | None = None
    local: bool = False

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "tcp_flags" and value is not None:
                value = sorted(value)
            out[name] = value
        return out


@dataclass(frozen=True)
class RuleRef:
    """A rule by table, chain and 1-based number (None: the chain's policy) with its text.

    ``hook`` is the built-in chain the packet was in when the rule decided (the rule's own
    chain may be a user chain reached from it); ``backend`` (iptables, nft), ``family`` (ip,
    ip6, inet) and the nft ``handle`` say which ruleset the rule is in.
    """

    table: str
    chain: str
    rule: int | None
    text: str
    hook: str = ""
    backend: str = ""
    family: str = ""
    handle: int | None = None

    @property
    def table_words(self) -> str:
        """``filter`` for iptables (as always), ``nft inet firewalld`` for a native nft
        table (an nft table may share an iptables table's name)."""
        return f"nft {self.family} {self.table}" if self.backend == "nft" else self.table


@dataclass(frozen=True)
class Step:
    """One thing that happened on the way: a rule matched (and what its target did)."""

    table: str
    chain: str
    rule: int | None
    text: str
    action: str
    backend: str = ""  # iptables, nft ("": the routing decision)
    family: str = ""
    handle: int | None = None


@dataclass(frozen=True)
class Unknown:
    """A point the trace could not decide, and why."""

    table: str
    chain: str
    rule: int | None
    text: str
    reason: str


@dataclass(frozen=True)
class Assumption:
    unknown: Unknown
    holds: bool

    def to_json(self) -> dict[str, object]:
        return {**_unknown_json(self.unknown), "holds": self.holds}


@dataclass(frozen=True)
class Outcome:
    """One complete walk under one set of assumptions about the unknowns."""

    verdict: str
    decided_by: RuleRef | None
    path: tuple[Step, ...]
    hooks: tuple[str, ...]
    assuming: tuple[Assumption, ...]
    final_packet: Packet | None = None  # None: no target changed the packet

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.verdict, "decided_by": self.decided_by,
                "assuming": list(self.assuming), "hooks": list(self.hooks)}


@dataclass(frozen=True)
class TraceResult:
    """The answer for one packet. ``verdict`` is UNKNOWN when the outcomes disagree."""

    packet: Packet
    verdict: str
    decided_by: RuleRef | None
    path: tuple[Step, ...]
    hooks: tuple[str, ...]
    unknown: tuple[Unknown, ...]
    outcomes: tuple[Outcome, ...]
    certain: bool
    final_packet: Packet
    complete: bool = True  # False: too many unknowns, not every combination was followed
    #: what the answer cannot settle on its own (base chains of equal priority at a hook,
    #: whose order the kernel leaves undefined)
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "verdict": self.verdict,
            "certain": self.certain,
            "decided_by": self.decided_by,
            "path": list(self.path),
            "unknown": [_unknown_json(u) for u in self.unknown],
            "hooks": list(self.hooks),
            "packet": self.packet,
        }
        if self.final_packet != self.packet:
            out["final_packet"] = self.final_packet
        if len(self.outcomes) > 1:
            out["outcomes"] = list(self.outcomes)
        if not self.complete:
            out["complete"] = False
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def _unknown_json(u: Unknown) -> dict[str, object]:
    return {"table": u.table, "chain": u.chain, "rule": u.rule, "text": u.text,
            "reason": u.reason}
