"""``trustwall why URL``: the outbound ladder, DNS -> route -> TCP -> proxy -> TLS -> trust ->
HTTP, for one client as it would run on this host with this environment.

When the client uses a proxy, DNS, route and TCP are about the proxy (it resolves and reaches
the destination itself); the proxy rung is its answer to CONNECT. TLS and trust are judged on
the chain the client would see, with :mod:`trustwall.tls` (the probe and its verdicts).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping

from trustwall.clients import CLIENTS, ProxyChoice
from trustwall.clients import client as client_module
from trustwall.doctor.firewall import describe, trace_live
from trustwall.doctor.ladder import Climb, Ladder, Rung
from trustwall.doctor.net import (
    Connect,
    DnsAnswer,
    HostsEntry,
    Route,
    ask_dns,
    hosts_entries,
    nameservers,
    route_get,
    tcp_connect,
)
from trustwall.tls.clients import Environment
from trustwall.tls.probe import Handshake, Target, parse_proxy, parse_target, probe

RUNGS = ("dns", "route", "tcp", "proxy", "tls", "trust", "http")


def client_proxy(client: str, target: Target, environ: Mapping[str, str]) -> ProxyChoice:
    """Which proxy ``client`` uses for ``target`` given ``environ`` (the client's own rule)."""
    return client_module(client).proxy(target, environ)


def why(url: str, *, client: str = "curl", proxy_url: str | None = None,
        environ: Mapping[str, str] | None = None, timeout: float = 5.0,
        root: str = "/") -> Ladder:
    """Climb the outbound ladder for ``url`` as ``client`` would, and return every rung."""
    client_module(client)  # an unknown client is refused before anything runs
    target = parse_target(url)
    env = os.environ if environ is None else environ
    choice = ProxyChoice(parse_proxy(proxy_url), "--proxy") if proxy_url else \
        client_proxy(client, target, env)
    return _Outbound(target, client, choice, env, timeout, root).climb()


class _Outbound:
    def __init__(self, target: Target, client: str, choice: ProxyChoice,
                 env: Mapping[str, str], timeout: float, root: str) -> None:
        self.target = target
        self.client = client
        self.choice = choice
        self.proxy = choice.proxy
        self.env = env
        self.timeout = timeout
        self.root = root
        self.ladder = Climb(target.url, RUNGS)
        self.hop = (self.proxy.host, self.proxy.port) if self.proxy else \
            (target.host, target.port)
        self.role = f"the proxy {self.proxy.display}" if self.proxy else target.host
        self.overridden: tuple[HostsEntry, DnsAnswer] | None = None
        # What earlier rungs found, for the later ones.
        self.addresses: list[str] = []
        self.routes: list[Route] = []
        self.output_note = ""  # what this host's own OUTPUT chain does to the connection
        self.handshake: Handshake | None = None
        self.environment: Environment | None = None

    def climb(self) -> Ladder:
        steps = (self._dns, self._route, self._tcp, self._proxy_and_tls, self._trust,
                 self._http)
        for step in steps:
            if self.ladder.stopped:
                break
            step()
        return self.ladder.finish()

    # -- dns ----------------------------------------------------------------------------
    def _dns(self) -> None:
        host, port = self.hop
        checked = f"getaddrinfo({host}) for {self.role}, /etc/hosts"
        if self.proxy is not None:
            checked += f" (the proxy resolves {self.target.host} itself)"
        if Target(host, port).is_ip:
            self.addresses = [host]
            self.ladder.add(Rung("dns", "ok", checked, f"{host} is an address: no lookup"))
            return
        entries = hosts_entries(host)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            servers = nameservers()
            said = "no nameserver in /etc/resolv.conf" if not servers else \
                _dns_said(ask_dns(host, servers[0], timeout=min(1.0, self.timeout)))
            self.ladder.add(Rung(
                "dns", "broken", checked,
                f"{host} does not resolve: {exc.strerror}; not in /etc/hosts; {said}",
                f"getent ahosts {host}; cat /etc/resolv.conf  # a name only the proxy "
                f"can resolve needs https_proxy"))
            return
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        self.addresses = addresses
        shown = ", ".join(f"{a} ({'IPv6' if ':' in a else 'IPv4'})" for a in addresses)
        if not entries:
            self.ladder.add(Rung("dns", "ok", checked, f"{host} -> {shown} (resolver; not in "
                                 "/etc/hosts)"))
            return
        first = entries[0]
        found = f"{host} -> {shown} from /etc/hosts line {first.line}"
        servers = nameservers()
        answer = ask_dns(host, servers[0], timeout=min(1.0, self.timeout)) if servers else None
        if answer is not None and answer.addresses and \
                not _same(answer.addresses) & _same(e.address for e in entries):
            self.overridden = (first, answer)
            self.ladder.add(Rung(
                "dns", "warning", checked,
                f"{found}, which overrides DNS: nameserver {answer.server} says "
                f"{', '.join(answer.addresses)}",
                f"sed -n '{first.line}p' /etc/hosts  # remove the entry if it is stale"))
            return
        self.ladder.add(Rung("dns", "ok", checked,
                             found + ("" if answer is None else f"; DNS: {_dns_said(answer)}")))

    # -- route --------------------------------------------------------------------------
    def _route(self) -> None:
        addresses = self.addresses
        checked = f"ip route get {addresses[0]}" + (" (and the next addresses)"
                                                    if len(addresses) > 1 else "")
        routes = [route_get(a) for a in addresses]
        usable = [r for r in routes if r.error is None and r.kind in ("unicast", "local")]
        self.routes = usable
        if not usable:
            r = routes[0]
            self.ladder.add(Rung("route", "broken", checked,
                                 f"no route to {r.destination}: {r.error or r.kind}",
                                 "ip route; ip -6 route"))
            return
        found = _route_words(usable[0])
        if usable[0] is not routes[0]:
            bad = routes[0]
            self.ladder.add(Rung("route", "warning", checked,
                                 f"no route to {bad.destination} ({bad.error or bad.kind}); "
                                 f"clients fall back to {found}", "ip -6 route"))
            return
        self.ladder.add(Rung("route", "ok", checked, found))

    # -- tcp ----------------------------------------------------------------------------
    def _tcp(self) -> None:
        routes = self.routes
        port = self.hop[1]
        tried = ", ".join(r.destination for r in routes)
        checked = f"TCP connect to {self.role} port {port} ({tried})"
        attempts: list[Connect] = []
        for route in routes:
            result = tcp_connect(route.destination, port, timeout=self.timeout)
            attempts.append(result)
            if result.ok:
                self.ladder.add(Rung("tcp", "ok", checked,
                                     f"connected to {result.address}:{port} from "
                                     f"{result.local_address} in {result.elapsed_ms:g} ms"))
                return
        failed = attempts[-1]
        route = routes[len(attempts) - 1]
        local = self._own_output(failed, route)
        found = _connect_words(failed)
        if local is not None:
            found_local, next_local = local
            self.ladder.add(Rung("tcp", "broken", checked, f"{found}; {found_local}",
                                 next_local))
            return
        on_the_way = failed.offender is not None and failed.offender != failed.address
        if on_the_way and self.proxy is None:
            self.ladder.add(Rung("tcp", "warning", checked, found + self.output_note))
            self.ladder.add(Rung(
                "proxy", "broken", f"the proxy {self.client} would use",
                f"{self.choice.reason}, and {failed.offender} on the way forbids direct "
                f"connections to port {port} (ICMP {failed.icmp}): this network lets only its "
                "proxy out",
                f"export https_proxy=http://PROXY:PORT; trustwall why {self.target.url}"
                + ("  # node: use a proxy agent, it ignores https_proxy"
                   if self.client == "node" else "")))
            return
        if self.proxy is not None:
            next_command = "env | grep -i _proxy  # the proxy does not answer"
        elif failed.errno_name == "ETIMEDOUT":
            next_command = (f"on {failed.address}: trustwall why-in {port}  # a silent DROP; "
                            "if only a proxy may go out here: export https_proxy=...")
        else:
            src = route.prefsrc or ""
            where = "here" if route.kind == "local" else f"on {failed.address}"
            next_command = f"{where}: trustwall why-in {port}" + \
                (f" --from {src}" if src else "")
        found += self.output_note
        self.ladder.add(Rung("tcp", "broken", checked, found, next_command))
        if self.overridden is not None:
            entry, answer = self.overridden
            self.ladder.blame(
                "dns",
                f"/etc/hosts line {entry.line} sends {self.hop[0]} to {entry.address}, which "
                f"does not answer ({failed.errno_name}), while DNS ({answer.server}) says "
                f"{', '.join(answer.addresses)}",
                f"sed -i '{entry.line}d' /etc/hosts  # the stale entry; then: "
                f"trustwall why {self.target.url}")

    def _own_output(self, failed: Connect, route: Route) -> tuple[str, str] | None:
        """Is this host's own OUTPUT chain what stopped the connection? (found, next)"""
        from trustwall.firewall.semantics.trace import Packet

        src = route.prefsrc or ("::1" if ":" in failed.address else "127.0.0.1")
        live = trace_live(Packet(src=src, dst=failed.address, proto="tcp",
                                 dport=failed.port, out_iface=route.dev, local=True))
        if live.result is None:
            self.output_note = f"; this host's OUTPUT chain not checked: {live.skipped}"
            return None
        result = live.result
        ref = result.decided_by
        if not live.blocks or ref is None or ref.hook not in ("OUTPUT", "POSTROUTING"):
            self.output_note = "; this host's OUTPUT chain lets it out " \
                f"({describe(ref, result.verdict)})"
            return None
        where = describe(ref, result.verdict)
        table = "" if ref.table == "filter" else f" -t {ref.table}"
        next_command = (f"trustwall fw delete --plan{table} {ref.chain} {ref.rule}"
                        if ref.rule is not None else
                        f"trustwall fw allow --chain OUTPUT --proto tcp --dst {failed.address} "
                        f"--dport {failed.port} --plan")
        return (f"this host's own firewall stops it: {where}"
                + ("" if result.certain else " (uncertain: the trace met unknowns)"),
                next_command)

    # -- proxy and tls ------------------------------------------------------------------
    def _proxy_and_tls(self) -> None:
        handshake = probe(self.target, proxy=self.proxy, timeout=self.timeout)
        self.handshake = handshake
        failure = handshake.failure
        from trustwall.tls.explain import finding

        if self.proxy is None:
            self.ladder.add(Rung("proxy", "ok", f"the proxy {self.client} would use",
                                 f"{self.choice.reason}: direct connection"))
        elif failure is not None and failure.stage == "proxy":
            f = finding(failure.kind, host=self.target.host, port=self.target.port,
                        url=self.target.url)
            detail = f" [{failure.detail}]" if failure.detail else ""
            self.ladder.add(Rung("proxy", "broken", f"CONNECT {self.target.host}:"
                                 f"{self.target.port} through {self.proxy.display}",
                                 f"{failure.message}{detail}",
                                 f.next_command.replace("$https_proxy", self.proxy.display)))
            return
        else:
            self.ladder.add(Rung("proxy", "ok", f"CONNECT {self.target.host}:"
                                 f"{self.target.port} through {self.proxy.display}",
                                 f"{self.choice.reason}: the tunnel is open (2xx)"))
        checked = f"TLS handshake with SNI {handshake.servername or '(none: an address)'}"
        if failure is not None and not handshake.presented_chain:
            f = finding(failure.kind, host=self.target.host, port=self.target.port,
                        url=self.target.url)
            detail = f" [{failure.detail}]" if failure.detail and \
                failure.detail not in failure.message else ""
            self.ladder.add(Rung("tls", "broken", checked, f"{failure.message}{detail}",
                                 f.next_command))
            return
        self.ladder.add(Rung("tls", "ok", checked, _tls_words(handshake)))

    # -- trust --------------------------------------------------------------------------
    def _trust(self) -> None:
        from trustwall.tls.clients import discover
        from trustwall.tls.report import diagnose

        handshake = self.handshake
        assert handshake is not None
        environment = discover(self.env, self.root, java=self.client == "java")
        report = diagnose(handshake, environment)
        self.environment = environment
        verdict = report.clients.get(self.client)
        checked = f"the presented chain ({len(report.chain)} certificate(s)) against the " \
            f"store {self.client} reads"
        if verdict is None:
            self.ladder.add(Rung("trust", "skipped", checked,
                                 f"no trust store for {self.client} found on this host"))
            return
        store = f"{self.client} reads {verdict.store} ({verdict.because})"
        issuer = report.chain[0].issuer if report.chain else "?"
        if verdict.trusted:
            self.ladder.add(Rung("trust", "ok", checked,
                                 f"{store}: trusted (leaf issued by {issuer})"))
            return
        from trustwall.tls.explain import entry_for

        words = entry_for(verdict.error).summary if verdict.error else "not trusted"
        found = f"{store}: {words} [{verdict.error}]; leaf issued by {issuer}"
        if report.interception.detected:
            product = f" by {report.interception.product}" if report.interception.product \
                else ""
            self.ladder.add(Rung("trust", "broken", checked,
                                 f"TLS inspection{product}: {found}",
                                 f"sudo trustwall fix {self.target.url}"))
            return
        self.ladder.add(Rung("trust", "broken", checked, found,
                             report.diagnosis.next_command))

    # -- http ---------------------------------------------------------------------------
    def _http(self) -> None:
        import http.client
        import ssl

        environment = self.environment
        assert environment is not None
        anchors = environment.stores[environment.clients[self.client].store]
        checked = f"HEAD / over a connection verified with {anchors.name}"
        try:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            for path in anchors.files:
                if os.path.isfile(path):
                    ctx.load_verify_locations(cafile=path)
            for path in anchors.dirs:
                if os.path.isdir(path):
                    ctx.load_verify_locations(capath=path)
            if self.proxy is not None:
                conn = http.client.HTTPSConnection(self.proxy.host, self.proxy.port,
                                                   context=ctx, timeout=self.timeout)
                conn.set_tunnel(self.target.host, self.target.port)
            else:
                conn = http.client.HTTPSConnection(self.target.host, self.target.port,
                                                   context=ctx, timeout=self.timeout)
            try:
                conn.request("HEAD", "/", headers={"User-Agent": "trustwall-why"})
                response = conn.getresponse()
                status, reason = response.status, response.reason
            finally:
                conn.close()
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            self.ladder.add(Rung("http", "warning", checked,
                                 f"Python's own HEAD request failed: {exc}"))
            return
        status_word = "ok" if status < 400 else ("warning" if status < 500 else "broken")
        self.ladder.add(Rung("http", status_word, checked, f"HTTP {status} {reason}",
                             None if status < 400 else
                             f"curl -sSI {self.target.url}  # the server answers {status}"))


def _dns_said(answer: DnsAnswer) -> str:
    if answer.addresses:
        return f"nameserver {answer.server} says {', '.join(answer.addresses)}"
    if answer.nxdomain:
        return f"nameserver {answer.server} says NXDOMAIN (no such name)"
    if answer.rcode is None:
        return f"nameserver {answer.server} does not answer ({answer.error})"
    return f"nameserver {answer.server} has no address for it (rcode {answer.rcode})"


def _same(addresses: Iterable[str]) -> set[object]:
    """Addresses compared as addresses, not as text (``::ffff:1.2.3.4`` has two spellings)."""
    out: set[object] = set()
    for text in addresses:
        try:
            out.add(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            out.add(text)
    return out


def _route_words(route: Route) -> str:
    if route.kind == "local":
        return f"{route.destination} is this host's own address (dev {route.dev})"
    via = f"via {route.gateway} " if route.gateway else "directly "
    return f"{route.destination}: {via}dev {route.dev} src {route.prefsrc}"


def _connect_words(c: Connect) -> str:
    at = f"{c.address}:{c.port}"
    if c.errno_name == "ETIMEDOUT":
        return (f"{at}: no answer within the timeout ({c.message}): packets are dropped "
                "silently (a DROP rule at the destination or on the way) or the host is down")
    if c.icmp is not None:
        who = "the destination itself (its own firewall)" if c.offender == c.address else \
            f"{c.offender}, a router or firewall on the way"
        return (f"{at}: {c.message} ({c.errno_name}): ICMP {c.icmp} from {who}, what "
                f"iptables REJECT --reject-with icmp-{c.icmp} sends")
    if c.errno_name == "ECONNREFUSED":
        return (f"{at}: {c.message}: a TCP reset from {c.address}: nothing listens on port "
                f"{c.port} there (or a REJECT --reject-with tcp-reset)")
    return f"{at}: {c.message} ({c.errno_name})"


def _tls_words(h: Handshake) -> str:
    alpn = f", ALPN {h.alpn}" if h.alpn else ""
    return (f"{h.protocol}, {h.cipher}{alpn}; {len(h.presented_chain)} certificate(s) "
            f"presented by {h.address}")


__all__ = ["CLIENTS", "RUNGS", "ProxyChoice", "client_proxy", "why"]
