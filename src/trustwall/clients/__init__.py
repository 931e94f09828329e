"""Everything about each client, one module per client (``clients/curl.py``, …): which trust
store and proxy it uses, how to run it and how to judge what it did.

``run_client``/``run_all`` run the real programs with an explicit, scrubbed environment:
``PATH``, ``HOME`` (the enclosure's, or a fresh empty directory), ``LANG`` and only what the
caller passes. Hosts like this one export SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
NODE_EXTRA_CA_CERTS, GIT_SSL_CAINFO, …; inheriting them would make every client trust what
nobody installed. "OK" means the TLS handshake verified and an answer arrived (see each
module's ``judge``).

tls/ (which store each client reads), doctor/ (which proxy), getout (verify, fix) and the lab
all ask this package.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from typing import TYPE_CHECKING, Protocol, cast

from trustwall.clients.base import ClientResult, ClientUse, ProxyChoice
from trustwall.clients.login import (
    PROXY_VARIABLES,
    SYSTEM_PATH,
    Enclosure,
    base_environment,
    login_environment,
    parse_environment,
)
from trustwall.errors import BadInput

if TYPE_CHECKING:
    from pathlib import Path

    from trustwall.tls.probe import Target
    from trustwall.tls.verify import Anchors

#: Every client trustwall knows, in the order it reports them.
CLIENTS = ("curl", "wget", "python", "requests", "pip", "node", "java", "git")


class Client(Protocol):
    """What each module in this package provides (see clients/base.py)."""

    NAME: str

    def store(self, environ: Mapping[str, str],
              stores: Mapping[str, Anchors]) -> ClientUse | None: ...

    def proxy(self, target: Target, environ: Mapping[str, str]) -> ProxyChoice: ...

    def argv(self, url: str, *, proxy: str | None = None, timeout: float = 15) -> list[str]: ...

    def judge(self, exit_code: int, stdout: str, stderr: str) -> tuple[bool, str]: ...


def client(name: str) -> Client:
    """The module of client ``name``; an unknown name is a BadInput naming the known ones."""
    if name not in CLIENTS:
        raise BadInput(f"unknown client {name!r}", hint=f"one of {', '.join(CLIENTS)}")
    return cast("Client", import_module(f"trustwall.clients.{name}"))


def client_argv(name: str, url: str, *, proxy: str | None = None,
                timeout: float = 15) -> list[str]:
    """The command line of client ``name`` fetching ``url`` (through ``proxy`` if it can)."""
    return client(name).argv(url, proxy=proxy, timeout=timeout)


def client_anchors(environ: Mapping[str, str], root: Path, stores: Mapping[str, Anchors], *,
                   java: bool = True, cache_dir: Path) -> dict[str, Anchors]:
    """The stores only particular clients read (node's roots, wgetrc's, java's keystore)."""
    from trustwall.clients import java as java_client
    from trustwall.clients import node, wget

    found = {**node.anchors(environ, root, stores), **wget.anchors(environ, root, stores)}
    if java:
        found.update(java_client.anchors(environ, root, stores, cache_dir=cache_dir))
    return found


def client_uses(environ: Mapping[str, str], stores: Mapping[str, Anchors]
                ) -> dict[str, ClientUse]:
    """Which store each client reads, given ``environ`` and the stores found."""
    uses = {name: client(name).store(environ, stores) for name in CLIENTS}
    return {name: use for name, use in uses.items() if use is not None}


def run_client(
    name: str,
    url: str,
    *,
    inside: Enclosure | None = None,
    env: Mapping[str, str] | None = None,
    proxy: str | None = None,
    timeout: float = 15,
) -> ClientResult:
    """Run one client against ``url``, ``inside`` an enclosure (a network namespace or a
    sandbox: anything with ``argv()``; its ``home``, if it has one, is HOME) or here.

    ``env`` adds to the scrubbed environment (e.g. ``REQUESTS_CA_BUNDLE``); nothing is
    inherited from this process. ``proxy`` is an explicit proxy URL (``http://host:port``)
    handed to each client in its own way (node has none). Without it, an ``https_proxy`` in
    ``env`` reaches the clients that read it.
    """
    module = client(name)
    argv = module.argv(url, proxy=proxy, timeout=timeout)
    enclosure_home = getattr(inside, "home", None)
    scratch = None if enclosure_home else tempfile.mkdtemp(prefix="trustwall-client-home-")
    full_env = {**base_environment(str(enclosure_home or scratch)), **(env or {})}
    if inside is not None:
        argv = inside.argv(argv)
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=full_env,
                              timeout=timeout + 10, check=False, errors="replace")
        exit_code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        exit_code, stdout = -1, _decode(exc.stdout)
        stderr = _decode(exc.stderr) + f"\ntimed out after {timeout + 10:.0f}s"
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.monotonic() - started
    ok, error = module.judge(exit_code, stdout, stderr)
    return ClientResult(name, ok, error, exit_code, stdout, stderr, round(seconds, 3))


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def run_all(
    url: str,
    *,
    clients: Sequence[str] = CLIENTS,
    inside: Enclosure | None = None,
    env: Mapping[str, str] | None = None,
    proxy: str | None = None,
    timeout: float = 15,
) -> dict[str, ClientResult]:
    """Run every client in parallel threads; results keyed by name, in ``clients`` order."""
    for name in clients:
        client(name)  # refuse an unknown name before starting anything
    if "java" in clients:
        from trustwall.clients.java import classes

        classes()  # compile once before the threads race for it

    with ThreadPoolExecutor(max_workers=max(1, len(clients))) as pool:
        futures = {name: pool.submit(run_client, name, url, inside=inside, env=env,
                                     proxy=proxy, timeout=timeout)
                   for name in clients}
        return {name: futures[name].result() for name in clients}


__all__ = [
    "CLIENTS",
    "PROXY_VARIABLES",
    "SYSTEM_PATH",
    "Client",
    "ClientResult",
    "ClientUse",
    "Enclosure",
    "ProxyChoice",
    "client",
    "client_anchors",
    "client_argv",
    "client_uses",
    "login_environment",
    "parse_environment",
    "run_all",
    "run_client",
]
