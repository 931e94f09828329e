"""Two lab hosts for firewall tests: a server holding the seed's RHEL-like INPUT (rules 1-9
accept, 10 rejects) and a JMX stand-in on tcp/18745, and a client on a veth pair."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from trustwall.lab.netns import Netns, connect_tcp, veth
from trustwall.lab.topology import SEED_RULESET

SERVER_IP, CLIENT_IP = "198.18.200.1", "198.18.200.2"
LISTENER = ("import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, "
            "socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', 18745)); s.listen(16)\n"
            "while True:\n    c, _ = s.accept(); c.sendall(b'JMX'); c.close()\n")


@contextmanager
def two_hosts(name: str = "fwserver") -> Iterator[tuple[Netns, Netns]]:
    server = Netns.create(name)
    client = Netns.create("fwclient")
    try:
        veth(server, "eth0", f"{SERVER_IP}/24", client, "eth0", f"{CLIENT_IP}/24")
        server.run(["iptables-restore"], input=SEED_RULESET)
        server.popen([sys.executable, "-c", LISTENER], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        yield server, client
    finally:
        client.delete()
        server.delete()


def connect(client: Netns) -> str:
    """``OK JMX`` when the client gets through to the JMX stand-in, else ``FAIL <reason>``."""
    return connect_tcp(client, SERVER_IP, 18745)
