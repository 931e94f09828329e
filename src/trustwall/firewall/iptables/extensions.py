"""The registry of iptables match and target extensions: each one declared once, here.

One declaration per extension (``match("tcp", ...)``, ``target("REJECT", ...)``, see
:class:`Extension`): its options in the order iptables-save prints them, how many argument
words each takes, how to bring a value to the spelling iptables-save uses (the kernel stores
numbers, so ``--dport ssh`` comes back as ``--dport 22``), the defaults and final checks of its
libxt_*.c, and which options trace and the packet spaces model exactly. The parser, the
renderer, the model's typed accessors, the tracer and the packet spaces all ask this module;
an extension missing from it is still parsed, generically, and kept verbatim (and is opaque to
the analyses).

Spec mini-language for one option: ``name[/alias...][=nargs][:kind]``; nargs is 0, 1 (default),
2, or ``?`` (an optional argument); kind names a canonicaliser in :data:`CANON`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, TypeVar

from trustwall.firewall.iptables.model import (
    HOOKS,
    NO_IN_HOOKS,
    NO_OUT_HOOKS,
    Match,
    Option,
    Protocol,
    Target,
)
from trustwall.firewall.ir import (
    AddressTypes,
    Condition,
    MarkCopy,
    MarkMatch,
    Nat,
    Notrack,
    Opaque,
    PacketType,
    Rewrite,
    SetMark,
)
from trustwall.firewall.protocols import (
    ICMP6_TYPES,
    ICMP_TYPES,
    PORT_PROTOCOLS,
    TCP_FLAGS,
    BadValue,
    protocol_name,
    protocol_number,
    service_port,
)


@dataclass(frozen=True)
class OptSpec:
    name: str
    nargs: int | str = 1  # 0, 1, 2 or "?"
    kind: str = "raw"
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtSpec:
    """A match or target extension: ``options`` are in iptables-save order."""

    name: str
    options: tuple[OptSpec, ...]
    family: int = 0  # 0 both, 4 or 6 only
    required: tuple[str, ...] = ()  # at least one of these must be given
    proto: tuple[str, ...] = ()  # the rule's -p must be one of these (save spelling)

    def option(self, name: str) -> OptSpec | None:
        """The option called ``name`` or one of its aliases (exact; no prefixes)."""
        index = _INDEX.get(id(self))
        if index is None:
            index = {}
            for o in self.options:
                for n in (o.name, *o.aliases):
                    index.setdefault(n, o)
            _INDEX[id(self)] = index
        return index.get(name)


# id(spec) -> {option name or alias: OptSpec}; specs live for the whole process (module tables)
_INDEX: dict[int, dict[str, OptSpec]] = {}
_ORDER: dict[int, dict[str, int]] = {}


def save_order(spec: ExtSpec) -> dict[str, int]:
    """Option name -> its position in iptables-save output for this extension."""
    order = _ORDER.get(id(spec))
    if order is None:
        order = _ORDER[id(spec)] = {o.name: i for i, o in enumerate(spec.options)}
    return order


@cache
def canonical(kind: str, value: str) -> str:
    """CANON[kind](value), remembered: real rulesets repeat the same ports and flags a lot."""
    return CANON[kind](value)


def _spec(name: str, text: str, *, family: int = 0, required: tuple[str, ...] = (),
          proto: tuple[str, ...] = ()) -> ExtSpec:
    opts = []
    for word in text.split():
        word, _, kind = word.partition(":")
        word, _, nargs = word.partition("=")
        names = word.split("/")
        n: int | str = 1 if not nargs else ("?" if nargs == "?" else int(nargs))
        opts.append(OptSpec(names[0], n, kind or "raw", tuple(names[1:])))
    return ExtSpec(name, tuple(opts), family, required, proto)


# --- canonicalisers --------------------------------------------------------------------------

def _int(text: str, lo: int = 0, hi: int = 0xFFFFFFFF) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise BadValue(f"invalid number {text!r}") from None
    if not lo <= value <= hi:
        raise BadValue(f"value {text!r} out of range {lo}-{hi}")
    return value


def port(text: str) -> int:
    if text.isdigit():
        return _int(text, 0, 65535)
    if not text or text.startswith("-"):
        raise BadValue(f"invalid port/service {text!r}")
    return service_port(text)


def port_range(text: str, *, keep_full: bool = False, reversed_ok: bool = False) -> str:
    """``1024:`` -> ``1024:65535``, ``4:4`` -> ``4``, ``:`` -> ``0:65535``. ``reversed_ok``:
    the extension keeps ``60000:29`` (udp, dccp, conntrack in 1.8.9; it matches no port)."""
    if ":" not in text:
        return str(port(text))
    a, _, b = text.partition(":")
    lo = port(a) if a else 0
    hi = port(b) if b else 65535
    if lo > hi and not reversed_ok:
        raise BadValue(f"invalid port range {text!r} (start after end)")
    return str(lo) if lo == hi else f"{lo}:{hi}"


def port_list(text: str) -> str:
    parts = text.split(",")
    if len(parts) > 15:
        raise BadValue("too many ports specified (at most 15)")
    out = []
    for p in parts:
        if ":" in p:
            a, _, b = p.partition(":")
            lo, hi = port(a), port(b)
            if lo > hi:
                raise BadValue(f"invalid port range {p!r}")
            out.append(f"{lo}:{hi}")
        else:
            out.append(str(port(p)))
    return ",".join(out)


#: ``--ctstate`` words in the order iptables-save prints them (libxt_conntrack), with the
#: virtual SNAT/DNAT states; a packet's own states are ``ir.CT_STATES``.
CT_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")


def states(text: str) -> str:
    given = {s.upper() for s in text.split(",")}
    unknown = given - set(CT_STATES)
    if unknown or not text:
        raise BadValue(f"bad state {text!r}")
    return ",".join(s for s in CT_STATES if s in given)


def tcp_flag_set(text: str) -> str:
    given = set()
    for f in text.upper().split(","):
        if f == "ALL":
            given.update(TCP_FLAGS[:6])
        elif f == "NONE":
            continue
        elif f in TCP_FLAGS:
            given.add(f)
        else:
            raise BadValue(f"unknown TCP flag {f!r}")
    return ",".join(f for f in TCP_FLAGS if f in given) or "NONE"


def hexmark(text: str, *, default_mask: bool = False) -> str:
    value, slash, mask = text.partition("/")
    v = _int(value)
    if slash and (default_mask or _int(mask) != 0xFFFFFFFF):
        return f"{v:#x}/{_int(mask):#x}"
    return f"{v:#x}/0xffffffff" if default_mask else f"{v:#x}"


def _icmp(text: str, names: dict[str, str], any_ok: bool) -> str:
    if text in names:
        text = names[text]
        if text == "any":
            return text
    elif text == "any" and any_ok:
        return text
    itype, slash, code = text.partition("/")
    t = _int(itype, 0, 255)
    if not slash:
        return str(t)
    lo_s, colon, hi_s = code.partition(":")
    lo = _int(lo_s, 0, 255)
    hi = _int(hi_s, 0, 255) if colon else lo
    if lo > hi:
        raise BadValue(f"invalid ICMP code range {code!r}")
    if t == 255 and lo == 0 and hi == 255:
        return "any"
    if lo == 0 and hi == 255:
        return str(t)
    return f"{t}/{lo}" if lo == hi else f"{t}/{lo}:{hi}"


def icmp_type(text: str) -> str:
    return _icmp(text, ICMP_TYPES, True)


def icmp6_type(text: str) -> str:
    return _icmp(text, ICMP6_TYPES, False)


def mac(text: str) -> str:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        raise BadValue(f"bad mac address {text!r}")
    try:
        return ":".join(f"{int(p, 16):02x}" for p in parts)
    except ValueError:
        raise BadValue(f"bad mac address {text!r}") from None


def iprange(text: str) -> str:
    first, dash, last = text.partition("-")
    try:
        a = ipaddress.ip_address(first)
        b = ipaddress.ip_address(last) if dash else a
    except ValueError:
        raise BadValue(f"invalid address range {text!r}") from None
    return f"{a}-{b}"


LIMIT_UNITS = {"s": "sec", "sec": "sec", "second": "sec", "m": "min", "min": "min",
               "minute": "min", "h": "hour", "hour": "hour", "d": "day", "day": "day"}


# libxt_limit: the kernel keeps the rate as a period in 1/10000 s (XT_LIMIT_SCALE).
_LIMIT_SCALE = {"day": 10000 * 86400, "hour": 10000 * 3600, "min": 10000 * 60, "sec": 10000}


def limit_rate(text: str) -> str:
    """The rate as iptables-save prints it back: ``n/unit`` becomes the period the kernel
    stores (scale // n), printed in the largest unit that keeps it whole (``60/min`` ->
    ``1/sec``, ``24/day`` -> ``1/hour``), as libxt_limit's print_rate does."""
    num, slash, unit = text.partition("/")
    n = _int(num, 1)
    if slash:
        u = next((v for k, v in LIMIT_UNITS.items() if k.startswith(unit) or (unit.startswith(k)
                  and unit in (k, k + "s"))), None)
        if u is None:
            raise BadValue(f"bad rate {text!r}")
    else:
        u = "sec"
    period = _LIMIT_SCALE[u] // n
    if period == 0:
        raise BadValue(f"rate too fast {text!r}")
    return _print_rate(period, _LIMIT_SCALE)[0]


