""":mod:`model` → the firewall IR (``ir.Ruleset``): what each nft rule tests and does.

Each ``match`` statement becomes conditions over packet fields (see ``ir``'s field table);
payload fields add the dependencies nft leaves out of its listing (``tcp dport`` implies
``meta l4proto tcp``; ``ip saddr`` in an inet table implies IPv4). Statements that gate a
rule on state the IR does not model (limit, quota, meter, ct count, fib, socket, osf,
numgen, anything unknown) become :class:`~trustwall.firewall.ir.Opaque` with their nft text.
A verdict map compiles to one IR rule per element (the elements of a map are disjoint, so
"the element that matches decides" equals "the first matching element rule decides"), each
with the same source; its catch-all ``*`` element comes last.
"""

from __future__ import annotations

import ipaddress
import socket
import weakref
from collections.abc import Callable
from typing import Any

from trustwall.firewall import ir
from trustwall.firewall.nftables import render
from trustwall.firewall.nftables.model import Chain, NamedSet, Rule, Ruleset, Table
from trustwall.firewall.protocols import BadValue, icmp_type_code, protocol_number, service_port

#: Payload protocols that are layer-4 headers, and the IP version their header implies.
_L4 = {"tcp": (6, None), "udp": (17, None), "udplite": (136, None), "sctp": (132, None),
       "dccp": (33, None), "icmp": (1, 4), "icmpv6": (58, 6), "igmp": (2, 4), "esp": (50, None),
       "ah": (51, None), "comp": (108, None)}
_L3 = {"ip": 4, "ip6": 6}
_PORT_FIELDS = {"sport": "sport", "dport": "dport"}
_ADDR_FIELDS = {"saddr": "src", "daddr": "dst"}
_CT_STATUS = {"expected", "seen-reply", "assured", "confirmed", "snat", "dnat", "dying"}
_CT_STATES = {"new", "established", "related", "invalid", "untracked"}
#: nft's pkttype names → the IR's (iptables' words).
_PKTTYPES = {"host": "unicast", "unicast": "unicast", "broadcast": "broadcast",
             "multicast": "multicast", "other": "otherhost"}
#: nft's ICMPv6 type names (datatype icmp6_type), where they differ from ip6tables' words.
ICMP6_NFT_TYPES = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
    "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
    "mld-listener-query": 130, "mld-listener-report": 131, "mld-listener-done": 132,
    "mld-listener-reduction": 132, "nd-router-solicit": 133, "nd-router-advert": 134,
    "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136, "nd-redirect": 137,
    "router-renumbering": 138, "ind-neighbor-solicit": 141, "ind-neighbor-advert": 142,
    "mld2-listener-report": 143,
}
#: nft's ICMP code names (datatype icmp_code / icmpv6_code / icmpx_code).
#: nft's ICMP type names that iptables does not know.
ICMP_NFT_TYPES = {"info-request": 15, "info-reply": 16}
ICMP_NFT_CODES = {
    "net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2,
    "port-unreachable": 3, "frag-needed": 4, "net-prohibited": 9, "host-prohibited": 10,
    "admin-prohibited": 13, "no-route": 0, "addr-unreachable": 3, "policy-fail": 5,
    "reject-route": 6,
}
_GATES = ("limit", "quota", "ct count", "meter", "xt", "synproxy")
_SIDE_EFFECTS = ("counter", "log", "flow", "ct helper", "ct timeout", "ct expectation", "set",
                 "dup", "secmark", "notrack", "mangle")


class _NotModelled(Exception):
    """A value or field the IR cannot express: the caller makes the test opaque."""


def _text(stmt: Any) -> str:
    try:
        return render.statement(stmt)
    except Exception:
        return render._json(stmt)


def _opaque(stmt: Any, why: str) -> ir.Condition:
    return ir.Condition("opaque", ir.Opaque(_text(stmt), why))


# --- values ----------------------------------------------------------------------------------


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _NotModelled
    return value


def _port(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value) if value.isdigit() else service_port(value)
        except BadValue:
            raise _NotModelled from None
    raise _NotModelled


def _address_int(value: Any) -> int:
    """An address as an int, fast (inet_pton): a 50k-element set is 50k of these."""
    if isinstance(value, str):
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                return int.from_bytes(socket.inet_pton(family, value), "big")
            except OSError:
                continue
    raise _NotModelled


