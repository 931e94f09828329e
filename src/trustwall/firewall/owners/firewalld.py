"""firewalld as the firewall's owner: read its zones, plan through ``firewall-cmd``, apply.

On a firewalld host every rule belongs in a zone: a raw nft/iptables rule is wiped by the next
``firewall-cmd --reload``, so trustwall only ever proposes firewall-cmd commands (argv, never a
shell):

* ``allow`` of a port from anywhere: ``firewall-cmd --zone Z --add-port 18745/tcp`` and its
  ``--permanent`` twin;
* anything narrower (a source, a destination, a source port, deny, reject): a rich rule
  (``--add-rich-rule 'rule family="ipv4" source address="…" port port="…" protocol="tcp"
  accept'``), written exactly as firewalld lists it, so the read-back compares as text;
* ``--for`` (Request.duration): ``--timeout Ns`` on the runtime command only (firewalld
  removes it itself; the permanent configuration never holds it) plus trustwall's own
  expiry record (``firewalld-expiry.json`` in the state directory, journaled);
* ``delete``: the matching ``--remove-…`` wherever (runtime, permanent) it is present.

The zone is the one firewalld dispatches the packet to (``inet firewalld`` chain
``filter_INPUT_ZONES``): source bindings first, ordered by zone name (firewalld sorts its
source dispatch rules so), then interface bindings, then the default zone. Inside a zone
chain ``filter_IN_<zone>`` the order is ``_pre`` (rich rules with priority < 0), ``_log``,
``_deny`` (drop/reject rich rules), ``_allow`` (accept rich rules, services, ports,
protocols), ``_post`` (priority > 0), then the zone target (``default``: ICMP accepted, the
rest rejected with icmpx admin-prohibited — "No route to host"). :func:`verdict` follows that
order; the effect of a plan is the change of that verdict for the packet class asked.

Apply (:func:`apply`) is one journal transaction: before-images of every file under
/etc/firewalld/zones (firewalld rewrites ``<zone>.xml`` and keeps ``<zone>.xml.old``; an
absent file is recorded as absent), a ``firewalld`` record holding the runtime and permanent
settings of the zones touched, then the commands, then a read-back that must show exactly the
planned settings. Rollback and ``trustwall undo`` run ``python -m
trustwall.firewall.owners.firewalld restore``: the inverse firewall-cmd commands (runtime
and permanent, no ``--reload``, which would drop other runtime-only changes), after which the
zone files come back byte for byte. The lockout check is static: a deny/reject/delete that
the zone model says would stop a NEW connection of the operator's SSH flow (or a ``--keep``
flow) is refused unless forced (established connections are always accepted by
``filter_INPUT``'s first rule).

Python API: :func:`read_state`, :func:`plan`, :func:`apply`.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trustwall.errors import EXIT_PROBLEM, BadInput, LockoutRisk, ParseError, TrustwallError
from trustwall.firewall.owners.base import Command, OwnerPlan, Request
from trustwall.firewall.protocols import PORT_PROTOCOLS

OWNER = "firewalld"
FIREWALL_CMD = "firewall-cmd"
ZONES_DIR = "/etc/firewalld/zones"
STEP_KIND = "firewalld"  # the journal's record kind (trustwall.journal.steps)
EXPIRY_FILE = "firewalld-expiry.json"
#: firewall-cmd's exit code when the daemon is not running (NOT_RUNNING).
NOT_RUNNING = 252

# What firewall-cmd prints, validated before use: file-supplied text (zone XML) reaches us
# through it, and none of it may steer an argv.
_ZONE_RE = re.compile(r"^[A-Za-z0-9_+\-]{1,64}$")
_SERVICE_RE = re.compile(r"^[A-Za-z0-9_.+\-]{1,128}$")
_PORT_RE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?/(tcp|udp|sctp|dccp)$")
_IFACE_RE = re.compile(r"^[A-Za-z0-9_.:@+\-]{1,15}$")
_MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_TARGETS = frozenset({"default", "ACCEPT", "DROP", "%%REJECT%%", "REJECT"})
_LIST_KEYS = ("interfaces", "sources", "services", "ports", "protocols", "source-ports")
_MAX_RULE = 2048


class FirewalldError(TrustwallError):
    """firewalld said no, or holds something other than what was planned (rolled back)."""

    exit_code = EXIT_PROBLEM


# -- state ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Zone:
    """One zone as ``firewall-cmd [--permanent] --list-all-zones`` shows it."""

    name: str
    target: str = "default"
    interfaces: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()
    source_ports: tuple[str, ...] = ()
    rich_rules: tuple[str, ...] = ()

    def settings(self) -> dict[str, list[str]]:
        """What trustwall changes and compares (order-free: firewalld lists rich rules sorted
        its own way)."""
        return {"ports": sorted(self.ports), "rich_rules": sorted(self.rich_rules),
                "services": sorted(self.services), "protocols": sorted(self.protocols),
                "source_ports": sorted(self.source_ports)}


@dataclass(frozen=True)
class FirewalldState:
    """firewalld as it runs: ``runtime`` and ``permanent`` zones by name."""

    running: bool
    default_zone: str | None = None
    runtime: Mapping[str, Zone] = field(default_factory=dict)
    permanent: Mapping[str, Zone] = field(default_factory=dict)
    service_ports: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)

    @property
    def active_zones(self) -> tuple[str, ...]:
        """Zones with an interface or source binding (firewall-cmd --get-active-zones)."""
        return tuple(z.name for z in self.runtime.values() if z.interfaces or z.sources)

    def to_json(self) -> dict[str, Any]:
        return {"owner": OWNER, "running": self.running, "default_zone": self.default_zone,
                "active_zones": list(self.active_zones),
                "zones": {name: {"target": z.target, "interfaces": list(z.interfaces),
                                 "sources": list(z.sources), **z.settings(),
                                 "permanent": self.permanent[name].settings()
                                 if name in self.permanent else None}
                          for name, z in self.runtime.items()}}


def _firewall_cmd(args: Sequence[str], *, check: bool = True) -> tuple[int, str, str]:
    from trustwall.proc import run, which

    done = run([which(FIREWALL_CMD), *args], check=False, timeout=60)
    if check and done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise FirewalldError(f"firewall-cmd {' '.join(args)}: "
                             f"{last[-1] if last else f'exit {done.returncode}'}")
    return done.returncode, done.stdout, done.stderr


def _check(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.match(value):
        raise ParseError(f"firewall-cmd listed an unexpected {what} {value!r}",
                         source="firewall-cmd")
    return value


def _check_source(value: str) -> str:
    if value.startswith("ipset:"):
        return "ipset:" + _check(value[6:], _SERVICE_RE, "ipset name")
    if _MAC_RE.match(value):
        return value
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ParseError(f"firewall-cmd listed an unexpected source {value!r}",
                         source="firewall-cmd") from None
    return value


def _check_rich(value: str) -> str:
    if not value.startswith("rule") or len(value) > _MAX_RULE or \
            any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ParseError(f"firewall-cmd listed an unexpected rich rule {value[:80]!r}",
                         source="firewall-cmd")
    return value


def parse_zones(text: str) -> dict[str, Zone]:
    """``--list-all-zones`` output: a zone name line (``public (active)``), ``  key: value``
    lines, rich rules as tab-indented lines after ``rich rules:``."""
    zones: dict[str, Zone] = {}
    current: dict[str, Any] | None = None
    in_rich = False

    def done() -> None:
        if current is not None:
            zones[current["name"]] = Zone(**current)

    for line in text.split("\n"):
        if not line.strip():
            continue
        if line.startswith("\t") and in_rich and current is not None:
            current["rich_rules"] = (*current["rich_rules"], _check_rich(line.strip()))
            continue
        if not line.startswith(" "):
            done()
            name = line.split(" ", 1)[0]
            current = {"name": _check(name, _ZONE_RE, "zone name"), "rich_rules": ()}
            in_rich = False
            continue
        if current is None or ":" not in line:
            raise ParseError(f"firewall-cmd output line {line[:80]!r} not understood",
                             source="firewall-cmd")
        key, _, value = line.strip().partition(":")
        words = tuple(value.split())
        in_rich = key == "rich rules"
        if key == "target":
            if len(words) != 1 or words[0] not in _TARGETS:
                raise ParseError(f"unexpected zone target {value.strip()!r}",
                                 source="firewall-cmd")
            current["target"] = words[0]
        elif key == "interfaces":
            current["interfaces"] = tuple(_check(w, _IFACE_RE, "interface") for w in words)
        elif key == "sources":
            current["sources"] = tuple(_check_source(w) for w in words)
        elif key == "services":
            current["services"] = tuple(_check(w, _SERVICE_RE, "service") for w in words)
        elif key in ("ports", "source-ports"):
            ports = tuple(_check(w, _PORT_RE, "port") for w in words)
            current["ports" if key == "ports" else "source_ports"] = ports
        elif key == "protocols":
            current["protocols"] = tuple(_check(w, _SERVICE_RE, "protocol") for w in words)
        # forward, masquerade, icmp-blocks, forward-ports…: read-only for trustwall
    done()
    return zones


def running() -> bool:
    """Whether firewalld runs (``firewall-cmd --state``)."""
    from trustwall.proc import which

    try:
        which(FIREWALL_CMD)
    except TrustwallError:
        return False
    return _firewall_cmd(["--state"], check=False)[0] == 0


def read_state(*, services: Iterable[str] = ()) -> FirewalldState:
    """firewalld's default zone, and the default and active zones (those with bindings: all
    that zone dispatch can pick), runtime and permanent; plus the ports of ``services``.

    Read from firewalld's D-Bus API with ``busctl`` (~20 ms a call) when it is installed, else
    from ``firewall-cmd --list-all-zones`` (~0.25 s a call, every zone)."""
    if _busctl() is None:
        return with_services(_read_state_cmd(), services)
    try:
        default = _check(_bus_call(_MAIN, _IFACE, "getDefaultZone")[0], _ZONE_RE,
                         "default zone")
    except _NotRunning:
        return FirewalldState(running=False)
    active = _bus_call(_MAIN, f"{_IFACE}.zone", "getActiveZones")[0]
    if not isinstance(active, dict):
        raise ParseError("firewalld's active zones are not a dictionary", source="D-Bus")
    names = sorted({_check(str(n), _ZONE_RE, "zone name") for n in active} | {default})
    return with_services(replace(read_zones(names), default_zone=default), services)


def read_zones(names: Iterable[str]) -> FirewalldState:
    """Only the zones ``names``, runtime and permanent: what the journal captures and the
    read-back compares."""
    names = [_check(name, _ZONE_RE, "zone name") for name in names]
    if _busctl() is None:
        return _read_zones_cmd(names)
    runtime: dict[str, Zone] = {}
    permanent: dict[str, Zone] = {}
    try:
        for name in names:
            runtime[name] = _zone_from_settings(
                name, _bus_call(_MAIN, f"{_IFACE}.zone", "getZoneSettings2", "s", name)[0])
            path = _bus_call(_CONFIG, f"{_IFACE}.config", "getZoneByName", "s", name)[0]
            if not isinstance(path, str) or not _ZONE_PATH_RE.match(path):
                raise ParseError(f"unexpected zone object {path!r}", source="D-Bus")
            permanent[name] = _zone_from_settings(
                name, _bus_call(path, f"{_IFACE}.config.zone", "getSettings2")[0])
    except _NotRunning:
        return FirewalldState(running=False)
    return FirewalldState(True, None, runtime, permanent)


# firewalld's D-Bus API (firewalld.dbus(5)): the same daemon state firewall-cmd prints.
_BUS_NAME = "org.fedoraproject.FirewallD1"
_IFACE = "org.fedoraproject.FirewallD1"
_MAIN = "/org/fedoraproject/FirewallD1"
_CONFIG = "/org/fedoraproject/FirewallD1/config"
_ZONE_PATH_RE = re.compile(r"^/org/fedoraproject/FirewallD1/config/zone/\d{1,6}$")


class _NotRunning(Exception):
    """firewalld is not on the system bus."""


def _busctl() -> str | None:
    import shutil

    from trustwall.clients.login import SYSTEM_PATH

    return shutil.which("busctl", path=SYSTEM_PATH)


def _bus_call(path: str, interface: str, method: str, *args: str) -> list[Any]:
    """One D-Bus method call (``busctl --json=short``); its return values."""
    from trustwall.proc import run

    busctl = _busctl()
    assert busctl is not None
    done = run([busctl, "--system", "--json=short", "call", _BUS_NAME, path, interface, method,
                *args], check=False, timeout=60)
    if done.returncode != 0:
        error = done.stderr.strip()
        if "not activatable" in error or "not provided" in error or "not found" in error \
                or "ServiceUnknown" in error or "No such file" in error:
            raise _NotRunning(error)
        raise FirewalldError(f"firewalld {method}: {error[-200:] or 'no answer'}")
    try:
        data = json.loads(done.stdout)["data"]
    except (ValueError, KeyError, TypeError):
        raise ParseError(f"busctl {method}: unreadable answer", source="D-Bus") from None
    if not isinstance(data, list):
        raise ParseError(f"busctl {method}: unexpected answer", source="D-Bus")
    return data


def _strings(settings: Mapping[str, Any], key: str) -> list[str]:
    value = settings.get(key, {"data": []})
    data = value.get("data") if isinstance(value, dict) else None
    if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
        raise ParseError(f"zone setting {key} is not a list of strings", source="D-Bus")
    return data


def _pairs(settings: Mapping[str, Any], key: str) -> list[str]:
    value = settings.get(key, {"data": []})
    data = value.get("data") if isinstance(value, dict) else None
    if not isinstance(data, list) or not all(
            isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v)
            for v in data):
        raise ParseError(f"zone setting {key} is not a list of (port, protocol)",
                         source="D-Bus")
    return [f"{port}/{proto}" for port, proto in data]


def _zone_from_settings(name: str, settings: Any) -> Zone:
    """A zone from ``getZoneSettings2`` / ``getSettings2`` (a{sv}), every value checked."""
    if not isinstance(settings, dict):
        raise ParseError(f"zone {name}: settings are not a dictionary", source="D-Bus")
    target = settings.get("target", {"data": "default"})
    target = target.get("data") if isinstance(target, dict) else None
    if target not in _TARGETS:
        raise ParseError(f"zone {name}: unexpected target {target!r}", source="D-Bus")
    return Zone(
        name, target,
        interfaces=tuple(_check(v, _IFACE_RE, "interface")
                         for v in _strings(settings, "interfaces")),
        sources=tuple(_check_source(v) for v in _strings(settings, "sources")),
        services=tuple(_check(v, _SERVICE_RE, "service") for v in _strings(settings, "services")),
        ports=tuple(_check(v, _PORT_RE, "port") for v in _pairs(settings, "ports")),
        protocols=tuple(_check(v, _SERVICE_RE, "protocol")
                        for v in _strings(settings, "protocols")),
        source_ports=tuple(_check(v, _PORT_RE, "port")
                           for v in _pairs(settings, "source_ports")),
        rich_rules=tuple(_check_rich(v) for v in _strings(settings, "rules_str")))


def _read_state_cmd() -> FirewalldState:
    """read_state without busctl: three firewall-cmd calls, every zone."""
    code, out, _ = _firewall_cmd(["--get-default-zone"], check=False)
    if code != 0:
        return FirewalldState(running=False)
    default = _check(out.strip(), _ZONE_RE, "default zone")
    runtime = parse_zones(_firewall_cmd(["--list-all-zones"])[1])
    permanent = parse_zones(_firewall_cmd(["--permanent", "--list-all-zones"])[1])
    return FirewalldState(True, default, runtime, permanent)


def _read_zones_cmd(names: Sequence[str]) -> FirewalldState:
    """read_zones without busctl: two firewall-cmd calls per zone."""
    runtime: dict[str, Zone] = {}
    permanent: dict[str, Zone] = {}
    for name in names:
        code, out, err = _firewall_cmd(["--zone", name, "--list-all"], check=False)
        if code == NOT_RUNNING:
            return FirewalldState(running=False)
        if code != 0:
            raise FirewalldError(f"firewall-cmd --zone {name} --list-all: {err.strip()}")
        runtime.update(parse_zones(out))
        permanent.update(parse_zones(_firewall_cmd(["--permanent", "--zone", name,
                                                    "--list-all"])[1]))
    return FirewalldState(True, None, runtime, permanent)


def with_services(state: FirewalldState, names: Iterable[str]) -> FirewalldState:
    """``state`` knowing the ports of the services ``names``."""
    known = dict(state.service_ports)
    for name in names:
        if name not in known:
            known[name] = service_ports(name)
    return replace(state, service_ports=known)


SERVICE_DIRS = ("/etc/firewalld/services", "/usr/lib/firewalld/services")


def service_ports(name: str) -> tuple[str, ...] | None:
    """The ports of service ``name`` from its definition (/etc/firewalld/services overrides
    /usr/lib/firewalld/services, as in firewalld); None when it cannot be known here (no
    file, or an ``include`` of other services)."""
    import xml.etree.ElementTree as ET

    _check(name, _SERVICE_RE, "service")
    for directory in SERVICE_DIRS:
        path = Path(directory) / f"{name}.xml"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError:
            return None
        try:
            # expat (2.4+) refuses entity expansion bombs; ElementTree never fetches
            # external entities.
            root = ET.fromstring(data)
        except ET.ParseError:
            return None
        if root.find("include") is not None:
            return None
        ports = []
        for port in root.findall("port"):
            spec = f"{port.get('port', '')}/{port.get('protocol', '')}"
            if not _PORT_RE.match(spec):
                return None
            ports.append(spec)
        return tuple(ports)
    return None


# -- the zone model ------------------------------------------------------------------------

def zone_for(state: FirewalldState, *, src: str | None = None,
             in_iface: str | None = None) -> str:
    """The zone firewalld dispatches an incoming packet to: a source binding first (zones in
    name order, as firewalld sorts its source dispatch), then the interface binding, then the
    default zone."""
    if src is not None:
        address = ipaddress.ip_address(src)
        for name in sorted(state.runtime):
            for source in state.runtime[name].sources:
                if source.startswith("ipset:") or _MAC_RE.match(source):
                    continue  # ipsets and MAC bindings: not decidable from an address
                if address in ipaddress.ip_network(source, strict=False):
                    return name
    if in_iface is not None:
        for name, zone in state.runtime.items():
            for bound in zone.interfaces:
                if bound == in_iface or (bound.endswith("+") and
                                         in_iface.startswith(bound[:-1])):
                    return name
    if state.default_zone is None:
        raise FirewalldError("firewalld is not running")
    return state.default_zone


@dataclass(frozen=True)
class Packet:
    """A NEW incoming packet class: ``proto``/``dport`` from ``src`` (None: any)."""

    proto: str
    dport: int | None
    src: str | None = None
    dst: str | None = None
    family: int = 4

    def __str__(self) -> str:
        port = f"/{self.dport}" if self.dport is not None else ""
        return f"NEW {self.proto}{port} from {self.src or 'any'}"


_RICH_WORD = re.compile(r'(\w[\w-]*)(?:="([^"]*)"|=(\S+))?')


def parse_rich(text: str) -> dict[str, Any] | None:
    """The parts of a rich rule the model decides by (None: a rule it cannot follow)."""
    out: dict[str, Any] = {"priority": 0, "family": None, "source": None, "source_not": False,
                           "destination": None, "port": None, "protocol": None,
                           "service": None, "action": None, "source_port": None}
    element = None
    for word in _RICH_WORD.finditer(text):
        key, value = word[1], word[2] if word[2] is not None else word[3]
        if key in ("source", "destination", "port", "service", "protocol", "source-port",
                   "icmp-block", "icmp-type", "masquerade", "forward-port", "log", "audit",
                   "nflog", "limit") and value is None:
            element = key
            if key in ("icmp-block", "icmp-type", "masquerade", "forward-port"):
                return None
            continue
        if key == "rule":
            continue
        if key == "not" and element == "source":
            out["source_not"] = True
        elif key == "priority" and value is not None:
            out["priority"] = int(value)
        elif key == "family":
            out["family"] = 6 if value == "ipv6" else 4
        elif key == "address" and element in ("source", "destination"):
            out[element] = value
        elif key in ("ipset", "mac"):
            return None
        elif element == "port" and key == "port":
            out["port"] = value
        elif element == "source-port" and key == "port":
            out["source_port"] = value
        elif (element, key) in (("port", "protocol"), ("source-port", "protocol"),
                                ("protocol", "value")):
            out["protocol"] = value
        elif element == "service" and key == "name":
            out["service"] = value
        elif key in ("accept", "drop", "reject"):
            out["action"] = key.upper()
            element = "action"
    return out if out["action"] else None


def _port_matches(spec: str, dport: int | None) -> bool:
    if dport is None:
        return False
    low, _, high = spec.partition("-")
    return int(low) <= dport <= int(high or low)


def _rich_matches(rule: Mapping[str, Any], packet: Packet,
                  service_ports: Mapping[str, tuple[str, ...] | None]) -> bool | None:
    """Whether ``rule`` matches ``packet`` (None: it depends on what the class leaves open)."""
    if rule["family"] is not None and rule["family"] != packet.family:
        return False
    if rule["source_port"] is not None:
        return None
    unsure = False
    if rule["source"] is not None:
        if packet.src is None:
            unsure = True
        else:
            inside = ipaddress.ip_address(packet.src) in ipaddress.ip_network(
                rule["source"], strict=False)
            if inside == rule["source_not"]:
                return False
    if rule["destination"] is not None:
        if packet.dst is None:
            unsure = True
        elif ipaddress.ip_address(packet.dst) not in ipaddress.ip_network(
                rule["destination"], strict=False):
            return False
    if rule["service"] is not None:
        ports = service_ports.get(rule["service"])
        if ports is None:
            return None
        if not _in_ports(ports, packet):
            return False
    elif rule["port"] is not None:
        if rule["protocol"] != packet.proto or not _port_matches(rule["port"], packet.dport):
            return False
    elif rule["protocol"] is not None and rule["protocol"] != packet.proto:
        return False
    return None if unsure else True


def _in_ports(ports: Iterable[str], packet: Packet) -> bool:
    for spec in ports:
        number, _, proto = spec.partition("/")
        if proto == packet.proto and _port_matches(number, packet.dport):
            return True
    return False


@dataclass(frozen=True)
class Verdict:
    verdict: str  # ACCEPT, DROP, REJECT
    by: str  # what decided it, in firewalld's words
    certain: bool = True

    def __str__(self) -> str:
        return self.verdict if self.certain else f"{self.verdict} (uncertain)"


def verdict(zone: Zone, packet: Packet,
            service_ports: Mapping[str, tuple[str, ...] | None]) -> Verdict:
    """The verdict of ``zone``'s chain for a NEW ``packet`` (see the module docstring)."""
    rules = [(text, parse_rich(text)) for text in zone.rich_rules]
    certain = all(r is not None for _, r in rules)
    parsed = [(t, r) for t, r in rules if r is not None]

    def phase(which: Iterable[tuple[str, dict[str, Any]]]) -> Verdict | None:
        nonlocal certain
        for text, rule in sorted(which, key=lambda tr: tr[1]["priority"]):
            hit = _rich_matches(rule, packet, service_ports)
            if hit is None:
                certain = False
            elif hit:
                return Verdict(rule["action"], f"rich rule {text}", certain)
        return None

    pre = [(t, r) for t, r in parsed if r["priority"] < 0]
    post = [(t, r) for t, r in parsed if r["priority"] > 0]
    normal = [(t, r) for t, r in parsed if r["priority"] == 0]
    found = phase(pre) or phase((t, r) for t, r in normal if r["action"] != "ACCEPT")
    if found:
        return found
    found = phase((t, r) for t, r in normal if r["action"] == "ACCEPT")
    if found:
        return found
    for name in zone.services:
        ports = service_ports.get(name)
        if ports is None:
            certain = False
        elif _in_ports(ports, packet):
            return Verdict("ACCEPT", f"service {name}", certain)
    if _in_ports(zone.ports, packet):
        return Verdict("ACCEPT", f"port {packet.proto}/{packet.dport}", certain)
    if packet.proto in zone.protocols:
        return Verdict("ACCEPT", f"protocol {packet.proto}", certain)
    found = phase(post)
    if found:
        return found
    target = zone.target
    if target == "ACCEPT":
        return Verdict("ACCEPT", "zone target ACCEPT", certain)
    if target == "DROP":
        return Verdict("DROP", "zone target DROP", certain)
    if target == "default" and packet.proto in ("icmp", "ipv6-icmp"):
        return Verdict("ACCEPT", "zone default: icmp", certain)
    return Verdict("REJECT", f"zone {zone.name} target {target} (icmpx admin-prohibited)",
                   certain)