def _print_rate(period: int, scale: dict[str, int]) -> tuple[str, str]:
    """(rate, unit) as libxt_limit/libxt_hashlimit print a stored period: the largest unit in
    which it is a whole number of packets."""
    units = list(scale.items())
    i = 1
    while i < len(units) and not (period > units[i][1]
                                  or units[i][1] // period < units[i][1] % period):
        i += 1
    name, mult = units[i - 1]
    return f"{mult // period}/{name}", name


# libxt_hashlimit (revision 2 and later): periods in 1/1000000 s.
_HASHLIMIT_SCALE = {"day": 1000000 * 86400, "hour": 1000000 * 3600, "min": 1000000 * 60,
                    "sec": 1000000}
_UNIT_SECONDS = {"day": 86400, "hour": 3600, "min": 60, "sec": 1}


def hashlimit_rate(text: str) -> tuple[str, int, int] | None:
    """A packet rate as ip(6)tables-save prints it back, with the default --hashlimit-htable-
    expire (ms) of the unit typed and of the unit printed (the kernel's default is the typed
    unit; save prints the expiry when it is not the printed one). None for a byte rate."""
    num, slash, unit = text.partition("/")
    if not num.isdigit() or not slash:
        return None
    u = next((v for k, v in LIMIT_UNITS.items() if k.startswith(unit) or (unit.startswith(k)
              and unit in (k, k + "s"))), None)
    if u is None:
        raise BadValue(f"bad rate {text!r}")
    n = _int(num, 1)
    period = _HASHLIMIT_SCALE[u] // n
    if period == 0:
        raise BadValue(f"rate too fast {text!r}")
    rate, printed = _print_rate(period, _HASHLIMIT_SCALE)
    return rate, _UNIT_SECONDS[u] * 1000, _UNIT_SECONDS[printed] * 1000


def probability(text: str) -> str:
    """libxt_statistic keeps ``--probability`` as a 31-bit fraction and prints it with 11
    decimals: ``0.1`` comes back as ``0.10000000009``."""
    try:
        value = float(text)
    except ValueError:
        raise BadValue(f"bad probability {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise BadValue(f"probability {text!r} is not between 0 and 1")
    return f"{round(0x80000000 * value) / 0x80000000:.11f}"


_U32_OPS = {"&": "&", "<<": "<<", ">>": ">>", "@": "@"}


def u32(text: str) -> str:
    """A u32 test in the kernel's spelling (libxt_u32's dump): every number in hex, no spaces,
    ``0>>22&0x3C@0>>16=0x50`` -> ``0x0>>0x16&0x3c@0x0>>0x10=0x50``."""
    out = []
    for test in text.split("&&"):
        location, eq, values = test.partition("=")
        if not eq:
            raise BadValue(f"u32: missing '=' in {test.strip()!r}")
        words = [w for w in re.split(r"\s*(<<|>>|&|@)\s*", location.strip())]
        if len(words) % 2 == 0 or len(words) > 21:
            raise BadValue(f"u32: bad location {location.strip()!r}")
        parts = [f"{_int(words[0].strip()):#x}"]
        for op, num in zip(words[1::2], words[2::2], strict=True):
            parts.append(_U32_OPS[op] + f"{_int(num.strip()):#x}")
        ranges = []
        for item in values.split(","):
            lo, colon, hi = item.strip().partition(":")
            a = _int(lo.strip())
            b = _int(hi.strip()) if colon else a
            ranges.append(f"{a:#x}" if a == b else f"{a:#x}:{b:#x}")
        if len(ranges) > 10:
            raise BadValue("u32: too many value ranges")
        out.append("".join(parts) + "=" + ",".join(ranges))
    if len(out) > 10:
        raise BadValue("u32: too many tests")
    return "&&".join(out).replace("0x0x", "0x")


PKT_TYPES = {"unicast": "unicast", "host": "unicast", "broadcast": "broadcast",
             "multicast": "multicast", "otherhost": "otherhost"}


def pkt_type(text: str) -> str:
    """libxt_pkttype keeps ``host`` as PACKET_HOST, which it prints as ``unicast``."""
    value = PKT_TYPES.get(text.lower())
    if value is None:
        raise BadValue(f"bad packet type {text!r}")
    return value


def daytime(text: str) -> str:
    """libxt_time keeps a time of day in seconds and prints it as HH:MM:SS."""
    m = re.fullmatch(r"(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?", text)
    if m is None or int(m[1]) > 23 or int(m[2]) > 59 or int(m[3] or 0) > 59:
        raise BadValue(f"invalid time {text!r}")
    return f"{int(m[1]):02d}:{int(m[2]):02d}:{int(m[3] or 0):02d}"


def date(text: str) -> str:
    """YYYY[-MM[-DD[Thh[:mm[:ss]]]]] as libxt_time prints it back (missing parts zero)."""
    m = re.fullmatch(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2})(?:T(\d{1,2})(?::(\d{1,2})"
                     r"(?::(\d{1,2}))?)?)?)?)?", text)
    if m is None or not 1970 <= int(m[1]) <= 2038:
        raise BadValue(f"invalid date {text!r}")
    mo, d = int(m[2] or 1), int(m[3] or 1)
    h, mi, sec = int(m[4] or 0), int(m[5] or 0), int(m[6] or 0)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and sec < 60):
        raise BadValue(f"invalid date {text!r}")
    return f"{m[1]}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{sec:02d}"


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def weekdays(text: str) -> str:
    days = set()
    for word in text.split(","):
        if word.isdigit() and 1 <= int(word) <= 7:
            days.add(int(word) - 1)
            continue
        hit = [i for i, d in enumerate(WEEKDAYS) if d.lower() == word.lower()[:3]]
        if not hit or len(word) < 2:
            raise BadValue(f"no, the day {word!r} is neither a number nor a day name")
        days.add(hit[0])
    return ",".join(WEEKDAYS[i] for i in sorted(days))


def monthdays(text: str) -> str:
    days = sorted({_int(w, 1, 31) for w in text.split(",")})
    return ",".join(str(d) for d in days)


CT_STATUS = ("EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED")  # the kernel's print order


def ct_status(text: str) -> str:
    names = {w.upper() for w in text.split(",")}
    if names - {*CT_STATUS, "NONE"}:
        raise BadValue(f"bad ctstatus {text!r}")
    return ",".join(n for n in CT_STATUS if n in names) or "NONE"


# libip6t_ipv6header: name -> header number, and its print order (bit order of the mask).
_IP6_HEADERS = {"hop-by-hop": 0, "hop": 0, "dst": 60, "route": 43, "frag": 44, "auth": 51,
                "esp": 50, "none": 59, "prot": 255, "protocol": 255}
_IP6_HEADER_ORDER = (0, 60, 43, 44, 51, 50, 59, 255)


def ip6_headers(text: str) -> str:
    """The header list as ip6tables-save prints it: in the extension's bit order, each named
    from /etc/protocols (``ipv6-frag``), else by the extension's own word (``hop-by-hop``,
    ``protocol``)."""
    numbers = set()
    for word in text.split(","):
        n = _IP6_HEADERS.get(word.lower())
        if n is None:
            try:
                n = protocol_number(word)
            except BadValue:
                n = None
        if n not in _IP6_HEADER_ORDER:
            raise BadValue(f"unknown header {word!r} specified")
        numbers.add(n)
    names = []
    for n in _IP6_HEADER_ORDER:
        if n in numbers:
            name = protocol_name(n) if n != 0 else "hop-by-hop"
            names.append("protocol" if name == str(n) else name)
    return ",".join(names)


LOG_LEVELS = {"emerg": 0, "panic": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warn": 4,
              "warning": 4, "notice": 5, "info": 6, "debug": 7}


def log_level(text: str) -> str:
    if text in LOG_LEVELS:
        return str(LOG_LEVELS[text])
    return str(_int(text, 0, 7))


def string_value(text: str) -> str:
    return text


def uint(text: str) -> str:
    return str(_int(text))


def int_range(text: str) -> str:
    a, colon, b = text.partition(":")
    lo = _int(a) if a else 0
    hi = _int(b) if b else 0xFFFFFFFF
    if not colon:
        return str(lo)
    if lo > hi:
        raise BadValue(f"invalid range {text!r}")
    return str(lo) if lo == hi else f"{lo}:{hi}"


def _range(text: str, hi: int, sep: str = ":") -> str:
    """``a:b`` with open ends filled in; ``a:a`` -> ``a``."""
    if sep not in text:
        return str(_int(text, 0, hi))
    a, _, b = text.partition(sep)
    lo = _int(a, 0, hi) if a else 0
    top = _int(b, 0, hi) if b else hi
    if lo > top:
        raise BadValue(f"invalid range {text!r} (start after end)")
    return str(lo) if lo == top else f"{lo}{sep}{top}"


def spi_range(text: str) -> str:
    return _range(text, 0xFFFFFFFF)


def len_range(text: str) -> str:
    return _range(text, 0xFFFF)


def _id_range(text: str) -> str:
    a, dash, b = text.partition("-")
    lo = _int(a)
    if not dash:
        return str(lo)
    hi = _int(b)
    if lo > hi:
        raise BadValue(f"invalid id range {text!r}")
    return f"{lo}-{hi}"


def _owner_id(text: str, lookup: Callable[[str], int], what: str) -> str:
    """A uid/gid or range as the kernel keeps it; a name resolved on this host."""
    if text.replace("-", "").isdigit():
        return _id_range(text)
    try:
        return str(lookup(text))
    except KeyError:
        raise BadValue(f"unknown {what} {text!r}") from None


def user(text: str) -> str:
    import pwd

    return _owner_id(text, lambda name: pwd.getpwnam(name).pw_uid, "user")


def group(text: str) -> str:
    import grp

    return _owner_id(text, lambda name: grp.getgrnam(name).gr_gid, "group")


def nat_ports(text: str) -> str:
    """``ssh`` -> ``22``, ``512-512`` -> ``512`` (REDIRECT/MASQUERADE --to-ports)."""
    try:
        return str(port(text))
    except BadValue:
        pass
    a, dash, b = text.partition("-")
    if not (a.isdigit() and b.isdigit()):
        raise BadValue(f"invalid port range {text!r} (numbers only in a range)")
    lo = port(a)
    if not dash:
        return str(lo)
    hi = port(b)
    if lo > hi:
        raise BadValue(f"invalid port range {text!r}")
    return str(lo) if lo == hi else f"{lo}-{hi}"


def nat_to(text: str) -> str:
    """DNAT/SNAT ``--to-destination addr[-addr][:port[-port][/base]]`` with services resolved."""
    if text.startswith("["):
        addr, bracket, rest = text.partition("]")
        addr += bracket
        ports = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1 or (":" in text and "." in text.split(":")[0]):
        addr, _, ports = text.partition(":")
    elif ":" in text and text.count(":") > 1:
        addr, ports = text, ""
    else:
        addr, ports = text, ""
    if not ports:
        return addr if not text.endswith(":") else text
    main, slash, base = ports.partition("/")
    out = nat_ports(main)
    if "-" in out:
        a, _, b = out.partition("-")
        out = f"{a}-{b}"
    if slash:
        if port(base) == 0:
            raise BadValue(f"invalid base port in {text!r}")
        out += f"/{port(base)}"
    return f"{addr}:{out}"


DSCP_CLASSES = {"CS0": 0, "CS1": 8, "CS2": 16, "CS3": 24, "CS4": 32, "CS5": 40, "CS6": 48,
                "CS7": 56, "BE": 0, "AF11": 10, "AF12": 12, "AF13": 14, "AF21": 18, "AF22": 20,
                "AF23": 22, "AF31": 26, "AF32": 28, "AF33": 30, "AF41": 34, "AF42": 36,
                "AF43": 38, "EF": 46}


def dscp(text: str) -> str:
    if text.upper() in DSCP_CLASSES:
        return f"{DSCP_CLASSES[text.upper()]:#04x}"
    return f"{_int(text, 0, 63):#04x}"


TOS_NAMES = {"minimize-delay": 0x10, "maximize-throughput": 0x08,
             "maximize-reliability": 0x04, "minimize-cost": 0x02, "normal-service": 0x00}


def tos(text: str) -> str:
    """``Minimize-Delay`` -> ``0x10/0x3f``, ``0x1f`` -> ``0x1f/0xff``."""
    if text.lower() in TOS_NAMES:
        return f"{TOS_NAMES[text.lower()]:#04x}/0x3f"
    value, slash, mask = text.partition("/")
    v = _int(value, 0, 255)
    m = _int(mask, 0, 255) if slash else 0xFF
    return f"{v:#04x}/{m:#04x}"


def connbytes(text: str) -> str:
    a, colon, b = text.partition(":")
    lo = _int(a) if a else 0
    if not colon or not b:
        return str(lo)
    hi = _int(b)
    if lo > hi:
        raise BadValue(f"invalid range {text!r}")
    return f"{lo}:{hi}"


# libip6t_mh's names for mobility header types (long and short forms)
MH_TYPES = {"binding-refresh-request": 0, "brr": 0, "home-test-init": 1, "hoti": 1,
            "careof-test-init": 2, "coti": 2, "home-test": 3, "hot": 3, "careof-test": 4,
            "cot": 4, "binding-update": 5, "bu": 5, "binding-acknowledgement": 6, "ba": 6,
            "binding-error": 7, "be": 7}


def mh_range(text: str) -> str:
    """``binding-update`` -> ``5``; ``a:b`` ranges of numbers or names."""
    return _range(":".join(str(MH_TYPES.get(p.lower(), p)) if p else p
                           for p in text.split(":")), 255)


def queue_range(text: str) -> str:
    a, colon, b = text.partition(":")
    lo = _int(a, 0, 65535) if a else 0
    hi = _int(b, 0, 65534) if b else 65534
    if not colon or lo >= hi:
        raise BadValue(f"bad --queue-balance range {text!r}")
    return f"{lo}:{hi}"


def netmask_addr(text: str) -> str:
    """``1.2.3.4/255.255.255.0`` -> ``1.2.3.4/24``; a bare address gets its full prefix."""
    addr, slash, mask = text.partition("/")
    try:
        ip = ipaddress.ip_address(addr)
        if not slash:
            return str(ip)
        if mask.isdigit():
            return f"{ip}/{int(mask)}"
        net = ipaddress.ip_network(f"0.0.0.0/{mask}" if ip.version == 4 else f"::/{mask}")
        return f"{ip}/{net.prefixlen}"
    except ValueError:
        raise BadValue(f"invalid address {text!r}") from None


ADDR_TYPES = ("UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE",
              "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE")


def addr_types(text: str) -> str:
    given = {t.upper() for t in text.split(",")}
    if not given <= set(ADDR_TYPES):
        raise BadValue(f"unknown address type in {text!r}")
    return ",".join(t for t in ADDR_TYPES if t in given)


def quoted(text: str) -> str:
    return text


def protonum(text: str) -> str:
    n = protocol_number(text)
    if n == 0:
        raise BadValue("rule would never match protocol")
    return str(n)


CANON: dict[str, Callable[[str], str]] = {
    "raw": str, "port": lambda t: str(port(t)), "portrange": port_range,
    "anyportrange": lambda t: port_range(t, reversed_ok=True), "portlist": port_list,
    "states": states, "flags": tcp_flag_set, "mark": hexmark,
    "xmark": lambda t: hexmark(t, default_mask=True), "icmp": icmp_type,
    "icmp6": icmp6_type, "mac": mac, "iprange": iprange, "rate": limit_rate,
    "loglevel": log_level, "str": string_value, "uint": uint, "intrange": int_range,
    "protonum": protonum, "spirange": spi_range, "lenrange": len_range, "user": user,
    "group": group, "natports": nat_ports, "natto": nat_to, "qstr": quoted,
    "addrtypes": addr_types, "probability": probability, "u32": u32, "pkttype": pkt_type,
    "ctstatus": ct_status, "daytime": daytime, "date": date, "weekdays": weekdays,
    "monthdays": monthdays, "ip6headers": ip6_headers, "xmask": lambda t: f"{_int(t):#x}",
    "u8": lambda t: str(_int(t, 0, 255)), "u16": lambda t: str(_int(t, 0, 65535)),
    "u8nz": lambda t: str(_int(t, 1, 255)), "u64": lambda t: str(_int(t, 0, 2**64 - 1)),
    "dscp": dscp, "tos": tos, "connbytes": connbytes, "mhrange": mh_range,
    "queuerange": queue_range, "addrmask": netmask_addr,
    "netmapto": lambda t: netmask_addr(t if "/" in t else f"{t}/{128 if ':' in t else 32}"),
}

#: Values that iptables-save prints through xtables_save_string (quoted when not a plain word).
STRING_KINDS = frozenset({"str"})
#: Values that iptables-save always prints in double quotes (string, LED, cgroup, connlabel).
QUOTED_KINDS = frozenset({"qstr", "u32"})

#: (module, option) -> value meaning "everything"; dropped from the save form unless negated.
DROP_FULL = {("tcp", "sport"): "0:65535", ("tcp", "dport"): "0:65535",
             ("udp", "sport"): "0:65535", ("udp", "dport"): "0:65535",
             ("udplite", "sport"): "0:65535", ("udplite", "dport"): "0:65535",
             ("esp", "espspi"): "0:4294967295", ("ah", "ahspi"): "0:4294967295",
             ("ipcomp", "ipcompspi"): "0:4294967295", ("frag", "fragid"): "0:4294967295",
             ("rt", "rt-segsleft"): "0:4294967295", ("mh", "mh-type"): "0:255"}

# --- -L text helpers (libxt_*.c print functions) ----------------------------------------

_NO_QUOTE = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def save_string(value: str) -> str:
    """Quote like libxtables' xtables_save_string: plain words bare, the rest in quotes."""
    if value and all(c in _NO_QUOTE for c in value):
        return value
    escaped = "".join("\\" + c if c in "\"\\'" else c for c in value)
    return f'"{escaped}"'


_TCP_FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20,
                  "ECE": 0x40, "CWR": 0x80}


