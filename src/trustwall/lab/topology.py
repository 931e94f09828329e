"""The lab network: four hosts in network namespaces, joined through an edge router.

::

    client 198.18.1.2 ──── 198.18.1.1  edge (router + mitmproxy) 198.18.2.1 ──── 198.18.2.2 origin
                                          198.18.3.1                              (HTTPS sites)
                                              │
                                          198.18.3.2 server (tcp/18745 behind a RHEL-like
                                                             INPUT chain ending in REJECT)

Every address is in 198.18.0.0/15 (RFC 2544, reserved for lab networks) and every interface
lives inside a namespace: nothing is added to the host's network. Lab names resolve through a
hosts file that ``ip netns exec`` bind-mounts over /etc/hosts (/etc/netns/<namespace>/hosts).

By default the edge intercepts like a corporate network: forwarded tcp/443 is REDIRECTed to
mitmproxy (re-signing with the "Acme Widgets Inspection CA" root, leaf only), and the same
mitmproxy is an explicit proxy at :attr:`Lab.proxy_url`. :meth:`Lab.intercepting` switches the
redirect to another proxy, or off (``None``) to reach the origin's own chains.

Each lab records itself in /run/trustwall-lab/<id>.json (namespaces, PIDs, work directory);
:func:`cleanup_labs` uses only that record and the namespace names to tear a lab down, also
when the process that built it was killed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustwall.errors import TrustwallError
from trustwall.lab import netns as _netns
from trustwall.lab.ca import DEFAULT_SEED, LabCAs, lab_cas
from trustwall.lab.netns import Netns, veth
from trustwall.lab.proxy import (
    ChainMode,
    ProxyConfig,
    ProxyInfo,
    start_proxy,
    wait_listening,
    wait_proxy,
)
from trustwall.lab.sites import DOMAIN, SITES, write_site_files
from trustwall.proc import pid_alive

if TYPE_CHECKING:
    from trustwall.lab.sandbox import Sandbox

STATE_DIR = Path("/run/trustwall-lab")
#: The hosts of the playground (`trustwall lab exec ROLE`).
PLAYGROUND_ROLES = ("client", "server")
ETC_NETNS = Path("/etc/netns")

CLIENT_IP = "198.18.1.2"
EDGE_CLIENT_IP = "198.18.1.1"
EDGE_ORIGIN_IP = "198.18.2.1"
ORIGIN_IP = "198.18.2.2"
EDGE_SERVER_IP = "198.18.3.1"
SERVER_IP = "198.18.3.2"
HTTPS_PORT = 443
PROXY_PORT = 8080  # explicit; the transparent listener is PROXY_PORT + 1
JMX_PORT = 18745
SERVER_NAME = f"server.{DOMAIN}"
PROXY_NAME = f"proxy.{DOMAIN}"

# A RHEL-like INPUT chain: rules 1-9 accept, rule 10 rejects everything else. A new ACCEPT
# appended after rule 10 is never reached; it must go at position 10.
SEED_RULESET = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 443 -j ACCEPT
-A INPUT -p udp -m state --state NEW -m udp --dport 161 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 5666 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 9090 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
COMMIT
"""

#: The stand-in for a JMX agent: accepts, says who it is, closes. Prints nothing.
JMX_LISTENER = """\
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {port}))
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(b"JMX lab listener\\n")
    c.close()
"""

_ids = itertools.count(1)