def _address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(value, str):
        raise _NotModelled
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise _NotModelled from None


def _protocol(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value == "ipv6-icmp":
            return 58
        try:
            return protocol_number(value)
        except BadValue:
            raise _NotModelled from None
    raise _NotModelled


def _icmp_type(value: Any, version: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if version == 6 and value in ICMP6_NFT_TYPES:
            return ICMP6_NFT_TYPES[value]
        if version == 4 and value in ICMP_NFT_TYPES:
            return ICMP_NFT_TYPES[value]
        try:
            itype, code = icmp_type_code(value, version)
        except BadValue:
            raise _NotModelled from None
        if code is None:
            return itype
    raise _NotModelled


def _icmp_code(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ICMP_NFT_CODES:
        return ICMP_NFT_CODES[value]
    raise _NotModelled


def _span(value: Any, scalar: Callable[[Any], int]) -> ir.KeySpan:
    """A numeric element: a value, ``{"range": [a, b]}`` or ``{"prefix": …}`` (addresses)."""
    if isinstance(value, dict) and len(value) == 1:
        (kind, body), = value.items()
        if kind == "range" and isinstance(body, (list, tuple)) and len(body) == 2:
            return ir.KeySpan(scalar(body[0]), scalar(body[1]))
        if kind == "prefix" and isinstance(body, dict):
            net = ipaddress.ip_network(f"{body.get('addr')}/{body.get('len')}", strict=False)
            return ir.KeySpan(int(net.network_address), int(net.broadcast_address))
        if kind == "elem" and isinstance(body, dict):
            return _span(body.get("val"), scalar)
        raise _NotModelled
    number = scalar(value)
    return ir.KeySpan(number, number)


def _span_scalar(key: str, version: int) -> Callable[[Any], int]:
    if key in ("src", "dst"):
        return _address_int
    if key in ("sport", "dport"):
        return _port
    if key == "proto":
        return _protocol
    if key == "icmp_type":
        return lambda v: _icmp_type(v, version)
    if key == "icmp_code":
        return _icmp_code
    if key == "nfproto":
        return lambda v: {"ipv4": 4, "ipv6": 6}.get(v) or _int(v)
    return _int


def _component(key: str, value: Any, version: int) -> ir.KeySpan | ir.Interface | str:
    if isinstance(value, dict) and "elem" in value and isinstance(value["elem"], dict):
        value = value["elem"].get("val")
    if key in ("iif", "oif"):
        if not isinstance(value, str):
            raise _NotModelled
        return _interface(value)
    if key == "ct_state":
        if value not in _CT_STATES:
            raise _NotModelled
        return str(value).upper()
    if key == "pkttype":
        if value not in _PKTTYPES:
            raise _NotModelled
        return _PKTTYPES[value]
    return _span(value, _span_scalar(key, version))


def _interface(name: str, negated: bool = False) -> ir.Interface:
    """nft's wildcard is a trailing ``*``; ``\\*`` is a literal star."""
    if name.endswith("\\*"):
        return ir.Interface(name[:-2] + "*", False, negated)
    if name.endswith("*"):
        return ir.Interface(name[:-1], True, negated)
    return ir.Interface(name, False, negated)


# --- left-hand sides ---------------------------------------------------------------------------


class _Field:
    """What a left-hand expression tests: the IR key (for sets), the implied conditions."""

    def __init__(self, key: str, implied: tuple[ir.Condition, ...] = (), version: int = 4,
                 mask: int | None = None) -> None:
        self.key, self.implied, self.version, self.mask = key, implied, version, mask


def _implied_l3(version: int, family: str) -> tuple[ir.Condition, ...]:
    if family == "inet":
        return (ir.Condition("nfproto", ir.IpVersion(frozenset({version}))),)
    return ()


def _field(left: Any, family: str) -> _Field:
    """The packet field a match's left side reads (raises for one the IR does not model)."""
    if isinstance(left, dict) and len(left) == 1:
        (kind, body), = left.items()
        default_version = 6 if family == "ip6" else 4
        if kind == "payload" and isinstance(body, dict) and "protocol" in body:
            proto, fld = body["protocol"], body.get("field")
            if proto in _L3:
                version = _L3[proto]
                if fld in _ADDR_FIELDS:
                    return _Field(_ADDR_FIELDS[fld], _implied_l3(version, family), version)
                if (proto, fld) in (("ip", "protocol"), ("ip6", "nexthdr")):
                    return _Field("proto", _implied_l3(version, family), version)
                raise _NotModelled
            if proto in _L4 or proto == "th":
                number, version = _L4.get(proto, (None, None))
                implied: tuple[ir.Condition, ...] = ()
                if version is not None:
                    implied += _implied_l3(version, family)
                if number is not None:
                    implied += (ir.Condition("proto", ir.Protocol(number)),)
                v = version or default_version
                if fld in _PORT_FIELDS and proto not in ("icmp", "icmpv6"):
                    return _Field(_PORT_FIELDS[fld], implied, v)
                if proto in ("icmp", "icmpv6") and fld in ("type", "code"):
                    return _Field(f"icmp_{fld}", implied, v)
                if proto == "tcp" and fld == "flags":
                    return _Field("tcp_flags", implied, v)
            raise _NotModelled
        if kind == "meta" and isinstance(body, dict):
            key = body.get("key")
            if key == "protocol":  # the ethertype: in ip, ip6 and inet, the IP version
                return _Field("nfproto_ether", (), default_version)
            mapping = {"iif": "iif", "iifname": "iif", "oif": "oif", "oifname": "oif",
                       "l4proto": "proto", "nfproto": "nfproto", "mark": "mark",
                       "pkttype": "pkttype"}
            if key in mapping:
                return _Field(mapping[key], (), default_version)
            raise _NotModelled
        if kind == "ct" and isinstance(body, dict) and "dir" not in body and \
                "family" not in body:
            key = body.get("key")
            if key in ("state", "status", "mark"):
                return _Field(f"ct_{key}", (), default_version)
            raise _NotModelled
        if kind == "&" and isinstance(body, (list, tuple)) and len(body) == 2:
            inner = _field(body[0], family)
            if inner.key in ("mark", "ct_mark") and isinstance(body[1], int):
                inner.mask = body[1]
                return inner
            if inner.key in ("src", "dst") and isinstance(body[1], str):
                inner.mask = int(_address(body[1]))
                return inner
            if inner.key == "tcp_flags":
                inner.mask = -1  # the flags themselves are read from the JSON by _tcp_flags
                return inner
            raise _NotModelled
        if kind == "concat" and isinstance(body, (list, tuple)):
            parts = [_field(p, family) for p in body]
            if any(p.mask is not None or p.key not in ir.SET_KEYS for p in parts):
                raise _NotModelled
            field = _Field(",".join(p.key for p in parts),
                           tuple(c for p in parts for c in p.implied), parts[0].version)
            field.parts = parts  # type: ignore[attr-defined]
            return field
    raise _NotModelled


def _is_th(left: Any) -> bool:
    if isinstance(left, dict) and "concat" in left:
        return any(_is_th(p) for p in left["concat"])
    return isinstance(left, dict) and isinstance(left.get("payload"), dict) and \
        left["payload"].get("protocol") == "th"


def _flag_names(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    if isinstance(value, dict) and "|" in value:
        return frozenset().union(*(_flag_names(v) for v in value["|"]))
    raise _NotModelled


_TCP_BITS = ("fin", "syn", "rst", "psh", "ack", "urg", "ecn", "cwr")


def _tcp_flag_names(value: Any) -> frozenset[str]:
    if isinstance(value, int) and not isinstance(value, bool):
        return frozenset(n for i, n in enumerate(_TCP_BITS) if value & (1 << i))
    return _flag_names(value)


def _tcp_flags(left: Any, op: str, right: Any) -> ir.TcpFlags:
    """``tcp flags syn`` (op in: any of them is set), ``tcp flags != syn`` (op ``!``: none of
    them), ``tcp flags == syn`` (exactly), ``tcp flags & (syn|ack) == syn`` (of syn and ack,
    only syn)."""
    if isinstance(left, dict) and "&" in left:
        if op not in ("==", "!="):
            raise _NotModelled
        mask = _tcp_flag_names(left["&"][1])
        comp = _tcp_flag_names(right) if right != 0 else frozenset()
        negated = op == "!="
    elif op in ("in", "!"):
        mask, comp = _tcp_flag_names(right), frozenset()
        negated = op == "in"  # "any of them set" is "not none of them set"
    elif op in ("==", "!="):
        mask, comp, negated = frozenset(_TCP_BITS), _tcp_flag_names(right), op == "!="
    else:
        raise _NotModelled

    def up(names: frozenset[str]) -> frozenset[str]:
        return frozenset("ECE" if n == "ecn" else n.upper() for n in names)
    return ir.TcpFlags(up(mask), up(comp), negated)


#: Compiled elements of named sets, per set and key: a set referenced by many rules (or a
#: verdict map's elements) is converted once.
_NAMED_CACHE: weakref.WeakKeyDictionary[NamedSet, dict[Any, tuple[Any, ...]]] = \
    weakref.WeakKeyDictionary()


def _set_elements(right: Any, table: Table) -> tuple[tuple[Any, ...], str | None]:
    """The elements of ``{"set": […]}``, ``@name`` (a named set of ``table``) or one value."""
    if isinstance(right, str) and right.startswith("@"):
        named = table.set(right[1:])
        if named is None:
            raise _NotModelled
        return _Named(named), right
    if isinstance(right, dict) and "set" in right:
        body = right["set"]
        return (tuple(body) if isinstance(body, (list, tuple)) else (body,)), None
    return (right,), None


class _Named(tuple):
    """A named set's elements, with the set itself (the cache key)."""

    named: NamedSet

    def __new__(cls, named: NamedSet) -> _Named:
        self = super().__new__(cls, named.elements)
        self.named = named
        return self


def _lookup(field: _Field, elements: tuple[Any, ...], negated: bool,
            name: str | None) -> ir.SetLookup:
    parts = getattr(field, "parts", [field])
    if isinstance(elements, _Named):
        cache = _NAMED_CACHE.setdefault(elements.named, {})
        key = tuple((p.key, p.version) for p in parts)
        if key not in cache:
            cache[key] = _lookup(field, tuple(elements), False, name).elements
        return ir.SetLookup(tuple(p.key for p in parts), cache[key], negated, name)
    out = []
    for element in elements:
        if isinstance(element, dict) and "elem" in element and isinstance(element["elem"], dict):
            element = element["elem"].get("val")
        if len(parts) > 1:
            if not (isinstance(element, dict) and isinstance(element.get("concat"),
                                                               (list, tuple))):
                raise _NotModelled
            values = element["concat"]
            if len(values) != len(parts):
                raise _NotModelled
        else:
            values = (element,)
        out.append(tuple(_component(p.key, v, p.version) for p, v in zip(parts, values,
                                                                           strict=True)))
    return ir.SetLookup(tuple(p.key for p in parts), tuple(out), negated, name)


def _single(field: _Field, value: Any, negated: bool) -> ir.Condition | None:
    """A one-value test as the condition the IR already has for it (None: use a lookup)."""
    key, v = field.key, value
    if key in ("src", "dst") and field.mask is not None:
        addr = _address(v)
        return ir.Condition(key, ir.AddressMask(addr.version, int(addr) & field.mask,
                                                field.mask, negated))
    if key in ("mark", "ct_mark") and isinstance(v, dict) and "prefix" in v and \
            field.mask is None:
        length = _int(v["prefix"].get("len"))
        mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
        return ir.Condition(key, ir.MarkMatch(_int(v["prefix"].get("addr")) & mask, mask,
                                              negated))
    if key in ("src", "dst"):
        if isinstance(v, dict) and "prefix" in v:
            net = ipaddress.ip_network(f"{v['prefix'].get('addr')}/{v['prefix'].get('len')}",
                                       strict=False)
            return ir.Condition(key, ir.AddressMask(net.version, int(net.network_address),
                                                    int(net.netmask), negated))
        if isinstance(v, dict) and "range" in v:
            first, last = (_address(x) for x in v["range"])
            return ir.Condition(f"{key}_range", ir.AddressRange(first, last, negated))
        addr = _address(v)
        full = (1 << addr.max_prefixlen) - 1
        return ir.Condition(key, ir.AddressMask(addr.version, int(addr), full, negated))
    if key in ("sport", "dport"):
        span = _span(v, _port)
        return ir.Condition(key, ir.PortSet((ir.PortRange(span.first, span.last),), negated))
    if key in ("iif", "oif") and isinstance(v, str):
        return ir.Condition(key, _interface(v, negated))
    if key == "proto" and not isinstance(v, dict):
        return ir.Condition("proto", ir.Protocol(_protocol(v), negated))
    if key == "nfproto_ether" and v in ("ip", "ip6"):
        return ir.Condition("nfproto", ir.IpVersion(frozenset({4 if v == "ip" else 6}),
                                                    negated))
    if key == "nfproto" and v in ("ipv4", "ipv6"):
        return ir.Condition("nfproto", ir.IpVersion(frozenset({4 if v == "ipv4" else 6}),
                                                    negated))
    if key in ("mark", "ct_mark") and isinstance(v, int):
        mask = field.mask if field.mask is not None else 0xFFFFFFFF
        return ir.Condition(key, ir.MarkMatch(v & mask, mask, negated))
    if key == "pkttype" and v in _PKTTYPES:
        return ir.Condition("pkttype", ir.PacketType(_PKTTYPES[v], negated))
    if key == "icmp_type" and not isinstance(v, dict):
        return ir.Condition("icmp", ir.IcmpMatch(_icmp_type(v, field.version), negated=negated))
    return None


def _match(stmt: dict[str, Any], table: Table,
           before: list[ir.Condition]) -> list[ir.Condition]:
    body = stmt["match"]
    left, right, op = body.get("left"), body.get("right"), body.get("op", "==")
    field = _field(left, table.family)
    implied = list(field.implied)
    if _is_th(left) and not any(c.field in ("proto", "proto_set") for c in before):
        # th reads the 2 bytes at its offset whatever the protocol (an ICMP checksum…)
        implied.append(_opaque(stmt, "th without a protocol reads any header"))
    negated = op == "!="
    if field.key == "tcp_flags":
        return [*implied, ir.Condition("tcp_flags", _tcp_flags(left, op, right))]
    if op in ("<", ">", "<=", ">="):
        if field.key not in ("sport", "dport", "mark", "ct_mark", "proto", "icmp_type",
                             "icmp_code") or not isinstance(right, int) or field.mask:
            raise _NotModelled
        top = 0xFFFFFFFF if field.key in ("mark", "ct_mark") else 0xFFFF
        first, last = {"<": (0, right - 1), "<=": (0, right), ">": (right + 1, top),
                       ">=": (right, top)}[op]
        if field.key in ("sport", "dport"):
            ports = (ir.PortRange(first, last),) if first <= last else ()
            return [*implied, ir.Condition(field.key, ir.PortSet(ports))]
        return [*implied, ir.Condition("set", ir.SetLookup((field.key,),
                                                           ((ir.KeySpan(first, last),),)))]
    if op == "!" and field.key in ("ct_state", "ct_status"):
        negated = True  # none of these flags
    elif op not in ("==", "!=", "in"):
        raise _NotModelled
    if field.key == "ct_state":
        if isinstance(right, str) and right.startswith("@"):
            elements, name = _set_elements(right, table)
            return [*implied, ir.Condition("set", _lookup(field, elements, negated, name))]
        names = _flag_names(right["set"] if isinstance(right, dict) and "set" in right
                            else right)
        if not names <= _CT_STATES:
            raise _NotModelled
        states = frozenset(n.upper() for n in names)
        if op in ("==", "!=") and not (isinstance(right, dict) and "set" in right) and \
                len(names) > 1:
            # an exact value of several bits: a connection is in one state at a time
            states = frozenset()
        return [*implied, ir.Condition("ct_state", ir.StateSet(states, negated))]
    if field.key == "ct_status":
        # ``ct status dnat`` (op in) tests the bit; ``!= dnat`` and ``== dnat`` compare the
        # whole status word (nft --debug=netlink: cmp neq 0x20), which the IR cannot say.
        if op not in ("in", "!") or (isinstance(right, dict) and "set" in right):
            raise _NotModelled
        names = _flag_names(right)
        if not names <= _CT_STATUS:
            raise _NotModelled
        return [*implied, ir.Condition("ct_status", ir.CtStatus(names, op == "!"))]
    if field.key == "icmp_code" and not isinstance(right, dict):
        return [*implied, ir.Condition("set", ir.SetLookup(
            ("icmp_code",), ((_span(right, _icmp_code),),), negated))]
    if field.key == "proto" and isinstance(right, dict) and "set" in right and \
            all(not isinstance(v, dict) for v in right["set"]):
        numbers = frozenset(_protocol(v) for v in right["set"])
        return [*implied, ir.Condition("proto_set", ir.ProtocolSet(numbers, negated))]
    if not (isinstance(right, dict) and "set" in right) and not (
            isinstance(right, str) and right.startswith("@")) and "," not in field.key:
        single = _single(field, right, negated)
        if single is not None:
            return [*implied, single]
    if field.key not in ir.SET_KEYS and "," not in field.key:
        raise _NotModelled
    elements, name = _set_elements(right, table)
    if field.mask not in (None, 0xFFFFFFFF):
        raise _NotModelled
    lookup = _lookup(field, elements, negated, name)
    if field.key in ("sport", "dport"):  # a port list is a PortSet, named or not
        ranges = tuple(ir.PortRange(e[0].first, e[0].last) for e in lookup.elements
                       if isinstance(e[0], ir.KeySpan))
        return [*implied, ir.Condition(field.key, ir.PortSet(ranges, negated))]
    return [*implied, ir.Condition("set", lookup)]


# --- statements --------------------------------------------------------------------------------


def _nat_rewrite(kind: str, body: Any) -> ir.Nat:
    if not isinstance(body, dict):
        return ir.Nat(kind)
    addr, port = body.get("addr"), body.get("port")
    if isinstance(addr, dict):
        if "range" in addr:
            addr = addr["range"][0]
        elif "prefix" in addr:
            addr = addr["prefix"].get("addr")
        else:
            addr = None
    if isinstance(port, dict) and "range" in port:
        port = port["range"][0]
    return ir.Nat(kind, addr if isinstance(addr, str) else None,
                  port if isinstance(port, int) and not isinstance(port, bool) else None)


def _verdict(value: Any) -> ir.Action | None:
    """A verdict expression (``{"accept": null}``, ``{"jump": {"target": "x"}}``)."""
    if isinstance(value, dict) and len(value) == 1:
        (kind, body), = value.items()
        if kind in ("accept", "drop", "continue", "return"):
            return ir.Action(kind, name=kind)
        if kind in ("jump", "goto") and isinstance(body, dict) and \
                isinstance(body.get("target"), str):
            return ir.Action(kind, chain=body["target"], name=f"{kind} {body['target']}")
    return None


def _statement_action(stmt: dict[str, Any]) -> ir.Action | None:
    (kind, body), = stmt.items()
    verdict = _verdict(stmt)
    if verdict is not None:
        return verdict
    if kind == "reject":
        return ir.Action("reject", name=_text(stmt))
    if kind == "queue":
        return ir.Action("queue", name=_text(stmt))
    if kind in ("snat", "dnat", "masquerade", "redirect"):
        return ir.Action("nat", rewrite=_nat_rewrite(kind, body), name=_text(stmt))
    if kind in ("tproxy", "fwd"):
        return ir.Action("ends", name=_text(stmt))
    return None


def _rewrite(stmt: dict[str, Any]) -> ir.SetMark | ir.Notrack | None:
    (kind, body), = stmt.items()
    if kind == "notrack":
        return ir.Notrack()
    if kind == "mangle" and isinstance(body, dict):
        key, value = body.get("key"), body.get("value")
        if isinstance(value, int) and not isinstance(value, bool) and isinstance(key, dict):
            if key == {"meta": {"key": "mark"}}:
                return ir.SetMark(value)
            if key == {"ct": {"key": "mark"}}:
                return ir.SetMark(value, ct=True)
    return None


def compile_rule(rule: Rule, table: Table) -> list[tuple[tuple[ir.Condition, ...], ir.Action]]:
    """One nft rule as IR (conditions, action) pairs: one pair, or one per verdict-map
    element. Never raises on a shape: what is not understood becomes opaque."""
    conditions: list[ir.Condition] = []
    action: ir.Action | None = None
    rewrite: ir.SetMark | ir.Notrack | None = None
    vmap_rules: list[tuple[tuple[ir.Condition, ...], ir.Action]] | None = None
    for stmt in rule.expr:
        if not isinstance(stmt, dict) or len(stmt) != 1:
            conditions.append(_opaque(stmt, "a statement of unknown shape"))
            continue
        (kind, body), = stmt.items()
        try:
            if kind == "match" and isinstance(body, dict):
                conditions += _match(stmt, table, conditions)
                continue
            if kind == "vmap" and isinstance(body, dict):
                vmap_rules = _vmap(body, table, conditions, stmt)
                break
            found = _statement_action(stmt)
            if found is not None:
                action = found
                break  # nothing after a verdict runs
            if kind in _GATES or kind == "xt":
                conditions.append(_opaque(stmt, f"{kind} is not modelled"))
                continue
            if kind in _SIDE_EFFECTS:
                rewrite = _rewrite(stmt) or rewrite
                continue
            conditions.append(_opaque(stmt, f"statement {kind} is not modelled"))
        except (_NotModelled, KeyError, TypeError, ValueError, IndexError, AttributeError):
            why = "not modelled" if kind == "match" else f"{kind} is not modelled"
            conditions.append(_opaque(stmt, why))
    if vmap_rules is not None:
        return [(_unique(c), a) for c, a in vmap_rules]
    if action is None:
        action = ir.Action("continue", rewrite=rewrite, name="continue")
    elif rewrite is not None and action.rewrite is None:
        action = ir.Action(action.kind, action.chain, rewrite, action.name)
    return [(_unique(conditions), action)]


def _unique(conditions: list[ir.Condition] | tuple[ir.Condition, ...]) -> tuple[
        ir.Condition, ...]:
    """Conditions in order without repeats (an implied ``meta l4proto tcp`` beside the
    written one)."""
    return tuple(dict.fromkeys(conditions))


def _vmap(body: dict[str, Any], table: Table, before: list[ir.Condition],
          stmt: Any) -> list[tuple[tuple[ir.Condition, ...], ir.Action]]:
    data = body.get("data")
    if isinstance(data, str) and data.startswith("@"):
        named = table.set(data[1:])
        pairs = named.elements if named is not None else None
        name: str | None = data
    elif isinstance(data, dict) and "set" in data:
        pairs, name = tuple(data["set"]), None
    else:
        pairs, name = None, None
    if pairs is None:
        return [((*before, _opaque(stmt, "verdict map not found")),
                 ir.Action("unknown", name=_text(stmt)))]
    try:
        field: _Field | None = _field(body.get("key"), table.family)
    except _NotModelled:
        field = None
    out, last = [], None
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            continue
        key, verdict = pair
        action = _verdict(verdict)
        if action is None:
            action = ir.Action("unknown", name=_text(stmt))
        if key == "*":
            last = ((*before,), action)
            continue
        if field is None:
            cond = _opaque(stmt, "verdict map key not modelled")
            out.append(((*before, cond), action))
            continue
        try:
            lookup = _lookup(field, (key,), False, name)
            out.append(((*before, *field.implied, ir.Condition("set", lookup)), action))
        except (_NotModelled, KeyError, TypeError, ValueError, IndexError):
            out.append(((*before, _opaque(stmt, "verdict map element not modelled")), action))
    if last is not None:
        out.append(last)
    return out


def _chain(chain: Chain, table: Table) -> ir.Chain:
    rules = []
    for rule in chain.rules:
        source = ir.Source("nft", table.family, table.name, chain.name, rule.position,
                           rule.handle, origin=rule,
                           render=lambda r=rule: render.rule_text(r))
        for conditions, action in compile_rule(rule, table):
            rules.append(ir.Rule(conditions, action, source))
    base = None
    if chain.is_base:
        base = ir.Hook(chain.hook or "", chain.priority if chain.priority is not None else 0,
                       chain.type or "filter", chain.policy or "accept")
    return ir.Chain(chain.name, tuple(rules), base)


def compile_table(table: Table) -> ir.Table:
    return ir.Table("nft", table.family, table.name,
                    tuple(_chain(c, table) for c in table.chains))


def compile_ruleset(ruleset: Ruleset, *, include_iptables_nft: bool = False) -> ir.Ruleset:
    """The native nft tables as IR. iptables-nft's tables are left out unless asked for:
    the whole picture reads them through iptables-nft-save (see ``live.whole_picture``)."""
    return ir.Ruleset(tuple(compile_table(t) for t in ruleset.tables
                            if include_iptables_nft or not t.iptables_nft))


def understood(stmt: Any, table: Table) -> bool:
    """Whether one statement compiles without an opaque condition (corpus figures)."""
    rule = Rule(table.family, table.name, "c", None, 1, (stmt,))
    return all(c.field != "opaque" for conds, _ in compile_rule(rule, table) for c in conds)

