"""The firewall model: an iptables ruleset as immutable, typed values.

This module is the centre of the "letting in" side. ``parse.py`` builds these values from
iptables-save text or an iptables command line, ``render.py`` prints them back, and the trace,
analysis and plan code read them. Nothing here runs a program or touches the host.

Shape::

    Ruleset(family=4|6, tables=(Table, ...))
      Table(name="filter", chains=(Chain, ...))            # chains in file order
        Chain(name="INPUT", policy="ACCEPT"|None, counters, rules=(Rule, ...))
          Rule(chain, source, destination, in_interface, out_interface, protocol,
               fragment, matches=(Match, ...), target=Target|None, counters, text)
            Match(module="tcp", options=(Option("dport", negated=False, values=("22",)),))
            Target(name="REJECT", options=(Option("reject-with", ...),), goto=False)

Conventions that the other modules rely on:

* **Canonical values.** The parser stores every option value in the spelling the kernel's
  ``iptables-save`` prints (ports as numbers, ``1024:`` as ``1024:65535``, ``--syn`` as
  ``--tcp-flags FIN,SYN,RST,ACK SYN``, addresses without ``/32``). Rendering is therefore a plain
  walk over the model, and two rules are equal as values exactly when iptables-save would print
  them the same way (``text`` and ``counters`` are excluded from equality).
* **Typed where understood, verbatim otherwise.** Every option of every match and target is
  kept, in order, as an :class:`Option` (name without the leading ``--``, a negation flag and the
  argument words). On top of that, :class:`Match` offers typed accessors (``destination_ports``,
  ``states``, ``icmp``, ``source_range``, ``mark``, ``comment``, ``mac``, ``limit``,
  ``tcp_flags``) for the options the extension registry lists (``extensions.TYPED_OPTIONS``);
  for anything else ``Match.typed`` is False and a reader must treat the match as "unknown"
  rather than guess.
* **Rule numbers** are positions: rule ``i`` of a chain is ``chain.rules[i - 1]``, the number
  that ``iptables -L --line-numbers`` shows.
* The protocol, addresses, interfaces and the IPv4 fragment flag (``-p -s -d -i -o -f``) are
  fields of :class:`Rule`, not matches, because iptables keeps them in the rule header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field

from trustwall.firewall import ir
from trustwall.firewall.ir import (
    AddressRange,
    IcmpMatch,
    MarkMatch,
    PortSet,
    StateSet,
    TcpFlags,
    parse_port_list,
)

IPNetwork = ir.IPNetwork
IPAddress = ir.IPAddress

FAMILIES = (4, 6)

#: Built-in tables in the order the kernel traverses them at a hook.
TABLES = ("raw", "mangle", "nat", "filter", "security")

#: The hooks (built-in chains), in packet order.
HOOKS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")

#: Valid table/hook combinations: the built-in chains each table has, in iptables-save order.
BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}

#: Hooks without an input interface ("Can't use -i with OUTPUT", iptables) and without an
#: output interface yet.
NO_IN_HOOKS = frozenset({"OUTPUT", "POSTROUTING"})
NO_OUT_HOOKS = frozenset({"PREROUTING", "INPUT"})

MAX_CHAIN_NAME = 28  # XT_EXTENSION_MAXNAMELEN - 1 (xtables.h): the kernel's limit
MAX_IFACE_NAME = 15  # IFNAMSIZ - 1


def address_text(addr: IPAddress) -> str:
    """An address as glibc's inet_ntop prints it (``::ffff:127.0.0.1``, not ``::ffff:7f00:1``)."""
    if addr.version == 6:
        packed = addr.packed
        if packed[:10] == bytes(10) and packed[10:12] in (b"\xff\xff", b"\x00\x00") \
                and (packed[10:12] == b"\xff\xff" or packed[12:14] != b"\x00\x00"):
            v4 = ".".join(str(b) for b in packed[12:])
            return f"::ffff:{v4}" if packed[10:12] == b"\xff\xff" else f"::{v4}"
    return str(addr)