def _ports_l(name: str, opt: Option | None, full: str = "0:65535") -> str:
    """libxt_tcp's print_ports: ``spt:22``, ``dpts:1:1023``, ``spt:!5``; nothing for all."""
    if opt is None or not opt.values or (opt.values[0] == full and not opt.negated):
        return ""
    lo, _, hi = opt.values[0].partition(":")
    bang = "!" if opt.negated else ""
    if not hi or lo == hi:
        return f" {name}:{bang}{lo}"
    return f" {name}s:{bang}{lo}:{hi}"


_SCTP_CHUNKS = {"DATA": 0, "INIT": 1, "INIT_ACK": 2, "SACK": 3, "HEARTBEAT": 4,
                "HEARTBEAT_ACK": 5, "ABORT": 6, "SHUTDOWN": 7, "SHUTDOWN_ACK": 8, "ERROR": 9,
                "COOKIE_ECHO": 10, "COOKIE_ACK": 11, "ECN_ECNE": 12, "ECN_CWR": 13,
                "SHUTDOWN_COMPLETE": 14, "I_DATA": 0x40, "ASCONF_ACK": 0x80, "RE_CONFIG": 0x82,
                "PAD": 0x84, "FORWARD_TSN": 0xC0, "ASCONF": 0xC1, "I_FORWARD_TSN": 0xC2}


def _range_l(opt: Option | None, full: str) -> str:
    """``1``, ``4:123``, ``!0:255``: the plain range style of mh and length."""
    if opt is None or not opt.values or (opt.values[0] == full and not opt.negated):
        return ""
    return ("!" if opt.negated else "") + opt.values[0]


def _flags_l(opt: Option | None) -> str:
    if opt is None or len(opt.values) != 2:
        return ""
    mask, comp = (sum(_TCP_FLAG_BITS.get(f, 0) for f in v.split(",")) for v in opt.values)
    return f" flags:{'!' if opt.negated else ''}0x{mask:02X}/0x{comp:02X}"


def dashless(options: tuple[Option, ...]) -> str:
    """The common -L style of extensions without their own: ``name value`` per option."""
    return "".join((" !" if opt.negated else "") + f" {opt.name}"
                   + "".join(f" {save_string(v) if ' ' in v else v}" for v in opt.values)
                   for opt in options)


def _xmark_l(xmark: str) -> str:
    """libxt_MARK's -L words for --set-xmark value/mask."""
    v_text, _, m_text = xmark.partition("/")
    value, mask = int(v_text, 16), int(m_text or "0xffffffff", 16)
    if value == 0 and mask != 0:
        return f"and {(~mask) & 0xFFFFFFFF:#x}"
    if value == mask:
        return f"or {value:#x}"
    if mask == 0:
        return f"xor {value:#x}"
    if mask == 0xFFFFFFFF:
        return f"set {value:#x}"
    return f"xset {value:#x}/{mask:#x}"


def _connmark_save_l(t: Target) -> str:
    o = t.option
    verb = "save" if o("save-mark") is not None else "restore"
    nf, ct = o("nfmask"), o("ctmask")
    nfv = nf.value if nf and nf.value else "0xffffffff"
    ctv = ct.value if ct and ct.value else "0xffffffff"
    if nfv == ctv == "0xffffffff":
        return f" CONNMARK {verb}"
    if nfv == ctv:
        return f" CONNMARK {verb} mask {nfv}"
    if verb == "save":
        return f" CONNMARK save nfmask {nfv} ctmask ~{ctv}"
    return f" CONNMARK restore ctmask {ctv} nfmask ~{nfv}"


def _bang(opt: Option | None) -> str:
    return "!" if opt is not None and opt.negated else ""


# --- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What an extension's finish and check see of the rule around it."""

    family: int
    chain: str
    proto: Protocol | None


class Refused(BadValue):
    """iptables refuses the extension as given; ``word`` is the word to point the user at."""

    def __init__(self, message: str, word: str | None = None) -> None:
        super().__init__(message)
        self.word = word


Finish = Callable[[list[Option], Context], list[Option]]
Check = Callable[[list[Option], Context], "str | None"]


@dataclass(frozen=True)
class Extension:
    """Everything trustwall knows about one match (``tcp``) or target (``REJECT``).

    - ``spec``: options in iptables-save order with their argument counts and canonical
      spellings; None: the extension is parsed generically and kept verbatim;
    - ``finish``: brings the options to what the kernel stores and iptables-save prints
      (defaults filled in, aliases folded); raises :class:`Refused` for what iptables always
      refuses;
    - ``check``: the extension's final check (libxt_*'s x6_fcheck), for strict input only; a
      match's check sees its finished options, a target's the options as given;
    - ``listing``: the text ``iptables -L -n`` prints for it (None from the function, or no
      function: the generic ``name value`` words);
    - ``meaning``: the match as IR conditions (:mod:`trustwall.firewall.ir`), an option outside
      ``modelled`` as an :class:`~trustwall.firewall.ir.Opaque` condition; None: opaque;
    - ``modelled``: the options whose meaning trace and packet spaces model exactly (None: the
      extension is opaque to them, and so is any option outside the set);
    - ``typed``: further options that the typed accessors of ``model.Match`` read;
    - ``bare``: a match complete without options; ``needs_option``: a target refused without;
    - ``effect`` of a target on the packet's walk: ``accept`` (ends this base chain),
      ``final`` (DROP, REJECT, QUEUE: ends the packet), ``return``, ``nat`` (rewrites
      addresses, ends the nat chain), ``continue`` (next rule), ``ends`` (ends the walk in a
      way not modelled: TPROXY, SYNPROXY); None: unknown; ``sets``: what it changes that later
      rules read (``mark``, ``conntrack``);
    - ``rewrite``: a target's change to the packet as an IR rewrite (mark, NAT, notrack),
      read from its options once, when the ruleset is compiled to the IR;
    - ``tables``/``hooks``: where the kernel accepts it (xt_*.c ``.table``/``.hooks``, and
      what iptables 1.8.9 refuses on its own; None: anywhere).
    """

    name: str
    spec: ExtSpec | None = None
    finish: Finish | None = None
    check: Check | None = None
    listing: Callable[[Any], str | None] | None = None
    meaning: Callable[[Match], tuple[Condition, ...]] | None = None
    modelled: frozenset[str] | None = None
    typed: frozenset[str] = frozenset()
    bare: bool = False
    needs_option: bool = False
    effect: str | None = None
    sets: frozenset[str] = frozenset()
    tables: frozenset[str] | None = None
    hooks: frozenset[str] | None = None
    rewrite: Callable[[Target], Rewrite | None] | None = None


#: Every match and target extension trustwall knows, by name.
MATCH_EXTENSIONS: dict[str, Extension] = {}
TARGET_EXTENSIONS: dict[str, Extension] = {}


def _declare(registry: dict[str, Extension], name: str, options: str | None, *, family: int = 0,
             required: tuple[str, ...] = (), proto: tuple[str, ...] = (),
             modelled: str | None = None, typed: str = "", sets: str = "",
             tables: str | None = None, **hooks: object) -> None:
    spec = _spec(name, options, family=family, required=required, proto=proto) \
        if options is not None else None
    if name in registry:  # a listing shared with an extension declared earlier
        hooks.setdefault("listing", registry[name].listing)
    registry[name] = Extension(
        name, spec, modelled=frozenset(modelled.split()) if modelled is not None else None,
        typed=frozenset(typed.split()), sets=frozenset(sets.split()),
        tables=frozenset(tables.split()) if tables is not None else None,
        **hooks)  # type: ignore[arg-type]


def match(name: str, options: str | None, **kw: object) -> None:
    """Declare a match extension (see :class:`Extension` for the keywords)."""
    _declare(MATCH_EXTENSIONS, name, options, **kw)  # type: ignore[arg-type]


def target(name: str, options: str | None, **kw: object) -> None:
    """Declare a target extension (see :class:`Extension` for the keywords)."""
    _declare(TARGET_EXTENSIONS, name, options, **kw)  # type: ignore[arg-type]


_Listing = TypeVar("_Listing", bound=Callable[..., "str | None"])


def _listing(table: dict[str, Extension], names: tuple[str, ...]
             ) -> Callable[[_Listing], _Listing]:
    def register(func: _Listing) -> _Listing:
        for name in names:
            row = table.get(name) or Extension(name)
            table[name] = replace(row, listing=func)
        return func
    return register


def match_listing(*names: str) -> Callable[[_Listing], _Listing]:
    """Declare the ``iptables -L`` text of these matches (declaring them if need be)."""
    return _listing(MATCH_EXTENSIONS, names)


def target_listing(*names: str) -> Callable[[_Listing], _Listing]:
    """Declare the ``iptables -L`` text of these targets (declaring them if need be)."""
    return _listing(TARGET_EXTENSIONS, names)


def with_defaults(options: list[Option], defaults: list[tuple[str, tuple[str, ...]]]
                  ) -> list[Option]:
    """Add the options iptables fills in (and prints) when the user leaves them out."""
    have = {o.name for o in options}
    return [*options, *(Option(n, False, v) for n, v in defaults if n not in have)]


def _given(options: list[Option]) -> dict[str, Option]:
    return {o.name: o for o in options}


def _full_mask(ctx: Context) -> str:
    return "32" if ctx.family == 4 else "128"


# --- matches ----------------------------------------------------------------------------------

def conditions(m: Match) -> tuple[Condition, ...]:
    """What a match tests of a packet, as IR conditions. Not remembered here: its callers
    (the tracer's compiled rules, unfold's rule spaces) keep their results per rule."""
    row = MATCH_EXTENSIONS.get(m.module)
    if row is None or row.meaning is None:
        return _opaque(f"-m {m.module}", f"-m {m.module} is not modelled by trustwall")
    return row.meaning(m)


def _opaque(what: str, why: str) -> tuple[Condition, ...]:
    return (Condition("opaque", Opaque(what, why)),)


def _no_condition(m: Match) -> tuple[Condition, ...]:
    return ()


def _port_flag_state_meaning(m: Match) -> tuple[Condition, ...]:
    """Ports, TCP flags and conntrack states: tcp, udp, udplite, sctp, dccp, multiport, state,
    conntrack; the first option outside the modelled ones is opaque."""
    out: list[Condition] = []
    modelled = MODELLED_OPTIONS[m.module]
    extra = next((o.name for o in m.options if o.name not in modelled), None)
    if extra is not None:
        out += _opaque(f"-m {m.module} --{extra}",
                       f"-m {m.module} --{extra} is not modelled by trustwall")
    for name, ports in (("sport", m.source_ports), ("dport", m.destination_ports),
                        ("either_port", m.either_ports)):
        if ports is not None:
            out.append(Condition(name, ports))
    if (flags := m.tcp_flags) is not None:
        out.append(Condition("tcp_flags", flags))
    if (states := m.states) is not None:
        virtual = states.states & {"SNAT", "DNAT"}
        if virtual:  # not states of the same kind: the NAT done to the connection
            out += _opaque(f"-m {m.module} {','.join(sorted(states.states))}",
                           f"conntrack state {sorted(virtual)[0]} is not modelled")
        else:
            out.append(Condition("ct_state", states))
    return tuple(out)


