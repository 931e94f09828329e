"""The kernel oracle: which iptables rule does the real kernel pick for a packet?

Three network namespaces joined by veth pairs (no interface on the host side)::

    sender ns                 firewalled ns                      beyond ns
    veth0 198.18.0.2/24 ── <sender_if> 198.18.0.1/24
                              <beyond_if> 198.18.1.1/24 ── veth0 198.18.1.2/24

A ruleset is loaded into the firewalled namespace with ``iptables-restore``. A packet is
crafted byte by byte (IPv4 header included, ``IP_HDRINCL``) and sent from the sender or the
beyond namespace, so its source address can be anything: the firewalled namespace runs with
``rp_filter=0`` and ``accept_local=1`` so spoofed and even local source addresses get through
routing. A packet whose destination is one of the oracle's local addresses (see
:meth:`KernelOracle.add_local`) goes to INPUT; any other destination is forwarded out of the
other side (FORWARD, then POSTROUTING), where the beyond/sender kernel silently discards it
(forwarding is off there).

The answer comes from the kernel's own rule counters: ``iptables-save -c`` before and after the
packet; :class:`Hit` lists every counter that moved and replays them into the decisive rule of
any hook (:meth:`Hit.decision`). Counters are read positionally, so a rule number is exactly the
number ``iptables -L --line-numbers`` shows.

Limits (what the oracle can and cannot produce):

* Conntrack state **NEW**: TCP SYN, UDP, ICMP echo request. The conntrack table is flushed
  (ctnetlink) before every packet, so a repeated 5-tuple is NEW again.
* **INVALID**: a TCP packet without SYN (a stray ACK) with ``nf_conntrack_tcp_loose=0``, or an
  ICMP echo reply nobody asked for.
* **ESTABLISHED** (TCP and UDP): a conntrack entry whose *reply* direction is the packet's
  5-tuple is inserted through ctnetlink first (TCP: state ESTABLISHED, window tracking liberal),
  then an ACK (TCP) or the datagram (UDP) is sent. **RELATED** is not produced.
* IPv4 only (``family=4``); TCP, UDP and ICMP only; no fragments, no IP options; packets
  arrive from outside (no OUTPUT); ``Packet.out_iface`` and ``mark`` are ignored (the route
  decides the output interface: the other side; the mark starts at 0).
* Packets the firewalled kernel itself answers (a TCP RST, an ICMP error of REJECT) go through
  its OUTPUT and POSTROUTING chains: their counters move too. :meth:`Hit.decision` only replays
  the hook asked for, so this matters only when OUTPUT jumps into the same user chains, or
  when the source is one of the oracle's local addresses: the answer then loops back through
  INPUT. Do not send from a local address when INPUT is what you check.
* The sender-side MAC is the veth's random one; ``-m mac`` rules cannot be targeted.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import shlex
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from trustwall.errors import BadInput
from trustwall.firewall.protocols import protocol_number
from trustwall.firewall.semantics.trace import Packet
from trustwall.lab.netns import Netns, veth

SENDER_ADDR = "198.18.0.2"
FW_SENDER_ADDR = "198.18.0.1"
BEYOND_ADDR = "198.18.1.2"
FW_BEYOND_ADDR = "198.18.1.1"

#: Targets after which the kernel stops traversing the hook for this packet.
_FINAL = frozenset({
    "ACCEPT", "DROP", "REJECT", "QUEUE", "NFQUEUE", "DNAT", "SNAT", "MASQUERADE", "REDIRECT",
    "NETMAP", "TPROXY", "SYNPROXY", "TARPIT", "CT_NOTRACK_LEGACY", "NOTRACK",
})
_BUILTIN = frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"})


@dataclass(frozen=True)
class CounterMove:
    """A counter that moved: ``rule`` is the 1-based rule number, None for the chain policy."""

    table: str
    chain: str
    rule: int | None
    packets: int


@dataclass(frozen=True)
class Decision:
    """The kernel's decisive rule in one hook of one table, replayed from the counters."""

    table: str
    chain: str
    rule: int | None  # None: the built-in chain's policy decided
    verdict: str
    text: str


