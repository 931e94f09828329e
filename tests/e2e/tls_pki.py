"""Loopback TLS lab for the tls tests: a small PKI, HTTPS servers presenting chosen chains, a
CONNECT proxy, and endpoints that refuse or never answer. Everything binds 127.0.0.1.
Certificates come from the product's factory (trustwall.certs.factory)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from trustwall.certs.factory import Issued, issue

__all__ = ["Issued", "issue"]  # the product's one factory, re-exported for the tls tests

def write_pem(path: Path, *certs: Issued) -> Path:
    path.write_bytes(b"".join(c.pem for c in certs))
    return path


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.payload if self.path.endswith(".crt") else b"ok\n"  # type: ignore
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    payload = b""

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that reject the chain abort the handshake: expected here


class _TLSServer(_Server):
    def __init__(self, addr: tuple[str, int], context: ssl.SSLContext) -> None:
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, _QuietHandler)
        self.context = context

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = self.socket.accept()
        sock.settimeout(5)
        try:
            return self.context.wrap_socket(sock, server_side=True), addr
        except (ssl.SSLError, OSError):
            sock.close()
            raise


@contextlib.contextmanager
def _serving(server: socketserver.BaseServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server.server_address[1]  # type: ignore[index]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def https_server(tmp: Path, leaf: Issued, *extra: Issued, host: str = "127.0.0.1"
                 ) -> Iterator[int]:
    """Serve HTTPS on loopback presenting ``leaf`` followed by ``extra`` exactly."""
    chain = write_pem(tmp / f"srv-{id(leaf)}.pem", leaf, *extra)
    key = tmp / f"srv-{id(leaf)}.key"
    key.write_bytes(leaf.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain, key)
    ctx.set_alpn_protocols(["http/1.1"])
    with _serving(_TLSServer((host, 0), ctx)) as port:
        yield port


@contextlib.contextmanager
def http_server(payload: bytes) -> Iterator[int]:
    """Plain HTTP on loopback answering any ``*.crt`` path with ``payload`` (AIA caIssuers)."""
    server = _Server(("127.0.0.1", 0), _QuietHandler)
    server.payload = payload
    with _serving(server) as port:
        yield port


class _ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                return
            head += data
        first = head.split(b"\r\n", 1)[0].decode()
        self.server.seen.append(head.decode("latin-1"))  # type: ignore[attr-defined]
        refuse = self.server.refuse  # type: ignore[attr-defined]
        need = self.server.credentials  # type: ignore[attr-defined]
        if need and f"Proxy-Authorization: Basic {need}".encode() not in head:
            sock.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"lab\"\r\nContent-Length: 0\r\n\r\n")
            return
        if not refuse and first.startswith("GET http://"):
            _forward_get(sock, head)
            return
        if refuse or not first.startswith("CONNECT "):
            sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        host, _, port = first.split()[1].rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        except OSError:
            sock.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        _pipe(sock, upstream)


def _forward_get(sock: socket.socket, head: bytes) -> None:
    """Plain-HTTP proxying of ``GET http://host:port/path`` (how AIA downloads go out)."""
    from urllib.parse import urlsplit

    first, rest = head.split(b"\r\n", 1)
    url = urlsplit(first.split()[1].decode())
    with socket.create_connection((url.hostname, url.port or 80), timeout=5) as upstream:
        upstream.sendall(b"GET " + (url.path or "/").encode() + b" HTTP/1.0\r\n" + rest)
        while data := upstream.recv(65536):
            sock.sendall(data)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    def copy(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=copy, args=(b, a), daemon=True)
    t.start()
    copy(a, b)
    t.join(5)
    b.close()


@contextlib.contextmanager
def connect_proxy(*, refuse: bool = False, credentials: str | None = None) -> Iterator[tuple]:
    """A CONNECT proxy on loopback; yields (port, list of request heads it saw)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ProxyHandler)
    server.daemon_threads = True
    server.refuse = refuse  # type: ignore[attr-defined]
    server.credentials = credentials  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    with _serving(server) as port:
        yield port, server.seen  # type: ignore[attr-defined]


def refused_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A listening socket that never accepts: TCP connects, TLS never gets an answer."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


@dataclass(frozen=True)
class Pki:
    """The scenario cast: a public root + intermediate, and an inspection root."""

    root: Issued
    inter: Issued
    corp: Issued

    def leaf(self, *names: str, issuer: Issued | None = None, **kw: object) -> Issued:
        return issue(names[0] if names else "leaf", issuer=issuer or self.inter,
                     names=names, **kw)  # type: ignore[arg-type]


def make_pki() -> Pki:
    root = issue("Lab Public Root", ca=True, org="Lab Trust Services")
    inter = issue("Lab Public Issuing CA", issuer=root, ca=True, org="Lab Trust Services")
    corp = issue("Fortinet_CA_SSL", ca=True, org="Fortinet")
    return Pki(root, inter, corp)