def _icmp_meaning(m: Match) -> tuple[Condition, ...]:
    try:
        icmp = m.icmp
    except ValueError:  # a type name kept verbatim from an old saved file
        return _opaque(f"-m {m.module} (named type)", f"-m {m.module} named type is not modelled")
    if icmp is None:
        return _opaque(f"-m {m.module}", f"-m {m.module} without a type is not modelled")
    return (Condition("icmp", icmp),)


def _iprange_meaning(m: Match) -> tuple[Condition, ...]:
    return tuple(Condition(name, rng) for name, rng in (("src_range", m.source_range),
                                                         ("dst_range", m.destination_range))
                 if rng is not None)


def _mark_meaning(m: Match) -> tuple[Condition, ...]:
    mark = m.mark
    if mark is None:
        return _opaque("-m mark", "-m mark without --mark")
    return (Condition("mark", mark),)


def _connmark_meaning(m: Match) -> tuple[Condition, ...]:
    opt = m.option("mark")
    if opt is None or not opt.values:
        return _opaque("-m connmark", "-m connmark without --mark")
    value, _, mask = opt.values[0].partition("/")
    return (Condition("ct_mark", MarkMatch(int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF,
                                           opt.negated)),)


def _pkttype_meaning(m: Match) -> tuple[Condition, ...]:
    opt = m.option("pkt-type")
    if opt is None or not opt.values:
        return _opaque("-m pkttype", "-m pkttype without --pkt-type")
    return (Condition("pkttype", PacketType(opt.values[0].lower(), opt.negated)),)


def _addrtype_meaning(m: Match) -> tuple[Condition, ...]:
    out: list[Condition] = []
    for opt in m.options:
        if opt.name in ("src-type", "dst-type") and opt.values:
            field = "src_type" if opt.name == "src-type" else "dst_type"
            types = frozenset(opt.values[0].upper().split(","))
            out.append(Condition(field, AddressTypes(types, opt.negated)))
        else:
            out += _opaque("-m addrtype", f"-m addrtype --{opt.name} is not modelled")
    return tuple(out)


def _mac_meaning(m: Match) -> tuple[Condition, ...]:
    return _opaque("-m mac", "the packet's source MAC address is not modelled")


def _limit_meaning(m: Match) -> tuple[Condition, ...]:
    return _opaque("-m limit", "-m limit depends on the traffic before this packet")


def _tcp_finish(options: list[Option], ctx: Context) -> list[Option]:
    # --syn is stored as the flags it stands for
    return [Option("tcp-flags", o.negated, ("FIN,SYN,RST,ACK", "SYN")) if o.name == "syn" else o
            for o in options]


match("tcp", "sport/source-port:portrange dport/destination-port:portrange "
             "tcp-option:uint tcp-flags=2:flags syn=0", proto=("tcp",),
      finish=_tcp_finish, modelled="sport dport tcp-flags",
      meaning=_port_flag_state_meaning)


@match_listing("tcp", "udp", "udplite")
def _tcp_l(m: Match) -> str | None:
    o = m.option
    text = f" {m.module}" + _ports_l("spt", o("sport")) + _ports_l("dpt", o("dport"))
    if m.module == "tcp":
        opt = o("tcp-option")
        if opt is not None:
            text += f" option={_bang(opt)}{opt.value}"
        text += _flags_l(o("tcp-flags"))
    return text

match("udp", "sport/source-port:anyportrange dport/destination-port:anyportrange", proto=("udp",),
      modelled="sport dport",
      meaning=_port_flag_state_meaning)
match("udplite", "sport/source-port:portrange dport/destination-port:portrange",
      proto=("udplite",), modelled="sport dport",
      meaning=_port_flag_state_meaning)


def _multiport_finish(options: list[Option], ctx: Context) -> list[Option]:
    if len({"sports", "dports", "ports"} & {o.name for o in options}) > 1:
        raise Refused("multiport can only have one option", "multiport")
    return options


match("multiport", "sports/source-ports:portlist dports/destination-ports:portlist "
                   "ports:portlist", required=("sports", "dports", "ports"),
      proto=("tcp", "udp", "udplite", "sctp", "dccp"), finish=_multiport_finish,
      modelled="sports dports ports",
      meaning=_port_flag_state_meaning)


@match_listing("multiport")
def _multiport_l(m: Match) -> str | None:
    o = m.option
    for key in ("sports", "dports", "ports"):
        opt = o(key)
        if opt is not None:
            return f" multiport {key} {' !' if opt.negated else ''}{opt.value}"

match("state", "state:states", required=("state",), modelled="state",
      meaning=_port_flag_state_meaning)


@match_listing("state", "conntrack")
def _state_l(m: Match) -> str | None:
    return "".join(f" {'! ' if opt.negated else ''}{opt.name} {' '.join(opt.values)}".rstrip()
                   for opt in m.options)

match("conntrack", "ctstate:states ctproto:protonum ctorigsrc ctorigdst ctreplsrc "
                   "ctrepldst ctorigsrcport:anyportrange ctorigdstport:anyportrange "
                   "ctreplsrcport:anyportrange ctrepldstport:anyportrange ctstatus:ctstatus "
                   "ctexpire:intrange ctdir",
      required=("ctstate", "ctproto", "ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst",
                "ctorigsrcport", "ctorigdstport", "ctreplsrcport", "ctrepldstport",
                "ctstatus", "ctexpire", "ctdir"), modelled="ctstate",
      meaning=_port_flag_state_meaning)
match("icmp", "icmp-type:icmp", family=4, required=("icmp-type",), proto=("icmp",),
      modelled="icmp-type",
      meaning=_icmp_meaning)


@match_listing("icmp", "icmp6")
def _icmp_l(m: Match) -> str | None:
    o = m.option
    opt = o("icmp-type") or o("icmpv6-type")
    if opt is None or opt.value is None:
        return ""
    # libipt_icmp: " icmp" [" !"] "type N" [" code C" | " codes A-B"]; any is type 255
    text = " icmp" if m.module == "icmp" else " ipv6-icmp"
    text += " !" if opt.negated else ""
    if opt.value == "any":
        return text + "type 255"
    itype, _, code = opt.value.partition("/")
    text += f"type {itype}"
    if code:
        lo, _, hi = code.partition(":")
        text += f" code {lo}" if not hi else f" codes {lo}-{hi}"
    return text

match("icmp6", "icmpv6-type:icmp6", family=6, required=("icmpv6-type",), proto=("ipv6-icmp",),
      modelled="icmpv6-type",
      meaning=_icmp_meaning)
match("iprange", "src-range:iprange dst-range:iprange", required=("src-range", "dst-range"),
      modelled="src-range dst-range",
      meaning=_iprange_meaning)


@match_listing("iprange")
def _iprange_l(m: Match) -> str | None:
    o = m.option
    text = ""
    for key, word in (("src-range", "source"), ("dst-range", "destination")):
        opt = o(key)
        if opt is not None:
            text += f" {word} IP range {'! ' if opt.negated else ''}{opt.value}"
    return text

match("mark", "mark:mark", required=("mark",), modelled="mark",
      meaning=_mark_meaning)


@match_listing("mark")
def _mark_l(m: Match) -> str | None:
    o = m.option
    opt = o("mark")
    return f" mark match {'! ' if opt and opt.negated else ''}{opt.value if opt else ''}"

match("connmark", "mark:mark", required=("mark",),
      meaning=_connmark_meaning)


@match_listing("connmark")
def _connmark_l(m: Match) -> str | None:
    o = m.option
    opt = o("mark")
    return f" connmark match {' !' if opt and opt.negated else ''} {opt.value if opt else ''}"

match("comment", "comment:str", required=("comment",), modelled="comment",
      meaning=_no_condition)


@match_listing("comment")
def _comment_l(m: Match) -> str | None:
    return f" /* {m.comment} */"

match("mac", "mac-source:mac", required=("mac-source",), typed="mac-source",
      meaning=_mac_meaning,
      hooks=frozenset({"PREROUTING", "INPUT", "FORWARD"}))


@match_listing("mac")
def _mac_l(m: Match) -> str | None:
    o = m.option
    opt = o("mac-source")
    if opt is None or opt.value is None:
        return ""
    return f" MAC {'! ' if opt.negated else ''}{opt.value}"

def _limit_finish(options: list[Option], ctx: Context) -> list[Option]:
    # libxt_limit prints its rate always (default 3/hour) and the burst unless 5
    return with_defaults([o for o in options if not (
        o.name == "limit-burst" and o.values == ("5",))], [("limit", ("3/hour",))])


match("limit", "limit:rate limit-burst:uint", bare=True, finish=_limit_finish,
      typed="limit limit-burst",
      meaning=_limit_meaning)


@match_listing("limit")
def _limit_l(m: Match) -> str | None:
    lim = m.limit
    if lim is None:
        return ""
    return f" limit: avg {lim.rate} burst {lim.burst}"

match("physdev", "physdev-is-in=0 physdev-in physdev-is-out=0 physdev-out "
                 "physdev-is-bridged=0")


@match_listing("physdev")
def _physdev_l(m: Match) -> str | None:
    return " PHYSDEV match" + "".join(
        (" !" if opt.negated else "") + f" --{opt.name}" + "".join(f" {v}" for v in opt.values)
        for opt in m.options)



def _pkttype_check(options: list[Option], ctx: Context) -> str | None:
    value = _given(options)["pkt-type"].value
    if value not in ("unicast", "broadcast", "multicast", "host", "otherhost"):
        return f"pkttype: bad packet type {value!r}"
    return None


match("pkttype", "pkt-type:pkttype", required=("pkt-type",), check=_pkttype_check,
      meaning=_pkttype_meaning)


@match_listing("pkttype")
def _pkttype_l(m: Match) -> str | None:
    o = m.option
    opt = o("pkt-type")
    return f" PKTTYPE {'!=' if opt and opt.negated else '='} {opt.value if opt else ''}"



def _addrtype_check(options: list[Option], ctx: Context) -> str | None:
    given = _given(options)
    if not given.keys() & {"src-type", "dst-type"}:
        return "addrtype needs --src-type or --dst-type"
    if {"limit-iface-in", "limit-iface-out"} <= given.keys():
        return "addrtype: --limit-iface-in and --limit-iface-out exclude each other"
    if "limit-iface-in" in given and ctx.chain in NO_IN_HOOKS:
        return f"addrtype: --limit-iface-in is not valid in {ctx.chain}"
    if "limit-iface-out" in given and ctx.chain in NO_OUT_HOOKS:
        return f"addrtype: --limit-iface-out is not valid in {ctx.chain}"
    return None


match("addrtype", "src-type:addrtypes dst-type:addrtypes limit-iface-in=0 limit-iface-out=0",
      check=_addrtype_check,
      meaning=_addrtype_meaning)


@match_listing("addrtype")
def _addrtype_l(m: Match) -> str | None:
    o = m.option
    text = " ADDRTYPE match"
    for key, label in (("src-type", "src-type"), ("dst-type", "dst-type")):
        opt = o(key)
        if opt is not None:
            text += f" {label} {'!' if opt.negated else ''}{opt.value}"
    text += " limit-in" if o("limit-iface-in") is not None else ""
    text += " limit-out" if o("limit-iface-out") is not None else ""
    return text

match("length", "length:lenrange", required=("length",))


@match_listing("length")
def _length_l(m: Match) -> str | None:
    o = m.option
    return f" length {_range_l(o('length'), '')}"

match("sctp", "sport/source-port:portrange dport/destination-port:portrange chunk-types=2",
      proto=("sctp",), modelled="sport dport",
      meaning=_port_flag_state_meaning)


@match_listing("sctp", "dccp")
def _sctp_l(m: Match) -> str | None:
    o = m.option
    text = f" {m.module}" + _ports_l("spt", o("sport")) + _ports_l("dpt", o("dport"))
    chunks = o("chunk-types")
    if chunks is not None and len(chunks.values) == 2:
        names = chunks.values[1].split(",")
        if all(n.upper() in _SCTP_CHUNKS for n in names):
            codes = sorted(_SCTP_CHUNKS[n.upper()] for n in names)
            text += (f" {'!' if chunks.negated else ''}{chunks.values[0]} "
                     + ",".join(f"0x{c:04X}" for c in codes))
    opt = o("dccp-option")
    if opt is not None:
        text += f" option={_bang(opt)}{opt.value}"
    return text