@dataclass(frozen=True)
class _SavedRule:
    chain: str
    number: int
    packets: int
    target: str | None
    goto: bool
    text: str


@dataclass(frozen=True)
class Snapshot:
    """Counters of one ``iptables-save -c`` read: per table, chain policies and rules."""

    policies: dict[tuple[str, str], tuple[str, int]]  # (table, chain) -> (policy, packets)
    rules: dict[tuple[str, str], tuple[_SavedRule, ...]]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        """Read counters positionally (this is no general parser: targets are all it needs)."""
        policies: dict[tuple[str, str], tuple[str, int]] = {}
        rules: dict[tuple[str, str], list[_SavedRule]] = {}
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
            elif line.startswith(":"):
                name, policy, counters = [*line[1:].split(), "", ""][:3]
                policies[(table, name)] = (policy, _packets(counters))
                rules.setdefault((table, name), [])
            elif line.startswith("[") and "] -A " in line:
                counters, _, rest = line.partition(" ")
                words = shlex.split(rest)
                chain = words[1]
                target, goto = None, False
                for i, word in enumerate(words[:-1]):
                    if word in ("-j", "-g"):
                        target, goto = words[i + 1], word == "-g"
                lst = rules.setdefault((table, chain), [])
                lst.append(_SavedRule(chain, len(lst) + 1, _packets(counters), target, goto,
                                      rest))
        return cls(policies, {k: tuple(v) for k, v in rules.items()})

    def diff(self, before: Snapshot) -> tuple[CounterMove, ...]:
        moves = []
        for (table, chain), (_, pkts) in self.policies.items():
            old = before.policies.get((table, chain), ("", 0))[1]
            if pkts != old and chain in _BUILTIN:
                moves.append(CounterMove(table, chain, None, pkts - old))
        for (table, chain), rules in self.rules.items():
            old_rules = before.rules.get((table, chain), ())
            for r in rules:
                old = old_rules[r.number - 1].packets if r.number <= len(old_rules) else 0
                if r.packets != old:
                    moves.append(CounterMove(table, chain, r.number, r.packets - old))
        return tuple(moves)


def _packets(counters: str) -> int:
    counters = counters.strip("[]")
    return int(counters.split(":")[0]) if counters else 0


@dataclass(frozen=True)
class Hit:
    """What the kernel did with one packet: every counter that moved."""

    packet: Packet
    moved: tuple[CounterMove, ...]
    snapshot: Snapshot

    def moved_in(self, table: str, chain: str) -> list[CounterMove]:
        return [m for m in self.moved if m.table == table and m.chain == chain]

    def decision(self, table: str = "filter", hook: str = "INPUT") -> Decision | None:
        """Replay the moved counters from ``hook`` through user chains to the deciding rule.

        None when the packet never reached this hook (no counter of the chain moved).
        """
        moved = {(m.chain, m.rule) for m in self.moved if m.table == table}
        if not any(c == hook for c, _ in moved):
            return None
        found = self._walk(table, hook, moved, 0)
        if found is not None:
            return found
        policy = self.snapshot.policies.get((table, hook), ("ACCEPT", 0))[0]
        return Decision(table, hook, None, policy, f"-P {hook} {policy}")

    def _walk(self, table: str, chain: str, moved: set[tuple[str, int | None]],
              depth: int) -> Decision | None:
        if depth > 64:
            return None
        for rule in self.snapshot.rules.get((table, chain), ()):
            if (chain, rule.number) not in moved or rule.target is None:
                continue
            if rule.target == "RETURN":
                return None
            if (table, rule.target) in self.snapshot.rules:  # a user chain
                found = self._walk(table, rule.target, moved, depth + 1)
                if found is not None or rule.goto:
                    return found
                continue
            if rule.target in _FINAL:
                return Decision(table, chain, rule.number, rule.target, rule.text)
        return None


