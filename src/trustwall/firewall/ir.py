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
``src/dst``        :class:`AddressMask` (``-s``/``-d``, ``ip saddr``; masks need not be contiguous)
``iif/oif``        :class:`Interface` (a name, ``eth+``/``eth*`` wildcards)
``proto``          :class:`Protocol` (the layer-4 protocol number)
``fragment``       :class:`Fragment` (IPv4 non-first fragments, ``-f``)
``nfproto``        :class:`IpVersion` (nft: ``meta nfproto``; implied by ``ip``/``ip6`` fields
                   in an inet table)
``proto_set``      :class:`ProtocolSet` (nft: ``meta l4proto { tcp, udp }``)
``ct_status``      :class:`CtStatus` (nft: ``ct status dnat``)
``set``            :class:`SetLookup` (nft: anonymous and named sets, concatenations, and each
                   element of a verdict map, which compiles to one rule per element)
=================  ===========================================================================

Structure (:class:`Ruleset`): tables hold chains; a base chain is a chain attached to a hook at
a priority. Each :class:`Rule` is conditions (all must hold) + an :class:`Action` + a
:class:`Source` that links it back to the frontend's rule (backend, family, table, chain,
1-based position, nft handle, text). Frontends compile to this (``iptables.compile``,
``nftables.compile``); trace, packet spaces, lint, plan and diff read only this.
"""

from __future__ import annotations

import ipaddress
import typing
from dataclasses import dataclass, field
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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


#: The conntrack states a packet can be in (INVALID: conntrack has no entry for it; UNTRACKED:
#: notrack), in the order packet spaces number and print them. The one list every layer uses.
CT_STATES = ("INVALID", "NEW", "ESTABLISHED", "RELATED", "UNTRACKED")


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


# --- header conditions ---------------------------------------------------------------------


@dataclass(frozen=True)
class AddressMask:
    """``addr & mask == value`` over the address as an integer (``version`` 4 or 6). A prefix
    is the contiguous case; iptables also loads ``10.0.0.0/255.0.255.0``."""

    version: int
    value: int
    mask: int
    negated: bool = False

    def matches(self, addr: int) -> bool:
        return ((addr & self.mask) == self.value) != self.negated


@dataclass(frozen=True)
class Interface:
    """An interface name; ``prefix`` True when the name ends in a wildcard (``eth+``,
    ``eth*``): then ``name`` is the part before it and any name starting with it matches."""

    name: str
    prefix: bool = False
    negated: bool = False

    def matches(self, iface: str) -> bool:
        hit = iface.startswith(self.name) if self.prefix else iface == self.name
        return hit != self.negated


@dataclass(frozen=True)
class Protocol:
    """The layer-4 protocol by number (``-p tcp``, ``meta l4proto tcp``, ``ip protocol 6``)."""

    number: int
    negated: bool = False


@dataclass(frozen=True)
class Fragment:
    """IPv4 non-first fragments (``-f``; ``! -f``: first fragments and unfragmented)."""

    negated: bool = False


# --- actions -------------------------------------------------------------------------------

#: Action kinds. ``accept`` ends the base chain (the next base chain at the hook still runs);
#: ``drop``, ``reject`` and ``queue`` end the packet; ``jump``/``goto`` enter ``Action.chain``;
#: ``return`` leaves a user chain; ``continue`` goes on to the next rule (LOG, counter, a
#: rewrite in ``Action.rewrite``); ``nat`` rewrites addresses and ends the nat base chain;
#: ``ends`` ends the walk in a way not modelled (TPROXY, SYNPROXY); ``unknown``: not known.
ACTION_KINDS = ("accept", "drop", "reject", "queue", "jump", "goto", "return", "continue",
                "nat", "ends", "unknown")


@dataclass(frozen=True)
class SetMark:
    """``mark = (mark & ~mask) ^ value`` on the packet (``ct`` False) or its connection."""

    value: int
    mask: int = 0xFFFFFFFF
    ct: bool = False


@dataclass(frozen=True)
class Nat:
    """An address rewrite: ``kind`` dnat, snat, masquerade or redirect; the first address and
    port of the range (None: unchanged / chosen by the kernel)."""

    kind: str
    address: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class Notrack:
    """The packet becomes UNTRACKED (``-j NOTRACK``, ``-j CT --notrack``, ``notrack``)."""


@dataclass(frozen=True)
class MarkCopy:
    """Copy between the packet mark and its connection's mark (``CONNMARK --save-mark``:
    ``to_ct`` True, ``ctmark = (ctmark & ~ctmask) ^ (mark & nfmask)``; ``--restore-mark``:
    ``mark = (mark & ~nfmask) ^ (ctmark & ctmask)``)."""

    to_ct: bool
    nfmask: int = 0xFFFFFFFF
    ctmask: int = 0xFFFFFFFF


#: What a rule may change of the packet for the rules after it.
Rewrite = SetMark | MarkCopy | Nat | Notrack


@dataclass(frozen=True)
class Action:
    """What a rule does when its conditions hold (``kind``: one of :data:`ACTION_KINDS`)."""

    kind: str
    chain: str | None = None
    rewrite: Rewrite | None = None
    name: str = ""  # the frontend's word for it: "REJECT", "MASQUERADE", "reject with icmpx …"
    #: the word a trace reports when the action decides (``QUEUE`` for NFQUEUE, ``TARPIT``);
    #: empty: the kind in capitals
    verdict: str = ""

    @property
    def says(self) -> str:
        """The verdict word a trace reports for this action."""
        return self.verdict or self.kind.upper()

    @property
    def terminal(self) -> bool:
        """True when no later rule of this base chain sees the packet."""
        return self.kind in TERMINAL_KINDS


#: Action kinds after which no later rule of the base chain sees the packet.
TERMINAL_KINDS = frozenset({"accept", "drop", "reject", "queue", "nat", "ends"})


# --- structure -----------------------------------------------------------------------------

#: Hooks in packet order (IR names; iptables' built-in chains are their upper-case twins).
HOOKS = ("prerouting", "input", "forward", "output", "postrouting")


@dataclass(frozen=True)
class Source:
    """Where a rule came from. ``position`` is 1-based in its chain (None: the chain's
    policy); ``handle`` is the nft handle (None for iptables). ``text`` renders lazily through
    ``render`` (rendering every rule of a large ruleset up front costs more than a trace)."""

    backend: str  # "iptables" | "nft"
    family: str  # "ip" | "ip6" | "inet" | "arp" | "bridge" | "netdev"
    table: str
    chain: str
    position: int | None
    handle: int | None = None
    origin: Any = field(default=None, compare=False, repr=False)
    render: Any = field(default=None, compare=False, repr=False)  # Callable[[], str] | None
    line: str = field(default="", compare=False, repr=False)  # the text as read, if kept

    @property
    def text(self) -> str:
        return self.render() if self.render is not None else ""


@dataclass(frozen=True)
class Rule:
    conditions: tuple[Condition, ...]
    action: Action
    source: Source


@dataclass(frozen=True)
class Hook:
    """How a base chain is attached: ``hook`` (one of :data:`HOOKS`), ``priority`` (a number;
    named nft priorities already resolved), ``type`` (filter, nat, route) and ``policy``."""

    hook: str
    priority: int
    type: str = "filter"
    policy: str = "accept"
    policy_text: str = ""  # the policy in the frontend's words (``-P INPUT DROP``)


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[Rule, ...]
    base: Hook | None = None  # None: a user chain, entered by jump or goto only


@dataclass(frozen=True)
class Table:
    """The scope of jumps and gotos: an iptables table of one family, or an nft table."""

    backend: str
    family: str
    name: str
    chains: tuple[Chain, ...]

    def chain(self, name: str) -> Chain | None:
        return next((c for c in self.chains if c.name == name), None)


#: The IP versions an nft family feeds (inet: both; arp, bridge, netdev are kept, not traced).
FAMILY_VERSIONS = {"ip": (4,), "ip6": (6,), "inet": (4, 6)}

#: The priority at which conntrack runs (NF_IP_PRI_CONNTRACK): base chains before it (raw)
#: see packets that have no conntrack entry yet.
CONNTRACK_PRIORITY = -200
#: The filter priority: at the hook that delivers or forwards a packet, the base chain here
#: names the rule that accepted it.
FILTER_PRIORITY = 0


class Frontend(typing.Protocol):
    """A frontend's ruleset (``iptables.model.Ruleset``): compiles itself to the IR, cached."""

    def to_ir(self) -> Ruleset: ...