def _statistic_check(options: list[Option], ctx: Context) -> str | None:
    given = _given(options)
    mode = given["mode"].value
    if mode == "random":
        p = given.get("probability")
        try:
            ok = p is not None and 0.0 <= float(p.value or "x") <= 1.0
        except ValueError:
            ok = False
        if not ok or given.keys() & {"every", "packet"}:
            return "statistic random needs --probability between 0 and 1"
    elif mode == "nth":
        every, packet = given.get("every"), given.get("packet")
        if every is None or packet is None or int(packet.value or 0) >= int(every.value or 0):
            return "statistic nth needs --every N and --packet P with P < N"
    else:
        return f"statistic: bad mode {mode!r}"
    return None


match("statistic", "mode probability:probability every:uint packet:uint", required=("mode",),
      check=_statistic_check)


def _cluster_finish(options: list[Option], ctx: Context) -> list[Option]:
    # libxt_cluster stores --cluster-local-node N as the bit mask 1 << (N - 1)
    node = next((o for o in options if o.name == "cluster-local-node"), None)
    if node is not None and node.value is not None and node.value.isdigit() \
            and 1 <= int(node.value) <= 32:
        mask = Option("cluster-local-nodemask", node.negated,
                      (f"0x{1 << (int(node.value) - 1):08x}",))
        options = [mask if o is node else o for o in options]
    return options


def _cluster_check(options: list[Option], ctx: Context) -> str | None:
    given = _given(options)
    if not given.keys() & {"cluster-local-node", "cluster-local-nodemask"} \
            or "cluster-hash-seed" not in given:
        return "cluster needs a local node and --cluster-hash-seed"
    return None


match("cluster", "cluster-local-nodemask cluster-total-nodes:uint cluster-hash-seed "
                 "cluster-local-node:uint", required=("cluster-total-nodes",),
      finish=_cluster_finish, check=_cluster_check)


@match_listing("cluster")
def _cluster_l(m: Match) -> str | None:
    o = m.option
    mask, total, seed = o("cluster-local-nodemask"), o("cluster-total-nodes"), \
        o("cluster-hash-seed")
    return (f" cluster {_bang(mask)}node_mask={mask.value if mask else ''}"
            f" total_nodes={total.value if total else ''}"
            f" hash_seed={seed.value if seed else ''}")

match("dccp", "sport/source-port:anyportrange dport/destination-port:anyportrange dccp-types "
              "dccp-option:u8", proto=("dccp",), modelled="sport dport",
      meaning=_port_flag_state_meaning)
match("esp", "espspi:spirange", proto=("esp",))


@match_listing("esp", "ah", "ipcomp")
def _esp_l(m: Match) -> str | None:
    o = m.option
    key = {"esp": "espspi", "ah": "ahspi", "ipcomp": "ipcompspi"}[m.module]
    word = "comp" if m.module == "ipcomp" else m.module
    spis = _ports_l("spi", o(key), "0:4294967295")
    if m.module == "ipcomp":
        return " comp " + spis.lstrip()
    if m.module == "ah":  # libip*t_ah: " ah " then its fields
        text = " ah " + spis.lstrip()
        opt = o("ahlen")
        if opt is not None:
            text += f" length:{_bang(opt)}{opt.value}"
        return text + (" reserved" if o("ahres") is not None else "")
    return f" {word}" + spis



def _ah_check(options: list[Option], ctx: Context) -> str | None:
    if ctx.family == 4 and (ctx.proto is None or ctx.proto.name != "ah"):
        return "match 'ah' needs -p ah"
    return None


match("ah", "ahspi:spirange ahlen:uint ahres=0", check=_ah_check)


def _frag_check(options: list[Option], ctx: Context) -> str | None:
    if {"fraglast", "fragmore"} <= _given(options).keys():
        return "frag: --fraglast and --fragmore exclude each other"
    return None


match("frag", "fragid:spirange fraglen:uint fragres=0 fragfirst=0 fragmore=0 fraglast=0",
      family=6, bare=True, check=_frag_check)


@match_listing("frag")
def _frag_l(m: Match) -> str | None:
    o = m.option
    text = " frag " + _ports_l("id", o("fragid"), "0:4294967295").lstrip()
    opt = o("fraglen")
    if opt is not None:
        text += f" length:{_bang(opt)}{opt.value}"
    for key, word in (("fragres", "reserved"), ("fragfirst", "first"),
                      ("fragmore", "more"), ("fraglast", "last")):
        text += f" {word}" if o(key) is not None else ""
    return text

match("rt", "rt-type:uint rt-segsleft:spirange rt-len:uint rt-0-res=0 rt-0-addrs "
            "rt-0-not-strict=0", family=6, bare=True)


@match_listing("rt")
def _rt_l(m: Match) -> str | None:
    o = m.option
    text = " rt"
    for key, label in (("rt-type", "type"), ("rt-segsleft", "segsleft"), ("rt-len", "length")):
        opt = o(key)
        if opt is not None and opt.value is not None:
            lo, _, hi = opt.value.partition(":")
            text += f" {label}s:{_bang(opt)}{lo}:{hi}" if hi else f" {label}:{_bang(opt)}{lo}"
    return text + (" reserved" if o("rt-0-res") is not None else "")

match("mh", "mh-type:mhrange", family=6, proto=("mobility-header",))


@match_listing("mh")
def _mh_l(m: Match) -> str | None:
    o = m.option
    rng = _range_l(o("mh-type"), "0:255")
    return " mh" + (f" {rng}" if rng else "")

match("cpu", "cpu:uint", required=("cpu",))
match("quota", "quota:u64", required=("quota",))


@match_listing("quota")
def _quota_l(m: Match) -> str | None:
    o = m.option
    opt = o("quota")
    return f" quota: {opt.value if opt else 0} bytes"



def _dscp_finish(options: list[Option], ctx: Context) -> list[Option]:
    return [Option("dscp", o.negated, o.values) for o in options]  # a class is a value


def _one_option(what: str) -> Check:
    def check(options: list[Option], ctx: Context) -> str | None:
        return what if len(options) > 1 else None
    return check


match("dscp", "dscp:dscp dscp-class:dscp", required=("dscp", "dscp-class"), finish=_dscp_finish,
      check=_one_option("dscp: --dscp and --dscp-class exclude each other"))


@match_listing("dscp")
def _dscp_l(m: Match) -> str | None:
    o = m.option
    opt = o("dscp")
    return f" DSCP match {_bang(opt)}{opt.value if opt else ''}"

match("tos", "tos:tos", required=("tos",))


@match_listing("tos")
def _tos_l(m: Match) -> str | None:
    o = m.option
    opt = o("tos")
    return f" tos match{_bang(opt)}{opt.value if opt else ''}"



def _hashlimit_rate_finish(options: list[Option]) -> list[Option]:
    """A packet rate as the kernel stores it (``60/min`` -> ``1/sec``) and the expiry libxt_
    hashlimit then prints: its default is the typed unit, shown when not the printed one."""
    rate = next(o for o in options if o.name in ("hashlimit-upto", "hashlimit-above"))
    known = hashlimit_rate(rate.value or "")
    if known is None:
        return options
    text, typed_ms, printed_ms = known
    expire = next((o.value for o in options if o.name == "hashlimit-htable-expire"),
                  str(typed_ms))
    out = [Option(o.name, o.negated, (text,)) if o is rate else o for o in options
           if o.name != "hashlimit-htable-expire"]
    if expire != str(printed_ms):
        out.append(Option("hashlimit-htable-expire", False, (expire,)))
    return out


def _hashlimit_finish(options: list[Option], ctx: Context) -> list[Option]:
    if not {o.name for o in options} & {"hashlimit-upto", "hashlimit-above"}:
        raise Refused("hashlimit needs --hashlimit-upto or --hashlimit-above", "hashlimit")
    full = _full_mask(ctx)
    defaults = {"hashlimit-htable-gcinterval": "1000", "hashlimit-srcmask": full,
                "hashlimit-dstmask": full}
    options = [o for o in options if o.name not in defaults or defaults[o.name] != o.value]
    options = _hashlimit_rate_finish(options)
    rate = next(o.value or "" for o in options
                if o.name in ("hashlimit-upto", "hashlimit-above"))
    if "b/" not in rate:  # a byte rate has no default burst to print
        options = with_defaults(options, [("hashlimit-burst", ("5",))])
    return options


match("hashlimit", "hashlimit-upto/hashlimit hashlimit-above hashlimit-burst hashlimit-mode "
                   "hashlimit-name hashlimit-htable-size:uint hashlimit-htable-max:uint "
                   "hashlimit-htable-gcinterval:uint hashlimit-htable-expire:uint "
                   "hashlimit-srcmask:uint hashlimit-dstmask:uint hashlimit-rate-match=0 "
                   "hashlimit-rate-interval:uint",
      required=("hashlimit-name",), finish=_hashlimit_finish)


@match_listing("hashlimit")
def _hashlimit_l(m: Match) -> str:
    o = m.option
    above = o("hashlimit-above")
    rate = above or o("hashlimit-upto")
    text = " limit: above " if above is not None else " limit: up to "
    text += rate.value if rate and rate.value else ""
    burst = o("hashlimit-burst")
    if burst is not None:
        text += f" burst {burst.value}"
    mode = o("hashlimit-mode")
    if mode is not None and mode.value:
        text += " mode " + mode.value.replace(",", "-")
    for key in ("htable-size", "htable-max", "htable-gcinterval", "htable-expire", "srcmask",
                "dstmask", "rate-match", "rate-interval"):
        opt = o("hashlimit-" + key)
        if opt is not None:
            text += f" {key}" + (f" {opt.value}" if opt.value else "")
    return text



def _connbytes_check(options: list[Option], ctx: Context) -> str | None:
    given = _given(options)
    mode, direction = given.get("connbytes-mode"), given.get("connbytes-dir")
    if mode is None or direction is None:
        return "connbytes needs --connbytes-mode and --connbytes-dir"
    if mode.value not in ("packets", "bytes", "avgpkt"):
        return f"connbytes: bad mode {mode.value!r}"
    if direction.value not in ("original", "reply", "both"):
        return f"connbytes: bad direction {direction.value!r}"
    return None


match("connbytes", "connbytes:connbytes connbytes-mode connbytes-dir", required=("connbytes",),
      check=_connbytes_check)


@match_listing("connbytes")
def _connbytes_l(m: Match) -> str | None:
    o = m.option
    count, mode, direction = o("connbytes"), o("connbytes-mode"), o("connbytes-dir")
    return (f" connbytes {_bang(count)}{count.value if count else ''}"
            f" connbytes mode {mode.value if mode else ''}"
            f" connbytes direction {direction.value if direction else ''}")

match("u32", "u32:u32", required=("u32",))
def _time_finish(options: list[Option], ctx: Context) -> list[Option]:
    """libxt_time's save: both times when either differs from the whole day, negated day sets
    as the days they leave, always a --datestop (1.8.9 prints its default), no --utc."""
    by = {o.name: o for o in options}
    out = []
    for o in options:
        if o.name == "utc":
            continue
        if o.negated and o.name in ("weekdays", "monthdays"):
            every = WEEKDAYS if o.name == "weekdays" else [str(d) for d in range(1, 32)]
            left = [d for d in every if d not in (o.value or "").split(",")]
            o = Option(o.name, False, (",".join(left),))
        out.append(o)
    if by.keys() & {"timestart", "timestop"}:
        out = with_defaults(out, [("timestart", ("00:00:00",)), ("timestop", ("23:59:59",))])
    return with_defaults(out, [("datestop", ("2038-01-19T03:14:07",))])


match("time", "timestart:daytime timestop:daytime monthdays:monthdays weekdays:weekdays "
              "datestart:date datestop:date utc=0 kerneltz/localtz=0 contiguous=0",
      finish=_time_finish)
match("devgroup", "src-group:mark dst-group:mark", required=("src-group", "dst-group"))
match("ipv6header", "header:ip6headers soft=0", family=6, required=("header",))
match("ipvs", "ipvs=0 vproto:protonum vaddr:addrmask vport:port vdir vmethod vportctl:port")


def _connlimit_finish(options: list[Option], ctx: Context) -> list[Option]:
    given = {o.name for o in options}
    options = with_defaults(options, [("connlimit-mask", (_full_mask(ctx),))])
    if not given & {"connlimit-saddr", "connlimit-daddr"}:
        options.append(Option("connlimit-saddr"))
    if not given & {"connlimit-upto", "connlimit-above"}:
        raise Refused("connlimit needs --connlimit-upto or --connlimit-above", "connlimit")
    return options


def _connlimit_check(options: list[Option], ctx: Context) -> str | None:
    if {"connlimit-saddr", "connlimit-daddr"} <= _given(options).keys():
        return "connlimit: --connlimit-saddr and --connlimit-daddr exclude each other"
    return None


match("connlimit", "connlimit-upto:uint connlimit-above:uint connlimit-mask:uint "
                   "connlimit-saddr=0 connlimit-daddr=0",
      finish=_connlimit_finish, check=_connlimit_check)