@dataclass(frozen=True)
class Effect:
    """A packet class whose verdict changes: ``NEW tcp/18745 from any in zone public:
    REJECT -> ACCEPT``, in runtime (the permanent twin gives the same after a reload)."""

    packets: Packet
    zone: str
    before: Verdict
    after: Verdict

    def __str__(self) -> str:
        return f"{self.packets} in zone {self.zone}: {self.before} -> {self.after}"


# -- planning ------------------------------------------------------------------------------

def _ports(request: Request) -> list[str]:
    """Request.dport (``18745``, ``1000:2000``, ``80,443``) as firewalld port numbers."""
    if request.dport is None:
        return []
    out = []
    for part in request.dport.split(","):
        low, _, high = part.strip().replace("-", ":").partition(":")
        if not low.isdigit() or (high and not high.isdigit()):
            raise BadInput(f"bad port {request.dport!r}")
        for number in (low, high):
            if number and not 0 < int(number) < 65536:
                raise BadInput(f"port {number} out of range")
        out.append(f"{int(low)}-{int(high)}" if high else str(int(low)))
    return out


def _family(request: Request) -> int | None:
    families = {request.family} - {None}
    for address in (request.src, request.dst):
        if address:
            try:
                families.add(ipaddress.ip_network(address, strict=False).version)
            except ValueError:
                raise BadInput(f"{address!r} is not an IP address or network") from None
    if len(families) > 1:
        raise BadInput("the source, destination and family name different IP versions")
    return families.pop() if families else None


