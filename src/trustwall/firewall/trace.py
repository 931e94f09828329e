"""Netfilter traversal of a described packet: which rule decides, and by which path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Packet:
    """A packet as the user describes it. Addresses are strings; ports and types are numbers.

    ``state`` is the conntrack state the packet has (NEW, ESTABLISHED, RELATED, INVALID,
    UNTRACKED); ``local`` marks a packet the host itself sends (OUTPUT instead of PREROUTING).
    ``tcp_flags`` None means "SYN for NEW, ACK otherwise".
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