# --- the oracle ----------------------------------------------------------------------------

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _socket_in(ns: Netns, family: int, kind: int, proto: int) -> socket.socket:
    """A socket that lives in namespace ``ns`` (setns, create, switch back)."""
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{ns.name}", os.O_RDONLY)
    try:
        if _libc.setns(there, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the lab namespace failed")
        try:
            return socket.socket(family, kind, proto)
        finally:
            if _libc.setns(here, _CLONE_NEWNET) != 0:  # pragma: no cover - cannot recover
                raise OSError(ctypes.get_errno(), "setns back to our namespace failed")
    finally:
        os.close(here)
        os.close(there)


class KernelOracle:
    """Context manager owning the three namespaces; see the module docstring for the limits."""

    def __init__(self, *, sender_if: str = "eth0", beyond_if: str = "eth1",
                 local_addrs: Iterable[str] = ()) -> None:
        self.sender_if = sender_if
        self.beyond_if = beyond_if
        self._initial_locals = tuple(local_addrs)
        self.fw: Netns | None = None
        self.sender: Netns | None = None
        self.beyond: Netns | None = None
        self.local_addrs: set[str] = {FW_SENDER_ADDR, FW_BEYOND_ADDR}
        self._routes: dict[str, str] = {}
        self._raw: dict[str, socket.socket] = {}
        self._nl: socket.socket | None = None
        self._nl_seq = 0

    # -- set-up and tear-down --

    def __enter__(self) -> KernelOracle:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        self.fw = Netns.create("fw")
        self.sender = Netns.create("snd")
        self.beyond = Netns.create("bey")
        veth(self.sender, "veth0", f"{SENDER_ADDR}/24", self.fw, self.sender_if,
             f"{FW_SENDER_ADDR}/24")
        veth(self.beyond, "veth0", f"{BEYOND_ADDR}/24", self.fw, self.beyond_if,
             f"{FW_BEYOND_ADDR}/24")
        self.sender.run(["ip", "route", "add", "default", "via", FW_SENDER_ADDR])
        self.beyond.run(["ip", "route", "add", "default", "via", FW_BEYOND_ADDR])
        self.fw.run(["ip", "route", "add", "default", "via", BEYOND_ADDR])
        # Spoofed and local source addresses must survive routing; forwarding on; the peers
        # must not forward (they swallow what the firewall lets through).
        sysctls = ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0"]
        for conf in ("all", "default", self.sender_if, self.beyond_if):
            # slash form: an interface name such as eth0.10 holds a dot
            sysctls += [f"net/ipv4/conf/{conf}/rp_filter=0",
                        f"net/ipv4/conf/{conf}/accept_local=1"]
        self.fw.run(["sysctl", "-q", "-w", *sysctls])
        for ns in (self.sender, self.beyond):
            ns.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"])
        self._raw["sender"] = _socket_in(self.sender, socket.AF_INET, socket.SOCK_RAW,
                                         socket.IPPROTO_RAW)
        self._raw["beyond"] = _socket_in(self.beyond, socket.AF_INET, socket.SOCK_RAW,
                                         socket.IPPROTO_RAW)
        self._nl = _socket_in(self.fw, socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETFILTER
        self._nl.bind((0, 0))
        self._nl.settimeout(2)
        for addr in self._initial_locals:
            self.add_local(addr)

    def close(self) -> None:
        for sock in self._raw.values():
            sock.close()
        self._raw.clear()
        if self._nl is not None:
            self._nl.close()
            self._nl = None
        for ns in (self.fw, self.sender, self.beyond):
            if ns is not None:
                ns.delete()

    @property
    def _fw(self) -> Netns:
        if self.fw is None:
            raise RuntimeError("use KernelOracle as a context manager")
        return self.fw

    # -- configuration --

    def add_local(self, addr: str) -> None:
        """Make ``addr`` an address of the firewalled host (packets to it go to INPUT)."""
        if addr in self.local_addrs:
            return
        self._fw.run(["ip", "addr", "add", f"{addr}/32", "dev", "lo"])
        self.local_addrs.add(addr)

    def load(self, ruleset_text: str, family: int = 4) -> None:
        """Replace the whole firewall of the firewalled namespace with ``ruleset_text``."""
        if family != 4:
            raise BadInput("the kernel oracle sends IPv4 packets only (family=4)")
        self._fw.run(["nft", "flush", "ruleset"])
        self._fw.run(["iptables-restore"], input=ruleset_text)
        self._strict_tcp()

    def _strict_tcp(self) -> None:
        """A stray ACK is INVALID, not picked up mid-stream as NEW (``tcp_loose=0``). Only
        once rules use conntrack does its sysctl directory exist: call after loading."""
        with contextlib.suppress(Exception):
            self._fw.run(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_loose=0"])

    def snapshot(self) -> Snapshot:
        return Snapshot.parse(self._fw.run(["iptables-save", "-c"]).stdout)

    # -- sending --

    def send(self, packet: Packet) -> Hit:
        """Send one packet into the firewalled namespace and report the counters it moved."""
        return self.send_many([packet])[0]

    def send_many(self, packets: Sequence[Packet]) -> list[Hit]:
        """Send packets one at a time, diffing the counters around each one."""
        hits = []
        before = self.snapshot()
        for packet in packets:
            side = self._prepare(packet)
            self._flush_conntrack()
            if packet.state == "ESTABLISHED":
                self._insert_established(packet)
            data = build_ipv4(packet)
            self._raw[side].sendto(data, (packet.dst, 0))
            after = self.snapshot()
            for _ in range(5):  # the veth hop is processed in softirq: almost always done
                if after.diff(before):
                    break
                time.sleep(0.02)
                after = self.snapshot()
            hits.append(Hit(packet, after.diff(before), after))
            before = after
        return hits

    def _prepare(self, packet: Packet) -> str:
        if ipaddress.ip_address(packet.src).version != 4:
            raise BadInput("the kernel oracle sends IPv4 packets only")
        if packet.local:
            raise BadInput("the kernel oracle sends packets into the host, not from it (OUTPUT)")
        if packet.state not in ("NEW", "INVALID", "ESTABLISHED"):
            raise BadInput(f"the kernel oracle cannot produce conntrack state {packet.state}")
        if packet.in_iface in (None, self.sender_if):
            side, other, via = "sender", self.beyond_if, BEYOND_ADDR
        elif packet.in_iface == self.beyond_if:
            side, other, via = "beyond", self.sender_if, SENDER_ADDR
        else:
            raise BadInput(f"the oracle's interfaces are {self.sender_if} and {self.beyond_if}",
                           hint="create the oracle with sender_if=/beyond_if= to rename them")
        if packet.dst not in self.local_addrs and self._routes.get(packet.dst, "beyond") != other:
            # Forwarded packets leave by the other side: pin a host route that says so.
            self._fw.run(["ip", "route", "replace", f"{packet.dst}/32", "via", via])
            self._routes[packet.dst] = other
        return side

    # -- conntrack over ctnetlink --

    def _netlink(self, msg_type: int, flags: int, payload: bytes) -> None:
        assert self._nl is not None
        self._nl_seq += 1
        header = struct.pack("=IHHII", 16 + len(payload), (1 << 8) | msg_type,
                             flags | 0x1 | 0x4, self._nl_seq, 0)  # REQUEST | ACK
        self._nl.send(header + payload)
        while True:
            reply = self._nl.recv(65536)
            _, rtype, _, seq, _ = struct.unpack_from("=IHHII", reply)
            if rtype == 2 and seq == self._nl_seq:  # NLMSG_ERROR (error 0 is the ACK)
                (err,) = struct.unpack_from("=i", reply, 16)
                if err not in (0, -2):  # ENOENT: nothing to flush
                    raise OSError(-err, os.strerror(-err))
                return

    def _flush_conntrack(self) -> None:
        self._netlink(2, 0, struct.pack("=BBH", socket.AF_INET, 0, 0))  # IPCTNL_MSG_CT_DELETE

    def _insert_established(self, p: Packet) -> None:
        proto = _proto_number(p.proto)
        if proto not in (6, 17):
            raise BadInput("the oracle makes ESTABLISHED entries for tcp and udp only")

        def tuple_attr(kind: int, src: str, dst: str, sport: int, dport: int) -> bytes:
            ip = _nla(1 | 0x8000, _nla(1, socket.inet_aton(src)) + _nla(2, socket.inet_aton(dst)))
            pr = _nla(2 | 0x8000, _nla(1, bytes([proto])) + _nla(2, struct.pack("!H", sport))
                      + _nla(3, struct.pack("!H", dport)))
            return _nla(kind | 0x8000, ip + pr)

        # ctnetlink refuses to set IPS_SEEN_REPLY (EBUSY), so the entry is made the other way
        # round: the packet then travels in the reply direction, which conntrack calls
        # ESTABLISHED whatever the entry's status.
        sport, dport = p.sport or 0, p.dport or 0
        body = (tuple_attr(1, p.dst, p.src, dport, sport)
                + tuple_attr(2, p.src, p.dst, sport, dport)
                + _nla(7, struct.pack("!I", 120)))  # CTA_TIMEOUT
        if proto == 6:
            liberal = struct.pack("=BB", 0x08, 0x08)  # IP_CT_TCP_FLAG_BE_LIBERAL
            tcp = _nla(1, bytes([3])) + _nla(4, liberal) + _nla(5, liberal)  # ESTABLISHED
            body += _nla(4 | 0x8000, _nla(1 | 0x8000, tcp))  # CTA_PROTOINFO { TCP { … } }
        nfgen = struct.pack("=BBH", socket.AF_INET, 0, 0)
        self._netlink(0, 0x400 | 0x200, nfgen + body)  # IPCTNL_MSG_CT_NEW, CREATE | EXCL


def _nla(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * ((4 - length % 4) % 4)


# --- packet crafting --------------------------------------------------------------------------

_TCP_FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20}


def _proto_number(proto: str) -> int:
    if proto in ("tcp", "udp", "icmp"):
        return protocol_number(proto)
    raise BadInput(f"the kernel oracle crafts tcp, udp and icmp packets, not {proto}")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_flags_for(packet: Packet) -> frozenset[str]:
    """The TCP flags the oracle sends: the packet's own, else SYN for NEW and ACK otherwise."""
    if packet.tcp_flags is not None:
        return packet.tcp_flags
    return frozenset({"SYN"}) if packet.state == "NEW" else frozenset({"ACK"})


def build_ipv4(packet: Packet, ident: int = 0x7777) -> bytes:
    """The bytes of ``packet`` with valid IPv4 and transport checksums (TTL 64)."""
    proto = _proto_number(packet.proto)
    src, dst = socket.inet_aton(packet.src), socket.inet_aton(packet.dst)
    sport, dport = packet.sport or 0, packet.dport or 0
    if proto == 6:
        bits = sum(_TCP_FLAG_BITS[f] for f in tcp_flags_for(packet))
        ack = 1 if bits & 0x10 else 0
        seg = struct.pack("!HHIIBBHHH", sport, dport, 1000, ack, 5 << 4, bits, 64240, 0, 0)
    elif proto == 17:
        seg = struct.pack("!HHHH", sport, dport, 8 + 4, 0) + b"tw!\n"
    else:
        itype = 8 if packet.icmp_type is None else packet.icmp_type
        seg = struct.pack("!BBHHH", itype, packet.icmp_code or 0, 0, 0x7477, 1) + b"trustwall"
    if proto in (6, 17):
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(seg))
        csum = _checksum(pseudo + seg) or (0xFFFF if proto == 17 else 0)
        offset = 16 if proto == 6 else 6
    else:
        csum, offset = _checksum(seg), 2
    seg = seg[:offset] + struct.pack("!H", csum) + seg[offset + 2:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), ident, 0, 64, proto, 0,
                         src, dst)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + seg


def send_raw(ns: Netns, packet: Packet) -> None:
    """Send ``packet`` as crafted by :func:`build_ipv4` from namespace ``ns`` (a raw socket
    there): a packet no socket call makes, such as a bare ACK of no connection."""
    with _socket_in(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
        sock.sendto(build_ipv4(packet), (packet.dst, 0))
