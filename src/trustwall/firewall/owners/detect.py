"""Who owns each table and chain, and who must take a new rule.

Two halves, kept apart so the rules are testable on real dumps without a live host:

* :func:`classify` — pure: chain and table names plus a few :class:`HostFacts` (is firewalld
  running, is ufw enabled, which tables nftables.conf declares, which iptables boot files
  exist) → an :class:`Ownership`;
* :func:`read_facts` — reads those facts from the running system (optionally inside a network
  namespace for the kernel reads, like iptables.live's ``netns=``) and from files under
  ``root``.

Chains are recognised by the names their managers give them: ufw ``ufw-*``; firewalld's
iptables backend ``*_direct``, ``IN_<zone>…``, ``FWDI_…`` (its nftables backend keeps
everything in table ``inet firewalld``); Docker ``DOCKER``, ``DOCKER-USER``,
``DOCKER-ISOLATION-*`` … (and nft table ``docker-bridges``); kube-proxy ``KUBE-*`` (and
``ip kube-proxy``); libvirt ``LIBVIRT_*`` (and ``libvirt``/``libvirt_network``); fail2ban
``f2b-*`` (and ``inet f2b-table``). Built-in chains and any other chain belong to the host's
writer: the manager that takes new rules (:attr:`Ownership.host`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trustwall.errors import EnvironmentMissing, TrustwallError
from trustwall.firewall.owners.base import READ_ONLY_OWNERS

BUILTIN_CHAINS = frozenset({"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"})

#: Chain name patterns of the read-only owners and of the managers, first match wins.
_CHAIN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ufw", re.compile(r"^ufw6?-")),
    ("docker", re.compile(r"^DOCKER(-.*)?$")),
    ("kube-proxy", re.compile(r"^KUBE-")),
    ("libvirt", re.compile(r"^LIBVIRT_")),
    ("fail2ban", re.compile(r"^f2b-")),
)
#: firewalld's iptables-backend chains (its nftables backend uses table inet firewalld).
_FIREWALLD_CHAIN = re.compile(
    r"^(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING)_(direct|ZONES|ZONES_SOURCE|POLICIES\w*)$"
    r"|^(IN|FWDI|FWDO|FWD|PRE|POST|OUT)_\w+$")

#: nft tables (family, name) of the read-only owners and firewalld.
_NFT_TABLES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("firewalld", re.compile(r"^firewalld$")),
    ("docker", re.compile(r"^docker-bridges$")),
    ("kube-proxy", re.compile(r"^kube-proxy$")),
    ("libvirt", re.compile(r"^libvirt(_network)?$")),
    ("fail2ban", re.compile(r"^f2b-table$")),
)

#: Which tables iptables-nft makes (ip/ip6 family): the iptables side, not nftables.conf's.
IPTABLES_NFT_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})

#: How each writer's own tool is called, for "next" hints.
NATIVE = {
    "firewalld": "firewall-cmd",
    "ufw": "ufw",
    "nftables": "nft (and /etc/nftables.conf)",
    "iptables": "iptables (and its boot file)",
    "none": "iptables",
    "docker": "docker (publish/unpublish ports; your own rules go in DOCKER-USER)",
    "kube-proxy": "kubectl (Services, NetworkPolicies)",
    "libvirt": "virsh net-edit / nwfilter",
    "fail2ban": "fail2ban-client",
}


@dataclass(frozen=True)
class HostFacts:
    """What the classification needs to know besides names.

    ``chains``: per family (4, 6) and iptables table, the chain names; ``nft_tables``:
    (family, name) of every nft table; ``firewalld_running``: ``firewall-cmd --state`` said
    running; ``ufw_enabled``: /etc/ufw/ufw.conf says ENABLED=yes; ``nftables_conf``: the file
    nftables.service loads, when it exists; ``nftables_service``: the service is enabled;
    ``nftables_declared``: (family, name) of the tables that file (and its includes)
    declares; ``boot_files``: the iptables boot files that exist.
    """

    chains: Mapping[int, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    nft_tables: tuple[tuple[str, str], ...] = ()
    firewalld_running: bool = False
    ufw_enabled: bool = False
    nftables_conf: str | None = None
    nftables_service: bool = False
    nftables_declared: tuple[tuple[str, str], ...] = ()
    boot_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ownership:
    """The owner of every chain and nft table, and the host's writer (``host``): firewalld,
    ufw, nftables, iptables (rules + boot file) or none (rules only in the kernel)."""

    host: str
    chains: Mapping[tuple[int, str, str], str]
    nft_tables: Mapping[tuple[str, str], str]
    evidence: tuple[str, ...] = ()
    facts: HostFacts = field(default_factory=HostFacts)

    def owner_of(self, table: str, chain: str, family: int = 4) -> str:
        """The owner of ``table``/``chain`` (an iptables table; the host's writer if unseen:
        a chain a plan creates belongs to whoever takes the plan)."""
        found = self.chains.get((family, table, chain))
        if found is not None:
            return found
        return chain_owner(chain, self.host, self.facts.firewalld_running)

    def owner_of_nft_table(self, family: str, name: str) -> str:
        return self.nft_tables.get((family, name)) or nft_table_owner(family, name, self.host,
                                                                       self.facts)

    @property
    def present(self) -> tuple[str, ...]:
        """Every owner seen on the host, the writer first."""
        seen = [self.host, *self.chains.values(), *self.nft_tables.values()]
        return tuple(dict.fromkeys(seen))

    def to_json(self) -> dict[str, object]:
        return {"host": self.host, "present": list(self.present),
                "evidence": list(self.evidence),
                "chains": [{"family": f, "table": t, "chain": c, "owner": o}
                           for (f, t, c), o in sorted(self.chains.items())],
                "nft_tables": [{"family": f, "table": t, "owner": o}
                               for (f, t), o in sorted(self.nft_tables.items())]}


def chain_owner(chain: str, host: str, firewalld_running: bool = False) -> str:
    """The owner of an iptables chain by its name; built-in and unknown chains: ``host``."""
    for owner, pattern in _CHAIN_PATTERNS:
        if pattern.match(chain):
            return owner
    if firewalld_running and chain not in BUILTIN_CHAINS and _FIREWALLD_CHAIN.match(chain):
        return "firewalld"
    return host


def nft_table_owner(family: str, name: str, host: str, facts: HostFacts) -> str:
    for owner, pattern in _NFT_TABLES:
        if pattern.match(name):
            return owner
    if (family, name) in facts.nftables_declared:
        return "nftables"
    if family in ("ip", "ip6") and name in IPTABLES_NFT_TABLES:
        # iptables-nft's own tables: whoever writes iptables here (ufw, iptables, none).
        return host if host not in ("nftables",) else "iptables"
    return "nftables" if facts.nftables_conf else "none"


def host_writer(facts: HostFacts) -> tuple[str, tuple[str, ...]]:
    """Who takes a new rule on this host, and why (most specific manager first)."""
    tables = set(facts.nft_tables)
    if facts.firewalld_running:
        return "firewalld", ("firewall-cmd --state: running",)
    if ("inet", "firewalld") in tables:
        return "firewalld", ("nft table inet firewalld exists (firewalld not answering)",)
    any_ufw = any(c.startswith(("ufw-", "ufw6-")) for by_table in facts.chains.values()
                  for names in by_table.values() for c in names)
    if facts.ufw_enabled or any_ufw:
        why = []
        if facts.ufw_enabled:
            why.append("/etc/ufw/ufw.conf: ENABLED=yes")
        if any_ufw:
            why.append("ufw-* chains in the kernel")
        return "ufw", tuple(why)
    live_declared = sorted(set(facts.nftables_declared) & tables)
    if facts.nftables_conf and (facts.nftables_service or live_declared):
        why = [f"{facts.nftables_conf} is loaded at boot" if facts.nftables_service else
               f"{facts.nftables_conf} declares the live table(s) "
               + ", ".join(f"{f} {n}" for f, n in live_declared)]
        return "nftables", tuple(why)
    if facts.boot_files:
        return "iptables", tuple(f"boot file {p}" for p in facts.boot_files)
    return "none", ("no manager and no boot file: rules live only in the kernel",)


def classify(facts: HostFacts) -> Ownership:
    """Owners of every chain and nft table in ``facts`` (pure: no I/O)."""
    host, why = host_writer(facts)
    chains = {(family, table, chain): chain_owner(chain, host, host == "firewalld")
              for family, by_table in facts.chains.items()
              for table, names in by_table.items() for chain in names}
    tables = {(f, n): nft_table_owner(f, n, host, facts) for f, n in facts.nft_tables}
    evidence = list(why)
    for owner in sorted({*chains.values(), *tables.values()} & READ_ONLY_OWNERS):
        evidence.append(f"{owner} chains/tables present (read only)")
    return Ownership(host, chains, tables, tuple(evidence), facts)


def chains_of(rulesets: Iterable[object]) -> dict[int, dict[str, tuple[str, ...]]]:
    """``HostFacts.chains`` from parsed iptables rulesets (iptables.model.Ruleset)."""
    out: dict[int, dict[str, tuple[str, ...]]] = {}
    for ruleset in rulesets:
        out[ruleset.family] = {t.name: tuple(c.name for c in t.chains)  # type: ignore[attr-defined]
                               for t in ruleset.tables}  # type: ignore[attr-defined]
    return out


# -- files: ufw.conf, nftables.conf and its includes ---------------------------------------

NFTABLES_CONF = ("etc/nftables.conf", "etc/sysconfig/nftables.conf")
_SERVICE_LINKS = ("etc/systemd/system/sysinit.target.wants/nftables.service",
                  "etc/systemd/system/multi-user.target.wants/nftables.service")
MAX_INCLUDES = 64
_INCLUDE = re.compile(r'^\s*include\s+"([^"\n]+)"\s*;?\s*(#.*)?$')
_TABLE = re.compile(r"^\s*(?:add\s+|create\s+)?table\s+(ip|ip6|inet|arp|bridge|netdev)\s+"
                    r"([A-Za-z0-9_.-]+)\b")


def ufw_enabled(root: str = "/") -> bool:
    try:
        text = (Path(root) / "etc/ufw/ufw.conf").read_text(errors="replace")
    except OSError:
        return False
    return any(line.strip().lower() in ("enabled=yes", 'enabled="yes"')
               for line in text.splitlines())


def nftables_conf(root: str = "/") -> Path | None:
    """The file nftables.service loads (Debian /etc/nftables.conf, RHEL
    /etc/sysconfig/nftables.conf), as a path under ``root``."""
    for rel in NFTABLES_CONF:
        path = Path(root) / rel
        if path.is_file():
            return path
    return None


def nftables_service_enabled(root: str = "/") -> bool:
    """Enabled = systemd's wants link exists (read as a file: no systemctl, which would ask
    the host's systemd even from inside a namespace)."""
    return any((Path(root) / rel).is_symlink() or (Path(root) / rel).exists()
               for rel in _SERVICE_LINKS)


