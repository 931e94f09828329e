"""The local firewall as the doctor sees it: trace one packet through the live ruleset."""

from __future__ import annotations

import os
from dataclasses import dataclass

from trustwall.errors import TrustwallError
from trustwall.firewall.iptables.model import Ruleset
from trustwall.firewall.semantics.trace import Packet, RuleRef, TraceResult, trace


@dataclass(frozen=True)
class LiveTrace:
    """A traced packet, or why the firewall could not be read (``skipped``). ``ruleset`` is
    the iptables ruleset of the packet's family (what a fix is planned on); the trace itself
    walked the whole picture (native nft tables, iptables-nft, legacy), so a base chain of
    any of them that drops the packet makes it blocked."""

    result: TraceResult | None
    ruleset: Ruleset | None
    skipped: str | None = None

    @property
    def blocks(self) -> bool:
        return self.result is not None and self.result.verdict in ("DROP", "REJECT")


def trace_live(packet: Packet) -> LiveTrace:
    """Trace ``packet`` through everything this host's kernel evaluates, with its addresses."""
    if os.geteuid() != 0:
        return LiveTrace(None, None, "reading the firewall needs root")
    from trustwall.firewall.iptables import live
    from trustwall.firewall.nftables.live import traceable
    from trustwall.firewall.semantics import routing

    family = 6 if ":" in packet.dst else 4
    try:
        found = traceable(family)
        local = routing.read_live()
        result = trace(found.ruleset, packet, local)
        ruleset = found.ruleset if isinstance(found.ruleset, Ruleset) else \
            live.read_live(family=family)
        return LiveTrace(result, ruleset)
    except TrustwallError as exc:
        return LiveTrace(None, None, str(exc))


def describe(ref: RuleRef | None, verdict: str) -> str:
    """``filter INPUT rule 10: -A INPUT -j REJECT …``, ``filter INPUT policy DROP``, or for
    a native nft table ``nft inet firewalld filter_INPUT rule 6 (handle 12): reject …``."""
    if ref is None:
        return f"no rule matches: {verdict} by default"
    table = ref.table_words
    if ref.rule is None:
        return f"{table} {ref.chain} policy {verdict}"
    handle = f" (handle {ref.handle})" if ref.handle is not None else ""
    return f"{table} {ref.chain} rule {ref.rule}{handle}: {ref.text}"