def as_ir(ruleset: Ruleset | Frontend) -> Ruleset:
    """``ruleset`` in the IR: itself, or what its frontend compiles it to."""
    return ruleset if isinstance(ruleset, Ruleset) else ruleset.to_ir()


@dataclass(frozen=True)
class Ruleset:
    """Everything the kernel evaluates, from every backend."""

    tables: tuple[Table, ...]

    def versions(self) -> tuple[int, ...]:
        """The IP versions some table of this ruleset sees packets of."""
        return tuple(sorted({v for t in self.tables for v in FAMILY_VERSIONS.get(t.family, ())}))

    def base_chains(self, version: int, hook: str) -> list[tuple[Table, Chain]]:
        """The base chains a packet of IP ``version`` meets at ``hook``, by priority (equal
        priorities keep table order here; the kernel's order between them is undefined)."""
        found = [(t, c) for t in self.tables if version in FAMILY_VERSIONS.get(t.family, ())
                 for c in t.chains if c.base is not None and c.base.hook == hook]
        return sorted(found, key=lambda tc: tc[1].base.priority)  # type: ignore[union-attr]


# --- nftables conditions -------------------------------------------------------------------
# Values nft rules test that the conditions above do not express: set lookups (anonymous and
# named, over one field or a concatenation), the IP version of an inet table, several
# protocols at once, and conntrack status bits. Each has a pure ``matches``; a tracer
# supplies the packet's values (see each class) and needs nothing else.


