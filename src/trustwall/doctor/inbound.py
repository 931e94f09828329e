"""``trustwall why-in PORT``: the inbound ladder on this host, listen -> bind -> host name ->
firewall (INPUT) -> reverse path (OUTPUT for the replies, rp_filter).

Sockets come from /proc/net/{tcp,tcp6,udp,udp6} of the current network namespace and their
processes from /proc/*/fd (what ``ss -lnp`` reads). The firewall is traced with
:mod:`trustwall.firewall.semantics.trace`; a missing ACCEPT is planned with
:func:`trustwall.firewall.analysis.plan.plan_insert`, exactly as ``trustwall fw allow --plan`` does.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustwall.doctor.firewall import describe, trace_live
from trustwall.doctor.ladder import Climb, Ladder, Rung
from trustwall.doctor.net import hosts_entries, is_loopback, route_get
from trustwall.errors import BadInput

RUNGS = ("listen", "bind", "hostname", "firewall", "reverse")
#: A documentation address (RFC 5737): "any remote host" when --from is not given.
ANY_REMOTE = "192.0.2.10"
_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"


@dataclass(frozen=True)
class Listener:
    """A socket bound to the port, and the process holding it (when visible)."""

    proto: str
    address: str
    port: int
    inode: int
    pid: int | None = None
    command: str | None = None  # argv joined

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.address)

    @property
    def wildcard(self) -> bool:
        return self.address in ("0.0.0.0", "::")


def _hex_address(text: str) -> str:
    """/proc/net/tcp writes addresses as host-order 32-bit words in hex."""
    raw = bytes.fromhex(text)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def parse_proc_net(text: str, proto: str, state: str) -> list[Listener]:
    """The sockets of one /proc/net/{tcp,udp}{,6} table in ``state`` (hex, e.g. 0A)."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != state:
            continue
        addr, _, port = fields[1].partition(":")
        found.append(Listener(proto, _hex_address(addr), int(port, 16), int(fields[9])))
    return found


