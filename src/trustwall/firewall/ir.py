"""The firewall IR: what a rule tests of a packet, independent of the syntax it came from.

Per hook, base chains run in the order of their priorities (:func:`iptables_priority` for
iptables' tables); ``accept`` ends only its base chain, ``drop`` and ``reject`` are final.
A frontend (today iptables: ``extensions.conditions``) turns each match of a rule into
:class:`Condition` values over packet fields; trace and the packet spaces evaluate those, never
the frontend's words. A condition the IR does not model is :class:`Opaque`: the trace follows
both outcomes and the spaces stay conservative.

Fields and the value each carries:

=================  ===========================================================================
``sport/dport``    :class:`PortSet`
``either_port``    :class:`PortSet` (the source or the destination port is listed)
``tcp_flags``      :class:`TcpFlags`
``ct_state``       :class:`StateSet` (NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED)
``icmp``           :class:`IcmpMatch`
``src_range``      :class:`AddressRange` (also ``dst_range``)
``mark``           :class:`MarkMatch` over the packet mark (``ct_mark``: the connection mark)
``pkttype``        :class:`PacketType`
``src_type``       :class:`AddressTypes` (also ``dst_type``), the routing type of the address
``opaque``         :class:`Opaque`
=================  ===========================================================================
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class PortRange:
    first: int
    last: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last


@dataclass(frozen=True)
class PortSet:
    """Ports from ``--dport 1:1023`` or ``--dports 22,80,8000:8080``, possibly negated."""

    ranges: tuple[PortRange, ...]
    negated: bool = False

    def matches(self, port: int) -> bool:
        return any(port in r for r in self.ranges) != self.negated


@dataclass(frozen=True)
class StateSet:
    """Conntrack states from ``-m state --state`` or ``-m conntrack --ctstate``."""

    states: frozenset[str]
    negated: bool = False

    def matches(self, state: str) -> bool:
        return (state.upper() in self.states) != self.negated


@dataclass(frozen=True)
class IcmpMatch:
    """``--icmp-type`` / ``--icmpv6-type``: type None means ``any``; codes are inclusive."""

    type: int | None
    code_min: int = 0
    code_max: int = 255
    negated: bool = False

    def matches(self, icmp_type: int, code: int = 0) -> bool:
        hit = self.type is None or (
            icmp_type == self.type and self.code_min <= code <= self.code_max)
        return hit != self.negated


@dataclass(frozen=True)
class AddressRange:
    """``-m iprange --src-range a-b`` (inclusive)."""

    first: IPAddress
    last: IPAddress
    negated: bool = False

    def matches(self, addr: IPAddress) -> bool:
        hit = addr.version == self.first.version and self.first <= addr <= self.last
        return hit != self.negated


@dataclass(frozen=True)
class MarkMatch:
    """``-m mark --mark value[/mask]``: matches when ``packet_mark & mask == value``."""

    value: int
    mask: int = 0xFFFFFFFF
    negated: bool = False

    def matches(self, mark: int) -> bool:
        return ((mark & self.mask) == self.value) != self.negated


@dataclass(frozen=True)
class TcpFlags:
    """``--tcp-flags MASK COMP``: of the flags in ``mask``, exactly those in ``comp`` are set."""

    mask: frozenset[str]
    comp: frozenset[str]
    negated: bool = False

    def matches(self, flags_set: frozenset[str]) -> bool:
        return ((flags_set & self.mask) == self.comp) != self.negated


#: iptables' tables as base chains: their fixed priorities (netfilter's NF_IP_PRI_*). The nat
#: table is two base chains: destination NAT before filtering (PREROUTING, OUTPUT), source
#: NAT after it (INPUT, POSTROUTING). Native nft base chains sit beside them at their own.
IPTABLES_PRIORITIES = {"raw": -300, "mangle": -150, "filter": 0, "security": 50}
NAT_PRIORITIES = {"PREROUTING": -100, "OUTPUT": -100, "INPUT": 100, "POSTROUTING": 100}


def iptables_priority(table: str, hook: str) -> int:
    """The priority at which an iptables table's built-in chain runs at a hook."""
    return NAT_PRIORITIES[hook] if table == "nat" else IPTABLES_PRIORITIES[table]


@dataclass(frozen=True)
class PacketType:
    """Link-layer packet type: unicast, broadcast, multicast (host, otherhost)."""

    kind: str
    negated: bool = False


@dataclass(frozen=True)
class AddressTypes:
    """Routing types of an address (LOCAL, UNICAST, BROADCAST, MULTICAST, ...)."""

    types: frozenset[str]
    negated: bool = False


@dataclass(frozen=True)
class Opaque:
    """A test the IR does not model: ``what`` names it, ``why`` says what is not known."""

    what: str
    why: str


@dataclass(frozen=True)
class Condition:
    """One test a rule makes of a packet: ``field`` (see the module docstring) and its value."""

    field: str
    value: Any


def parse_port_list(text: str) -> tuple[PortRange, ...]:
    """``22,80,1000:2000`` -> port ranges (values are already canonical numbers). A reversed
    range (``60000:29``, which udp, dccp and conntrack load) holds no port: it is left out."""
    out = []
    for part in text.split(","):
        first, _, last = part.partition(":")
        r = PortRange(int(first), int(last) if last else int(first))
        if r.first <= r.last:
            out.append(r)
    return tuple(out)
