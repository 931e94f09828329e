"""Connect to an endpoint (directly or through an HTTP CONNECT proxy) and capture the handshake.

The chain is captured **as presented**, even when nobody trusts it: pyOpenSSL runs the
handshake with verification switched off *only to see the certificates*; trust is decided
afterwards by :mod:`trustwall.tls.verify`, store by store. A probe never reports the
verification-off handshake as success.

The engine is asyncio over a memory-BIO pyOpenSSL connection, so the same code serves one probe
(:func:`probe`) and a scan of thousands of endpoints (:mod:`trustwall.tls.scan`).
Connection failures are classified precisely (``Failure.kind``), with the codes the
knowledge base in :mod:`trustwall.tls.explain` explains.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import ipaddress
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from trustwall.errors import BadInput

DEFAULT_PORTS = {"https": 443, "wss": 443, "ldaps": 636, "imaps": 993, "smtps": 465,
                 "pop3s": 995, "ftps": 990}
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    """Where to connect: ``host`` is a DNS name or an IP literal (no brackets)."""

    host: str
    port: int
    scheme: str = "https"

    @property
    def is_ip(self) -> bool:
        return _is_ip(self.host)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS.get(self.scheme)
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy that tunnels TLS with CONNECT (optionally with Basic credentials)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def display(self) -> str:
        """The proxy URL without its password (safe to print and to store in JSON)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}:***@" if self.username else ""
        return f"http://{user}{host}:{self.port}"


@dataclass(frozen=True)
class Failure:
    """Why no handshake completed. ``kind`` is a code that :mod:`explain` knows."""

    kind: str  # dns_failure, connection_refused, timeout, no_route, network_unreachable,
    #            blocked_locally, connection_reset, proxy_refused, proxy_auth_required,
    #            proxy_upstream_failed, proxy_unreachable, handshake_alert, handshake_eof,
    #            not_tls
    stage: str  # dns | connect | proxy | tls
    message: str
    detail: str | None = None  # errno name, the proxy's status line, the alert text


@dataclass(frozen=True)
class Handshake:
    """What one connection attempt saw."""

    target: Target
    servername: str | None
    proxy: str | None
    address: str | None
    presented_chain: tuple[bytes, ...]  # DER, leaf first, exactly as sent
    protocol: str | None
    cipher: str | None
    alpn: str | None
    failure: Failure | None
    elapsed_ms: float

    @property
    def completed(self) -> bool:
        return self.failure is None

    @property
    def verify_name(self) -> str:
        """The name the certificate must match: --servername if given, else the host."""
        return self.servername or self.target.host


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _valid_port(value: str | int | None, text: str) -> int:
    try:
        port = int(value) if value is not None else 0
    except ValueError as exc:
        raise BadInput(f"invalid port in {text!r}") from exc
    if not 0 < port < 65536:
        raise BadInput(f"port must be 1-65535 in {text!r}")
    return port


def _valid_host(host: str, text: str) -> str:
    if not host:
        raise BadInput(f"no host in {text!r}")
    if _is_ip(host):
        return host
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise BadInput(f"invalid host name in {text!r}") from exc
    labels = ascii_host.rstrip(".").split(".")
    if any(not label or len(label) > 63 or label.startswith("-") or label.endswith("-")
           or not all(c.isalnum() or c in "-_" for c in label) for label in labels):
        raise BadInput(f"invalid host name {host!r}")
    return ascii_host.rstrip(".").lower()


