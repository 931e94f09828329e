"""The running nftables ruleset, read-only — and the whole picture the kernel evaluates.

``nft -j list ruleset`` shows every nf_tables table: native ones and those iptables-nft wrote.
The latter are read through ``iptables-nft-save`` by the iptables frontend (its ``xt``
expressions are opaque to nft's JSON), and x_tables (iptables-legacy) rules are not in nft's
listing at all. :func:`whole_picture` puts the three together, IPv4 and IPv6, as one
``ir.Ruleset``, and says what a reader must know: base chains of one hook at the same
priority (the kernel's order between them is undefined) and rules held by both iptables
backends.

Everything here may run inside a network namespace (``netns=``); nothing changes state. A saved
nft text file is loaded into a private, throw-away network namespace (``unshare --net``) and
listed back as JSON, which needs root.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from trustwall.errors import BadInput, EnvironmentMissing
from trustwall.firewall import ir
from trustwall.firewall.iptables import live as iptables_live
from trustwall.firewall.iptables import model as iptables_model
from trustwall.firewall.iptables.parse import parse_save
from trustwall.firewall.nftables import compile as nft_compile
from trustwall.firewall.nftables import parse
from trustwall.firewall.nftables.model import Ruleset
from trustwall.proc import CommandFailed, run

_argv = iptables_live._argv  # one way to enter a namespace, shared with iptables


def _require_root(what: str, hint: str) -> None:
    if os.geteuid() != 0:
        raise EnvironmentMissing(f"{what} needs root", hint=hint)


def list_json(*, netns: str | None = None) -> str:
    """The raw output of ``nft -j list ruleset``."""
    _require_root("reading the live nftables ruleset",
                  "run as root, or read a saved file (nft -j list ruleset > f.json)")
    try:
        return run(_argv(["nft", "-j", "list", "ruleset"], netns), timeout=120).stdout
    except CommandFailed as exc:
        raise EnvironmentMissing(f"nft -j list ruleset failed: {exc}") from None


def read_live(*, netns: str | None = None) -> Ruleset:
    """The running nftables ruleset (every table of every family), parsed."""
    return parse.loads(list_json(netns=netns), source="nft -j list ruleset")


def load_text(path: str | Path) -> str:
    """Load an nft text file into a private scratch network namespace and list it back as
    JSON: nft's own parser is the only faithful reader of its syntax (variables, includes,
    defines). The namespace lives as long as one ``nft -i`` process (``unshare --net``)."""
    _require_root("reading an nft text file (it is loaded into a private network namespace)",
                  "run as root, or give the JSON listing: nft -j list ruleset > f.json")
    if shutil.which("unshare") is None:
        raise EnvironmentMissing("unshare (util-linux) is needed to read an nft text file")
    with tempfile.TemporaryDirectory(prefix="tw-nft-") as work:
        copy = Path(work) / "ruleset.nft"  # a name of ours: the include line holds no input
        try:
            shutil.copyfile(path, copy)
        except OSError as exc:
            raise BadInput(f"cannot read {path}: {exc.strerror}") from None
        # -I: the file's own relative includes still resolve from its folder
        proc = run(["unshare", "--net", "--", "nft", "-I", str(Path(path).resolve().parent),
                    "-j", "-i"],
                   input=f'include "{copy}"\nlist ruleset\n', check=False, timeout=300)
    # nft -i exits 0 even when a command fails: its error text is the signal.
    if proc.returncode != 0 or "Error:" in proc.stderr:
        first = next((ln for ln in proc.stderr.splitlines() if "Error:" in ln),
                     proc.stderr.strip()[:200])
        raise BadInput(f"{path}: nft refuses it: {first.replace(str(copy), str(path))}")
    return proc.stdout


def read_file(path: str | Path) -> Ruleset:
    """A saved ruleset: ``nft -j list ruleset`` JSON, or nft text (loaded in a scratch
    namespace, see :func:`load_text`)."""
    p = Path(path)
    try:
        with p.open("rb") as handle:
            head = handle.read(4096).lstrip()
    except OSError as exc:
        raise BadInput(f"cannot read {p}: {exc.strerror}") from None
    if head.startswith(b"{"):
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read {p}: {exc.strerror}") from None
        return parse.loads(data, source=str(p))
    return parse.loads(load_text(p), source=str(p))


# --- the whole picture -------------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """Everything the kernel evaluates, read at once.

    ``ruleset``: the IR of all of it (native nft tables; iptables-nft and legacy tables
    through the iptables frontend). ``nft``: the nft model (all tables, iptables-nft's marked).
    ``iptables``: the parsed iptables-save dumps by (backend, family) — ``("nft", 4)`` for
    iptables-nft, ``("legacy", 6)`` for ip6tables-legacy. ``warnings``: one line each.
    """

    ruleset: ir.Ruleset
    nft: Ruleset
    iptables: dict[tuple[str, int], iptables_model.Ruleset] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def compile_iptables(ruleset: iptables_model.Ruleset) -> tuple[ir.Table, ...]:
    """An iptables dump's tables in the IR (compiled once per ruleset, cached by it)."""
    return ruleset.to_ir().tables


def _save(argv: list[str], netns: str | None) -> str | None:
    try:
        proc = run(_argv(argv, netns), check=False, timeout=120, text=False)
    except EnvironmentMissing:
        return None
    return iptables_live.decode(proc.stdout) if proc.returncode == 0 else None


def _legacy_loaded(version: int, netns: str | None) -> bool:
    """Whether x_tables holds tables of this family, read without loading a module (see
    ``iptables.live._legacy_rules``): no names file or an empty one means none."""
    names = "/proc/net/ip_tables_names" if version == 4 else "/proc/net/ip6_tables_names"
    try:
        proc = run(_argv(["cat", names], netns), check=False, timeout=30)
    except EnvironmentMissing:
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def equal_priority_warnings(ruleset: ir.Ruleset) -> list[str]:
    """Base chains of one hook (and IP version) at the same priority: the kernel runs them in
    an order nobody chose, so no reader can say which decides first."""
    out = []
    for version in (4, 6):
        for hook in ir.HOOKS:
            seen: dict[int, list[str]] = {}
            for table, chain in ruleset.base_chains(version, hook):
                assert chain.base is not None
                seen.setdefault(chain.base.priority, []).append(
                    f"{table.backend} {table.family} {table.name} {chain.name}")
            for priority, names in seen.items():
                if len(names) > 1:
                    out.append(f"IPv{version} {hook}: base chains at the same priority "
                               f"{priority} run in an undefined order: {'; '.join(names)}")
    return out


def whole_picture(*, netns: str | None = None) -> Picture:
    """Read native nft tables, iptables-nft tables and x_tables (legacy) rules, IPv4 and
    IPv6, and compile all of it to one ``ir.Ruleset``."""
    nft = read_live(netns=netns)
    warnings: list[str] = [f"nft listing: {s}" for s in nft.skipped]
    tables: list[ir.Table] = list(nft_compile.compile_ruleset(nft).tables)
    dumps: dict[tuple[str, int], iptables_model.Ruleset] = {}
    for version, family in ((4, "ip"), (6, "ip6")):
        prefix = "ip6" if version == 6 else "ip"
        # iptables-nft's tables one by one (-t): a table nft wrote into stays out of the save
        # (iptables-nft-save fails on some nft-only rules, and misreads others).
        ours = [t.name for t in nft.tables if t.family == family and t.iptables_nft]
        wanted = [("nft", [f"{prefix}tables-nft-save", "-t", name]) for name in ours]
        if _legacy_loaded(version, netns):
            wanted.append(("legacy", [f"{prefix}tables-legacy-save"]))
        for backend, argv in wanted:
            text = _save(argv, netns)
            if text is None:
                warnings.append(f"{' '.join(argv)} failed: its rules are not in this picture")
                continue
            parsed = parse_save(text, family=version, source=argv[0])
            previous = dumps.get((backend, version))
            if previous is not None:
                parsed = replace(previous, tables=previous.tables + parsed.tables)
            dumps[(backend, version)] = parsed
        for native in nft.native_tables:
            if native.family == family and parse.iptables_shaped(native):
                warnings.append(f"{family} {native.name}: an iptables table holding rules "
                                f"written with nft (nft-only syntax); read from nft's listing, "
                                f"as iptables-nft-save misreads such rules")
        for backend in ("nft", "legacy"):
            if (backend, version) in dumps:
                tables += compile_iptables(dumps[(backend, version)])
    for version in (4, 6):
        held = [b for b in ("nft", "legacy") if (b, version) in dumps
                and any(c.rules or (c.policy or "ACCEPT") != "ACCEPT"
                        for t in dumps[(b, version)].tables for c in t.chains)]
        if len(held) == 2:
            tool = "iptables" if version == 4 else "ip6tables"
            warnings.append(f"{tool}: both backends hold rules (nf_tables and legacy "
                            f"x_tables); the kernel runs both")
    ruleset = ir.Ruleset(tuple(tables))
    warnings += equal_priority_warnings(ruleset)
    return Picture(ruleset, nft, dumps, tuple(warnings))


@dataclass(frozen=True)
class Traceable:
    """What a trace of this host walks: ``ruleset`` (the whole picture in the IR, or the
    iptables ruleset of one family when nft is missing), ``picture`` (None then) and what a
    reader must know (``warnings``)."""

    ruleset: ir.Ruleset | iptables_model.Ruleset
    picture: Picture | None
    warnings: tuple[str, ...]

    def iptables(self) -> list[iptables_model.Ruleset]:
        """One iptables dump per IP version (iptables-nft's, else legacy's): what owner
        detection reads chain names from."""
        if self.picture is None:
            return [self.ruleset] if isinstance(self.ruleset, iptables_model.Ruleset) else []
        dumps = self.picture.iptables
        found = (next((dumps[(b, v)] for b in ("nft", "legacy") if (b, v) in dumps), None)
                 for v in (4, 6))
        return [d for d in found if d is not None]


def traceable(family: int = 4, *, netns: str | None = None) -> Traceable:
    """The live ruleset a trace walks: :func:`whole_picture` (every backend, both IP versions);
    on a host without the nft program, iptables alone (of ``family``), said in a warning."""
    try:
        picture = whole_picture(netns=netns)
    except EnvironmentMissing as exc:
        if shutil.which("nft") is not None or os.geteuid() != 0:
            raise
        ruleset = iptables_live.read_live(family=family, netns=netns)
        return Traceable(ruleset, None, (f"native nftables not read ({exc}): iptables only",))
    return Traceable(picture.ruleset, picture, picture.warnings)


def file_ir(path: str | Path) -> ir.Ruleset:
    """A saved nft ruleset (JSON or text) as the IR, every table: a file has no
    iptables-nft-save beside it, so iptables-nft's ``xt`` rules stay opaque."""
    return nft_compile.compile_ruleset(read_file(path), include_iptables_nft=True)