def rich_rules(request: Request, action: str) -> list[str]:
    """The rich rules (one per port) for ``request`` in firewalld's canonical spelling."""
    family = _family(request)
    head = "rule"
    if family:
        head += f' family="ipv{family}"'
    if request.src:
        head += f' source address="{_network(request.src)}"'
    if request.dst:
        head += f' destination address="{_network(request.dst)}"'
    proto = request.proto
    elements: list[str] = []
    if request.sport and request.dport:
        raise BadInput("firewalld rich rules match a destination port or a source port, "
                       "not both")
    if request.dport or request.sport:
        if proto not in PORT_PROTOCOLS:
            raise BadInput("a port needs -p tcp, udp, sctp or dccp")
        which = "port" if request.dport else "source-port"
        elements = [f' {which} port="{p}" protocol="{proto}"'
                    for p in _ports(replace(request, dport=request.dport or request.sport))]
    elif proto:
        elements = [f' protocol value="{proto}"']
    else:
        elements = [""]
    return [f"{head}{element} {action.lower()}" for element in elements]


def _network(text: str) -> str:
    net = ipaddress.ip_network(text, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _changes(request: Request, action: str) -> tuple[list[str], list[str]]:
    """(ports, rich rules) an allow/deny/reject of ``request`` adds."""
    simple = (action == "allow" and not (request.src or request.dst or request.sport
                                         or request.family) and request.dport is not None)
    if simple:
        if request.proto not in PORT_PROTOCOLS:
            raise BadInput("a port needs -p tcp, udp, sctp or dccp")
        return [f"{p}/{request.proto}" for p in _ports(request)], []
    verb = {"allow": "accept", "deny": "drop", "reject": "reject"}[action]
    return [], rich_rules(request, verb)


def _zones(request: Request, state: FirewalldState) -> list[str]:
    """The zones the asked packets land in: by the request's source / interface, else every
    zone an interface of this host with an address is bound to (the default zone when none
    is)."""
    src = None
    if request.src:
        net = ipaddress.ip_network(request.src, strict=False)
        src = str(net.network_address)
    if request.in_iface or src:
        return [zone_for(state, src=src, in_iface=request.in_iface)]
    from trustwall.firewall.semantics.routing import read_live

    try:
        interfaces = [i for i, a in read_live().by_interface.items() if a and i != "lo"]
    except TrustwallError:
        interfaces = []
    zones = sorted({zone_for(state, in_iface=i) for i in interfaces})
    return zones or [zone_for(state)]


def _packets(request: Request) -> list[Packet]:
    family = _family(request) or 4
    src = str(ipaddress.ip_network(request.src, strict=False).network_address) \
        if request.src else None
    dst = str(ipaddress.ip_network(request.dst, strict=False).network_address) \
        if request.dst else None
    proto = request.proto or "tcp"
    ports = _ports(request) or [""]
    return [Packet(proto, int(p.split("-")[0]) if p else None, src, dst, family)
            for p in ports]


def _apply_to_zone(zone: Zone, ports: Sequence[str], rules: Sequence[str], *,
                   add: bool) -> Zone:
    if add:
        return replace(zone, ports=tuple(dict.fromkeys((*zone.ports, *ports))),
                       rich_rules=tuple(dict.fromkeys((*zone.rich_rules, *rules))))
    return replace(zone, ports=tuple(p for p in zone.ports if p not in ports),
                   rich_rules=tuple(r for r in zone.rich_rules if r not in rules))


def _zone_args(zone: str, ports: Sequence[str], rules: Sequence[str], *, add: bool,
               permanent: bool, timeout: int | None = None) -> list[tuple[str, ...]]:
    """One firewall-cmd per kind of setting: it refuses ``--add-port`` together with
    ``--add-rich-rule`` (or an add with a remove) in one call; values of one kind may
    repeat."""
    verb = "add" if add else "remove"
    head = [FIREWALL_CMD, *(["--permanent"] if permanent else []), "--zone", zone]
    tail = ["--timeout", f"{timeout}s"] if timeout is not None else []
    out = []
    for kind, values in (("port", ports), ("rich-rule", rules)):
        if values:
            out.append(tuple([*head, *(a for v in values for a in (f"--{verb}-{kind}", v)),
                              *tail]))
    return out


@dataclass(frozen=True)
class ZoneChange:
    """What a plan does to one zone, runtime and permanent (the read-back compares these)."""

    zone: str
    add: bool
    runtime_ports: tuple[str, ...] = ()
    runtime_rules: tuple[str, ...] = ()
    permanent_ports: tuple[str, ...] = ()
    permanent_rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class FirewalldPlan(OwnerPlan):
    """An :class:`OwnerPlan` that also carries the zone changes ``apply`` verifies."""

    zone_changes: tuple[ZoneChange, ...] = ()
    request: Request | None = None
    expires: str | None = None
    #: the firewalld state the plan was made from (apply's baseline: a change by someone
    #: else in between shows up in the read-back and rolls the change back)
    state: FirewalldState | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, object]:
        out = super().to_json()
        out["zones"] = [c.zone for c in self.zone_changes]
        if self.expires:
            out["expires"] = self.expires
        return out


