"""Which remote session runs this process: the connection a firewall change must not cut.

``SSH_CONNECTION`` is not enough: ``sudo`` (and Ansible's ``become``) strip it, and anyone can
set it. The kernel knows better: walking up the process tree from this process, the first
ancestor that holds an *accepted* TCP connection (its local port has a listener: sshd's
session socket, not a connection it opened) in this network namespace is the operator's
session, and ``/proc/<pid>/net/tcp*`` gives its peer. Only ``/proc`` is read; nothing runs.

A session is *unknown* when an ssh daemon is among the ancestors (or the environment says SSH)
but no such socket can be read: then a lockout check cannot protect the operator.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

SSH_DAEMONS = frozenset({"sshd", "sshd-session", "dropbear"})
_ESTABLISHED, _LISTEN = "01", "0A"


@dataclass(frozen=True)
class Peer:
    """One accepted TCP connection: ``client:cport -> server:sport``."""

    client: str
    client_port: int
    server: str
    server_port: int

    def __str__(self) -> str:
        return f"{self.client}:{self.client_port} -> {self.server}:{self.server_port}"


@dataclass(frozen=True)
class Session:
    peers: tuple[Peer, ...]  # the nearest session ancestor's accepted connections
    holder: str | None  # "1234 sshd" of that ancestor
    unknown: bool  # an ssh session is evident but its connection could not be read


def _ppid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().split("\n"):
            if line.startswith("PPid:"):
                return int(line.split(":", 1)[1])
    except (OSError, ValueError):
        return None
    return None


def _netns(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def netns_id() -> int | None:
    """The inode of this process's network namespace (stable while the namespace lives)."""
    return _netns("self")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _address(hex_addr: str) -> tuple[str, int]:
    """``0100007F:0016`` (or the 32-hex-digit IPv6 form) in /proc/net/tcp* byte order."""
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    # each 32-bit word is in host (little-endian) order
    packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address), int(port, 16)


def _tcp_table(pid: int) -> tuple[dict[int, tuple[tuple[str, int], tuple[str, int]]], set[int]]:
    """Established sockets by inode (local, remote) and the listening ports, in the netns of
    ``pid``."""
    established: dict[int, tuple[tuple[str, int], tuple[str, int]]] = {}
    listening: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().split("\n")[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10:
                continue
            if cols[3] == _LISTEN:
                listening.add(int(cols[1].rsplit(":", 1)[1], 16))
            elif cols[3] == _ESTABLISHED:
                established[int(cols[9])] = (_address(cols[1]), _address(cols[2]))
    return established, listening


def ancestors(pid: int | None = None) -> list[int]:
    """Parent, grandparent, … up to (not including) pid 1."""
    out = []
    current = _ppid(pid or os.getpid())
    while current and current > 1 and current not in out:
        out.append(current)
        current = _ppid(current)
    return out


def find_session(pid: int | None = None, environ: dict[str, str] | None = None) -> Session:
    """The remote session ``pid`` (default: this process) runs in, as the kernel sees it."""
    env = environ if environ is not None else dict(os.environ)
    here = _netns(pid or "self")
    ssh_seen = bool(env.get("SSH_CONNECTION") or env.get("SSH_CLIENT"))
    for ancestor in ancestors(pid):
        if _netns(ancestor) != here:
            continue  # a session in another namespace is not behind this firewall
        comm = _comm(ancestor)
        ssh_seen = ssh_seen or comm in SSH_DAEMONS
        inodes = _socket_inodes(ancestor)
        if not inodes:
            continue
        established, listening = _tcp_table(ancestor)
        peers = tuple(Peer(remote[0], remote[1], local[0], local[1])
                      for inode, (local, remote) in sorted(established.items())
                      if inode in inodes and local[1] in listening)
        if peers:
            return Session(peers, f"{ancestor} {comm}", unknown=False)
    return Session((), None, unknown=ssh_seen)
