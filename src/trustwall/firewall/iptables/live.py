"""The running firewall, read-only: which backend holds rules, and its current ruleset.

iptables 1.8 ships two backends behind the same command names: ``nf_tables`` (iptables-nft)
and ``legacy`` (x_tables). Rules loaded through one are invisible to the other, so a host where
both hold rules is a trap: ``iptables -L`` shows only half of what the kernel enforces. This
module says which one ``iptables`` talks to and whether the other one holds rules as well.

Everything here may run inside a network namespace (``netns=``) so tests never read or change
the host's own firewall.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from trustwall.errors import BadInput, EnvironmentMissing
from trustwall.firewall.iptables.model import Ruleset
from trustwall.firewall.iptables.parse import parse_dumps, parse_save
from trustwall.proc import CommandFailed, run


@dataclass(frozen=True)
class Backend:
    """What ``iptables`` is on this host and where rules live."""

    default: str  # "nft" or "legacy": the backend the plain iptables command uses
    version: str  # "1.8.9"
    nft_rules: bool | None  # True when the nft backend holds any rule (None: not checked)
    legacy_rules: bool | None  # True when x_tables holds any rule (None: tool missing)

    @property
    def both_hold_rules(self) -> bool:
        return bool(self.nft_rules and self.legacy_rules)


def _argv(argv: list[str], netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def _require_root() -> None:
    if os.geteuid() != 0:
        raise EnvironmentMissing("reading the live firewall needs root",
                                 hint="run as root, or read a saved file with --file")


def decode(output: bytes) -> str:
    """iptables-save output as text: the kernel stores comments and names as bytes, so any
    byte that is not UTF-8 is kept (surrogateescape) and written back as the same byte."""
    return output.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    """The inverse of :func:`decode`, for iptables-restore input."""
    return text.encode("utf-8", "surrogateescape")


def _holds_rules(save_text: str) -> bool:
    """True when a dump has any rule or a built-in chain whose policy is not ACCEPT."""
    for line in save_text.split("\n"):
        if line.startswith(("-A ", "[")) and " -A " in f" {line}":
            return True
        if line.startswith(":") and " DROP " in f"{line} ":
            return True
    return False


def _try_save(program: str, netns: str | None) -> bool | None:
    try:
        proc = run(_argv([program], netns), check=False, timeout=60, text=False)
    except EnvironmentMissing:
        return None
    if proc.returncode != 0:
        return None
    return _holds_rules(decode(proc.stdout))


def _legacy_rules(netns: str | None) -> bool | None:
    """Whether x_tables (the legacy backend) holds rules, without loading its kernel module.

    iptables-legacy-save modprobes ip_tables when it is not loaded; reading
    /proc/net/ip_tables_names first avoids that side effect: no file means no module, an
    empty file means no legacy table in this network namespace.
    """
    try:
        proc = run(_argv(["cat", "/proc/net/ip_tables_names"], netns), check=False, timeout=30)
    except EnvironmentMissing:
        return None
    if proc.returncode != 0 or not proc.stdout.strip():
        return False
    return _try_save("iptables-legacy-save", netns)


def detect_backend(*, netns: str | None = None) -> Backend:
    """Which backend ``iptables`` uses and whether nft and/or legacy hold rules (IPv4)."""
    proc = run(_argv(["iptables", "-V"], netns), timeout=30)
    m = re.search(r"v(\d+(?:\.\d+)*)\s*(?:\((\w+)\))?", proc.stdout)
    if m is None:
        raise EnvironmentMissing(f"cannot read the iptables version from {proc.stdout!r}")
    version, flavour = m.group(1), (m.group(2) or "legacy")
    default = "nft" if flavour == "nf_tables" else "legacy"
    _require_root()
    return Backend(default, version, _try_save("iptables-nft-save", netns), _legacy_rules(netns))


BACKEND_ENV = "TRUSTWALL_IPTABLES_BACKEND"


def chosen_backend() -> str:
    """The iptables backend asked for: "" (the distro's alternative), "nft" or "legacy"."""
    chosen = os.environ.get(BACKEND_ENV, "").strip()
    if chosen not in ("", "nft", "legacy"):
        raise BadInput(f"{BACKEND_ENV} must be nft or legacy, not {chosen!r}")
    return chosen


def tool(family: int, verb: str, *, backend: str | None = None) -> str:
    """``iptables-save``, ``ip6tables-restore`` … for the backend in use.

    By default the distro's alternative decides (nft on Debian 12); TRUSTWALL_IPTABLES_BACKEND
    =legacy|nft picks ``iptables-legacy-*`` / ``iptables-nft-*`` explicitly, for a host where
    both backends hold rules and the other one is the one to manage. Undo passes the backend
    the change was journaled with.
    """
    base = "ip6tables" if family == 6 else "iptables"
    chosen = chosen_backend() if backend is None else backend
    if chosen not in ("", "nft", "legacy"):
        raise BadInput(f"unknown iptables backend {chosen!r}")
    return f"{base}-{chosen}-{verb}" if chosen else f"{base}-{verb}"


def save_text(*, family: int = 4, counters: bool = False, table: str | None = None,
              netns: str | None = None) -> str:
    """The raw output of iptables-save / ip6tables-save (with ``-c`` when ``counters``)."""
    _require_root()
    argv = [tool(family, "save")]
    if counters:
        argv.append("-c")
    if table is not None:
        argv += ["-t", table]
    try:
        return decode(run(_argv(argv, netns), timeout=120, text=False).stdout)
    except CommandFailed as exc:
        raise EnvironmentMissing(f"{argv[0]} failed: {exc}") from None


def read_live(*, family: int = 4, counters: bool = False, netns: str | None = None) -> Ruleset:
    """The running ruleset of one family, parsed."""
    return parse_save(save_text(family=family, counters=counters, netns=netns), family=family,
                      source=f"{'iptables' if family == 4 else 'ip6tables'}-save")


def read_file(path: str | Path, *, family: int | None = None) -> Ruleset:
    """A saved iptables-save / ip6tables-save file, parsed.

    A file with both an IPv4 and an IPv6 dump gives the one ``family`` asks for (IPv4 when
    not given); a file with one dump gives that dump, whatever its family.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise BadInput(f"cannot read {p}: {exc.strerror}") from None
    dumps = parse_dumps(text, source=str(p))
    if len(dumps) == 1:
        return next(iter(dumps.values()))
    return dumps[family or 4]