def _unsupported(request: Request) -> str | None:
    """The iptables-shaped details of a request (``--chain``, ``--state``, ``-o``, a rule
    number …) that a zone cannot express: refused, never silently dropped. Read with getattr:
    older Requests lack them."""
    chain = getattr(request, "chain", None)
    if chain not in (None, "INPUT"):
        return f"--chain {chain} (firewalld zones filter incoming traffic: INPUT)"
    table, conntrack = getattr(request, "table", "filter"), getattr(request, "state", None)
    if table != "filter":
        return f"--table {table}"
    if conntrack not in (None, "NEW"):
        return f"--state {conntrack} (zones only see NEW packets)"
    for name, flag in (("out_iface", "-o"), ("reject_with", "--reject-with"),
                       ("rule_number", "a rule number"), ("spec", "an iptables rule spec")):
        if getattr(request, name, None) is not None:
            return flag
    return None


def plan(request: Request, state: FirewalldState | None = None) -> FirewalldPlan:
    """The firewall-cmd commands for ``request`` on this host's firewalld (read if
    ``state`` is None). Commands already satisfied are left out; nothing left: no commands."""
    if request.action not in ("allow", "deny", "reject", "delete"):
        raise BadInput(f"unknown action {request.action!r}")
    if request.proto is not None and not re.fullmatch(r"[a-z0-9-]{1,16}", request.proto):
        raise BadInput(f"bad protocol {request.proto!r}")
    if request.in_iface is not None and not _IFACE_RE.match(request.in_iface):
        raise BadInput(f"bad interface {request.in_iface!r}")
    _family(request)  # the addresses and their IP version, checked before anything is read
    _ports(request)
    if not (request.proto or request.dport or request.sport or request.src or request.dst):
        raise BadInput("say what to match (-p/--dport, -s or -d): a zone-wide change is the "
                       "zone's target", hint="firewall-cmd --zone ZONE --set-target …")
    unsupported = _unsupported(request)
    if unsupported:
        return FirewalldPlan(OWNER, (), False, refused=f"firewalld cannot express {unsupported}",
                             next="firewall-cmd --zone ZONE --add-rich-rule '…' "
                                  "(see firewalld.richlanguage(5))", request=request)
    if state is None:
        state = read_state()
    if not state.running:
        return FirewalldPlan(OWNER, (), False, refused="firewalld is not running",
                             next="systemctl start firewalld")
    zones = _zones(request, state)
    services = {s for z in zones for s in state.runtime[z].services}
    state = with_services(state, services)
    notes: list[str] = []
    if request.in_iface:
        notes.append(f"interface {request.in_iface} is matched by its zone binding")
    for name in zones:
        bound = [s for z in state.runtime.values() if z.name != name for s in z.sources]
        if bound and not request.src:
            notes.append(f"packets from {', '.join(bound)} land in their own zone, "
                         f"not in {name}: unchanged for them")
    commands: list[Command] = []
    changes: list[ZoneChange] = []
    effects: list[Effect] = []
    timeout = request.duration if request.action != "delete" else None
    for name in zones:
        runtime, permanent = state.runtime[name], state.permanent.get(name)
        if request.action == "delete":
            r_ports, r_rules, p_ports, p_rules = [], [], [], []
            removes = getattr(request, "removes", None)
            for action in (removes,) if removes else ("allow", "deny", "reject"):
                ports, rules = _changes(request, action)
                r_ports += [p for p in ports if p in runtime.ports]
                r_rules += [r for r in rules if r in runtime.rich_rules]
                if permanent is not None:
                    p_ports += [p for p in ports if p in permanent.ports]
                    p_rules += [r for r in rules if r in permanent.rich_rules]
            add = False
        else:
            ports, rules = _changes(request, request.action)
            r_ports = [p for p in ports if p not in runtime.ports]
            r_rules = [r for r in rules if r not in runtime.rich_rules]
            p_ports, p_rules = [], []
            if timeout is None and permanent is not None:
                p_ports = [p for p in ports if p not in permanent.ports]
                p_rules = [r for r in rules if r not in permanent.rich_rules]
            add = True
        commands += [Command(argv) for argv in _zone_args(
            name, r_ports, r_rules, add=add, permanent=False, timeout=timeout)]
        commands += [Command(argv, runtime=False, permanent=True) for argv in _zone_args(
            name, p_ports, p_rules, add=add, permanent=True)]
        if r_ports or r_rules or p_ports or p_rules:
            changes.append(ZoneChange(name, add, tuple(r_ports), tuple(r_rules),
                                      tuple(p_ports), tuple(p_rules)))
        after = _apply_to_zone(runtime, r_ports, r_rules, add=add)
        for packet in _packets(request):
            before_v = verdict(runtime, packet, state.service_ports)
            after_v = verdict(after, packet, state.service_ports)
            if (before_v.verdict, before_v.certain) != (after_v.verdict, after_v.certain):
                effects.append(Effect(packet, name, before_v, after_v))
    if not commands:
        notes.append("nothing to do: firewalld already holds this"
                     if request.action != "delete" else "nothing to delete: no such rule")
    expires = None
    if timeout is not None:
        expires = (_dt.datetime.now(_dt.timezone.utc)
                   + _dt.timedelta(seconds=timeout)).isoformat(timespec="seconds")
        notes.append(f"runtime only, firewalld removes it at {expires} (--timeout); "
                     "the permanent configuration is not changed")
    if request.action != "delete" and request.dport and not request.src \
            and request.action == "allow":
        notes.append("only NEW packets change: firewalld drops INVALID ones before any zone")
    # Without --for, what is added goes into the permanent configuration too (or is there
    # already), and a delete removes it from both.
    persistent = timeout is None and all(z in state.permanent for z in zones)
    return FirewalldPlan(OWNER, tuple(commands), persistent, tuple(effects),
                         notes=tuple(notes), zone_changes=tuple(changes), request=request,
                         expires=expires, state=state)