def builtin_chains(table: str) -> tuple[str, ...]:
    """The hooks a table attaches to; empty for an unknown table name."""
    return BUILTIN_CHAINS.get(table, ())


def is_valid_hook(table: str, chain: str) -> bool:
    """True when ``chain`` is a built-in chain of ``table`` (e.g. nat has no FORWARD)."""
    return chain in BUILTIN_CHAINS.get(table, ())


@dataclass(frozen=True)
class Counters:
    """Packet and byte counters, as ``[packets:bytes]`` in iptables-save -c."""

    packets: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Address:
    """A ``-s``/``-d`` network, possibly negated (``! -s 10.0.0.0/8``).

    A non-contiguous mask (``-s 10.0.0.0/255.0.255.0``, which the kernel loads) sets ``mask``
    to (value, mask) as integers, value already masked; ``network`` is then the widest CIDR
    network holding every matching address (the mask's leading ones): a sound superset for
    code that reasons in CIDR intervals. :meth:`matches` and the trace are exact.
    """

    network: IPNetwork
    negated: bool = False
    mask: tuple[int, int] | None = None

    @classmethod
    def masked(cls, addr: IPAddress, mask: IPAddress, *, negated: bool = False) -> Address:
        m = int(mask)
        bits = mask.max_prefixlen
        value = int(addr) & m
        lead = bits - (~m & ((1 << bits) - 1)).bit_length()
        base = value >> (bits - lead) << (bits - lead)
        cover = ipaddress.ip_network((base, lead)) if addr.version == 4 else \
            ipaddress.IPv6Network((base, lead))
        if lead == bits:  # contiguous after all
            return cls(cover, negated)
        return cls(cover, negated, (value, m))

    def matches(self, addr: IPAddress) -> bool:
        if self.mask is not None:
            return ((int(addr) & self.mask[1]) == self.mask[0]) != self.negated
        return (addr in self.network) != self.negated

    @property
    def text(self) -> str:
        """The save form, always with a prefix length (``10.0.0.1/32``), as iptables-save prints;
        a non-contiguous mask in address form (``10.0.12.0/255.0.255.0``)."""
        if self.mask is not None:
            cls = type(self.network.network_address)
            return f"{address_text(cls(self.mask[0]))}/{address_text(cls(self.mask[1]))}"
        return f"{address_text(self.network.network_address)}/{self.network.prefixlen}"

    @property
    def short(self) -> str:
        """The ``iptables -L`` form: a host address without its full-length mask."""
        net = self.network
        if net.prefixlen == net.max_prefixlen and self.mask is None:
            return address_text(net.network_address)
        return self.text

    def to_json(self) -> dict[str, object]:
        return {"network": self.text, "negated": self.negated}


@dataclass(frozen=True)
class Interface:
    """A ``-i``/``-o`` interface name; a trailing ``+`` is a prefix wildcard (``eth+``)."""

    name: str
    negated: bool = False

    @property
    def wildcard(self) -> bool:
        return self.name.endswith("+")

    def to_ir(self) -> ir.Interface:
        """The IR's interface test (``eth+`` is the prefix ``eth``)."""
        return ir.Interface(self.name[:-1] if self.wildcard else self.name, self.wildcard,
                            self.negated)

    def matches(self, ifname: str) -> bool:
        return self.to_ir().matches(ifname)


@dataclass(frozen=True)
class Protocol:
    """The ``-p`` protocol in save spelling (``tcp``, ``udp``, ``icmp``, ``ipv6-icmp``, ``47``)."""

    name: str
    negated: bool = False


@dataclass(frozen=True)
class Option:
    """One option of a match or target: ``! --dport 22`` is Option("dport", True, ("22",))."""

    name: str
    negated: bool = False
    values: tuple[str, ...] = ()

    @property
    def value(self) -> str | None:
        """The first argument word, or None for a flag such as ``--rsource``."""
        return self.values[0] if self.values else None


@dataclass(frozen=True)
class Limit:
    """``-m limit --limit N/unit --limit-burst B`` (rate as iptables-save prints it)."""

    rate: str
    burst: int


