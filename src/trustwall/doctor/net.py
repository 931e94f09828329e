"""Small network probes the ladders need: /etc/hosts, a direct DNS question, ``ip route get``,
and a TCP connect that also reads *who* sent the ICMP error (``IP_RECVERR``).

The resolver (getaddrinfo) merges /etc/hosts and DNS; to tell a stale /etc/hosts entry from a
DNS answer the doctor reads the hosts file itself and asks the nameserver of resolv.conf
directly (one UDP question, A and AAAA, short timeout).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import random
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from trustwall.proc import run

# linux/in.h, linux/in6.h, linux/errqueue.h: not exported by Python's socket module.
IP_RECVERR = 11
IPV6_RECVERR = 25
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3

# ICMP destination-unreachable codes (RFC 792, RFC 1812) -> the words iptables uses.
ICMP_UNREACH = {0: "net-unreachable", 1: "host-unreachable", 2: "protocol-unreachable",
                3: "port-unreachable", 9: "net-prohibited", 10: "host-prohibited",
                13: "admin-prohibited"}
ICMP6_UNREACH = {0: "no-route", 1: "adm-prohibited", 3: "addr-unreachable",
                 4: "port-unreachable"}


@dataclass(frozen=True)
class HostsEntry:
    line: int
    address: str
    names: tuple[str, ...]


def hosts_entries(name: str, path: str = "/etc/hosts") -> list[HostsEntry]:
    """The lines of a hosts file that name ``name`` (case-insensitive), in file order."""
    found = []
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return []
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if len(words) >= 2 and name.lower() in (w.lower() for w in words[1:]):
            found.append(HostsEntry(number, words[0], tuple(words[1:])))
    return found


def nameservers(path: str = "/etc/resolv.conf") -> list[str]:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line.split()[1] for line in lines
            if line.startswith("nameserver") and len(line.split()) > 1]


@dataclass(frozen=True)
class DnsAnswer:
    """What one nameserver said about a name: addresses, NXDOMAIN, or no answer at all."""

    server: str
    addresses: tuple[str, ...]
    rcode: int | None  # None: no answer (timeout, refused, unreachable)
    error: str | None = None

    @property
    def nxdomain(self) -> bool:
        return self.rcode == 3


def encode_query(name: str, qtype: int, ident: int) -> bytes:
    """A DNS question (RFC 1035 4.1), recursion desired."""
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p for p in name.rstrip(".").encode("idna").split(b"."))
    return header + labels + b"\0" + struct.pack("!HH", qtype, 1)


def _skip_name(data: bytes, at: int) -> int:
    while True:
        length = data[at]
        if length & 0xC0 == 0xC0:
            return at + 2
        if length == 0:
            return at + 1
        at += 1 + length


def decode_answer(data: bytes, ident: int) -> tuple[int, list[str]]:
    """(rcode, A/AAAA addresses) of a DNS response to question ``ident``."""
    got, flags, qd, an, _, _ = struct.unpack("!HHHHHH", data[:12])
    if got != ident or not flags & 0x8000:
        raise ValueError("not an answer to our question")
    at = 12
    for _ in range(qd):
        at = _skip_name(data, at) + 4
    addresses = []
    for _ in range(an):
        at = _skip_name(data, at)
        rtype, _cls, _ttl, length = struct.unpack("!HHIH", data[at:at + 10])
        at += 10
        rdata = data[at:at + length]
        at += length
        if (rtype, length) in ((1, 4), (28, 16)):
            # ipaddress, not inet_ntop: the same text as getaddrinfo's answers compare with
            # (they differ for v4-mapped IPv6 addresses).
            addresses.append(str(ipaddress.ip_address(rdata)))
    return flags & 0x000F, addresses


def ask_dns(name: str, server: str, *, timeout: float = 1.0, port: int = 53) -> DnsAnswer:
    """Ask ``server`` (UDP ``port``) for A and AAAA of ``name``."""
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    addresses: list[str] = []
    rcode: int | None = None
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((server, port))
            for qtype in (1, 28):
                ident = random.randrange(65536)
                sock.send(encode_query(name, qtype, ident))
                deadline = time.monotonic() + timeout
                while True:
                    sock.settimeout(max(0.01, deadline - time.monotonic()))
                    try:
                        code, found = decode_answer(sock.recv(4096), ident)
                    except ValueError:
                        continue
                    break
                rcode = code if rcode in (None, 0) or code == 0 else rcode
                addresses += found
        except (OSError, IndexError, struct.error) as exc:
            if rcode is None:
                reason = "timeout" if isinstance(exc, TimeoutError) else \
                    (os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno
                     else type(exc).__name__)
                return DnsAnswer(server, (), None, reason)
    return DnsAnswer(server, tuple(addresses), 0 if addresses else rcode)


@dataclass(frozen=True)
class Route:
    """``ip -j route get ADDR``: the interface, gateway and source address used."""

    destination: str
    dev: str | None
    gateway: str | None
    prefsrc: str | None
    kind: str  # unicast, local, unreachable, …
    error: str | None = None


def route_get(address: str) -> Route:
    proc = run(["ip", "-j", "route", "get", address], check=False, timeout=10)
    if proc.returncode != 0:
        return Route(address, None, None, None, "none",
                     (proc.stderr or proc.stdout).strip() or f"exit {proc.returncode}")
    try:
        entry = (json.loads(proc.stdout) or [{}])[0]
    except json.JSONDecodeError:
        return Route(address, None, None, None, "none", "unreadable `ip -j route get` output")
    return Route(address, entry.get("dev"), entry.get("gateway"), entry.get("prefsrc"),
                 entry.get("type", "unicast"))


@dataclass(frozen=True)
class Connect:
    """The outcome of one TCP connect: ok, or the errno and (for ICMP) who answered."""

    address: str
    port: int
    ok: bool
    errno_name: str | None = None
    message: str | None = None
    icmp: str | None = None  # e.g. "host-prohibited"
    offender: str | None = None  # the address that sent the ICMP error
    elapsed_ms: float = 0.0
    local_address: str | None = None


def _read_icmp(sock: socket.socket, family: int) -> tuple[str | None, str | None]:
    sock.setblocking(False)  # with a timeout set, Python would first wait for readability
    try:
        _, ancdata, _, _ = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
    except OSError:
        return None, None
    for _level, _type, data in ancdata:
        if len(data) < 16:
            continue
        _errno, origin, icmp_type, code, _pad, _info, _data = struct.unpack("=IBBBBII",
                                                                          data[:16])
        offender = None
        if origin == SO_EE_ORIGIN_ICMP and len(data) >= 24:
            offender = socket.inet_ntop(socket.AF_INET, data[20:24])
            words = ICMP_UNREACH.get(code, f"type {icmp_type} code {code}") \
                if icmp_type == 3 else f"type {icmp_type} code {code}"
            return words, offender
        if origin == SO_EE_ORIGIN_ICMP6 and len(data) >= 40:
            offender = socket.inet_ntop(socket.AF_INET6, data[24:40])
            words = ICMP6_UNREACH.get(code, f"type {icmp_type} code {code}") \
                if icmp_type == 1 else f"type {icmp_type} code {code}"
            return words, offender
    return None, None


def tcp_connect(address: str, port: int, *, timeout: float) -> Connect:
    """Connect once (no retries beyond the kernel's SYN retransmissions within ``timeout``)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    started = time.monotonic()
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if family == socket.AF_INET:
            sock.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except TimeoutError:
            return Connect(address, port, False, "ETIMEDOUT",
                           f"no answer within {timeout:g}s",
                           elapsed_ms=_ms(started))
        except OSError as exc:
            icmp, offender = _read_icmp(sock, family)
            name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            return Connect(address, port, False, name, os.strerror(exc.errno or 0), icmp,
                           offender, _ms(started))
        return Connect(address, port, True, elapsed_ms=_ms(started),
                       local_address=sock.getsockname()[0])


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