# -- lockout -------------------------------------------------------------------------------

def lockout_problems(plan_: FirewalldPlan, state: FirewalldState,
                     flows: Sequence[Any]) -> list[str]:
    """Flows (change.apply.Flow) whose NEW connections the planned runtime would stop."""
    from trustwall.firewall.semantics.routing import read_live

    if not flows or not plan_.zone_changes:
        return []
    try:
        local = read_live()
    except TrustwallError:
        local = None
    problems = []
    after = {c.zone: _apply_to_zone(state.runtime[c.zone], c.runtime_ports, c.runtime_rules,
                                    add=c.add) for c in plan_.zone_changes}
    state = with_services(state, {s for z in after.values() for s in z.services})
    for flow in flows:
        iface = None
        if local is not None:
            wanted = ipaddress.ip_address(flow.dst)
            iface = next((i for i, a in local.by_interface.items() if wanted in a), None)
        zone = zone_for(state, src=flow.src, in_iface=iface)
        if zone not in after:
            continue
        packet = Packet(flow.proto, flow.dport, flow.src, flow.dst,
                        6 if ":" in flow.dst else 4)
        result = verdict(after[zone], packet, state.service_ports)
        if result.verdict != "ACCEPT" or not result.certain:
            problems.append(f"{flow}: a new connection would be {result} in zone {zone} "
                            f"({result.by})")
    return problems