def _owners(inodes: set[int]) -> dict[int, tuple[int, str]]:
    """inode -> (pid, command line), scanning /proc/*/fd (needs root for other users)."""
    wanted = {f"socket:[{i}]": i for i in inodes}
    owners: dict[int, tuple[int, str]] = {}
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            fds = list((proc_dir / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link in wanted and wanted[link] not in owners:
                try:
                    argv = (proc_dir / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    argv = []
                # One line: a `python -c SCRIPT` argv holds newlines.
                command = " ".join(" ".join(a.decode(errors="replace").split())
                                   for a in argv if a)
                owners[wanted[link]] = (int(proc_dir.name), command)
    return owners


def listeners(port: int, proto: str = "tcp") -> list[Listener]:
    """Sockets listening on ``port`` in this network namespace, with their processes."""
    state = _TCP_LISTEN if proto == "tcp" else _UDP_UNCONNECTED
    found: list[Listener] = []
    for table in (proto, f"{proto}6"):
        try:
            text = Path(f"/proc/net/{table}").read_text()
        except OSError:
            continue
        found += [s for s in parse_proc_net(text, proto, state) if s.port == port]
    owners = _owners({s.inode for s in found})
    return [Listener(s.proto, s.address, s.port, s.inode, *owners.get(s.inode, (None, None)))
            for s in found]


def _is_jvm(command: str | None) -> bool:
    if not command:
        return False
    argv0 = os.path.basename(command.split(" ", 1)[0])
    return argv0.startswith("java") or "jmxremote" in command or "java.rmi." in command


def why_in(port: int, *, proto: str = "tcp", source: str | None = None) -> Ladder:
    """Climb the inbound ladder for ``proto``/``port`` from ``source`` (default: anywhere)."""
    if not 0 < port < 65536:
        raise BadInput(f"port must be 1-65535, not {port}")
    if proto not in ("tcp", "udp"):
        raise BadInput(f"--proto must be tcp or udp, not {proto!r}")
    if source is not None:
        try:
            ipaddress.ip_address(source)
        except ValueError:
            raise BadInput(f"--from {source!r} is not an IP address") from None
    return _Inbound(port, proto, source).climb()


class _Inbound:
    def __init__(self, port: int, proto: str, source: str | None) -> None:
        self.port = port
        self.proto = proto
        self.source = source
        self.remote = source or ANY_REMOTE
        self.ladder = Climb(f"{proto}/{port}", RUNGS)
        self.found: list[Listener] = []

    def climb(self) -> Ladder:
        for step in (self._listen, self._bind, self._hostname, self._firewall, self._reverse):
            if self.ladder.stopped:
                break
            step()
        return self.ladder.finish()

    def _listen(self) -> None:
        self.found = listeners(self.port, self.proto)
        checked = f"/proc/net/{self.proto}{{,6}} and /proc/*/fd for {self.proto}/{self.port}"
        if not self.found:
            self.ladder.add(Rung("listen", "broken", checked,
                                 f"nothing listens on {self.proto}/{self.port} here",
                                 f"ss -{self.proto[0]}lnp  # start the service, or check its "
                                 "configured port"))
            return
        words = "; ".join(_listener_words(s) for s in self.found)
        self.ladder.add(Rung("listen", "ok", checked, words))

    def _bind(self) -> None:
        checked = "the addresses the sockets are bound to"
        if all(s.loopback_only for s in self.found):
            addrs = ", ".join(sorted({s.address for s in self.found}))
            self.ladder.add(Rung(
                "bind", "broken", checked,
                f"bound to {addrs} only: reachable from this host, never from another",
                "configure the service to listen on 0.0.0.0 (or this host's routable "
                "address) and restart it"))
            return
        if any(s.wildcard for s in self.found):
            self.ladder.add(Rung("bind", "ok", checked, "bound to every address"))
            return
        addrs = ", ".join(sorted({s.address for s in self.found if not s.loopback_only}))
        self.ladder.add(Rung("bind", "ok", checked,
                             f"bound to {addrs} only: clients must use that address"))

    def _routable(self) -> str | None:
        specific = [s.address for s in self.found if not s.wildcard and not s.loopback_only]
        if specific:
            return specific[0]
        route = route_get(self.remote)
        if route.prefsrc:
            return route.prefsrc
        # No route back to the remote: any global address of this host, of its family.
        from trustwall.firewall.semantics.routing import read_live

        family = 6 if ":" in self.remote else 4
        for addrs in read_live().by_interface.values():
            for addr in addrs:
                if addr.version == family and not addr.is_loopback and not addr.is_link_local:
                    return str(addr)
        return None

    def _hostname(self) -> None:
        name = socket.gethostname()
        checked = f"what the host name {name} resolves to (RMI/JMX put it in their stubs)"
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            addresses = list(dict.fromkeys(i[4][0] for i in infos))
        except socket.gaierror as exc:
            self.ladder.add(Rung("hostname", "warning", checked,
                                 f"{name} does not resolve ({exc.strerror}): a JVM fails to "
                                 "start its JMX agent", f"getent hosts {name}"))
            return
        entry = next(iter(hosts_entries(name)), None)
        source = f" (/etc/hosts line {entry.line})" if entry else ""
        resolved = f"{name} -> {', '.join(addresses)}{source}"
        jvms = [s for s in self.found if _is_jvm(s.command)]
        if not any(is_loopback(a) for a in addresses[:1]):
            self.ladder.add(Rung("hostname", "ok", checked, resolved))
            return
        if not jvms:
            self.ladder.add(Rung("hostname", "ok", checked,
                                 f"{resolved}: a loopback address, harmless for a service "
                                 "that is not a JVM (RMI/JMX would advertise it)"))
            return
        told = re.search(r"-Djava\.rmi\.server\.hostname=(\S+)", jvms[0].command or "")
        if told and not is_loopback(told.group(1)):
            self.ladder.add(Rung("hostname", "ok", checked,
                                 f"{resolved}, but the JVM (pid {jvms[0].pid}) was started "
                                 f"with -Djava.rmi.server.hostname={told.group(1)}"))
            return
        routable = self._routable() or "ROUTABLE_IP"
        self.ladder.add(Rung(
            "hostname", "broken", checked,
            f"{resolved}: the JVM (pid {jvms[0].pid}) puts {addresses[0]} into its RMI stubs, "
            f"so a remote JConsole connects to port {self.port}, then is sent to "
            f"{addresses[0]} - its own loopback - and fails",
            f"restart the JVM with -Djava.rmi.server.hostname={routable}  # it reads this "
            f"only at start-up (or map {name} to {routable} in /etc/hosts, then restart)"))

    def _firewall(self) -> None:
        from trustwall.firewall.semantics.trace import Packet

        route = route_get(self.remote)
        dst = self._routable()
        checked = f"a NEW {self.proto}/{self.port} packet from {self.remote}" + \
            ("" if self.source else " (any remote address)") + f" to {dst} through INPUT"
        if dst is None:
            self.ladder.add(Rung("firewall", "skipped", checked,
                                 f"no route back to {self.remote}: no address to test"))
            return
        self.packet = Packet(src=self.remote, dst=dst, proto=self.proto, dport=self.port,
                             in_iface=route.dev, state="NEW")
        self.dst, self.dev = dst, route.dev
        live = trace_live(self.packet)
        if live.result is None:
            self.ladder.add(Rung("firewall", "skipped", checked, f"not checked: {live.skipped}",
                                 f"sudo trustwall why-in {self.port}"))
            return
        result = live.result
        where = describe(result.decided_by, result.verdict)
        if not result.certain:
            self.ladder.add(Rung("firewall", "warning", checked,
                                 f"depends on what the trace cannot know: outcomes "
                                 f"{sorted({o.verdict for o in result.outcomes})}",
                                 f"trustwall fw trace --live --src {self.remote} --dst {dst} "
                                 f"--proto {self.proto} --dport {self.port}"))
            return
        verdict = result.verdict
        if verdict == "ACCEPT":
            # the whole picture: every base chain at the hook (firewalld's nft table too) let
            # it through
            self.ladder.add(Rung("firewall", "ok", checked, f"accepted by {where}"))
            return
        assert live.ruleset is not None
        found, next_command = self._owner_fix(live.ruleset)
        self.ladder.add(Rung("firewall", "broken", checked,
                             f"{verdict} by {where}; {found}", next_command))

    def _owner_fix(self, ruleset: Any) -> tuple[str, str]:
        """What fixes it, through whoever owns this firewall: (found, next command).

        On an iptables host (or one without a manager) the next step is trustwall's own
        journaled, undoable change, not the raw iptables command the plan shows (which would
        be neither persisted nor undoable). On a ufw or firewalld host it is the manager's own
        command (which persists it, and which the manager's listing shows); Docker's
        published ports and read-only owners get the owner's refusal and its way.
        """
        from trustwall.errors import TrustwallError
        from trustwall.firewall.owners import dispatch
        from trustwall.firewall.owners.base import Request
        from trustwall.firewall.owners.detect import detect

        apply = f"sudo trustwall fw allow -p {self.proto} --dport {self.port}" + \
            (f" --src {self.source}" if self.source else "") + " --apply"
        planner = f"trustwall fw allow --proto {self.proto} --dport {self.port}" + \
            (f" --src {self.source}" if self.source else "") + " --live --plan"
        # an IP family only with an address, as `fw allow` does (firewalld: --add-port for
        # both families rather than an ipv4-only rich rule)
        request = Request("allow", proto=self.proto, dport=str(self.port), src=self.source,
                          family=ruleset.family if self.source else None)
        try:
            ownership = detect(rulesets=[ruleset])
            plan = dispatch.plan(request, ruleset=ruleset, ownership=ownership)
        except TrustwallError as exc:
            return f"`{planner}` cannot plan it: {exc}", planner
        owner = plan.owner
        if plan.refused is not None:
            return f"the firewall here belongs to {owner}: {plan.refused}", plan.next or planner
        shown = [c.text for c in plan.commands]
        first = shown[0] if shown else "; ".join(plan.notes) or "nothing to do"
        if owner in ("firewalld", "ufw"):
            return (f"the firewall belongs to {owner}; its own command: {' && '.join(shown)} "
                    f"(or `{apply}`: the same through {owner}, journaled and undoable)",
                    "sudo " + " && sudo ".join(shown) if shown else planner)
        mine = "" if owner in ("iptables", "none") else f"the firewall belongs to {owner}; "
        return (f"{mine}`{planner}` plans: {first}", apply if shown else planner)

    def _reverse(self) -> None:
        from trustwall.firewall.semantics.trace import Packet

        checked = (f"the replies ({self.proto} from port {self.port} to {self.remote}, "
                   "ESTABLISHED) through OUTPUT, and rp_filter")
        rp = _rp_filter(self.dev)
        reply = Packet(src=self.dst, dst=self.remote, proto=self.proto, sport=self.port,
                       out_iface=self.dev, state="ESTABLISHED", local=True)
        live = trace_live(reply)
        if live.result is not None and live.blocks:
            self.ladder.add(Rung(
                "reverse", "broken", checked,
                f"the replies are stopped ({live.result.verdict}) by "
                f"{describe(live.result.decided_by, live.result.verdict)}; {rp}",
                f"trustwall fw allow --chain OUTPUT --proto {self.proto} --sport {self.port} "
                "--state ESTABLISHED --live --plan"))
            return
        out = f"not checked ({live.skipped})" if live.result is None else \
            f"let out by {describe(live.result.decided_by, live.result.verdict)}"
        self.ladder.add(Rung("reverse", "ok", checked, f"replies {out}; {rp}"))


def _rp_filter(dev: str | None) -> str:
    """rp_filter as the kernel applies it: the maximum of ``all`` and the interface's value."""
    values = {}
    for name in ("all", dev):
        if name is None:
            continue
        try:
            values[name] = int(Path(f"/proc/sys/net/ipv4/conf/{name}/rp_filter").read_text())
        except (OSError, ValueError):
            continue
    if not values:
        return "rp_filter unknown"
    value = max(values.values())
    mode = {0: "off", 1: "strict", 2: "loose"}.get(value, str(value))
    note = f" (replies leave by {dev}; with strict mode, requests must arrive there too)" \
        if value == 1 and dev else ""
    return f"rp_filter {mode}{note}"


def _listener_words(s: Listener) -> str:
    command = s.command or ""
    shown = command if len(command) <= 80 else command[:79] + "…"
    who = f" by pid {s.pid} ({shown})" if s.pid and s.command else \
        " (process not visible: run as root)"
    return f"{s.proto} {s.address}:{s.port}{who}"


__all__ = ["ANY_REMOTE", "RUNGS", "Listener", "listeners", "parse_proc_net", "why_in"]