@match_listing("connlimit")
def _connlimit_l(m: Match) -> str | None:
    o = m.option
    above, upto, mask = o("connlimit-above"), o("connlimit-upto"), o("connlimit-mask")
    side = "dst" if o("connlimit-daddr") is not None else "src"
    limit = above or upto
    op = ">" if above is not None else "<="
    if limit is not None and limit.negated:
        op = "<=" if op == ">" else ">"
    return (f" #conn {side}/{mask.value if mask else ''} {op} "
            f"{limit.value if limit else ''}")



def _recent_finish(options: list[Option], ctx: Context) -> list[Option]:
    given = {o.name for o in options}
    if len(given & {"set", "rcheck", "update", "remove"}) != 1:
        raise Refused("recent needs exactly one of --set/--rcheck/--update/--remove", "recent")
    options = with_defaults(options, [
        ("name", ("DEFAULT",)),
        ("mask", ("255.255.255.255" if ctx.family == 4
                  else "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",))])
    if not given & {"rsource", "rdest"}:
        options.append(Option("rsource"))
    return options


def _recent_check(options: list[Option], ctx: Context) -> str | None:
    given = _given(options)
    if "rttl" in given and not given.keys() & {"rcheck", "update"}:
        return "recent: --rttl only goes with --rcheck or --update"
    return None


match("recent", "set=0 rcheck=0 update=0 remove=0 seconds:uint reap=0 hitcount:u16 "
                "rttl=0 name mask rsource=0 rdest=0", finish=_recent_finish, check=_recent_check)


@match_listing("recent")
def _recent_l(m: Match) -> str:
    o = m.option
    action = next((k for k in ("set", "rcheck", "update", "remove") if o(k) is not None), None)
    neg = any(opt.negated for opt in m.options)
    text = (" !" if neg else "") + " recent:"
    text += {"set": " SET", "rcheck": " CHECK", "update": " UPDATE", "remove": " REMOVE",
             None: ""}[action]
    for key, label in (("seconds", "seconds: "), ("reap", "reap"), ("hitcount", "hit_count: "),
                       ("rttl", "TTL-Match")):
        opt = o(key)
        if opt is not None:
            text += f" {label}{opt.value or ''}"
    name, mask = o("name"), o("mask")
    text += f" name: {name.value if name else 'DEFAULT'}"
    text += " side: dest" if o("rdest") is not None else " side: source"
    if mask is not None:
        text += f" mask: {mask.value}"
    return text

match("ipcomp", "ipcompspi:spirange compres=0", proto=("ipcomp",))
match("tcpmss", "mss:portrange", required=("mss",), proto=("tcp",))


@match_listing("tcpmss")
def _tcpmss_l(m: Match) -> str | None:
    o = m.option
    opt = o("mss")
    return f" tcpmss match {_bang(opt)}{opt.value if opt else ''}"



def _owner_check(options: list[Option], ctx: Context) -> str | None:
    names = [o.name for o in options]
    if "suppl-groups" in names:
        supp = options[names.index("suppl-groups")]
        if supp.negated or "gid-owner" not in names[:names.index("suppl-groups")]:
            return "owner: --suppl-groups needs a --gid-owner before it and cannot be negated"
    return None


match("owner", "uid-owner:user gid-owner:group suppl-groups=0 socket-exists=0",
      check=_owner_check,
      hooks=frozenset({"OUTPUT", "POSTROUTING"}))


@match_listing("owner")
def _owner_l(m: Match) -> str | None:
    o = m.option
    text = ""
    for key, label in (("socket-exists", "owner socket exists"),
                       ("uid-owner", "owner UID match"), ("gid-owner", "owner GID match")):
        opt = o(key)
        if opt is not None:
            text += (" !" if opt.negated else "") + f" {label}"
            text += f" {opt.value}" if opt.value else ""
    if o("suppl-groups") is not None:
        text += " incl. suppl. groups"
    return text



def _string_pattern(o: Option) -> Option:
    """libxt_string keeps the pattern's bytes: saved as ``--string "..."`` when all are
    printable (and the last is not a backslash), else as ``--hex-string "|0a0b|"``."""
    if o.name != "hex-string" or o.value is None:
        return o
    data = bytearray()
    text, i, hexmode = o.value, 0, False
    while i < len(text):
        c = text[i]
        if c == "|":
            hexmode = not hexmode
            i += 1
        elif hexmode and c == " ":
            i += 1
        elif hexmode:
            pair = text[i:i + 2]
            if len(pair) != 2 or not all(x in "0123456789abcdefABCDEF" for x in pair):
                return o  # left as written; strict parsing reports it elsewhere
            data.append(int(pair, 16))
            i += 2
        else:
            if c == "\\" and i + 1 < len(text):
                i += 1
                c = text[i]
            data += c.encode("utf-8", "surrogateescape")
            i += 1
    if data and all(0x20 <= b < 0x7F for b in data) and data[-1] != 0x5C:
        return Option("string", o.negated, (data.decode("ascii"),))
    return Option("hex-string", o.negated, ("|" + data.hex() + "|",))


def _string_finish(options: list[Option], ctx: Context) -> list[Option]:
    return [_string_pattern(o) for o in options
            if not (o.name == "from" and o.values == ("0",))
            and not (o.name == "to" and o.values == ("65535",))]