_PORT_OPTIONS = {
    "sport": "source", "source-port": "source", "sports": "source", "source-ports": "source",
    "dport": "destination", "destination-port": "destination", "dports": "destination",
    "destination-ports": "destination", "ports": "either",
}
_PORT_MODULES = frozenset({"tcp", "udp", "udplite", "sctp", "dccp", "multiport"})


@dataclass(frozen=True)
class Match:
    """A ``-m module`` with its options in order. ``typed`` says the accessors capture it all."""

    module: str
    options: tuple[Option, ...] = ()

    @property
    def typed(self) -> bool:
        """True when the typed accessors capture every option of this match."""
        from trustwall.firewall.iptables.extensions import (
            TYPED_OPTIONS,  # the registry imports model
        )

        known = TYPED_OPTIONS.get(self.module)
        return known is not None and all(o.name in known for o in self.options)

    def option(self, name: str) -> Option | None:
        """The first option called ``name`` (without dashes), or None."""
        for opt in self.options:
            if opt.name == name:
                return opt
        return None

    def _ports(self, direction: str) -> PortSet | None:
        if self.module not in _PORT_MODULES:
            return None
        for opt in self.options:
            if _PORT_OPTIONS.get(opt.name) == direction and opt.values:
                return PortSet(parse_port_list(opt.values[0]), opt.negated)
        return None

    @property
    def source_ports(self) -> PortSet | None:
        return self._ports("source")

    @property
    def destination_ports(self) -> PortSet | None:
        return self._ports("destination")

    @property
    def either_ports(self) -> PortSet | None:
        """``-m multiport --ports``: matches when the source or the destination port is listed."""
        return self._ports("either")

    @property
    def states(self) -> StateSet | None:
        name = {"state": "state", "conntrack": "ctstate"}.get(self.module)
        opt = self.option(name) if name else None
        if opt is None or not opt.values:
            return None
        return StateSet(frozenset(opt.values[0].split(",")), opt.negated)

    @property
    def icmp(self) -> IcmpMatch | None:
        opt = self.option("icmp-type") or self.option("icmpv6-type")
        if self.module not in ("icmp", "icmp6") or opt is None or not opt.values:
            return None
        text = opt.values[0]
        if text == "any":
            return IcmpMatch(None, negated=opt.negated)
        itype, _, code = text.partition("/")
        if code:
            return IcmpMatch(int(itype), int(code), int(code), opt.negated)
        return IcmpMatch(int(itype), negated=opt.negated)

    def _range(self, name: str) -> AddressRange | None:
        opt = self.option(name) if self.module == "iprange" else None
        if opt is None or not opt.values:
            return None
        first, _, last = opt.values[0].partition("-")
        lo = ipaddress.ip_address(first)
        return AddressRange(lo, ipaddress.ip_address(last) if last else lo, opt.negated)

    @property
    def source_range(self) -> AddressRange | None:
        return self._range("src-range")

    @property
    def destination_range(self) -> AddressRange | None:
        return self._range("dst-range")

    @property
    def mark(self) -> MarkMatch | None:
        opt = self.option("mark") if self.module == "mark" else None
        if opt is None or not opt.values:
            return None
        value, _, mask = opt.values[0].partition("/")
        return MarkMatch(int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF, opt.negated)

    @property
    def comment(self) -> str | None:
        opt = self.option("comment") if self.module == "comment" else None
        return opt.value if opt is not None else None

    @property
    def mac(self) -> tuple[str, bool] | None:
        """(source MAC in upper case, negated) of ``-m mac --mac-source``."""
        opt = self.option("mac-source") if self.module == "mac" else None
        if opt is None or not opt.values:
            return None
        return opt.values[0].upper(), opt.negated

    @property
    def limit(self) -> Limit | None:
        if self.module != "limit":
            return None
        rate = self.option("limit")
        burst = self.option("limit-burst")
        return Limit(rate.value if rate and rate.value else "3/hour",
                     int(burst.value) if burst and burst.value else 5)

    @property
    def tcp_flags(self) -> TcpFlags | None:
        opt = self.option("tcp-flags") if self.module == "tcp" else None
        if opt is None or len(opt.values) != 2:
            return None
        mask, comp = (frozenset(v.split(",")) - {"NONE"} for v in opt.values)
        if "ALL" in mask:
            mask = frozenset({"FIN", "SYN", "RST", "PSH", "ACK", "URG"})
        if "ALL" in comp:
            comp = frozenset({"FIN", "SYN", "RST", "PSH", "ACK", "URG"})
        return TcpFlags(mask, comp, opt.negated)