def start_jmx_listener(ns: Netns, marker: str, *, wait: bool = True,
                       port: int = JMX_PORT) -> subprocess.Popen:
    """The JMX stand-in on tcp/``port`` (:data:`JMX_PORT`) in ``ns`` (killed with it).
    ``marker`` (a work directory) only marks the process as its lab's in ``ps``; ``wait``:
    until it listens."""
    proc = ns.popen([sys.executable, "-c", JMX_LISTENER.format(port=port), marker],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    if wait:
        wait_listening(proc, (port,), "the JMX stand-in")
    return proc


@dataclass(frozen=True)
class LabState:
    """What a running lab is made of; written to /run/trustwall-lab/<id>.json."""

    id: str
    owner_pid: int
    kind: str  # "session" (owned by a Python process) or "up" (held by `trustwall lab up`)
    started_at: float
    startup_seconds: float
    namespaces: dict[str, str]
    pids: dict[str, int]
    workdir: str
    etc_netns: tuple[str, ...]
    proxy_url: str
    hosts: dict[str, str] = field(default_factory=dict)
    ready: bool = False
    chain: str = ChainMode.LEAF.value  # what the default proxy presents
    #: role -> {"pid": sandbox holder, "root": its directory, "home": HOME inside}: the
    #: playground `trustwall lab exec ROLE -- CMD` enters (a `lab up` lab only).
    playground: dict[str, dict] = field(default_factory=dict)

    @property
    def owner_alive(self) -> bool:
        return pid_alive(self.owner_pid)

    @classmethod
    def load(cls, path: Path) -> LabState:
        data = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}  # a record from another version still loads
        data = {key: value for key, value in data.items() if key in known}
        data["etc_netns"] = tuple(data.get("etc_netns", ()))
        return cls(**data)


def lab_hosts() -> dict[str, str]:
    """Lab name -> address, as the client (and the proxy) resolve them."""
    hosts = {site.name: ORIGIN_IP for site in SITES}
    hosts[SERVER_NAME] = SERVER_IP
    hosts[PROXY_NAME] = EDGE_CLIENT_IP
    return hosts


def hosts_text(hosts: dict[str, str]) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{ip}\t{name}" for name, ip in hosts.items()]
    return "# trustwall lab names\n" + "\n".join(lines) + "\n"