# -- applying ------------------------------------------------------------------------------

@dataclass(frozen=True)
class FirewalldApplyResult:
    plan: FirewalldPlan
    applied: bool
    txn_id: str | None = None
    confirm_deadline: str | None = None
    kept_flows: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {**self.plan.to_json(), "applied": self.applied, "txn": self.txn_id,
                "confirm_deadline": self.confirm_deadline, "kept_flows": list(self.kept_flows),
                "warnings": list(self.warnings)}


#: The read-back :func:`apply` just verified, handed once to the journal's commit-time
#: capture of the same zones (nothing runs in between, under the host lock): each
#: firewall-cmd call costs ~0.25 s.
_verified: tuple[tuple[str, ...], FirewalldState] | None = None


def capture(zones: Sequence[str]) -> bytes:
    """The journal's before-image: runtime and permanent settings of ``zones`` as JSON."""
    global _verified
    handed, _verified = _verified, None
    fresh = handed is not None and handed[0] == tuple(zones)
    return image_of(handed[1] if fresh and handed else read_zones(zones), zones)


def image_of(state: FirewalldState, zones: Sequence[str]) -> bytes:
    if not state.running:
        raise FirewalldError("firewalld is not running")
    image = {"zones": {name: {"runtime": state.runtime[name].settings()
                              if name in state.runtime else None,
                              "permanent": state.permanent[name].settings()
                              if name in state.permanent else None}
                       for name in zones}}
    return json.dumps(image, sort_keys=True).encode()


