"""What every client module provides, and the rules several clients share.

A client module (``clients/curl.py``, …) holds, side by side, everything about one client:

* ``store(environ, stores)``: which trust store it reads here and why (a :class:`ClientUse`);
* ``proxy(target, environ)``: which proxy it would use and why (a :class:`ProxyChoice`);
* ``argv(url, proxy=, timeout=)``: how to make it fetch a URL;
* ``judge(exit_code, stdout, stderr)``: did the handshake pass, and its own error on one line;
* optionally ``anchors(environ, root, stores)``: stores only it reads (node's, wget's, java's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trustwall.tls.probe import Proxy, Target

#: The variables curl, libcurl (git) and requests read for an https URL, in their order.
CURL_PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@dataclass(frozen=True)
class ClientUse:
    """The store a client would read here, and how it verifies."""

    client: str
    store: str
    because: str  # which setting chose the store
    partial_chain: bool = False
    strict: bool = False
    note: str | None = None


@dataclass(frozen=True)
class ProxyChoice:
    """The proxy a client would use for a target, and why (or why none)."""

    proxy: Proxy | None
    reason: str


@dataclass(frozen=True)
class ClientResult:
    """What one client did with one URL. ``error`` is its own error text, on one line."""

    name: str
    ok: bool
    error: str
    exit_code: int
    stdout: str
    stderr: str
    seconds: float


def env_or(environ: Mapping[str, str], names: tuple[str, ...], fallback: str,
           fallback_why: str) -> tuple[str, str]:
    """The first of ``names`` set in ``environ`` as a store name (``env:NAME``), else the
    fallback store."""
    for name in names:
        if environ.get(name):
            return f"env:{name}", name
    return fallback, fallback_why


def ignored_proxies(environ: Mapping[str, str]) -> list[str]:
    return [v for v in CURL_PROXY_VARIABLES if environ.get(v)]


def env_proxy(client: str, target: Target, environ: Mapping[str, str],
              names: tuple[str, ...] = CURL_PROXY_VARIABLES,
              no_proxy: tuple[str, ...] = ("no_proxy", "NO_PROXY")) -> ProxyChoice:
    """The proxy a client that reads ``names`` (first set wins) and ``no_proxy`` would use."""
    from trustwall.tls.probe import proxy_from_env

    seen = {k: environ[k] for k in (*names, *no_proxy) if environ.get(k)}
    used = next((k for k in names if seen.get(k)), None)
    if used is None:
        unread = [v for v in ignored_proxies(environ) if v not in names]
        return ProxyChoice(None, f"no proxy variable {client} reads is set"
                           + (f" ({', '.join(unread)} is set, {client} ignores it)"
                              if unread else ""))
    proxy = proxy_from_env(target, {"https_proxy": seen[used],
                                    "no_proxy": ",".join(seen.get(k, "") for k in no_proxy)})
    if proxy is None:
        return ProxyChoice(None, f"{used} is set but no_proxy exempts {target.host}")
    return ProxyChoice(proxy, f"{used}={proxy.display}")


def one_line(text: str) -> str:
    return " ".join(text.split())


def stderr_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.strip()]


def judge_by_exit(exit_code: int, stderr: str) -> tuple[bool, str]:
    """OK on exit 0; otherwise the last line of stderr is the client's own error."""
    if exit_code == 0:
        return True, ""
    lines = stderr_lines(stderr)
    return False, one_line(lines[-1] if lines else f"exit {exit_code}")
