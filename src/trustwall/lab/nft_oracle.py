"""The kernel oracle for native nftables: which base chains and rules does the real kernel
walk for a packet, and which one decides?

It is :class:`~trustwall.lab.oracle.KernelOracle` (the same three namespaces, crafted packets,
conntrack control; see its limits) with another loader and another truth: the ruleset is an
nft text loaded with ``nft -f`` (iptables-nft tables may sit beside it), and the truth is
``nft monitor trace``. A table of the oracle's own (``inet tw_oracle``, priority -1000 at
prerouting) sets ``meta nftrace`` on every packet arriving on the two lab interfaces; the
kernel then reports each base chain the packet enters, every rule that matched (with its
handle and verdict: continue, jump, goto, return, accept, drop) and each policy taken.
Packets are told apart by their IPv4 identification field (the ``packet:`` line prints
``ip id``), so a whole batch is sent before the monitor's output is read.

:meth:`NftHit.decision` answers like :meth:`~trustwall.lab.oracle.Hit.decision`: the deciding
rule of one table at one hook, numbered by the rule's position in its chain (what ``fw trace``
reports), so the iptables oracle's judges work unchanged.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trustwall.firewall.nftables import parse, render
from trustwall.firewall.nftables.model import Ruleset
from trustwall.firewall.semantics.trace import Packet
from trustwall.lab.oracle import Decision, KernelOracle, build_ipv4

#: The oracle's own table: it only marks packets for tracing.
TRACE_TABLE = "tw_oracle"

_LINE = re.compile(r"^trace id (\w+) (\w+) (\S+) (\S+) (packet: .*|rule .*|policy \w+|"
                   r"verdict .*|unknown.*)$")
_RULE = re.compile(r"# handle (\d+) \(verdict (\w+)(?: (\S+))?\)\s*$")
_IP_ID = re.compile(r"\bip id (\d+)\b")


@dataclass(frozen=True)
class TraceEvent:
    """One line of ``nft monitor trace``: ``kind`` packet, rule, policy or verdict."""

    family: str
    table: str
    chain: str
    kind: str
    handle: int | None = None
    verdict: str = ""  # accept, drop, continue, jump, goto, return
    target: str = ""  # the chain of a jump/goto


@dataclass(frozen=True)
class _ChainInfo:
    hook: str | None  # None: a user chain
    positions: dict[int, int]  # handle -> 1-based position
    texts: dict[int, str]


@dataclass(frozen=True)
class NftHit:
    """What the kernel did with one packet: the trace events, in order."""

    packet: Packet
    events: tuple[TraceEvent, ...]
    chains: dict[tuple[str, str, str], _ChainInfo]

    def segments(self) -> list[tuple[TraceEvent, Decision | None]]:
        """Per base chain entered (its ``packet:`` event): the decision taken in it (None:
        the trace ended before one, which only a lost line would cause)."""
        out: list[tuple[TraceEvent, Decision | None]] = []
        for e in self.events:
            info = self.chains.get((e.family, e.table, e.chain))
            if e.kind == "packet" and info is not None and info.hook is not None:
                out.append((e, None))
                continue
            if not out or e.kind not in ("rule", "policy"):
                continue
            start = out[-1][0]
            if e.kind == "policy":
                out[-1] = (start, Decision(start.table, start.chain, None, e.verdict.upper(),
                                           f"policy {e.verdict}"))
            elif e.verdict in ("accept", "drop", "queue", "stolen") and info is not None \
                    and e.handle is not None:
                text = info.texts.get(e.handle, "")
                verdict = "REJECT" if e.verdict == "drop" and "reject" in text.lower() \
                    else e.verdict.upper()
                out[-1] = (start, Decision(e.table, e.chain, info.positions.get(e.handle),
                                           verdict, text))
        return out

    def decision(self, table: str = "filter", hook: str = "INPUT") -> Decision | None:
        """The deciding rule of ``table``'s base chain at ``hook`` (None: not reached)."""
        for start, decided in self.segments():
            info = self.chains[(start.family, start.table, start.chain)]
            if start.table == table and (info.hook or "").upper() == hook.upper():
                return decided
        return None

    @property
    def verdict(self) -> str:
        """ACCEPT unless a base chain dropped (or rejected) the packet."""
        for _, decided in self.segments():
            if decided is not None and decided.verdict in ("DROP", "REJECT", "QUEUE"):
                return decided.verdict
        return "ACCEPT"


