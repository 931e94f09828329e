"""The typed result behind ``fw show --live`` for native nftables tables (and its --json)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from trustwall.firewall.iptables import render as iptables_render
from trustwall.firewall.nftables import live, render
from trustwall.firewall.nftables.model import Ruleset, Table


@dataclass(frozen=True)
class ShownRule:
    position: int
    handle: int | None
    text: str
    exact: bool  # False: a statement trustwall cannot write in nft syntax is shown as JSON


@dataclass(frozen=True)
class ShownChain:
    name: str
    handle: int | None
    type: str | None
    hook: str | None
    priority: int | None
    policy: str | None
    rules: tuple[ShownRule, ...]


@dataclass(frozen=True)
class ShownSet:
    name: str
    kind: str
    key: tuple[str, ...]
    data: str | None
    flags: tuple[str, ...]
    elements: int


@dataclass(frozen=True)
class ShownTable:
    family: str
    name: str
    handle: int | None
    chains: tuple[ShownChain, ...]
    sets: tuple[ShownSet, ...]


@dataclass(frozen=True)
class ShownDump:
    """iptables rules of a backend and family that the iptables listing above did not show
    (x_tables legacy rules, or the other IP version), as iptables-save prints them."""

    backend: str  # "nft" (iptables-nft) or "legacy" (x_tables)
    family: int
    text: str


@dataclass(frozen=True)
class NftView:
    tables: tuple[ShownTable, ...]
    text: str  # nft syntax with handles, as `nft -a list ruleset` prints these tables
    warnings: tuple[str, ...]
    iptables: tuple[ShownDump, ...] = ()


def table_view(table: Table) -> ShownTable:
    chains = tuple(ShownChain(
        c.name, c.handle, c.type, c.hook, c.priority, c.policy,
        tuple(ShownRule(r.position, r.handle, *render.render_rule(r)) for r in c.rules))
        for c in table.chains)
    sets = tuple(ShownSet(s.name, s.kind, s.key, s.data, s.flags, len(s.elements))
                 for s in table.sets)
    return ShownTable(table.family, table.name, table.handle, chains, sets)


def view(ruleset: Ruleset, warnings: tuple[str, ...] = ()) -> NftView:
    """The native tables of ``ruleset`` (iptables-nft's are shown by the iptables listing)."""
    tables = ruleset.native_tables
    text = "".join(render.render_table(t, handles=True)[0] for t in tables)
    return NftView(tuple(table_view(t) for t in tables), text, warnings)


def is_nft_file(path: str | Path) -> bool:
    """A saved nftables ruleset (``nft -j list ruleset`` JSON, or a ``.nft`` text file) rather
    than an iptables-save dump or a policy file."""
    p = Path(path)
    if p.suffix == ".nft":
        return True
    try:
        with p.open("rb") as handle:
            head = handle.read(4096).lstrip()
    except OSError:
        return False  # the iptables reader says what is wrong with it
    return head.startswith(b"{") and b'"nftables"' in head


def file_view(path: str | Path) -> NftView:
    """Every table of a saved nftables ruleset (iptables-nft's too: a file has no
    iptables-nft-save beside it)."""
    ruleset = live.read_file(path)
    text = "".join(render.render_table(t, handles=True)[0] for t in ruleset.tables)
    return NftView(tuple(table_view(t) for t in ruleset.tables), text,
                   tuple(f"{path}: {s}" for s in ruleset.skipped))


def native_view(*, shown: tuple[str, int] = ("nft", 4),
                netns: str | None = None) -> NftView | None:
    """The live native nft tables, the iptables rules of the other backend and IP version
    (``shown``: the backend and family the iptables listing already shows), and the whole
    picture's warnings; None when the kernel holds no native nft table (then ``fw show``
    lists iptables only, as it always did)."""
    picture = live.whole_picture(netns=netns)
    if not picture.nft.native_tables:
        return None
    # The iptables listing already warns when both iptables backends hold IPv4 rules, and
    # whether the IR compiler is there matters to trace, not to a listing.
    warnings = tuple(w for w in picture.warnings if not w.startswith("iptables: both")
                     and "compiler is missing" not in w)
    dumps = tuple(ShownDump(backend, family, iptables_render.render_save(dump))
                  for (backend, family), dump in sorted(picture.iptables.items())
                  if (backend, family) != shown and any(
                      c.rules for t in dump.tables for c in t.chains))
    return replace(view(picture.nft, warnings), iptables=dumps)