def parse_target(text: str) -> Target:
    """``https://h[:p]/path``, ``h:p``, ``h``, ``[v6]:p`` -> Target; bad input raises BadInput."""
    text = text.strip()
    if not text:
        raise BadInput("empty target")
    if "://" in text:
        try:
            parts = urlsplit(text)
        except ValueError as exc:  # "Invalid IPv6 URL": an unclosed [ in the host
            raise BadInput(f"malformed URL {text!r}: {exc}",
                           hint="an IPv6 address is written https://[ADDR]:PORT/") from exc
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise BadInput(f"unsupported scheme {scheme!r} in {text!r}",
                           hint="use https://HOST[:PORT] or HOST[:PORT]")
        try:
            port_value = parts.port
        except ValueError as exc:
            raise BadInput(f"invalid port in {text!r}") from exc
        host = parts.hostname or ""
        port = DEFAULT_PORTS[scheme] if port_value is None and ":" not in parts.netloc.rsplit(
            "]", 1)[-1] else _valid_port(port_value, text)
        return Target(_valid_host(host, text), port, scheme)
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not _is_ip(host) or (rest and not rest.startswith(":")):
            raise BadInput(f"malformed address {text!r}")
        return Target(host, _valid_port(rest[1:], text) if rest else 443)
    if text.count(":") > 1:  # a bare IPv6 address
        if not _is_ip(text):
            raise BadInput(f"malformed address {text!r}")
        return Target(text, 443)
    host, sep, port = text.partition(":")
    if "/" in host or "@" in host:
        raise BadInput(f"malformed target {text!r}", hint="use https://HOST[:PORT]")
    return Target(_valid_host(host, text), _valid_port(port, text) if sep else 443)


def parse_proxy(url: str) -> Proxy:
    """``http://[user:pass@]host:port`` -> Proxy (an https:// proxy URL is refused: the
    CONNECT tunnel is spoken in plain HTTP, which is what curl does for http:// proxies)."""
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise BadInput(f"malformed proxy URL {url!r}: {exc}") from exc
    if parts.scheme.lower() != "http":
        raise BadInput(f"unsupported proxy scheme {parts.scheme!r} in {url!r}",
                       hint="proxies that tunnel TLS are written http://host:port")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise BadInput(f"invalid proxy port in {url!r}") from exc
    host = parts.hostname or ""
    return Proxy(_valid_host(host, url), _valid_port(port, url),
                 unquote(parts.username) if parts.username else None,
                 unquote(parts.password) if parts.password else None)


def _no_proxy_matches(host: str, port: int, no_proxy: str) -> bool:
    """curl's no_proxy rules: ``*``, exact host, domain suffix (``.corp`` or ``corp``),
    optional ``:port``, and IP/CIDR entries."""
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port = None
        if entry.count(":") == 1 and not entry.startswith("["):
            entry, _, p = entry.partition(":")
            entry_port = int(p) if p.isdigit() else None
        entry = entry.strip("[]")
        if entry_port is not None and entry_port != port:
            continue
        if _is_ip(host):
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        domain = entry.lstrip("*").lstrip(".")
        if host == domain or host.endswith("." + domain):
            return True
    return False


def proxy_from_env(target: Target, environ: Mapping[str, str]) -> Proxy | None:
    """The proxy a client would use for ``target`` given ``environ`` (https_proxy first, as
    curl reads the lower-case one first; no_proxy/NO_PROXY exempt hosts)."""
    url = environ.get("https_proxy") or environ.get("HTTPS_PROXY") or \
        environ.get("all_proxy") or environ.get("ALL_PROXY")
    if not url:
        return None
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    if _no_proxy_matches(target.host, target.port, no_proxy):
        return None
    return parse_proxy(url)


_ERRNO_KIND = {
    errno.ECONNREFUSED: "connection_refused",
    errno.ETIMEDOUT: "timeout",
    errno.EHOSTUNREACH: "no_route",
    errno.ENETUNREACH: "network_unreachable",
    errno.ECONNRESET: "connection_reset",
    errno.EPIPE: "connection_reset",
    errno.EPERM: "blocked_locally",
    errno.EACCES: "blocked_locally",
    errno.EADDRNOTAVAIL: "network_unreachable",
}


def _os_failure(exc: OSError, stage: str, what: str) -> Failure:
    if isinstance(exc, socket.gaierror):
        return Failure("dns_failure", "dns", f"cannot resolve {what}: {exc.strerror}",
                       f"EAI {exc.errno}")
    code = exc.errno
    kind = _ERRNO_KIND.get(code or 0, "connection_reset" if isinstance(
        exc, ConnectionError) else "connection_refused")
    name = errno.errorcode.get(code or 0, type(exc).__name__)
    text = os.strerror(code) if code else (str(exc) or name)
    return Failure(kind, stage, f"{what}: {text}", name)