def conf_files(conf: Path, root: str = "/") -> list[Path]:
    """``conf`` and the files its ``include`` lines name (globs expanded, nested, each file
    once, at most :data:`MAX_INCLUDES`), in load order. An include is only ever read: a path
    is resolved under ``root`` and never handed to a shell."""
    out: list[Path] = []

    top = Path(root).resolve()

    def visit(path: Path) -> None:
        if path in out or len(out) >= MAX_INCLUDES:
            return
        if not path.resolve().is_relative_to(top):
            return  # an include that leads out of the root (.., a link) is not followed
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return
        out.append(path)
        for line in text.splitlines():
            m = _INCLUDE.match(line)
            if not m:
                continue
            pattern = m.group(1)
            base = Path(root) if pattern.startswith("/") else path.parent
            rel = pattern.lstrip("/")
            if any(ch in rel for ch in "*?["):
                for found in sorted(base.glob(rel)):
                    if found.is_file():
                        visit(found)
            else:
                visit(base / rel)

    visit(conf)
    return out


def declared_tables(files: Iterable[Path]) -> tuple[tuple[str, str], ...]:
    """(family, name) of every ``table F N`` the files declare."""
    found = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            m = _TABLE.match(line)
            if m:
                found.append((m.group(1), m.group(2)))
    return tuple(dict.fromkeys(found))


