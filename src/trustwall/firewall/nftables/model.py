"""The nftables ruleset as ``nft -j list ruleset`` describes it: tables, chains, rules, sets.

Rules keep their statements as the JSON values nft printed (libnftables-json(5)): the
grammar is large and changes between releases, so the model keeps what it was given and the
compiler (``compile.py``) and renderer (``render.py``) interpret it, each falling back to an
opaque reading of what they do not know. Nothing here trusts the JSON: :mod:`parse` checks
names, sizes and shapes before building these values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: Families nft knows; the IR traces ip, ip6 and inet (see ``ir.FAMILY_VERSIONS``).
FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")

#: Named priorities (nft's ``std_prios``): families ip, ip6, inet, arp and netdev.
STD_PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0,
                  "security": 50, "srcnat": 100}
#: The bridge family's own named priorities.
BRIDGE_PRIORITIES = {"dstnat": -300, "filter": -200, "out": 100, "srcnat": 300}

_PRIORITY_RE = re.compile(r"^\s*([a-z]+)\s*(?:([+-])\s*(\d+))?\s*$")


def _named_compatible(name: str, family: str, hook: str) -> bool:
    """Where nft 1.0.6 accepts (and lists) a named priority (rule.c
    ``std_prio_family_hook_compat``): dstnat only at prerouting, srcnat only at postrouting,
    raw/mangle/security only in ip, ip6 and inet."""
    if family == "bridge":
        return {"dstnat": hook == "prerouting", "filter": True, "out": hook == "output",
                "srcnat": hook == "postrouting"}.get(name, False)
    if name == "filter":
        return family in ("inet", "ip", "ip6", "arp", "netdev")
    if name in ("raw", "mangle", "security"):
        return family in ("inet", "ip", "ip6")
    if name == "dstnat":
        return family in ("inet", "ip", "ip6") and hook == "prerouting"
    if name == "srcnat":
        return family in ("inet", "ip", "ip6") and hook == "postrouting"
    return False


def resolve_priority(family: str, hook: str, value: object) -> int | None:
    """A chain priority as a number: ``10``, ``"-150"``, ``"filter + 10"``, ``"dstnat"``
    (named priorities resolved per family as nft does). None when it is not understood."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    m = _PRIORITY_RE.match(text)
    if m is None:
        return None
    table = BRIDGE_PRIORITIES if family == "bridge" else STD_PRIORITIES
    if m.group(1) not in table:
        return None
    offset = int(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
    return table[m.group(1)] + offset


def priority_text(family: str, hook: str | None, priority: int) -> str:
    """How ``nft list`` prints a priority: the first named one within 10, else the number
    (nft's ``prio2str``; an incompatible name within reach stops the search)."""
    table = BRIDGE_PRIORITIES if family == "bridge" else STD_PRIORITIES
    for name, base in table.items():
        offset = priority - base
        if abs(offset) <= 10:
            if hook is None or not _named_compatible(name, family, hook):
                break
            if offset > 0:
                return f"{name} + {offset}"
            if offset < 0:
                return f"{name} - {-offset}"
            return name
    return str(priority)


@dataclass(frozen=True, eq=False)
class Rule:
    """One rule: its handle, its 1-based position in the chain, its statements (the JSON
    ``expr`` list, kept as given) and its comment."""

    family: str
    table: str
    chain: str
    handle: int | None
    position: int
    expr: tuple[Any, ...]
    comment: str | None = None

    @property
    def has_xt(self) -> bool:
        """Written by iptables-nft with an extension nft cannot express natively."""
        return any(isinstance(s, dict) and "xt" in s for s in self.expr)


@dataclass(frozen=True, eq=False)
class Chain:
    family: str
    table: str
    name: str
    handle: int | None = None
    type: str | None = None  # filter, nat, route: None for a user chain
    hook: str | None = None
    priority: int | None = None  # resolved; None for a user chain or one not understood
    policy: str | None = None
    device: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()

    @property
    def is_base(self) -> bool:
        return self.hook is not None


@dataclass(frozen=True, eq=False)
class NamedSet:
    """A named set or map. ``key`` is the key type (a tuple of names for a concatenation) or
    the ``typeof`` expressions; ``data`` the map's data type (``verdict`` for a verdict map;
    None for a set); ``elements`` as the JSON gave them (values, prefixes, ranges, concat,
    and for maps ``[key, data]`` pairs)."""

    family: str
    table: str
    name: str
    kind: str  # "set" | "map"
    handle: int | None = None
    key: tuple[str, ...] = ()
    typeof: Any = None
    data: str | None = None
    flags: tuple[str, ...] = ()
    elements: tuple[Any, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # timeout, size, policy, gc-interval…

    @property
    def is_verdict_map(self) -> bool:
        return self.kind == "map" and self.data == "verdict"


@dataclass(frozen=True, eq=False)
class Other:
    """An object kept but not modelled (flowtable, counter, quota, ct helper, limit…)."""

    kind: str
    family: str
    table: str
    name: str
    body: dict[str, Any]


@dataclass(frozen=True, eq=False)
class Table:
    family: str
    name: str
    handle: int | None = None
    flags: tuple[str, ...] = ()
    chains: tuple[Chain, ...] = ()
    sets: tuple[NamedSet, ...] = ()
    others: tuple[Other, ...] = ()
    #: Why this table belongs to iptables-nft ("" when it does not): its rules are read
    #: through iptables-nft-save by the iptables frontend, never modelled from the JSON.
    iptables_nft: str = ""

    def chain(self, name: str) -> Chain | None:
        return next((c for c in self.chains if c.name == name), None)

    def set(self, name: str) -> NamedSet | None:
        return next((s for s in self.sets if s.name == name), None)

    @property
    def traced(self) -> bool:
        """Whether the IR traces this table (ip, ip6, inet, and not iptables-nft's)."""
        return self.family in ("ip", "ip6", "inet") and not self.iptables_nft


@dataclass(frozen=True, eq=False)
class Ruleset:
    tables: tuple[Table, ...] = ()
    version: str | None = None  # nft's version from the metainfo object
    source: str = ""
    #: What the reader could not take (objects of unknown kind, bad names), one line each.
    skipped: tuple[str, ...] = ()

    def table(self, family: str, name: str) -> Table | None:
        return next((t for t in self.tables if t.family == family and t.name == name), None)

    @property
    def native_tables(self) -> tuple[Table, ...]:
        """Tables written with nft (or another native tool), not by iptables-nft."""
        return tuple(t for t in self.tables if not t.iptables_nft)

    def rules(self) -> list[Rule]:
        return [r for t in self.tables for c in t.chains for r in c.rules]
