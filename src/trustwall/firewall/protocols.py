"""The one table of protocol names and numbers, services, ICMP types and TCP flags.

Everything here follows what iptables 1.8 itself uses, so a name means the same to the parser,
the renderer, the tracer and the packet spaces:

* protocol names come from /etc/protocols (first name = the spelling iptables-save prints), on
  top of the names libxtables knows without it (``xtables_chain_protos``); number 58 is always
  printed ``ipv6-icmp``, as iptables does;
* service names come from /etc/services through ``getservbyname``;
* ICMP and ICMPv6 type names are the tables of libipt_icmp.c and libip6t_icmp6.c.
"""

from __future__ import annotations

import socket
from functools import cache


class BadValue(ValueError):
    """A value iptables would refuse (an unknown protocol, service, ICMP type, or an option
    value out of range); the message is shown to the user."""


# Protocol numbers for names iptables knows even without /etc/protocols (xtables_chain_protos).
BUILTIN_PROTOCOLS = {"tcp": 6, "sctp": 132, "udp": 17, "udplite": 136, "icmp": 1,
                     "icmpv6": 58, "ipv6-icmp": 58, "esp": 50, "ah": 51, "mh": 135, "all": 0}

#: Protocols with ports (the ones -p must name for --dport, DNAT ports, multiport).
PORT_PROTOCOLS = frozenset({"tcp", "udp", "sctp", "dccp", "udplite"})
PORT_PROTOCOL_NUMBERS = frozenset({6, 17, 132, 136, 33})

#: TCP flag names in the bit order of the header (FIN = bit 0); ALL means the first six.
TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")


@cache
def _protocols() -> tuple[dict[str, int], dict[int, str]]:
    by_name = dict(BUILTIN_PROTOCOLS)
    by_number: dict[int, str] = {}
    try:
        with open("/etc/protocols", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                words = line.split("#", 1)[0].split()
                if len(words) >= 2 and words[1].isdigit():
                    n = int(words[1])
                    for w in (words[0], *words[2:]):
                        by_name.setdefault(w.lower(), n)
                    by_number.setdefault(n, words[0])
    except OSError:
        pass
    for name, n in BUILTIN_PROTOCOLS.items():
        by_number.setdefault(n, name)
    by_number[58] = "ipv6-icmp"
    return by_name, by_number


@cache
def protocol_number(text: str) -> int:
    """``tcp`` -> 6, ``47`` -> 47, ``all`` -> 0; raises BadValue for an unknown name."""
    if text.isdigit():
        n = int(text)
        if n > 255:
            raise BadValue(f"unknown protocol {text!r}")
        return n
    n2 = _protocols()[0].get(text.lower())
    if n2 is None:
        raise BadValue(f"unknown protocol {text!r} specified")
    return n2


def protocol_name(number: int) -> str:
    """The spelling iptables-save prints for a protocol number (name from /etc/protocols)."""
    return _protocols()[1].get(number, str(number))


@cache
def service_port(name: str) -> int:
    """The port of a service name (``ssh`` -> 22) from /etc/services."""
    try:
        return socket.getservbyname(name)
    except OSError:
        raise BadValue(f"invalid port/service {name!r}") from None


#: libipt_icmp.c: name -> "type" or "type/code" ("any" matches every type).
ICMP_TYPES = {
    "any": "any", "echo-reply": "0", "pong": "0", "destination-unreachable": "3",
    "network-unreachable": "3/0", "host-unreachable": "3/1", "protocol-unreachable": "3/2",
    "port-unreachable": "3/3", "fragmentation-needed": "3/4", "source-route-failed": "3/5",
    "network-unknown": "3/6", "host-unknown": "3/7", "network-prohibited": "3/9",
    "host-prohibited": "3/10", "TOS-network-unreachable": "3/11",
    "TOS-host-unreachable": "3/12", "communication-prohibited": "3/13",
    "host-precedence-violation": "3/14", "precedence-cutoff": "3/15", "source-quench": "4",
    "redirect": "5", "network-redirect": "5/0", "host-redirect": "5/1",
    "TOS-network-redirect": "5/2", "TOS-host-redirect": "5/3", "echo-request": "8",
    "ping": "8", "router-advertisement": "9", "router-solicitation": "10",
    "time-exceeded": "11", "ttl-exceeded": "11", "ttl-zero-during-transit": "11/0",
    "ttl-zero-during-reassembly": "11/1", "parameter-problem": "12", "ip-header-bad": "12/0",
    "required-option-missing": "12/1", "timestamp-request": "13", "timestamp-reply": "14",
    "address-mask-request": "17", "address-mask-reply": "18",
}

#: libip6t_icmp6.c: name -> "type" or "type/code".
ICMP6_TYPES = {
    "destination-unreachable": "1", "no-route": "1/0", "communication-prohibited": "1/1",
    "beyond-scope": "1/2", "address-unreachable": "1/3", "port-unreachable": "1/4",
    "failed-policy": "1/5", "reject-route": "1/6", "packet-too-big": "2",
    "time-exceeded": "3", "ttl-exceeded": "3", "ttl-zero-during-transit": "3/0",
    "ttl-zero-during-reassembly": "3/1", "parameter-problem": "4", "bad-header": "4/0",
    "unknown-header-type": "4/1", "unknown-option": "4/2", "echo-request": "128",
    "ping": "128", "echo-reply": "129", "pong": "129", "mld-listener-query": "130",
    "mld-listener-report": "131", "mld-listener-done": "132",
    "mld-listener-reduction": "132", "router-solicitation": "133",
    "router-advertisement": "134", "neighbour-solicitation": "135",
    "neighbor-solicitation": "135", "neighbour-advertisement": "136",
    "neighbor-advertisement": "136", "redirect": "137",
}


def icmp_type_code(text: str, family: int = 4) -> tuple[int, int | None]:
    """``echo-request`` / ``8`` / ``3/1`` -> (type, code or None) for one ICMP(v6) packet."""
    names = ICMP_TYPES if family == 4 else ICMP6_TYPES
    value = names.get(text, text)
    itype, slash, code = value.partition("/")
    try:
        return int(itype), int(code) if slash else None
    except ValueError:
        raise BadValue(f"unknown ICMP{'v6' if family == 6 else ''} type {text!r}") from None
