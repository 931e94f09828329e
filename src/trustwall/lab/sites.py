"""The origin's HTTPS sites: one server on one address, choosing the certificate by SNI.

Each lab name shows one way a real site gets its chain wrong (or right):

=======================  ====================================================================
good.lab.test            leaf + intermediate, anchored in the lab's public root
nointer.lab.test         leaf only: the intermediate is missing (clients that do not fetch
                         AIA fail with "unable to get local issuer certificate")
expired.lab.test         an expired leaf under the public PKI
wronghost.lab.test       a valid chain, but the leaf names other.lab.test
selfsigned.lab.test      a self-signed leaf
=======================  ====================================================================

The server is this module run as a script inside the origin namespace
(``python -m trustwall.lab.sites CONFIG.json``); it answers every GET/HEAD/POST on any path
with ``200 hello from <name>`` so curl, wget, urllib, requests, node, java and git all get a
plain HTTP/1.0-style answer (the connection closes after each response).
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trustwall.lab.ca import Credential, LabCAs

DOMAIN = "lab.test"


@dataclass(frozen=True)
class Site:
    """One lab name served by the origin, and what is wrong with its chain."""

    name: str
    problem: str  # "" for the good site
    openssl_code: int  # the verify code `openssl s_client` reports against the public root

    @property
    def url(self) -> str:
        return f"https://{self.name}/"


SITES: tuple[Site, ...] = (
    Site(f"good.{DOMAIN}", "", 0),
    Site(f"nointer.{DOMAIN}", "the server does not send its intermediate certificate", 21),
    Site(f"expired.{DOMAIN}", "the server certificate has expired", 10),
    Site(f"wronghost.{DOMAIN}", "the certificate is for other.lab.test", 62),
    Site(f"selfsigned.{DOMAIN}", "the certificate is self-signed", 18),
)
WRONG_NAME = f"other.{DOMAIN}"


def site_credentials(cas: LabCAs) -> dict[str, tuple[Credential, bool]]:
    """name -> (credential, send_intermediates) for every lab site."""
    from trustwall.lab.ca import issue_leaf

    inter = cas.public_inter
    return {
        f"good.{DOMAIN}": (issue_leaf(inter, [f"good.{DOMAIN}"]), True),
        f"nointer.{DOMAIN}": (issue_leaf(inter, [f"nointer.{DOMAIN}"]), False),
        f"expired.{DOMAIN}": (issue_leaf(inter, [f"expired.{DOMAIN}"], expired=True), True),
        f"wronghost.{DOMAIN}": (issue_leaf(inter, [WRONG_NAME]), True),
        f"selfsigned.{DOMAIN}": (issue_leaf(None, [f"selfsigned.{DOMAIN}"]), False),
    }


def write_site_files(cas: LabCAs, directory: Path, address: str, port: int) -> Path:
    """Write each site's chain and key plus the server's config; return the config path."""
    from trustwall.journal.atomic import atomic_write

    directory.mkdir(parents=True, exist_ok=True)
    sites = {}
    for name, (cred, send_chain) in site_credentials(cas).items():
        cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
        atomic_write(cert_file, cred.fullchain_pem if send_chain else cred.cert_pem)
        atomic_write(key_file, cred.key_pem, mode=0o600)
        sites[name] = {"cert": str(cert_file), "key": str(key_file)}
    config = directory / "sites.json"
    atomic_write(config, json.dumps({"address": address, "port": port, "default": f"good.{DOMAIN}",
                                     "sites": sites}, indent=1).encode())
    return config


class _Handler(BaseHTTPRequestHandler):
    server_version = "trustwall-lab-site"
    protocol_version = "HTTP/1.0"

    def _answer(self, body: bool) -> None:
        name = getattr(self.connection, "lab_site", None) or self.headers.get("Host", "?")
        payload = f"hello from {name}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer(True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)

    def log_message(self, format: str, *args: object) -> None:
        return


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], contexts: dict[str, ssl.SSLContext],
                 default: str) -> None:
        self.contexts = contexts
        self.default = default
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = self.socket.accept()
        sock.settimeout(10)
        # The handshake runs in the handler's thread (first read), never in the accept loop.
        tls = self.contexts[self.default].wrap_socket(sock, server_side=True,
                                                      do_handshake_on_connect=False)
        return tls, addr

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client that rejects our certificate is the expected case here


def _contexts(config: dict) -> dict[str, ssl.SSLContext]:
    contexts: dict[str, ssl.SSLContext] = {}
    for name, files in config["sites"].items():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(files["cert"], files["key"])
        contexts[name] = ctx

    def choose(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        name = server_name if server_name in contexts else config["default"]
        sslobj.context = contexts[name]
        sslobj.lab_site = name  # type: ignore[attr-defined]

    for ctx in contexts.values():
        ctx.sni_callback = choose  # type: ignore[assignment]
    return contexts


def serve(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    server = _TLSServer((config["address"], config["port"]), _contexts(config), config["default"])
    threading.current_thread().name = "lab-sites"
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1])
