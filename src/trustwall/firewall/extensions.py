"""What trustwall knows about iptables match and target extensions.

One row per extension: its options in the order iptables-save prints them, how many argument
words each takes, and how to bring a value to the spelling iptables-save uses (the kernel
stores numbers, so ``--dport ssh`` comes back as ``--dport 22``). The parser reads this table;
an extension missing from it is still parsed, generically, and kept verbatim.

Spec mini-language for one option: ``name[/alias...][=nargs][:kind]``; nargs is 0, 1 (default),
2, or ``?`` (an optional argument); kind names a canonicaliser in :data:`CANON`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache


class BadValue(ValueError):
    """An option value iptables would refuse; the message is shown to the user."""


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


@cache
def _service(name: str) -> int:
    try:
        return socket.getservbyname(name)
    except OSError:
        raise BadValue(f"invalid port/service {name!r}") from None


def port(text: str) -> int:
    if text.isdigit():
        return _int(text, 0, 65535)
    if not text or text.startswith("-"):
        raise BadValue(f"invalid port/service {text!r}")
    return _service(text)


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


CT_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")


def states(text: str) -> str:
    given = {s.upper() for s in text.split(",")}
    unknown = given - set(CT_STATES)
    if unknown or not text:
        raise BadValue(f"bad state {text!r}")
    return ",".join(s for s in CT_STATES if s in given)


TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")


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
    from trustwall.firewall.parse import protocol_name, protocol_number

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


def user(text: str) -> str:
    if text.replace("-", "").isdigit():
        return _id_range(text)
    import pwd

    try:
        return str(pwd.getpwnam(text).pw_uid)
    except KeyError:
        raise BadValue(f"unknown user {text!r}") from None


def group(text: str) -> str:
    if text.replace("-", "").isdigit():
        return _id_range(text)
    import grp

    try:
        return str(grp.getgrnam(text).gr_gid)
    except KeyError:
        raise BadValue(f"unknown group {text!r}") from None


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
    from trustwall.firewall.parse import protocol_number

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

MATCHES: dict[str, ExtSpec] = {s.name: s for s in (
    _spec("tcp", "sport/source-port:portrange dport/destination-port:portrange "
                 "tcp-option:uint tcp-flags=2:flags syn=0", proto=("tcp",)),
    _spec("udp", "sport/source-port:anyportrange dport/destination-port:anyportrange",
          proto=("udp",)),
    _spec("udplite", "sport/source-port:portrange dport/destination-port:portrange",
          proto=("udplite",)),
    _spec("multiport", "sports/source-ports:portlist dports/destination-ports:portlist "
                       "ports:portlist", required=("sports", "dports", "ports"),
          proto=("tcp", "udp", "udplite", "sctp", "dccp")),
    _spec("state", "state:states", required=("state",)),
    _spec("conntrack", "ctstate:states ctproto:protonum ctorigsrc ctorigdst ctreplsrc "
                       "ctrepldst ctorigsrcport:anyportrange ctorigdstport:anyportrange "
                       "ctreplsrcport:anyportrange ctrepldstport:anyportrange ctstatus:ctstatus "
                       "ctexpire:intrange ctdir",
          required=("ctstate", "ctproto", "ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst",
                    "ctorigsrcport", "ctorigdstport", "ctreplsrcport", "ctrepldstport",
                    "ctstatus", "ctexpire", "ctdir")),
    _spec("icmp", "icmp-type:icmp", family=4, required=("icmp-type",), proto=("icmp",)),
    _spec("icmp6", "icmpv6-type:icmp6", family=6, required=("icmpv6-type",),
          proto=("ipv6-icmp",)),
    _spec("iprange", "src-range:iprange dst-range:iprange",
          required=("src-range", "dst-range")),
    _spec("mark", "mark:mark", required=("mark",)),
    _spec("connmark", "mark:mark", required=("mark",)),
    _spec("comment", "comment:str", required=("comment",)),
    _spec("mac", "mac-source:mac", required=("mac-source",)),
    _spec("limit", "limit:rate limit-burst:uint"),
    _spec("physdev", "physdev-is-in=0 physdev-in physdev-is-out=0 physdev-out "
                     "physdev-is-bridged=0"),
    _spec("pkttype", "pkt-type:pkttype", required=("pkt-type",)),
    _spec("addrtype", "src-type:addrtypes dst-type:addrtypes limit-iface-in=0 "
                      "limit-iface-out=0"),
    _spec("length", "length:lenrange", required=("length",)),
    _spec("sctp", "sport/source-port:portrange dport/destination-port:portrange "
                  "chunk-types=2", proto=("sctp",)),
    _spec("statistic", "mode probability:probability every:uint packet:uint", required=("mode",)),
    _spec("cluster", "cluster-local-nodemask cluster-total-nodes:uint cluster-hash-seed "
                     "cluster-local-node:uint",
          required=("cluster-total-nodes",)),
    _spec("dccp", "sport/source-port:anyportrange dport/destination-port:anyportrange dccp-types "
                  "dccp-option:u8", proto=("dccp",)),
    _spec("esp", "espspi:spirange", proto=("esp",)),
    _spec("ah", "ahspi:spirange ahlen:uint ahres=0"),
    _spec("frag", "fragid:spirange fraglen:uint fragres=0 fragfirst=0 fragmore=0 fraglast=0",
          family=6),
    _spec("rt", "rt-type:uint rt-segsleft:spirange rt-len:uint rt-0-res=0 rt-0-addrs "
                "rt-0-not-strict=0", family=6),
    _spec("mh", "mh-type:mhrange", family=6, proto=("mobility-header",)),
    _spec("cpu", "cpu:uint", required=("cpu",)),
    _spec("quota", "quota:u64", required=("quota",)),
    _spec("dscp", "dscp:dscp dscp-class:dscp", required=("dscp", "dscp-class")),
    _spec("tos", "tos:tos", required=("tos",)),
    _spec("hashlimit", "hashlimit-upto/hashlimit hashlimit-above hashlimit-burst hashlimit-mode "
                       "hashlimit-name hashlimit-htable-size:uint hashlimit-htable-max:uint "
                       "hashlimit-htable-gcinterval:uint hashlimit-htable-expire:uint "
                       "hashlimit-srcmask:uint hashlimit-dstmask:uint hashlimit-rate-match=0 "
                       "hashlimit-rate-interval:uint",
          required=("hashlimit-name",)),
    _spec("connbytes", "connbytes:connbytes connbytes-mode connbytes-dir",
          required=("connbytes",)),
    _spec("u32", "u32:u32", required=("u32",)),
    _spec("time", "timestart:daytime timestop:daytime monthdays:monthdays weekdays:weekdays "
                  "datestart:date datestop:date utc=0 kerneltz/localtz=0 contiguous=0"),
    _spec("devgroup", "src-group:mark dst-group:mark", required=("src-group", "dst-group")),
    _spec("ipv6header", "header:ip6headers soft=0", family=6, required=("header",)),
    _spec("ipvs", "ipvs=0 vproto:protonum vaddr:addrmask vport:port vdir vmethod "
                  "vportctl:port"),
    _spec("connlimit", "connlimit-upto:uint connlimit-above:uint connlimit-mask:uint "
                       "connlimit-saddr=0 connlimit-daddr=0"),
    _spec("recent", "set=0 rcheck=0 update=0 remove=0 seconds:uint reap=0 hitcount:u16 "
                    "rttl=0 name mask rsource=0 rdest=0"),
    _spec("ipcomp", "ipcompspi:spirange compres=0", proto=("ipcomp",)),
    _spec("tcpmss", "mss:portrange", required=("mss",), proto=("tcp",)),
    _spec("owner", "uid-owner:user gid-owner:group suppl-groups=0 socket-exists=0"),
    _spec("string", "string:qstr hex-string:qstr algo from:uint to:uint icase=0",
          required=("string", "hex-string")),
    _spec("cgroup", "path:qstr cgroup"),
    _spec("connlabel", "label:qstr set=0", required=("label",)),
    _spec("ttl", "ttl-eq/ttl:u8 ttl-lt:u8 ttl-gt:u8", family=4,
          required=("ttl-eq", "ttl-lt", "ttl-gt")),
    _spec("hl", "hl-eq:u8 hl-lt:u8 hl-gt:u8", family=6, required=("hl-eq", "hl-lt", "hl-gt")),
)}

TARGETS: dict[str, ExtSpec] = {s.name: s for s in (
    _spec("REJECT", "reject-with"),
    _spec("LOG", "log-prefix:str log-level:loglevel log-tcp-sequence=0 log-tcp-options=0 "
                 "log-ip-options=0 log-uid=0 log-macdecode=0"),
    _spec("DNAT", "to-destination:natto random=0 persistent=0"),
    _spec("SNAT", "to-source:natto random=0 random-fully=0 persistent=0"),
    _spec("REDIRECT", "to-ports:natports random=0"),
    _spec("MASQUERADE", "to-ports:natports random=0 random-fully=0"),
    _spec("NETMAP", "to:netmapto"),
    _spec("CONNMARK", "set-xmark:xmark save-mark=0 restore-mark=0 nfmask:xmask ctmask:xmask "
                      "set-mark:xmark and-mark:uint or-mark:uint xor-mark:uint mask:xmask"),
    _spec("DSCP", "set-dscp:dscp set-dscp-class:dscp"),
    _spec("TOS", "set-tos:tos and-tos:uint or-tos:uint xor-tos:uint"),
    _spec("NFLOG", "nflog-prefix:str nflog-group:u16 nflog-range:uint nflog-size:uint "
                   "nflog-threshold:u16"),
    _spec("TTL", "ttl-set:u8 ttl-dec:u8nz ttl-inc:u8nz", family=4,
          required=("ttl-set", "ttl-dec", "ttl-inc")),
    _spec("HL", "hl-set:u8 hl-dec:u8nz hl-inc:u8nz", family=6,
          required=("hl-set", "hl-dec", "hl-inc")),
    _spec("NFQUEUE", "queue-num:u16 queue-balance:queuerange queue-bypass=0 "
                     "queue-cpu-fanout=0", family=0),
    _spec("LED", "led-trigger-id:qstr led-delay led-always-blink=0"),
    _spec("MARK", "set-xmark:xmark set-mark:xmark and-mark:uint or-mark:uint xor-mark:uint"),
    _spec("SYNPROXY", "sack-perm=0 timestamp=0 wscale:u8 mss:u16 ecn=0"),
)}

#: Every target extension name iptables 1.8.9 can load (``-j NAME`` that is not a chain): the
#: ones above with modelled options plus those the parser keeps opaque. The policy compiler and
#: lint ask this one set whether a jump names a target or a (missing) chain.
TARGET_NAMES: frozenset[str] = frozenset(TARGETS) | frozenset({
    "ACCEPT", "DROP", "RETURN", "QUEUE",
    "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNSECMARK", "CT", "DNPT", "ECN", "HMARK",
    "IDLETIMER", "NOTRACK", "RATEEST", "SECMARK", "SET", "SNPT", "SYNPROXY", "TCPMSS",
    "TCPOPTSTRIP", "TEE", "TPROXY", "TRACE", "ULOG", "MIRROR", "SAME", "TARPIT",
})