class Lab:
    """The whole lab; ``with Lab() as lab:`` builds it and always tears it down.

    Attributes once started: ``client``, ``edge``, ``origin``, ``server`` (:class:`Netns`),
    ``cas`` (:class:`LabCAs`), ``workdir`` (CA files, site chains, proxy confdirs, hosts),
    ``default_proxy`` (:class:`ProxyInfo`), ``startup_seconds``.
    """

    def __init__(self, *, seed: bytes = DEFAULT_SEED, kind: str = "session",
                 intercept: bool = True, chain: ChainMode = ChainMode.LEAF,
                 playground: bool = False) -> None:
        self.id = f"lab-{os.getpid()}-{next(_ids)}"
        self.kind = kind
        self.cas: LabCAs = lab_cas(seed)
        self.workdir = STATE_DIR / self.id
        self.state_file = STATE_DIR / f"{self.id}.json"
        self.hosts = lab_hosts()
        self.startup_seconds = 0.0
        self.started_at = time.time()
        self._intercept_at_start = intercept
        # leaf+intermediate needs the inspection CA variant that has an issuing CA.
        self._default_config = ProxyConfig(
            ca="intermediate" if chain is ChainMode.LEAF_INTERMEDIATE else "root", chain=chain)
        self._want_playground = playground
        self._playground: dict[str, Sandbox] = {}
        self._namespaces: dict[str, Netns] = {}
        self._pids: dict[str, int] = {}
        self._proxies: dict[ProxyConfig, ProxyInfo] = {}
        self._intercepted_by: ProxyInfo | None = None
        self._etc_netns: list[Path] = []
        self._started = False
        self._ready = False

    # -- namespaces -------------------------------------------------------------------------
    @property
    def namespaces(self) -> dict[str, Netns]:
        """role -> namespace, for the namespaces made so far."""
        return dict(self._namespaces)

    @property
    def client(self) -> Netns:
        return self._namespaces["client"]

    @property
    def edge(self) -> Netns:
        return self._namespaces["edge"]

    @property
    def origin(self) -> Netns:
        return self._namespaces["origin"]

    @property
    def server(self) -> Netns:
        return self._namespaces["server"]

    # -- files ------------------------------------------------------------------------------
    @property
    def ca_dir(self) -> Path:
        return self.workdir / "ca"

    @property
    def hosts_file(self) -> Path:
        """A hosts file with the lab names (for sandboxes that bind-mount their own /etc)."""
        return self.workdir / "hosts"

    def ca_file(self, name: str) -> Path:
        """PEM file of a lab CA: public-root, public-intermediate, acme-root,
        acme-intermediate, acme-weak, acme-expired."""
        path = self.ca_dir / f"{name}.pem"
        if not path.exists():
            raise FileNotFoundError(path)
        return path

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Lab:
        _netns.require_root()
        t0 = time.perf_counter()
        try:
            self._build()
            if self._want_playground:
                self.open_playground()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - t0
        self._ready = True
        self._write_state()
        return self

    def _build(self) -> None:
        from trustwall.journal.atomic import atomic_write

        self._started = True
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o755)
        self._write_state()  # early, so a kill during the build still leaves a record
        self._write_ca_files()
        atomic_write(self.hosts_file, hosts_text(self.hosts).encode())
        sites_config = write_site_files(self.cas, self.workdir / "sites", ORIGIN_IP, HTTPS_PORT)
        # mitmproxy is the slow one (~1 s of imports): start it as soon as the edge exists
        # (it listens on the wildcard address) and build the rest meanwhile.
        self._namespaces["edge"] = Netns.create("labedge")
        self._install_hosts(self.edge)
        proxy, proxy_proc = start_proxy(
            self.edge, self.cas, self._default_config, workdir=self.workdir,
            address=EDGE_CLIENT_IP,
            explicit_port=PROXY_PORT, transparent_port=PROXY_PORT + 1,
            upstream_ca_file=self.ca_file("public-root"), wait=False)
        self._pids["mitmproxy"] = proxy_proc.pid
        for role in ("client", "origin", "server"):
            self._namespaces[role] = Netns.create(f"lab{role}")
            self._write_state()
        self._wire()
        self._install_hosts(self.client)
        site_log = self.workdir / "sites" / "server.log"
        with open(site_log, "wb") as out:
            sites_proc = self.origin.popen([sys.executable, "-m", "trustwall.lab.sites",
                                            str(sites_config)], stdin=subprocess.DEVNULL,
                                           stdout=out, stderr=subprocess.STDOUT)
        self._pids["sites"] = sites_proc.pid
        # The work directory in its argv only marks the process as this lab's.
        jmx_proc = start_jmx_listener(self.server, str(self.workdir), wait=False)
        self._pids["jmx"] = jmx_proc.pid
        self._write_state()
        self.server.run(["iptables-restore"], input=SEED_RULESET)
        wait_listening(sites_proc, (HTTPS_PORT,), "the origin's HTTPS sites", site_log)
        wait_listening(jmx_proc, (JMX_PORT,), "the JMX stand-in")
        wait_proxy(proxy, proxy_proc)
        self._proxies[proxy.config] = proxy
        self.default_proxy = proxy
        if self._intercept_at_start:
            self.set_interception(proxy)

    def _write_ca_files(self) -> None:
        from trustwall.journal.atomic import atomic_write

        self.ca_dir.mkdir(parents=True, exist_ok=True)
        cas = self.cas
        files = {"public-root": cas.public_root, "public-intermediate": cas.public_inter,
                 "acme-root": cas.acme_root, "acme-intermediate": cas.acme_inter,
                 "acme-weak": cas.acme_weak, "acme-expired": cas.acme_expired}
        for name, cred in files.items():
            atomic_write(self.ca_dir / f"{name}.pem", cred.cert_pem)

    def _wire(self) -> None:
        client, edge, origin, server = self.client, self.edge, self.origin, self.server
        veth(client, "eth0", f"{CLIENT_IP}/24", edge, "c0", f"{EDGE_CLIENT_IP}/24")
        veth(origin, "eth0", f"{ORIGIN_IP}/24", edge, "o0", f"{EDGE_ORIGIN_IP}/24")
        veth(server, "eth0", f"{SERVER_IP}/24", edge, "s0", f"{EDGE_SERVER_IP}/24")
        client.run(["ip", "route", "add", "default", "via", EDGE_CLIENT_IP])
        origin.run(["ip", "route", "add", "default", "via", EDGE_ORIGIN_IP])
        server.run(["ip", "route", "add", "default", "via", EDGE_SERVER_IP])
        edge.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])

    def _install_hosts(self, ns: Netns) -> None:
        # `ip netns exec NAME` bind-mounts every file of /etc/netns/NAME over /etc.
        directory = ETC_NETNS / ns.name
        directory.mkdir(parents=True, exist_ok=True)
        self._etc_netns.append(directory)
        self._write_state()
        shutil.copyfile(self.hosts_file, directory / "hosts")

    def stop(self) -> None:
        """Tear down everything this lab made (idempotent, safe after a failed start)."""
        if not self._started:
            return
        self.close_playground()
        for ns in reversed(list(self._namespaces.values())):
            ns.delete()
        for directory in self._etc_netns:
            shutil.rmtree(directory, ignore_errors=True)
        _remove_etc_netns_if_empty()
        shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        self._namespaces.clear()
        self._proxies.clear()
        self._started = self._ready = False

    # -- the playground ---------------------------------------------------------------------
    def open_playground(self) -> None:
        """A sandbox on the client and on the server: writable copies of every trust store
        and of /var/lib/trustwall in a private mount namespace, entered together with the
        host's network namespace (its own firewall). What `trustwall lab exec` runs in."""
        from trustwall.clients.java import classes
        from trustwall.lab.sandbox import Sandbox

        classes()  # /var is read-only in a sandbox: compile the java client's class here
        for role in PLAYGROUND_ROLES:
            box = Sandbox(self._namespaces[role])
            self._playground[role] = box
            self._pids[f"sandbox-{role}"] = box.pid
            self._write_state()
        enterprise_ca = self._playground["client"].home / "enterprise-ca.pem"
        enterprise_ca.write_bytes(self.ca_file("acme-root").read_bytes())

    def playground(self, role: str) -> Sandbox:
        """The sandbox of ``role`` (client or server), opening the playground on first use."""
        if not self._playground:
            self.open_playground()
        return self._playground[role]

    def close_playground(self) -> None:
        for role, box in self._playground.items():
            box.close()
            self._pids.pop(f"sandbox-{role}", None)
        self._playground.clear()

    # -- state ------------------------------------------------------------------------------
    def state(self) -> LabState:
        proxy = self._proxies.get(self._default_config)
        return LabState(
            id=self.id, owner_pid=os.getpid(), kind=self.kind, started_at=self.started_at,
            startup_seconds=round(self.startup_seconds, 3),
            namespaces={role: ns.name for role, ns in self._namespaces.items()},
            pids=dict(self._pids), workdir=str(self.workdir),
            etc_netns=tuple(str(d) for d in self._etc_netns),
            proxy_url=proxy.url if proxy else "", hosts=dict(self.hosts), ready=self._ready,
            chain=self._default_config.chain.value,
            playground={role: {"pid": box.pid, "root": str(box.root), "home": str(box.home)}
                        for role, box in self._playground.items()})

    def _write_state(self) -> None:
        from trustwall.journal.atomic import atomic_write

        STATE_DIR.mkdir(parents=True, exist_ok=True, mode=0o755)
        atomic_write(self.state_file, json.dumps(asdict(self.state()), indent=1).encode())

    # -- proxies and interception -----------------------------------------------------------
    @property
    def proxy_url(self) -> str:
        """https_proxy for clients: the default mitmproxy (inspection root, leaf only)."""
        return self.default_proxy.url

    def proxy(self, config: ProxyConfig | None = None, **kw: Any) -> ProxyInfo:
        """The mitmproxy for ``config`` (or ``ProxyConfig(**kw)``), started on first use."""
        config = config or ProxyConfig(**kw)
        return self.proxies(config)[0]

    def proxies(self, *configs: ProxyConfig) -> list[ProxyInfo]:
        """Several proxies at once: the missing ones start in parallel (~1 s each alone)."""
        started = []
        for config in configs:
            if config in self._proxies:
                continue
            port = PROXY_PORT + 10 * len(self._proxies)
            info, proc = start_proxy(self.edge, self.cas, config, workdir=self.workdir,
                                     address=EDGE_CLIENT_IP, explicit_port=port,
                                     transparent_port=port + 1,
                                     upstream_ca_file=self.ca_file("public-root"), wait=False)
            self._proxies[config] = info
            self._pids[f"mitmproxy-{config.key}"] = proc.pid
            started.append((info, proc))
        self._write_state()
        for info, proc in started:
            try:
                wait_proxy(info, proc)
            except BaseException:
                del self._proxies[info.config]
                proc.kill()
                raise
        return [self._proxies[config] for config in configs]

    @property
    def intercepted_by(self) -> ProxyInfo | None:
        """The proxy forwarded tcp/443 is redirected to, or None (clients reach the origin)."""
        return self._intercepted_by

    def set_interception(self, proxy: ProxyInfo | None) -> None:
        """Redirect forwarded tcp/443 from the client to ``proxy``'s transparent port, or stop
        intercepting (``None``). One atomic iptables-restore of the edge's nat table."""
        rules = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]",
                 ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"]
        if proxy is not None:
            rules.append(f"-A PREROUTING -i c0 -p tcp -m tcp --dport {HTTPS_PORT} "
                         f"-j REDIRECT --to-ports {proxy.transparent_port}")
        rules.append("COMMIT")
        self.edge.run(["iptables-restore"], input="\n".join(rules) + "\n")
        self._intercepted_by = proxy

    @contextlib.contextmanager
    def intercepting(self, proxy: ProxyInfo | None) -> Iterator[ProxyInfo | None]:
        """``with lab.intercepting(None):`` reach the origin directly; restored on exit."""
        before = self._intercepted_by
        self.set_interception(proxy)
        try:
            yield proxy
        finally:
            self.set_interception(before)