class _ProbeFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


async def _resolve(host: str, port: int, deadline: float) -> list[tuple]:
    loop = asyncio.get_running_loop()
    if _is_ip(host):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return [(family, (host, port))]
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), _remaining(deadline))
    except asyncio.TimeoutError as exc:
        # A resolver that does not answer is a DNS problem, not packets dropped on the way.
        raise _ProbeFailed(Failure("dns_failure", "dns",
                                   f"resolving {host} timed out")) from exc
    except OSError as exc:
        raise _ProbeFailed(_os_failure(exc, "dns", host)) from exc
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


def _remaining(deadline: float) -> float:
    return max(0.001, deadline - time.monotonic())


async def _open(host: str, port: int, deadline: float, stage: str
                ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """Connect to the first address of ``host`` that answers (IPv6 and IPv4 in the order the
    resolver gives); the failure reported is the last address's."""
    last: Failure | None = None
    for family, sockaddr in await _resolve(host, port, deadline):
        what = f"{host}:{port}" if sockaddr[0] == host else f"{host} ({sockaddr[0]}) port {port}"
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, sockaddr),
                                   _remaining(deadline))
            reader, writer = await asyncio.open_connection(sock=sock)
            return reader, writer, sockaddr[0]
        except asyncio.TimeoutError:
            sock.close()
            last = Failure("timeout", stage, f"connecting to {what} timed out", "ETIMEDOUT")
            if time.monotonic() >= deadline:
                break
        except OSError as exc:
            sock.close()
            last = _os_failure(exc, stage, f"connect to {what}")
    assert last is not None
    raise _ProbeFailed(last)


