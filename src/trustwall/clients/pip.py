"""pip (through requests, with truststore since pip 24.2).

Store: PIP_CERT > REQUESTS_CA_BUNDLE > CURL_CA_BUNDLE > the system's (OpenSSL default paths,
via truststore).
Proxy: like requests (https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY, no_proxy).

To run it, ``pip install --dry-run`` (which writes nothing) asks the URL as a package index
for a name that does not exist: an index that answers (any page) ends in "No matching
distribution"; a failed connection is reported first ("Could not fetch URL", or a retry
warning), then the same final line, so that report is what decides.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from trustwall.clients.base import ClientUse, ProxyChoice, env_or, env_proxy, one_line, stderr_lines

if TYPE_CHECKING:
    from trustwall.tls.probe import Target
    from trustwall.tls.verify import Anchors

NAME = "pip"
_PROBE_PACKAGE = "trustwall-tls-probe"
_CONNECTION_TROUBLE = re.compile(r"Retrying \(|Could not fetch URL|SSLError|ProxyError|"
                                 r"NewConnectionError|ConnectTimeout")


def store(environ: Mapping[str, str], stores: Mapping[str, Anchors]) -> ClientUse:
    name, why = env_or(environ, ("PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"),
                       "openssl-default", "truststore (pip >= 24.2)")
    return ClientUse(NAME, name, why)


def proxy(target: Target, environ: Mapping[str, str]) -> ProxyChoice:
    return env_proxy(NAME, target, environ)


def argv(url: str, *, proxy: str | None = None, timeout: float = 15) -> list[str]:
    return [sys.executable, "-I", "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--no-deps", "--no-cache-dir", "--disable-pip-version-check", "--retries", "1",
            "--timeout", str(int(max(1, timeout))),
            *(["--proxy", proxy] if proxy else []), "--index-url", url, _PROBE_PACKAGE]


def judge(exit_code: int, stdout: str, stderr: str) -> tuple[bool, str]:
    lines = stderr_lines(stderr)
    fetch = next((ln for ln in lines if ln.startswith("Could not fetch URL")), None)
    if fetch is not None:  # "Could not fetch URL <url>: <reason> - skipping"
        return False, one_line(fetch.split(": ", 1)[-1].removesuffix(" - skipping"))
    trouble = next((ln for ln in lines if _CONNECTION_TROUBLE.search(ln)), None)
    if trouble is not None:  # "... after connection broken by '<reason>': <path>"
        reason = re.search(r"broken by '(.*)':", trouble)
        return False, one_line(reason.group(1) if reason else trouble.removeprefix("WARNING:"))
    if exit_code == 0 or any("No matching distribution" in ln for ln in lines):
        return True, ""
    return False, one_line(lines[-1] if lines else f"exit {exit_code}")