class NftOracle(KernelOracle):
    """``with NftOracle(local_addrs=[...]) as o: o.load(text); hits = o.send_many(packets)``."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self._monitor: subprocess.Popen | None = None
        self._log: Path | None = None
        self._ident = 0

    def load(self, ruleset_text: str, family: int = 4, *,
             iptables: str | None = None) -> None:
        """Replace the firewalled namespace's ruleset with the nft text ``ruleset_text``, and
        the iptables-save text ``iptables`` loaded with iptables-nft-restore beside it (and
        the oracle's trace table)."""
        fw = self._fw
        fw.run(["nft", "flush", "ruleset"])
        fw.run(["nft", "-f", "-"], input=ruleset_text)
        if iptables is not None:
            fw.run(["iptables-nft-restore", "--noflush"], input=iptables)
        fw.run(["nft", "-f", "-"], input=(
            f"table inet {TRACE_TABLE} {{\n"
            "  chain pre {\n"
            "    type filter hook prerouting priority -1000; policy accept;\n"
            f'    iifname {{ "{self.sender_if}", "{self.beyond_if}" }} meta nftrace set 1\n'
            "  }\n}\n"))
        self._strict_tcp()
        self._ruleset: Ruleset = parse.loads(fw.run(["nft", "-j", "list", "ruleset"]).stdout)
        self._chains = {
            (t.family, t.name, c.name): _ChainInfo(
                c.hook if c.is_base else None,
                {r.handle: r.position for r in c.rules if r.handle is not None},
                {r.handle: render.rule_text(r) for r in c.rules if r.handle is not None})
            for t in self._ruleset.tables for c in t.chains}
        self._start_monitor()

    def _start_monitor(self) -> None:
        self._stop_monitor()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
        handle, name = tempfile.mkstemp(prefix="tw-nft-trace-", suffix=".log")
        os.close(handle)
        self._log = Path(name)
        with open(self._log, "wb") as out:
            # stdbuf: nft writes through stdio; line buffering keeps every line on a kill
            self._monitor = self._fw.popen(["stdbuf", "-oL", "nft", "-a", "monitor", "trace"],
                                           stdout=out, stderr=subprocess.STDOUT)
        time.sleep(0.3)  # the monitor subscribes before the first packet

    def _stop_monitor(self) -> None:
        if self._monitor is not None:
            self._monitor.terminate()
            try:
                self._monitor.wait(5)
            except subprocess.TimeoutExpired:
                self._monitor.kill()
                self._monitor.wait()
            self._monitor = None

    def close(self) -> None:
        self._stop_monitor()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
        super().close()

    def send_many(self, packets: Sequence[Packet]) -> list[NftHit]:  # type: ignore[override]
        """Send every packet (one IP id each), then read the monitor's events for them."""
        assert self._log is not None
        start = self._log.stat().st_size
        idents = []
        for packet in packets:
            side = self._prepare(packet)
            self._flush_conntrack()
            if packet.state == "ESTABLISHED":
                self._insert_established(packet)
            self._ident = self._ident % 60000 + 1
            idents.append(self._ident)
            self._raw[side].sendto(build_ipv4(packet, self._ident), (packet.dst, 0))
        size, quiet = -1, 0
        while quiet < 3:  # the monitor's output settles
            time.sleep(0.1)
            now = self._log.stat().st_size
            quiet = quiet + 1 if now == size else 0
            size = now
        with open(self._log, "rb") as log:
            log.seek(start)
            text = log.read().decode(errors="replace")
        events = _events(text)
        return [NftHit(p, tuple(events.get(i, ())), self._chains)
                for p, i in zip(packets, idents, strict=True)]


def _events(text: str) -> dict[int, list[TraceEvent]]:
    """The trace lines by the IP id of the packet they belong to (a trace id is a hash of the
    packet buffer's address, reused by later packets: the ``packet:`` line rebinds it)."""
    by_trace: dict[str, int] = {}
    out: dict[int, list[TraceEvent]] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m is None:
            continue
        trace_id, family, table, chain, rest = m.groups()
        if table == TRACE_TABLE:
            if rest.startswith("packet:"):
                ident = _IP_ID.search(rest)
                if ident is not None:
                    by_trace[trace_id] = int(ident.group(1))
            continue
        if rest.startswith("packet:"):
            ident = _IP_ID.search(rest)
            if ident is not None:
                by_trace[trace_id] = int(ident.group(1))
            event = TraceEvent(family, table, chain, "packet")
        elif rest.startswith("rule "):
            r = _RULE.search(rest)
            if r is None:
                continue
            event = TraceEvent(family, table, chain, "rule", int(r.group(1)), r.group(2),
                               r.group(3) or "")
        elif rest.startswith("policy "):
            event = TraceEvent(family, table, chain, "policy", verdict=rest.split()[1])
        else:
            event = TraceEvent(family, table, chain, "verdict", verdict=rest.split()[-1])
        if trace_id in by_trace:
            out.setdefault(by_trace[trace_id], []).append(event)
    return out