async def _connect_tunnel(proxy: Proxy, target: Target, deadline: float
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    try:
        reader, writer, address = await _open(proxy.host, proxy.port, deadline, "proxy")
    except _ProbeFailed as exc:
        f = exc.failure
        kind = f.kind if f.kind in ("dns_failure", "blocked_locally") else "proxy_unreachable"
        raise _ProbeFailed(Failure(kind, "proxy", f"proxy {proxy.display}: {f.message}",
                                   f.detail)) from None
    authority = f"[{target.host}]:{target.port}" if ":" in target.host else \
        f"{target.host}:{target.port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}",
             "User-Agent: trustwall", "Proxy-Connection: Keep-Alive"]
    if proxy.username is not None:
        token = base64.b64encode(f"{proxy.username}:{proxy.password or ''}".encode()).decode()
        lines.append(f"Proxy-Authorization: Basic {token}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _remaining(deadline))
    except asyncio.TimeoutError as exc:
        writer.close()
        raise _ProbeFailed(Failure("timeout", "proxy",
                                   f"proxy {proxy.display} did not answer CONNECT")) from exc
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
        writer.close()
        raise _ProbeFailed(Failure("proxy_refused", "proxy",
                                   f"proxy {proxy.display} closed the connection on CONNECT",
                                   type(exc).__name__)) from exc
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1").strip()
    fields = status_line.split(" ", 2)
    status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
    if status == 407:
        writer.close()
        raise _ProbeFailed(Failure("proxy_auth_required", "proxy",
                                   f"proxy {proxy.display} wants authentication", status_line))
    if status in (502, 504):  # the proxy tried and could not reach the destination
        writer.close()
        raise _ProbeFailed(Failure("proxy_upstream_failed", "proxy",
                                   f"proxy {proxy.display} could not reach {authority}",
                                   status_line))
    if not 200 <= status < 300:
        writer.close()
        raise _ProbeFailed(Failure("proxy_refused", "proxy",
                                   f"proxy {proxy.display} refused CONNECT {authority}",
                                   status_line))
    return reader, writer, address


def client_context() -> SSL.Context:
    """A capture-only TLS client context (TLS 1.2 and 1.3, ALPN h2/http1.1, no verification:
    trust is decided afterwards, per store)."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_verify(SSL.VERIFY_NONE)
    ctx.set_alpn_protos([b"h2", b"http/1.1"])
    return ctx


def _tls_failure(exc: SSL.Error) -> Failure:
    reasons = [str(r[2]) for r in (exc.args[0] if exc.args and isinstance(exc.args[0], list)
                                   else []) if isinstance(r, tuple) and len(r) == 3]
    text = "; ".join(reasons) or str(exc) or type(exc).__name__
    low = text.lower()
    if "alert" in low:
        return Failure("handshake_alert", "tls", f"TLS handshake failed: {text}", text)
    if "wrong version number" in low or "packet length too long" in low or \
            "unknown protocol" in low or "record layer failure" in low:
        return Failure("not_tls", "tls", f"the peer does not speak TLS: {text}", text)
    if isinstance(exc, SSL.SysCallError) or "eof" in low:
        return Failure("handshake_eof", "tls", "the connection closed during the handshake",
                       text)
    return Failure("handshake_alert", "tls", f"TLS handshake failed: {text}", text)


def _flush(conn: SSL.Connection, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            data = conn.bio_read(65536)
        except SSL.WantReadError:
            return
        if not data:
            return
        writer.write(data)


async def _handshake(conn: SSL.Connection, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, deadline: float) -> None:
    while True:
        try:
            conn.do_handshake()
            _flush(conn, writer)
            return
        except SSL.WantReadError:
            _flush(conn, writer)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(65536), _remaining(deadline))
        if not data:
            raise SSL.SysCallError(-1, "Unexpected EOF")
        conn.bio_write(data)


async def probe_async(target: Target, *, proxy: Proxy | None = None,
                      servername: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                      context: SSL.Context | None = None) -> Handshake:
    """Connect and capture the handshake; never raises for network trouble (see ``failure``)."""
    started = time.monotonic()
    deadline = started + timeout
    sni = servername if servername is not None else (None if target.is_ip else target.host)
    address: str | None = None
    chain: tuple[bytes, ...] = ()
    protocol = cipher = alpn = None
    failure: Failure | None = None
    writer: asyncio.StreamWriter | None = None
    conn: SSL.Connection | None = None
    try:
        if proxy is not None:
            reader, writer, address = await _connect_tunnel(proxy, target, deadline)
        else:
            reader, writer, address = await _open(target.host, target.port, deadline, "connect")
        conn = SSL.Connection(context or client_context(), None)
        if sni:
            conn.set_tlsext_host_name(sni.encode("idna"))
        conn.set_connect_state()
        await _handshake(conn, reader, writer, deadline)
        protocol = conn.get_protocol_version_name()
        cipher = conn.get_cipher_name()
        alpn = conn.get_alpn_proto_negotiated().decode("ascii", "replace") or None
    except _ProbeFailed as exc:
        failure = exc.failure
    except asyncio.TimeoutError:
        failure = Failure("timeout", "tls", f"the TLS handshake did not finish in {timeout:g}s")
    except SSL.Error as exc:
        failure = _tls_failure(exc)
    except OSError as exc:
        failure = _os_failure(exc, "tls", "during the TLS handshake")
    if conn is not None:
        # The certificates are kept even when the handshake failed after they arrived.
        chain = tuple(c.to_cryptography().public_bytes(Encoding.DER)
                      for c in (conn.get_peer_cert_chain() or []))
    if writer is not None:
        if conn is not None and failure is None:
            try:
                conn.shutdown()
                _flush(conn, writer)
            except SSL.Error:
                pass
        writer.close()
    return Handshake(target=target, servername=sni, proxy=proxy.display if proxy else None,
                     address=address, presented_chain=chain, protocol=protocol, cipher=cipher,
                     alpn=alpn, failure=failure,
                     elapsed_ms=round((time.monotonic() - started) * 1000, 2))


def probe(target: Target, *, proxy: Proxy | None = None, servername: str | None = None,
          timeout: float = DEFAULT_TIMEOUT) -> Handshake:
    """Synchronous :func:`probe_async`."""
    return asyncio.run(probe_async(target, proxy=proxy, servername=servername, timeout=timeout))