@dataclass(frozen=True)
class IpVersion:
    """``meta nfproto ipv4`` — and implied by ``ip …``/``icmp …`` in an inet table: the packet
    is IPv4 (4) or IPv6 (6)."""

    versions: frozenset[int]
    negated: bool = False

    def matches(self, version: int) -> bool:
        return (version in self.versions) != self.negated


@dataclass(frozen=True)
class ProtocolSet:
    """``meta l4proto { tcp, udp }``: the layer-4 protocol number is one of ``numbers``."""

    numbers: frozenset[int]
    negated: bool = False

    def matches(self, number: int) -> bool:
        return (number in self.numbers) != self.negated


@dataclass(frozen=True)
class CtStatus:
    """``ct status dnat`` / ``ct status { snat, dnat }``: any of these conntrack status bits
    (``expected``, ``seen-reply``, ``assured``, ``confirmed``, ``snat``, ``dnat``, ``dying``)
    is set on the packet's connection; ``negated``: none is."""

    bits: frozenset[str]
    negated: bool = False

    def matches(self, status: frozenset[str]) -> bool:
        return bool(self.bits & status) != self.negated


@dataclass(frozen=True)
class KeySpan:
    """One component of a set element over a numeric key: ``first``..``last`` inclusive (a
    value, a range ``80-90``, a prefix ``10.0.0.0/8`` as its first and last address)."""

    first: int
    last: int

    def matches(self, value: object) -> bool:
        return isinstance(value, int) and self.first <= value <= self.last


#: Packet fields a :class:`SetLookup` key may name, and the value a tracer passes for each:
#: ``src``/``dst`` the address as an int; ``sport``/``dport``/``proto``/``mark``/``ct_mark``/
#: ``icmp_type``/``icmp_code``/``nfproto`` (4 or 6) ints; ``iif``/``oif`` the interface name;
#: ``ct_state`` (NEW, ESTABLISHED, …) and ``pkttype`` (unicast, broadcast, multicast,
#: otherhost) strings.
SET_KEYS = ("src", "dst", "sport", "dport", "proto", "mark", "ct_mark", "icmp_type",
            "icmp_code", "nfproto", "iif", "oif", "ct_state", "pkttype")


@dataclass(frozen=True)
class SetLookup:
    """``ip saddr @allowed``, ``tcp dport { 22, 80-90 }``, ``ip saddr . tcp dport @pairs``:
    the packet's key (one value per entry of ``keys``, see :data:`SET_KEYS`) is an element.
    Each element holds one component per key: a :class:`KeySpan` for numbers, an
    :class:`Interface` for names (wildcards allowed), a string for states and packet types.
    ``name`` is the named set (``@allowed``; None for an anonymous set)."""

    keys: tuple[str, ...]
    elements: tuple[tuple[KeySpan | Interface | str, ...], ...]
    negated: bool = False
    name: str | None = None

    @staticmethod
    def _component(part: KeySpan | Interface | str, value: object) -> bool:
        if isinstance(part, KeySpan):
            return part.matches(value)
        if isinstance(part, Interface):
            return isinstance(value, str) and part.matches(value)
        return isinstance(value, str) and part.upper() == value.upper()

    def matches(self, values: tuple[object, ...]) -> bool:
        hit = any(all(self._component(p, v) for p, v in zip(element, values, strict=True))
                  for element in self.elements)
        return hit != self.negated