def _string_check(options: list[Option], ctx: Context) -> str | None:
    given = _given(options)
    text = given["string"].value if "string" in given else None
    if text is None and "hex-string" in given:  # "|0a0b|" after _string_pattern
        text = "x" * ((len(given["hex-string"].value or "") - 2) // 2)
    if text is not None and len(text) > 128:
        return "string: pattern longer than 128 bytes"
    return None


match("string", "string:qstr hex-string:qstr algo from:uint to:uint icase=0",
      required=("string", "hex-string"), finish=_string_finish, check=_string_check)


@match_listing("string")
def _string_l(m: Match) -> str | None:
    o = m.option
    text = f" STRING match {_bang(o('string') or o('hex-string'))}"
    for key in ("string", "hex-string"):
        opt = o(key)
        if opt is not None:
            text += f' "{opt.value}"'
    algo = o("algo")
    text += f" ALGO name {algo.value}" if algo else ""
    for key, word in (("from", "FROM"), ("to", "TO")):
        opt = o(key)
        text += f" {word} {opt.value}" if opt is not None else ""
    return text + (" ICASE" if o("icase") is not None else "")



def _cgroup_check(options: list[Option], ctx: Context) -> str | None:
    if len(_given(options).keys() & {"path", "cgroup"}) != 1:
        return "cgroup needs one of --path or --cgroup"
    return None


match("cgroup", "path:qstr cgroup", check=_cgroup_check)


@match_listing("cgroup", "connlabel", "cpu")
def _cgroup_l(m: Match) -> str | None:
    text = f" {m.module}"
    for opt in m.options:
        text += " set" if opt.name == "set" else f"{' !' if opt.negated else ''} {opt.value}"
    return text

@cache
def _connlabel_names() -> frozenset[str]:
    """Label names of /etc/xtables/connlabel.conf ("bit name" lines), as libxt_connlabel."""
    try:
        with open("/etc/xtables/connlabel.conf", encoding="utf-8", errors="replace") as fh:
            return frozenset(w[1] for w in (line.split("#", 1)[0].split() for line in fh)
                             if len(w) >= 2 and w[0].isdigit())
    except OSError:
        return frozenset()


def _connlabel_check(options: list[Option], ctx: Context) -> str | None:
    given = _given(options)
    label = (given["label"].value or "") if "label" in given else ""
    if label.isdigit() and int(label) > 127:
        return f"connlabel: label {label} out of range (0-127)"
    if not label.isdigit() and label not in _connlabel_names():
        return f"connlabel: label {label!r} not in /etc/xtables/connlabel.conf"
    return None


match("connlabel", "label:qstr set=0", required=("label",), check=_connlabel_check)
match("ttl", "ttl-eq/ttl:u8 ttl-lt:u8 ttl-gt:u8", family=4,
      required=("ttl-eq", "ttl-lt", "ttl-gt"),
      check=_one_option("ttl: give only one of --ttl-eq, --ttl-lt, --ttl-gt"))


@match_listing("ttl", "hl")
def _ttl_l(m: Match) -> str | None:
    word = m.module.upper()
    for opt in m.options:
        op = {"eq": "!=" if opt.negated else "==", "lt": "<", "gt": ">"}.get(opt.name[-2:])
        if op is not None:
            return f" {word} match {word} {op} {opt.value}"

match("hl", "hl-eq:u8 hl-lt:u8 hl-gt:u8", family=6, required=("hl-eq", "hl-lt", "hl-gt"),
      check=_one_option("hl: give only one of --hl-eq, --hl-lt, --hl-gt"))
# -L text of matches declared by their listing alone.

@match_listing("realm")
def _realm_l(m: Match) -> str | None:
    o = m.option
    opt = o("realm")
    return f" realm {_bang(opt)}{opt.value if opt else ''}"


@match_listing("helper", "u32")
def _helper_l(m: Match) -> str | None:
    o = m.option
    opt = o(m.module)
    value = f'"{opt.value}"' if opt and opt.value is not None else ""
    return f" {m.module}{' match' if m.module == 'helper' else ''} {_bang(opt)}{value}"


@match_listing("dst", "hbh")
def _dst_l(m: Match) -> str | None:
    o = m.option
    text = f" {m.module}"
    length, opts = o(f"{m.module}-len"), o(f"{m.module}-opts")
    if length is not None:
        text += f" length:{_bang(length)}{length.value}"
    if opts is not None:
        text += f" opts {opts.value}"
    return text


@match_listing("srh")
def _srh_l(m: Match) -> str | None:
    text = " srh"
    for opt in m.options:
        word = opt.name.removeprefix("srh-")
        if word in ("psid", "nsid", "lsid"):
            text += f" {word} {'!' if opt.negated else ''} {opt.value}"
        else:
            text += f" {word}:{_bang(opt)}{opt.value}"
    return text


@match_listing("ecn")
def _ecn_l(m: Match) -> str | None:
    words = {"ecn-tcp-cwr": "CWR", "ecn-tcp-ece": "ECE"}
    return " ECN match" + "".join(
        f" {'!' if opt.negated else ''}{words.get(opt.name, f'ECT={opt.value}')}"
        for opt in m.options)


@match_listing("socket")
def _socket_l(m: Match) -> str | None:
    return " socket" + "".join(f" --{opt.name}" for opt in m.options)


@match_listing("policy")
def _policy_l(m: Match) -> str | None:
    return " policy match" + dashless(m.options)


def _set_check(options: list[Option], ctx: Context) -> str | None:
    if any(o.name == "match-set" and len(o.values) != 2 for o in options):
        return "--match-set requires two args (set name and src/dst flags)"
    return None


def _policy_check(options: list[Option], ctx: Context) -> str | None:
    """libxt_policy's final check: with --strict no element may be empty, and a tunnel
    address needs --mode tunnel in its element (elements are separated by --next)."""
    elements: list[list[Option]] = [[]]
    for o in options:
        if o.name == "next":
            elements.append([])
        elif o.name not in ("dir", "pol", "strict"):
            elements[-1].append(o)
    strict = any(o.name == "strict" for o in options)
    for i, element in enumerate(elements):
        names = {o.name: o for o in element}
        if strict and not names:
            return f"policy match: empty policy element {i}; --strict needs one"
        if names.keys() & {"tunnel-src", "tunnel-dst"} and (
                names.get("mode") is None or names["mode"].value != "tunnel"):
            return "policy match: --tunnel-src/--tunnel-dst need --mode tunnel"
    return None


def _ecn_check(options: list[Option], ctx: Context) -> str | None:
    if (ctx.proto is None or ctx.proto.name != "tcp") \
            and {o.name for o in options} & {"ecn-tcp-cwr", "ecn-tcp-ece"}:
        return "match 'ecn' needs -p tcp"  # the kernel's checkentry
    return None


def _osf_check(options: list[Option], ctx: Context) -> str | None:
    if ctx.proto is None or ctx.proto.name != "tcp":
        return "match 'osf' needs -p tcp"  # the kernel's checkentry
    ttl = _given(options).get("ttl")
    if ttl is not None and ttl.value not in ("0", "1", "2"):
        return "osf: --ttl is 0, 1 or 2"
    return None


match("set", None, check=_set_check)
match("policy", None, check=_policy_check)
match("ecn", None, check=_ecn_check)
match("osf", None, check=_osf_check)
# Matches without an option table here: parsed generically, complete without options.
for _name in ("socket", "rpfilter", "hbh", "dst", "srh"):
    match(_name, None, bare=True)
match("eui64", None, bare=True, hooks=frozenset({"PREROUTING", "INPUT", "FORWARD"}))


# --- targets ----------------------------------------------------------------------------------

_REJECT4 = {"icmp-net-unreachable": "icmp-net-unreachable", "net-unreach": "icmp-net-unreachable",
            "icmp-host-unreachable": "icmp-host-unreachable",
            "host-unreach": "icmp-host-unreachable",
            "icmp-proto-unreachable": "icmp-proto-unreachable",
            "proto-unreach": "icmp-proto-unreachable",
            "icmp-port-unreachable": "icmp-port-unreachable",
            "port-unreach": "icmp-port-unreachable",
            "icmp-net-prohibited": "icmp-net-prohibited", "net-prohib": "icmp-net-prohibited",
            "icmp-host-prohibited": "icmp-host-prohibited",
            "host-prohib": "icmp-host-prohibited", "tcp-reset": "tcp-reset",
            "tcp-rst": "tcp-reset", "icmp-admin-prohibited": "icmp-admin-prohibited",
            "admin-prohib": "icmp-admin-prohibited"}
_REJECT6 = {"icmp6-no-route": "icmp6-no-route", "no-route": "icmp6-no-route",
            "icmp6-adm-prohibited": "icmp6-adm-prohibited",
            "adm-prohibited": "icmp6-adm-prohibited",
            "icmp6-addr-unreachable": "icmp6-addr-unreachable",
            "addr-unreach": "icmp6-addr-unreachable",
            "icmp6-port-unreachable": "icmp6-port-unreachable",
            "port-unreach": "icmp6-port-unreachable", "tcp-reset": "tcp-reset",
            "icmp6-policy-fail": "icmp6-policy-fail", "policy-fail": "icmp6-policy-fail",
            "icmp6-reject-route": "icmp6-reject-route", "reject-route": "icmp6-reject-route"}


def _reject_finish(options: list[Option], ctx: Context) -> list[Option]:
    default = "icmp-port-unreachable" if ctx.family == 4 else "icmp6-port-unreachable"
    opt = next((o for o in options if o.name == "reject-with"), None)
    value = (_REJECT4 if ctx.family == 4 else _REJECT6).get(opt.value or "" if opt else default)
    if value is None:
        raise Refused("unknown --reject-with type", opt.value if opt else None)
    proto = ctx.proto
    if value == "tcp-reset" and (proto is None or proto.name != "tcp" or proto.negated):
        raise Refused("--reject-with tcp-reset needs -p tcp", "tcp-reset")
    return [Option("reject-with", False, (value,))]


target("REJECT", "reject-with", finish=_reject_finish,
       effect="final", hooks=frozenset({"INPUT", "FORWARD", "OUTPUT"}),
       # iptables 1.8.9 (nft) refuses REJECT in every table but filter (RULE_APPEND failed),
       # checked with iptables-restore in a namespace; legacy also allows mangle/raw/security.
       tables="filter")


@target_listing("REJECT")
def _reject_target_l(t: Target) -> str | None:
    o = t.option
    opt = o("reject-with")
    return f" reject-with {opt.value}" if opt else ""



def _log_finish(options: list[Option], ctx: Context) -> list[Option]:
    return [o for o in options if not (o.name == "log-level" and o.values == ("4",))]


target("LOG", "log-prefix:str log-level:loglevel log-tcp-sequence=0 log-tcp-options=0 "
              "log-ip-options=0 log-uid=0 log-macdecode=0", finish=_log_finish,
       effect="continue")


@target_listing("LOG")
def _log_target_l(t: Target) -> str | None:
    o = t.option
    level = o("log-level")
    flags = 0
    for bit, key in ((1, "log-tcp-sequence"), (2, "log-tcp-options"),
                     (4, "log-ip-options"), (8, "log-uid"), (0x20, "log-macdecode")):
        if o(key) is not None:
            flags |= bit
    text = f" LOG flags {flags} level {level.value if level else '4'}"  # XT_LOG_* bits
    prefix = o("log-prefix")
    if prefix is not None:
        text += f' prefix "{prefix.value}"'
    return text



def _has_ports(o: Option) -> bool:
    if o.name == "to-ports":
        return True
    if o.name in ("to-destination", "to-source") and o.value:
        v = o.value
        return "]:" in v or (not v.startswith("[") and v.count(":") == 1)
    return False


def _nat_check(name: str) -> Check:
    def check(options: list[Option], ctx: Context) -> str | None:
        proto = ctx.proto
        if any(_has_ports(o) for o in options) and (
                proto is None or proto.negated or proto.name not in PORT_PROTOCOLS):
            return f"{name}: ports need -p tcp, udp, sctp, dccp or udplite"
        return None
    return check


target("DNAT", "to-destination:natto random=0 persistent=0", needs_option=True,
       check=_nat_check("DNAT"),
       effect="nat", tables="nat", hooks=frozenset({"PREROUTING", "OUTPUT"}))


@target_listing("DNAT", "SNAT")
def _dnat_target_l(t: Target) -> str | None:
    o = t.option
    opt = o("to-destination") or o("to-source")
    text = f" to:{opt.value}" if opt else ""
    for flag in ("random", "random-fully", "persistent"):
        if o(flag) is not None:
            text += f" {flag}"
    return text

target("SNAT", "to-source:natto random=0 random-fully=0 persistent=0", needs_option=True,
       check=_nat_check("SNAT"),
       effect="nat", tables="nat", hooks=frozenset({"POSTROUTING", "INPUT"}))
target("REDIRECT", "to-ports:natports random=0", check=_nat_check("REDIRECT"),
       effect="nat", tables="nat", hooks=frozenset({"PREROUTING", "OUTPUT"}))


@target_listing("REDIRECT")
def _redirect_target_l(t: Target) -> str | None:
    o = t.option
    opt = o("to-ports")
    return (f" redir ports {opt.value}" if opt else "") + (
        " random" if o("random") is not None else "")

target("MASQUERADE", "to-ports:natports random=0 random-fully=0",
       check=_nat_check("MASQUERADE"),
       effect="nat", tables="nat", hooks=frozenset({"POSTROUTING"}))


@target_listing("MASQUERADE")
def _masquerade_target_l(t: Target) -> str | None:
    o = t.option
    opt = o("to-ports")
    text = f" masq ports: {opt.value}" if opt else ""
    return text + "".join(f" {f}" for f in ("random", "random-fully") if o(f) is not None)

target("NETMAP", "to:netmapto", needs_option=True,
       effect="nat", tables="nat",
       hooks=frozenset({"PREROUTING", "POSTROUTING", "OUTPUT", "INPUT"}))


@target_listing("NETMAP")
def _netmap_target_l(t: Target) -> str | None:
    o = t.option
    opt = o("to")
    return f" to:{opt.value}" if opt else ""



def _mark_option(o: Option) -> Option:
    """MARK/CONNMARK keep one form, ``--set-xmark value/mask`` (libxt_MARK revision 2)."""
    if o.name == "set-mark":
        return Option("set-xmark", o.negated, o.values)
    if o.name in ("and-mark", "or-mark", "xor-mark") and o.values:
        v = int(o.values[0])
        xmark = {"and-mark": f"0x0/{(~v) & 0xFFFFFFFF:#x}", "or-mark": f"{v:#x}/{v:#x}",
                 "xor-mark": f"{v:#x}/0x0"}[o.name]
        return Option("set-xmark", o.negated, (xmark,))
    return o


def _connmark_finish(options: list[Option], ctx: Context) -> list[Option]:
    names = {o.name for o in options}
    if not names:
        raise Refused("CONNMARK needs an option", "CONNMARK")
    if names & {"save-mark", "restore-mark"}:
        mask = next((o.values for o in options if o.name == "mask"), ("0xffffffff",))
        return with_defaults([o for o in options if o.name != "mask"],
                             [("nfmask", mask), ("ctmask", mask)])
    return [_mark_option(o) for o in options]


target("CONNMARK", "set-xmark:xmark save-mark=0 restore-mark=0 nfmask:xmask ctmask:xmask "
                   "set-mark:xmark and-mark:uint or-mark:uint xor-mark:uint mask:xmask",
       needs_option=True, finish=_connmark_finish,
       effect="continue", sets="mark")


def _dscp_target_finish(options: list[Option], ctx: Context) -> list[Option]:
    return [Option("set-dscp", o.negated, o.values) for o in options]


target("DSCP", "set-dscp:dscp set-dscp-class:dscp", needs_option=True,
       finish=_dscp_target_finish,
       check=lambda options, ctx: "DSCP: --set-dscp and --set-dscp-class exclude each other"
       if len(options) != 1 else None,
       effect="continue", tables="mangle", hooks=frozenset(HOOKS))


@target_listing("DSCP", "TOS")
def _dscp_target_l(t: Target) -> str | None:
    o = t.option
    opt = o("set-dscp") or o("set-tos")
    return f" {t.name} set {opt.value}" if opt else ""



def _tos_option(o: Option) -> Option:
    """--and/--or/--xor-tos are stored as --set-tos value/mask (libxt_TOS)."""
    if o.name == "set-tos":
        return o
    v = int(o.values[0])
    if o.name == "and-tos":
        return Option("set-tos", False, (f"0x00/{(~v) & 0xFF:#04x}",))
    if o.name == "or-tos":
        return Option("set-tos", False, (f"{v:#04x}/{v:#04x}",))
    return Option("set-tos", False, (f"{v:#04x}/0x00",))


target("TOS", "set-tos:tos and-tos:uint or-tos:uint xor-tos:uint", needs_option=True,
       finish=lambda options, ctx: [_tos_option(o) for o in options],
       effect="continue", tables="mangle", hooks=frozenset(HOOKS))
target("NFLOG", "nflog-prefix:str nflog-group:u16 nflog-range:uint nflog-size:uint "
                "nflog-threshold:u16",
       finish=lambda options, ctx: [o for o in options
                                    if not (o.name == "nflog-group" and o.values == ("0",))],
       effect="continue")


def _exactly_one(name: str) -> Check:
    def check(options: list[Option], ctx: Context) -> str | None:
        if len(options) != 1:
            return f"{name}: give exactly one of --{name.lower()}-set/-dec/-inc"
        return None
    return check


target("TTL", "ttl-set:u8 ttl-dec:u8nz ttl-inc:u8nz", family=4,
       required=("ttl-set", "ttl-dec", "ttl-inc"), needs_option=True, check=_exactly_one("TTL"),
       effect="continue", tables="mangle", hooks=frozenset(HOOKS))


@target_listing("TTL", "HL")
def _ttl_target_l(t: Target) -> str | None:
    o = t.option
    for key, words in (("set", "set to"), ("inc", "increment by"), ("dec", "decrement by")):
        opt = o(f"{t.name.lower()}-{key}")
        if opt is not None:
            return f" {t.name} {words} {opt.value}"

target("HL", "hl-set:u8 hl-dec:u8nz hl-inc:u8nz", family=6,
       required=("hl-set", "hl-dec", "hl-inc"), needs_option=True, check=_exactly_one("HL"),
       effect="continue", tables="mangle", hooks=frozenset(HOOKS))


def _nfqueue_finish(options: list[Option], ctx: Context) -> list[Option]:
    if not any(o.name in ("queue-num", "queue-balance") for o in options):
        options = [Option("queue-num", False, ("0",)), *options]
    return options


target("NFQUEUE", "queue-num:u16 queue-balance:queuerange queue-bypass=0 queue-cpu-fanout=0",
       finish=_nfqueue_finish,
       effect="final")


@target_listing("NFQUEUE")
def _nfqueue_target_l(t: Target) -> str | None:
    o = t.option
    num, balance = o("queue-num"), o("queue-balance")
    text = f" NFQUEUE balance {balance.value}" if balance else \
        f" NFQUEUE num {num.value if num else 0}"
    text += " bypass" if o("queue-bypass") is not None else ""
    return text + (" cpu-fanout" if o("queue-cpu-fanout") is not None else "")

target("LED", "led-trigger-id:qstr led-delay led-always-blink=0", needs_option=True,
       effect="continue")


def _mark_finish(options: list[Option], ctx: Context) -> list[Option]:
    if not options:
        raise Refused("MARK target needs --set-xmark/--set-mark/…", "MARK")
    return [_mark_option(o) for o in options]


target("MARK", "set-xmark:xmark set-mark:xmark and-mark:uint or-mark:uint xor-mark:uint",
       needs_option=True, finish=_mark_finish,
       effect="continue", sets="mark")


@target_listing("MARK", "CONNMARK")
def _mark_target_l(t: Target) -> str | None:
    o = t.option
    opt = o("set-xmark")
    if opt is not None and opt.value is not None:
        return f" {t.name} " + _xmark_l(opt.value)
    if t.name == "CONNMARK":
        return _connmark_save_l(t)



def _tproxy_check(options: list[Option], ctx: Context) -> str | None:
    if ctx.proto is None or ctx.proto.name not in ("tcp", "udp"):
        return "TPROXY needs -p tcp or -p udp"
    return None


target("TPROXY", None, needs_option=True, check=_tproxy_check,
       effect="ends", tables="mangle", hooks=frozenset({"PREROUTING"}))


@target_listing("TPROXY")
def _tproxy_target_l(t: Target) -> str | None:
    o = t.option
    port, ip, mark = o("on-port"), o("on-ip"), o("tproxy-mark")
    text = f" TPROXY redirect {ip.value if ip else '0.0.0.0'}:{port.value if port else 0}"
    return text + (f" mark {mark.value}" if mark else "")



def _audit_check(options: list[Option], ctx: Context) -> str | None:
    kind = _given(options).get("type")
    if kind is not None and kind.value not in ("accept", "drop", "reject"):
        return "AUDIT: --type is accept, drop or reject"
    return None


target("AUDIT", None, needs_option=True, check=_audit_check,
       effect="continue")


@target_listing("AUDIT", "CONNSECMARK")
def _audit_target_l(t: Target) -> str | None:
    return f" {t.name}" + "".join(f" {opt.value or opt.name}" for opt in t.options)

target("IDLETIMER", None, needs_option=True,
       check=lambda options, ctx: None if "label" in _given(options) else
       "IDLETIMER needs --label",
       effect="continue")


@target_listing("IDLETIMER")
def _idletimer_target_l(t: Target) -> str | None:
    return "".join(f" {opt.name}:{opt.value}" if opt.value else f" {opt.name}"
                   for opt in t.options)



def _tcpoptstrip_check(options: list[Option], ctx: Context) -> str | None:
    if ctx.proto is None or ctx.proto.name != "tcp":
        return "TCPOPTSTRIP needs -p tcp"
    opt = _given(options).get("strip-options")
    if opt is not None and any(v in ("0", "1", "eol", "nop")
                               for v in (opt.value or "").split(",")):
        return "TCPOPTSTRIP cannot strip EOL or NOP"
    return None


target("TCPOPTSTRIP", None, check=_tcpoptstrip_check,
       effect="continue", tables="mangle", hooks=frozenset(HOOKS))


@target_listing("TCPOPTSTRIP")
def _tcpoptstrip_target_l(t: Target) -> str | None:
    o = t.option
    opt = o("strip-options")
    return f" TCPOPTSTRIP options {opt.value if opt else ''}"



def _npt_check(name: str) -> Check:
    def check(options: list[Option], ctx: Context) -> str | None:
        given = _given(options)
        if not {"src-pfx", "dst-pfx"} <= given.keys():
            return f"{name} needs --src-pfx and --dst-pfx"
        if any("/" not in (given[k].value or "") for k in ("src-pfx", "dst-pfx")):
            return f"{name}: --src-pfx and --dst-pfx need a prefix length"
        return None
    return check


target("SNPT", None, needs_option=True, check=_npt_check("SNPT"),
       tables="mangle", hooks=frozenset({"INPUT", "POSTROUTING"}))
target("DNPT", None, needs_option=True, check=_npt_check("DNPT"),
       tables="mangle", hooks=frozenset({"PREROUTING", "OUTPUT"}))


@target_listing("DNPT", "SNPT")
def _dnpt_target_l(t: Target) -> str | None:
    return f" {t.name}" + dashless(t.options)

# Targets iptables refuses without an option (their parse "final check").
target("CHECKSUM", None, needs_option=True, effect="continue", tables="mangle",
       hooks=frozenset(HOOKS))
target("CLASSIFY", None, needs_option=True, effect="continue", tables="mangle",
       hooks=frozenset({"FORWARD", "OUTPUT", "POSTROUTING"}))
target("CONNSECMARK", None, needs_option=True, effect="continue", hooks=frozenset(HOOKS))
target("SECMARK", None, needs_option=True, effect="continue", hooks=frozenset(HOOKS))
target("ECN", None, needs_option=True, effect="continue", tables="mangle", hooks=frozenset(HOOKS))
for _name in ("HMARK", "TCPMSS", "TEE", "SET", "RATEEST"):
    target(_name, None, needs_option=True, effect="continue")
# Targets iptables 1.8.9 can load that need nothing from trustwall beyond their name.
def _ct_check(options: list[Option], ctx: Context) -> str | None:
    zone = _given(options).get("zone")
    if zone is not None and zone.value != "mark" and not (
            (zone.value or "").isdigit() and int(zone.value or "0") <= 65535):
        return f"CT: cannot parse {zone.value} as a zone ID"
    return None


def _synproxy_check(options: list[Option], ctx: Context) -> str | None:
    if ctx.proto is None or ctx.proto.name != "tcp" or ctx.proto.negated:
        return "SYNPROXY needs -p tcp"  # the kernel's checkentry (RULE_APPEND failed)
    return None


target("CT", None, check=_ct_check, effect="continue", sets="conntrack", tables="raw",
       hooks=frozenset({"PREROUTING", "OUTPUT"}))
target("NOTRACK", None, effect="continue", sets="conntrack", tables="raw",
       hooks=frozenset({"PREROUTING", "OUTPUT"}))
target("SYNPROXY", "sack-perm=0 timestamp=0 wscale:u8 mss:u16 ecn=0", check=_synproxy_check,
       effect="ends", hooks=frozenset({"INPUT", "FORWARD"}))
target("TARPIT", None, effect="final")
for _name in ("TRACE", "ULOG"):
    target(_name, None, effect="continue")
for _name in ("CLUSTERIP", "MIRROR", "SAME"):
    target(_name, None)
# The standard targets: verdicts and RETURN.
target("ACCEPT", None, effect="accept")
# userspace: 'The "nat" table is not intended for filtering, the use of DROP is therefore
# inhibited.'
target("DROP", None, effect="final", tables="raw mangle filter security")
target("QUEUE", None, effect="final")
target("RETURN", None, effect="return")

# -L text of targets declared by their listing alone.

@target_listing("TEE")
def _tee_target_l(t: Target) -> str | None:
    o = t.option
    opt = o("gateway")
    return f" TEE gw:{opt.value}" if opt else ""


@target_listing("ECN")
def _ecn_target_l(t: Target) -> str | None:
    return " ECN" + ("".join(" TCP remove" if opt.name == "ecn-tcp-remove" else
                             f" {opt.name} {opt.value}" for opt in t.options))


@target_listing("CLASSIFY")
def _classify_target_l(t: Target) -> str | None:
    o = t.option
    opt = o("set-class")
    if opt is not None and opt.value and ":" in opt.value:
        major, minor = (int(x, 16) for x in opt.value.split(":", 1))
        return f" CLASSIFY set {major:x}:{minor:x}"


@target_listing("SYNPROXY")
def _synproxy_target_l(t: Target) -> str | None:
    return " SYNPROXY" + "".join(f" {opt.name}" + (f" {opt.value}" if opt.value else "")
                                 for opt in t.options) + " "


@target_listing("RATEEST")
def _rateest_target_l(t: Target) -> str | None:
    return "".join(f" {opt.name.removeprefix('rateest-')} {opt.value}"
                   for opt in t.options)


@target_listing("CT")
def _ct_target_l(t: Target) -> str | None:
    return " CT" + dashless(t.options).replace(" notrack", " notrack")


@target_listing("NOTRACK")
def _notrack_target_l(t: Target) -> str | None:
    return " NOTRACK"


@target_listing("TCPMSS")
def _tcpmss_target_l(t: Target) -> str | None:
    o = t.option
    opt = o("set-mss")
    return f" TCPMSS set {opt.value}" if opt else " TCPMSS clamp to PMTU"


@target_listing("CHECKSUM")
def _checksum_target_l(t: Target) -> str | None:
    return " CHECKSUM fill"


# --- what targets change (their IR rewrites) --------------------------------------------------

_Rewriting = TypeVar("_Rewriting", bound=Callable[[Target], "Rewrite | None"])


def target_rewrite(*names: str) -> Callable[[_Rewriting], _Rewriting]:
    """Declare what these targets change of the packet, as an IR rewrite."""
    def register(func: _Rewriting) -> _Rewriting:
        for name in names:
            TARGET_EXTENSIONS[name] = replace(TARGET_EXTENSIONS[name], rewrite=func)
        return func
    return register


def _value_mask(text: str) -> tuple[int, int]:
    value, _, mask = text.partition("/")
    return int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF


def _set_mark(t: Target, *, ct: bool) -> SetMark | None:
    """MARK/CONNMARK ``--set-xmark`` (the parser's one form) and the spellings it folds."""
    for o in t.options:
        if not o.values:
            continue
        if o.name == "set-xmark":
            value, mask = _value_mask(o.values[0])
            return SetMark(value, mask, ct)
        if o.name == "set-mark":  # (mark & ~mask) | value == xmark value/(mask | value)
            value, mask = _value_mask(o.values[0])
            return SetMark(value, mask | value, ct)
        v = int(o.values[0], 0)
        if o.name == "and-mark":
            return SetMark(0, ~v & 0xFFFFFFFF, ct)
        if o.name == "or-mark":
            return SetMark(v, v, ct)
        if o.name == "xor-mark":
            return SetMark(v, 0, ct)
    return None


@target_rewrite("MARK")
def _mark_rewrite(t: Target) -> Rewrite | None:
    return _set_mark(t, ct=False)


@target_rewrite("CONNMARK")
def _connmark_rewrite(t: Target) -> Rewrite | None:
    def mask(name: str) -> int:
        opt = t.option(name)
        return int(opt.value, 0) if opt is not None and opt.value else 0xFFFFFFFF
    for flag, to_ct in (("save-mark", True), ("restore-mark", False)):
        if t.option(flag) is not None:
            return MarkCopy(to_ct, mask("nfmask"), mask("ctmask"))
    return _set_mark(t, ct=True)


@target_rewrite("CT", "NOTRACK")
def _notrack_rewrite(t: Target) -> Rewrite | None:
    return Notrack() if t.name == "NOTRACK" or t.option("notrack") is not None else None


def _split_nat(text: str) -> tuple[str | None, int | None]:
    """``1.2.3.4-1.2.3.9:80-90`` -> ("1.2.3.4", 80); ``[::1]:80``; ``:80``."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:  # a bare IPv6 address, or a bare IPv4 address
        host, port_text = text, ""
    first = port_text.split("/")[0].split("-")[0]
    return host.split("-")[0] or None, int(first) if first else None


def _first_port(t: Target) -> int | None:
    opt = t.option("to-ports")
    return int(opt.value.split("-")[0]) if opt is not None and opt.value else None


@target_rewrite("DNAT", "SNAT", "REDIRECT", "MASQUERADE", "NETMAP")
def _nat_rewrite(t: Target) -> Rewrite | None:
    kind = t.name.lower()
    if t.name in ("DNAT", "SNAT"):
        opt = t.option("to-destination" if t.name == "DNAT" else "to-source")
        return Nat(kind, *_split_nat(opt.value or "" if opt is not None else ""))
    if t.name == "NETMAP":
        opt = t.option("to")
        net = ipaddress.ip_network(opt.value if opt is not None and opt.value else "0.0.0.0/0",
                                   strict=False)
        return Nat(kind, str(net))
    return Nat(kind, None, _first_port(t))


#: Option tables by extension name (the parser's view of the registry).
MATCHES: dict[str, ExtSpec] = {n: e.spec for n, e in MATCH_EXTENSIONS.items() if e.spec}
TARGETS: dict[str, ExtSpec] = {n: e.spec for n, e in TARGET_EXTENSIONS.items() if e.spec}
#: Every name ``-j`` can give that is not a chain: the standard targets and every target
#: extension declared here (the policy compiler and lint ask this one set).
TARGET_NAMES: frozenset[str] = frozenset(TARGET_EXTENSIONS)


def _targets(*effects: str) -> frozenset[str]:
    return frozenset(n for n, e in TARGET_EXTENSIONS.items() if e.effect in effects)


#: Targets that decide the packet for good (the rest of the hooks are not visited).
FINAL_TARGETS = _targets("final")
#: Targets that let the packet go on with the next rule.
CONTINUING_TARGETS = _targets("continue")
#: Targets that rewrite addresses or ports (and end the nat chain).
NAT_TARGETS = _targets("nat")
#: Targets that set the packet or connection mark a later ``-m mark`` reads.
MARK_SETTERS = frozenset(n for n, e in TARGET_EXTENSIONS.items() if "mark" in e.sets)
#: Options each match models exactly as packet conditions (what trace and spaces read).
MODELLED_OPTIONS: dict[str, frozenset[str]] = {
    n: e.modelled for n, e in MATCH_EXTENSIONS.items() if e.modelled is not None}
#: Options the typed accessors of model.Match capture, per module.
TYPED_OPTIONS: dict[str, frozenset[str]] = {
    n: (e.modelled or frozenset()) | e.typed for n, e in MATCH_EXTENSIONS.items()
    if e.modelled is not None or e.typed}
