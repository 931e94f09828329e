"""The routing decision the trace needs: is a destination one of this host's addresses?

After PREROUTING the kernel routes the packet: to a local address it goes to INPUT, anywhere
else to FORWARD. On the live host the answer comes from ``ip -j addr``; for a saved ruleset the
user names the host's addresses (``--local-addr``). When nobody told us, :meth:`is_local`
answers None and the trace follows both paths instead of guessing.

Loopback (127.0.0.0/8, ::1) is always local once any address is known: the kernel puts
``local 127.0.0.0/8 dev lo`` in its local routing table on every host.

On the live host the output interface of a forwarded packet comes from the kernel's own route
lookup (``ip -j route get``); for a file it is whatever ``--out`` says, or unknown.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from trustwall.errors import BadInput
from trustwall.firewall.ir import IPAddress, IPNetwork

_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class LocalAddresses:
    """The host's own addresses, per interface when known (``known`` False: nothing known)."""

    known: bool = False
    networks: tuple[IPNetwork, ...] = ()  # local ranges (loopback) beyond the single addresses
    addresses: frozenset[IPAddress] = frozenset()
    broadcasts: frozenset[IPAddress] = frozenset()
    by_interface: Mapping[str, tuple[IPAddress, ...]] = field(default_factory=dict)
    #: Whether the host forwards IPv4 packets at all (ip_forward); None: unknown, assumed on.
    forwarding: bool | None = None
    #: The live host's route lookup: destination -> output interface (None: no route known).
    route_lookup: Callable[[str], str | None] | None = field(default=None, compare=False)

    def out_interface(self, addr: str) -> str | None:
        """The interface a packet to ``addr`` leaves by, when a route lookup is available."""
        return self.route_lookup(addr) if self.route_lookup is not None else None

    def is_local(self, addr: IPAddress) -> bool | None:
        """True/False, or None when the host's addresses are unknown."""
        if not self.known:
            return None
        return (addr in self.addresses or addr in self.broadcasts
                or any(addr in net for net in self.networks if net.version == addr.version))

    def is_broadcast(self, addr: IPAddress) -> bool:
        return addr in self.broadcasts or str(addr) == "255.255.255.255"

    def primary(self, interface: str | None, family: int) -> IPAddress | None:
        """The first address of ``interface`` in ``family`` (what REDIRECT rewrites to)."""
        if interface is None:
            return None
        for addr in self.by_interface.get(interface, ()):
            if addr.version == family:
                return addr
        return None


UNKNOWN = LocalAddresses()


def from_args(addresses: Sequence[str]) -> LocalAddresses:
    """``--local-addr 10.0.0.1 --local-addr 192.0.2.7/24`` (a prefix gives the broadcast)."""
    if not addresses:
        return UNKNOWN
    addrs: set[IPAddress] = set()
    bcasts: set[IPAddress] = set()
    for text in addresses:
        try:
            iface = ipaddress.ip_interface(text)
        except ValueError:
            raise BadInput(f"--local-addr {text!r} is not an IP address") from None
        addrs.add(iface.ip)
        net = iface.network
        if net.version == 4 and net.prefixlen < 31:
            bcasts.add(net.broadcast_address)
    return LocalAddresses(True, _LOOPBACK, frozenset(addrs), frozenset(bcasts))


def from_ip_json(data: Iterable[Mapping[str, object]]) -> LocalAddresses:
    """Build from ``ip -j addr`` output (a list of links with their ``addr_info``)."""
    addrs: set[IPAddress] = set()
    bcasts: set[IPAddress] = set()
    by_iface: dict[str, tuple[IPAddress, ...]] = {}
    for link in data:
        name = str(link.get("ifname", ""))
        mine: list[IPAddress] = []
        infos = link.get("addr_info") or []
        for info in infos if isinstance(infos, list) else []:
            try:
                addr = ipaddress.ip_address(str(info.get("local")))
            except ValueError:
                continue
            mine.append(addr)
            if info.get("broadcast"):
                bcasts.add(ipaddress.ip_address(str(info["broadcast"])))
        addrs.update(mine)
        by_iface[name] = tuple(mine)
    return LocalAddresses(True, _LOOPBACK, frozenset(addrs), frozenset(bcasts), by_iface)


def read_live() -> LocalAddresses:
    """The running host's addresses (``ip -j addr``) and its route lookup."""
    from trustwall.proc import run

    try:
        data = json.loads(run(["ip", "-j", "addr"]).stdout or "[]")
    except json.JSONDecodeError as exc:
        raise BadInput(f"cannot read `ip -j addr` output: {exc}") from None
    return replace(from_ip_json(data), route_lookup=_route_get, forwarding=_forwarding())


def _forwarding() -> bool | None:
    """``net.ipv4.ip_forward`` of this host (IPv4: the switch Docker turns on)."""
    try:
        return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
    except OSError:
        return None


@lru_cache(maxsize=4096)
def _route_get(addr: str) -> str | None:
    """``ip -j route get ADDR`` -> its device (None for local, unreachable or an error)."""
    from trustwall.proc import run

    proc = run(["ip", "-j", "route", "get", addr], check=False)
    try:
        routes = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return None
    if proc.returncode != 0 or not routes or routes[0].get("type") == "local":
        return None
    dev = routes[0].get("dev")
    return str(dev) if dev else None