@dataclass(frozen=True)
class Target:
    """``-j NAME [options]`` (or ``-g NAME`` when ``goto``). A user chain is a target too."""

    name: str
    options: tuple[Option, ...] = ()
    goto: bool = False

    def option(self, name: str) -> Option | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None


@dataclass(frozen=True)
class Rule:
    """One ``-A CHAIN ...`` rule. ``text`` is the line as read (empty when built in code)."""

    chain: str
    matches: tuple[Match, ...] = ()
    target: Target | None = None
    protocol: Protocol | None = None
    source: Address | None = None
    destination: Address | None = None
    in_interface: Interface | None = None
    out_interface: Interface | None = None
    fragment: bool | None = None  # True: -f, False: ! -f, None: not given (IPv4 only)
    counters: Counters | None = field(default=None, compare=False)
    text: str = field(default="", compare=False)

    def match(self, module: str) -> Match | None:
        """The first match of ``module`` in this rule, or None."""
        for m in self.matches:
            if m.module == module:
                return m
        return None

    @property
    def typed(self) -> bool:
        """True when every match of the rule is one the model understands."""
        return all(m.typed for m in self.matches)

    @property
    def target_name(self) -> str | None:
        return self.target.name if self.target is not None else None

    @property
    def comment(self) -> str | None:
        for m in self.matches:
            if m.module == "comment":
                return m.comment
        return None

    def to_ir(self, family: int = 4, table: str = "filter") -> ir.Rule:
        """This rule alone in the firewall IR (jumps are to chains it cannot see: unknown)."""
        from trustwall.firewall.iptables.compile import compile_rule  # imports model

        return compile_rule(self, family, table=table)


@dataclass(frozen=True)
class Chain:
    """A chain; ``policy`` is None for a user-defined chain (iptables-save prints ``-``)."""

    name: str
    policy: str | None = None
    counters: Counters | None = field(default=None, compare=False)
    rules: tuple[Rule, ...] = ()

    @property
    def builtin(self) -> bool:
        return self.policy is not None

    def rule(self, number: int) -> Rule:
        """Rule by its 1-based number (as ``--line-numbers`` shows)."""
        if number < 1:
            raise IndexError(number)
        return self.rules[number - 1]


@dataclass(frozen=True)
class Table:
    """A table with its chains in order (built-in chains first, as iptables-save prints)."""

    name: str
    chains: tuple[Chain, ...] = ()

    def chain(self, name: str) -> Chain | None:
        for c in self.chains:
            if c.name == name:
                return c
        return None

    @property
    def rules(self) -> Iterator[Rule]:
        for c in self.chains:
            yield from c.rules


@dataclass(frozen=True)
class Ruleset:
    """All tables of one address family (4: iptables, 6: ip6tables)."""

    family: int = 4
    tables: tuple[Table, ...] = ()

    def table(self, name: str) -> Table | None:
        for t in self.tables:
            if t.name == name:
                return t
        return None

    def chain(self, table: str, chain: str) -> Chain | None:
        t = self.table(table)
        return t.chain(chain) if t is not None else None

    @property
    def rule_count(self) -> int:
        return sum(len(c.rules) for t in self.tables for c in t.chains)

    def to_ir(self) -> ir.Ruleset:
        """This ruleset in the firewall IR (``iptables.compile``), compiled once per value."""
        cached = self.__dict__.get("_ir")
        if cached is None:
            from trustwall.firewall.iptables.compile import compile_ruleset  # imports model

            cached = compile_ruleset(self)
            object.__setattr__(self, "_ir", cached)  # a cache, not a field: eq/hash ignore it
        return cached