def restore_argv(data: Mapping[str, Any]) -> list[str]:
    """How the journal puts a before-image back (stdin: the image)."""
    return [sys.executable, "-m", "trustwall.firewall.owners.firewalld", "restore"]


def valid_zones(value: Any) -> bool:
    return isinstance(value, list) and 0 < len(value) <= 64 and all(
        isinstance(v, str) and _ZONE_RE.match(v) for v in value)


_SETTING_CHECKS = {"ports": _PORT_RE, "services": _SERVICE_RE, "protocols": _SERVICE_RE,
                   "source_ports": _PORT_RE}


def _image(data: bytes) -> dict[str, dict[str, dict[str, list[str]] | None]]:
    """A before-image, every value validated (it steers firewall-cmd argv)."""
    try:
        doc = json.loads(data)
        zones = doc["zones"]
        assert isinstance(zones, dict) and len(zones) <= 64
        for name, sides in zones.items():
            _check(name, _ZONE_RE, "zone name")
            for side in ("runtime", "permanent"):
                settings = sides[side]
                if settings is None:
                    continue
                for key, values in settings.items():
                    assert isinstance(values, list)
                    for value in values:
                        assert isinstance(value, str)
                        if key == "rich_rules":
                            _check_rich(value)
                        else:
                            _check(value, _SETTING_CHECKS[key], key)
    except (ValueError, KeyError, AssertionError, TypeError, AttributeError, ParseError):
        raise FirewalldError("refusing a malformed firewalld before-image") from None
    return zones


_VERBS = {"ports": "port", "rich_rules": "rich-rule", "services": "service",
          "protocols": "protocol", "source_ports": "source-port"}


def inverse_commands(before: Mapping[str, Any], now: FirewalldState) -> list[list[str]]:
    """firewall-cmd argv that turn ``now`` back into the ``before`` image, zone by zone,
    runtime and permanent: remove what was added, add back what was removed."""
    out = []
    for name, sides in sorted(before.items()):
        for side, current_zones in (("runtime", now.runtime), ("permanent", now.permanent)):
            wanted = sides.get(side)
            current = current_zones.get(name)
            if wanted is None or current is None:
                continue
            have = current.settings()
            argv = [FIREWALL_CMD, *(["--permanent"] if side == "permanent" else []),
                    "--zone", name]
            # one call per kind and direction: firewall-cmd refuses them mixed
            for key, verb in _VERBS.items():
                want = set(wanted.get(key, ()))
                for direction, values in (("remove", sorted(set(have[key]) - want)),
                                          ("add", sorted(want - set(have[key])))):
                    if values:
                        out.append([*argv, *(a for v in values
                                             for a in (f"--{direction}-{verb}", v))])
    return out


def restore(data: bytes) -> list[list[str]]:
    """Put the runtime and permanent settings of a before-image back (no ``--reload``)."""
    from trustwall.proc import which

    before = _image(data)
    now = read_zones(before)
    if not now.running:
        raise FirewalldError("firewalld is not running; cannot restore its settings")
    done = []
    for argv in inverse_commands(before, now):
        _firewall_cmd(argv[1:])
        done.append([which(FIREWALL_CMD), *argv[1:]])
    left = inverse_commands(before, read_zones(before))
    if left:
        raise FirewalldError("after the restore firewalld still differs from the "
                             f"before-image: {' '.join(left[0])}")
    return done


def differences(plan_: FirewalldPlan, before: FirewalldState,
                after: FirewalldState) -> list[str]:
    """How the zones the plan changes differ, after the commands, from what the plan said
    they would hold (``after`` needs only those zones: :func:`read_zones`)."""
    out = []
    changed = {c.zone: c for c in plan_.zone_changes}
    if not after.running:
        return ["firewalld stopped running"]
    for side, b_zones, a_zones in (("runtime", before.runtime, after.runtime),
                                   ("permanent", before.permanent, after.permanent)):
        for name in sorted(changed):
            if name not in b_zones or name not in a_zones:
                out.append(f"{side} zone {name} {'appeared' if name in a_zones else 'vanished'}")
                continue
            expected = b_zones[name]
            change = changed.get(name)
            if change is not None:
                ports, rules = ((change.runtime_ports, change.runtime_rules) if side == "runtime"
                                else (change.permanent_ports, change.permanent_rules))
                expected = _apply_to_zone(expected, ports, rules, add=change.add)
            want, have = expected.settings(), a_zones[name].settings()
            for key in want:
                if want[key] != have[key]:
                    extra = sorted(set(have[key]) - set(want[key]))
                    missing = sorted(set(want[key]) - set(have[key]))
                    out.append(f"{side} zone {name} {key}: extra {extra}, missing {missing}")
    return out


