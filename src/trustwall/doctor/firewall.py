"""The local firewall as the doctor sees it: trace one packet through the live ruleset."""

from __future__ import annotations

import os
from dataclasses import dataclass

from trustwall.errors import TrustwallError
from trustwall.firewall.iptables.model import Ruleset
from trustwall.firewall.semantics.trace import Packet, RuleRef, TraceResult, trace


@dataclass(frozen=True)
class LiveTrace:
    """A traced packet, or why the firewall could not be read (``skipped``)."""

    result: TraceResult | None
    ruleset: Ruleset | None
    skipped: str | None = None

    @property
    def blocks(self) -> bool:
        return self.result is not None and self.result.verdict in ("DROP", "REJECT")


def trace_live(packet: Packet) -> LiveTrace:
    """Trace ``packet`` through this host's running ruleset (its family), with its addresses."""
    if os.geteuid() != 0:
        return LiveTrace(None, None, "reading the firewall needs root")
    from trustwall.firewall.iptables import live
    from trustwall.firewall.semantics import routing

    family = 6 if ":" in packet.dst else 4
    try:
        ruleset = live.read_live(family=family)
        local = routing.read_live()
        return LiveTrace(trace(ruleset, packet, local), ruleset)
    except TrustwallError as exc:
        return LiveTrace(None, None, str(exc))


def describe(ref: RuleRef | None, verdict: str) -> str:
    """``filter INPUT rule 10: -A INPUT -j REJECT …`` or ``filter INPUT policy DROP``."""
    if ref is None:
        return f"no rule matches: {verdict} by default"
    if ref.rule is None:
        return f"{ref.table} {ref.chain} policy {verdict}"
    return f"{ref.table} {ref.chain} rule {ref.rule}: {ref.text}"