# -- the live reader -------------------------------------------------------------------------


def _argv(argv: list[str], netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def _nft_tables(netns: str | None) -> tuple[tuple[str, str], ...]:
    import json

    from trustwall.proc import run

    try:
        proc = run(_argv(["nft", "-j", "list", "tables"], netns), check=False, timeout=30)
    except EnvironmentMissing:
        return ()
    if proc.returncode != 0:
        return ()
    try:
        items = json.loads(proc.stdout).get("nftables", [])
    except (ValueError, AttributeError):
        return ()
    return tuple((str(i["table"]["family"]), str(i["table"]["name"]))
                 for i in items if isinstance(i, dict) and isinstance(i.get("table"), dict))


def _firewalld_running(netns: str | None) -> bool:
    from trustwall.proc import run

    try:
        proc = run(_argv(["firewall-cmd", "--state"], netns), check=False, timeout=30)
    except (EnvironmentMissing, TrustwallError):
        return False
    return proc.returncode == 0 and proc.stdout.strip() == "running"


def read_facts(*, netns: str | None = None, root: str = "/",
               rulesets: Iterable[object] | None = None) -> HostFacts:
    """The facts :func:`classify` needs, from this host (or ``netns`` for kernel reads; files
    under ``root``). ``rulesets``: the iptables rulesets already read (else both families are
    read here)."""
    if rulesets is None:
        from trustwall.firewall.iptables.live import read_live

        read = []
        for family in (4, 6):
            try:
                read.append(read_live(family=family, netns=netns))
            except TrustwallError:
                continue
        rulesets = read
    # The boot files change.apply writes (one fact, one place); imported here, not at the
    # top: read-only commands must not load the journal.
    from trustwall.firewall.change.apply import PERSIST_FILES

    tables = _nft_tables(netns)
    chains = chains_of(rulesets)
    # Ask firewalld (over D-Bus) only when its traces are there: its nft table (nftables
    # backend) or its chains (iptables backend). Every fw command reads the owners.
    traces = ("inet", "firewalld") in tables or any(
        _FIREWALLD_CHAIN.match(c) for by_table in chains.values()
        for names in by_table.values() for c in names)
    conf = nftables_conf(root)
    boot = tuple(p for fam in (4, 6) for p in PERSIST_FILES[fam]
                 if (Path(root) / p.lstrip("/")).is_file())
    return HostFacts(
        chains=chains,
        nft_tables=tables,
        firewalld_running=traces and _firewalld_running(netns),
        ufw_enabled=ufw_enabled(root),
        nftables_conf=str(conf) if conf else None,
        nftables_service=nftables_service_enabled(root),
        nftables_declared=declared_tables(conf_files(conf, root)) if conf else (),
        boot_files=boot,
    )


def detect(*, netns: str | None = None, root: str = "/",
           rulesets: Iterable[object] | None = None) -> Ownership:
    """Who owns this host's firewall (:func:`read_facts` + :func:`classify`)."""
    return classify(read_facts(netns=netns, root=root, rulesets=rulesets))