# -- clean-up across processes ------------------------------------------------------------------
def recorded_labs() -> list[tuple[Path, LabState]]:
    labs = []
    for path in sorted(STATE_DIR.glob("lab-*.json")):
        with contextlib.suppress(OSError, ValueError, TypeError):
            labs.append((path, LabState.load(path)))
    return labs


def _in_namespace(pid: int, names: set[str]) -> bool:
    """True when ``pid`` lives in one of the network namespaces ``names`` (by inode)."""
    try:
        inode = os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return False
    for name in names:
        with contextlib.suppress(OSError):
            if os.stat(_netns.NETNS_DIR / name).st_ino == inode:
                return True
    return False


def teardown_recorded(path: Path, state: LabState) -> None:
    """Tear down a recorded lab by its recorded PIDs and namespace names only."""
    names = set(state.namespaces.values())
    for pid in state.pids.values():
        # A recorded PID is killed only while it still lives in one of the lab's namespaces:
        # after a reboot or PID reuse it is somebody else's process.
        if _in_namespace(pid, names):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for name in names:
        if (_netns.NETNS_DIR / name).exists():
            _netns.kill_inside(name)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    for directory in state.etc_netns:
        if Path(directory).parent == ETC_NETNS and Path(directory).name in names:
            shutil.rmtree(directory, ignore_errors=True)
    workdir = Path(state.workdir)
    if workdir.parent == STATE_DIR:
        shutil.rmtree(workdir, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def cleanup_labs(*, all_of_them: bool = False, kinds: tuple[str, ...] = (),
                 ids: tuple[str, ...] = ()) -> list[str]:
    """Tear down recorded labs whose owner is dead (plus every lab of ``kinds``, or all);
    with ``ids``, exactly those labs, whoever owns them.

    Then delete stale tw-* namespaces and /etc/netns entries left without a namespace.
    Returns the ids of the labs torn down.
    """
    removed = []
    for path, state in recorded_labs():
        chosen = state.id in ids if ids else (
            all_of_them or state.kind in kinds or not state.owner_alive)
        if chosen:
            if state.owner_alive and state.owner_pid != os.getpid():
                _stop_owner(state)
            teardown_recorded(path, state)
            removed.append(state.id)
    _netns.cleanup_stale()
    from trustwall.lab import managed  # it imports this module

    managed.cleanup_stale()  # scratch of managed hosts (firewalld, ufw …) of dead creators
    if ETC_NETNS.is_dir():
        for directory in ETC_NETNS.glob(f"{_netns.PREFIX}*"):
            if not (_netns.NETNS_DIR / directory.name).exists():
                shutil.rmtree(directory, ignore_errors=True)
    _remove_etc_netns_if_empty()
    return removed


def _remove_etc_netns_if_empty() -> None:
    with contextlib.suppress(OSError):
        ETC_NETNS.rmdir()  # only when empty: it may hold other tools' entries


def _stop_owner(state: LabState, timeout: float = 5.0) -> None:
    """Ask a `lab up` holder to tear its lab down itself; the record is used if it does not."""
    if state.kind != "up":
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(state.owner_pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(state.owner_pid):
        time.sleep(0.05)


@dataclass(frozen=True)
class LabStatus:
    """One recorded lab as it is now: its record plus what is actually still there."""

    state: LabState
    owner_alive: bool
    namespaces_present: dict[str, bool]
    processes_alive: dict[str, bool]

    @property
    def healthy(self) -> bool:
        return (self.state.ready and self.owner_alive and all(self.namespaces_present.values())
                and all(self.processes_alive.values()))

    def to_json(self) -> dict[str, object]:
        return {**asdict(self.state), "owner_alive": self.owner_alive,
                "namespaces_present": self.namespaces_present,
                "processes_alive": self.processes_alive, "healthy": self.healthy}


def lab_status() -> list[LabStatus]:
    """Every recorded lab, checked against the namespaces and processes that really exist."""
    result = []
    for _path, state in recorded_labs():
        names = set(state.namespaces.values())
        result.append(LabStatus(
            state, state.owner_alive,
            {role: (_netns.NETNS_DIR / name).exists() for role, name in state.namespaces.items()},
            {what: _in_namespace(pid, names) for what, pid in state.pids.items()}))
    return result


def start_held_lab(timeout: float = 60.0, chain: ChainMode = ChainMode.LEAF) -> LabState:
    """Build a lab that outlives this process (`trustwall lab up`): a detached holder process
    owns it until `trustwall lab down` sends it SIGTERM. ``chain``: what its inspection proxy
    presents. It comes with the playground (:meth:`Lab.open_playground`)."""
    _netns.require_root()
    STATE_DIR.mkdir(parents=True, exist_ok=True, mode=0o755)
    log = STATE_DIR / f"holder-{os.getpid()}.log"
    with open(log, "wb") as out:
        holder = subprocess.Popen([sys.executable, "-m", "trustwall.lab.topology", "hold",
                                   str(log), chain.value],
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for _path, state in recorded_labs():
                if state.owner_pid == holder.pid and state.ready:
                    return state
            if holder.poll() is not None:
                lines = log.read_text(errors="replace").strip().splitlines()
                raise TrustwallError("the lab did not come up"
                                     + (f": {lines[-1]}" if lines else ""))
            time.sleep(0.05)
        holder.terminate()
        raise TrustwallError(f"the lab did not come up within {timeout:.0f}s")
    finally:
        if holder.poll() is not None:
            log.unlink(missing_ok=True)


def hold(log: Path | None = None, chain: ChainMode = ChainMode.LEAF) -> None:
    """Build a lab and keep it until SIGTERM/SIGINT (what `trustwall lab up` runs detached).

    ``log`` (the holder's own output) is removed once the lab is up: nothing went wrong.
    """
    stop = False

    def _stop(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with Lab(kind="up", chain=chain, playground=True):
        if log is not None:
            log.unlink(missing_ok=True)
        while not stop:
            time.sleep(0.2)


if __name__ == "__main__":
    if sys.argv[1:2] == ["hold"]:
        hold(Path(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None,
             ChainMode(sys.argv[3]) if len(sys.argv) > 3 else ChainMode.LEAF)