def apply(plan_: FirewalldPlan, options: Any = None) -> FirewalldApplyResult:
    """Run ``plan_`` through the journal (see the module docstring). ``options`` is
    :class:`trustwall.firewall.change.apply.Options` (force, keep, confirm_within, state_dir,
    environ, session, dry_run)."""
    from trustwall.firewall.change import apply as fw_apply
    from trustwall.firewall.change.undo import where
    from trustwall.journal.transaction import Transaction, state_dir_for

    options = options or fw_apply.Options()
    if plan_.refused:
        raise FirewalldError(f"refused: {plan_.refused}", hint=plan_.next)
    request = plan_.request
    session = fw_apply._session(options)
    flows = fw_apply._flows(options, session)
    kept = tuple(str(f) for f in flows)
    if not plan_.commands:
        return FirewalldApplyResult(plan_, applied=False, kept_flows=kept)
    state = plan_.state or read_state()
    if not state.running:
        raise FirewalldError("firewalld is not running")
    warnings: list[str] = []
    if request is None or request.action in ("deny", "reject", "delete"):
        problems = lockout_problems(plan_, state, flows)
        if problems:
            if not options.force:
                raise LockoutRisk("refusing: " + "; ".join(problems),
                                  hint="--keep another flow, or --force with "
                                       "--confirm-within N")
            warnings.extend(f"forced despite lockout risk: {p}" for p in problems)
    confirm = fw_apply._confirm_seconds(options, session)
    if session.unknown and confirm is None and not options.force:
        raise LockoutRisk("refusing: this runs in an SSH session whose connection cannot be "
                          "found (so the lockout check cannot protect it)",
                          hint="add --confirm-within SECONDS, --keep FLOW, or --force")
    if options.dry_run:
        return FirewalldApplyResult(plan_, applied=False, kept_flows=kept,
                                    warnings=tuple(warnings))
    zones = [c.zone for c in plan_.zone_changes]
    effect = "; ".join(str(e) for e in plan_.effect) or "no verdict changes"
    description = f"firewalld {request.action if request else 'change'}: {effect}"
    if plan_.expires:
        description += f" (expires={plan_.expires})"
    deadline = None
    with Transaction("fw-firewalld", description[:2000], state_dir=options.state_dir) as txn:
        if confirm is not None:
            deadline = fw_apply._arm_rollback(txn.id, confirm,
                                             replace(options, persist=False), [], session)
        try:
            txn.snapshot_tree(ZONES_DIR)
            txn.record(STEP_KIND, capture(zones), label=", ".join(zones),
                       data={"zones": zones, **where()})
            for command in plan_.commands:
                txn.run([_which(), *command.argv[1:]])
            if plan_.expires:
                _record_expiry(txn, plan_, state_dir_for(None, options.state_dir))
            after = read_zones(zones)
            problems = differences(plan_, state, after)
            if problems:
                raise FirewalldError("after the change firewalld holds something other than "
                                     "the plan, so it was rolled back: " + "; ".join(problems))
            global _verified
            _verified = (tuple(zones), after)
        except BaseException:
            (state_dir_for(None, options.state_dir) / fw_apply.PENDING).unlink(missing_ok=True)
            raise
    return FirewalldApplyResult(plan_, applied=True, txn_id=txn.id, confirm_deadline=deadline,
                                kept_flows=kept, warnings=tuple(warnings))


def _which() -> str:
    from trustwall.proc import which

    return which(FIREWALL_CMD)


def _record_expiry(txn: Any, plan_: FirewalldPlan, state_dir: Path) -> None:
    """trustwall's own record of a ``--timeout`` change (firewalld forgets it at a reload or
    restart; the record says what was meant to hold until when). Expired entries go."""
    path = state_dir / EXPIRY_FILE
    now = _dt.datetime.now(_dt.timezone.utc)
    entries = [e for e in expiry_records(state_dir)
               if _dt.datetime.fromisoformat(e["expires"]) > now]
    entries.append({"txn": txn.id, "expires": plan_.expires,
                    "zones": [c.zone for c in plan_.zone_changes],
                    "commands": [c.text for c in plan_.commands]})
    txn.write_file(path, json.dumps(entries, indent=1).encode(), mode=0o600)


def expiry_records(state_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The temporary firewalld changes trustwall made (``--for``), oldest first."""
    from trustwall.journal.transaction import state_dir_for

    path = state_dir_for(None, state_dir) / EXPIRY_FILE
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    out = []
    for entry in doc if isinstance(doc, list) else ():
        try:
            _dt.datetime.fromisoformat(entry["expires"])
        except (TypeError, KeyError, ValueError):
            continue
        out.append(entry)
    return out


def expire(*, now: _dt.datetime | None = None, options: Any = None) -> list[str]:
    """``fw expire`` on firewalld: firewalld's own ``--timeout`` removed the runtime change
    (the ``--for`` plan is runtime only), so what is left is trustwall's record of it. Expired
    entries leave the record (journaled, ``trustwall undo`` brings them back); a line per entry
    says what ended. Nothing to do when there is no record; firewalld need not run."""
    from trustwall.journal.transaction import Transaction, state_dir_for

    now = now or _dt.datetime.now(_dt.timezone.utc)
    state_dir = getattr(options, "state_dir", None)
    entries = expiry_records(state_dir)
    ended = [e for e in entries if _dt.datetime.fromisoformat(e["expires"]) <= now]
    if not ended:
        return []
    lines = [f"firewalld {'; '.join(str(c) for c in e.get('commands', ()))} (expired "
             f"{e['expires']}; firewalld's --timeout removed it, its record goes)"
             for e in ended]
    if getattr(options, "dry_run", False):
        return lines
    path = state_dir_for(None, state_dir) / EXPIRY_FILE
    left = [e for e in entries if e not in ended]
    with Transaction("fw-expire", f"expire {len(ended)} firewalld record(s)",
                     state_dir=state_dir) as txn:
        txn.write_file(path, json.dumps(left, indent=1).encode(), mode=0o600)
    return lines


def main(argv: Sequence[str]) -> int:
    """``python -m trustwall.firewall.owners.firewalld restore`` (the journal's restorer)."""
    if list(argv) != ["restore"]:
        print("usage: python -m trustwall.firewall.owners.firewalld restore < IMAGE",
              file=sys.stderr)
        return 2
    try:
        restore(sys.stdin.buffer.read())
    except TrustwallError as exc:
        print(f"trustwall: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
