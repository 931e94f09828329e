"""git over https (libcurl-gnutls on Debian).

Store: GIT_SSL_CAINFO > GIT_SSL_CAPATH > libcurl's default bundle (the system bundle).
Proxy: like curl (https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY, no_proxy) or http.proxy.

Judging ``git ls-remote``: a lab origin is not a git server, so an answer git rejects *after*
the handshake (``not valid: is this a git repository?``, ``repository … not found``,
``The requested URL returned error: 404``) counts as OK; a transport error (``unable to
access '…': <TLS error>``) is a FAIL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from trustwall.clients.base import ClientUse, ProxyChoice, env_or, env_proxy, one_line, stderr_lines

if TYPE_CHECKING:
    from trustwall.tls.probe import Target
    from trustwall.tls.verify import Anchors

NAME = "git"
# An HTTP error status is reported like a transport failure ("unable to access"), but it
# proves the handshake passed.
_HTTP_STATUS = "The requested URL returned error"
_AFTER_HANDSHAKE = re.compile(r"not valid: is this a git repository|repository '[^']*' "
                              r"not found")


def store(environ: Mapping[str, str], stores: Mapping[str, Anchors]) -> ClientUse:
    name, why = env_or(environ, ("GIT_SSL_CAINFO", "GIT_SSL_CAPATH"), "system-bundle",
                       "libcurl default bundle")
    return ClientUse(NAME, name, why, partial_chain=True)


def proxy(target: Target, environ: Mapping[str, str]) -> ProxyChoice:
    return env_proxy(NAME, target, environ)


def argv(url: str, *, proxy: str | None = None, timeout: float = 15) -> list[str]:
    proxy_opts = ["-c", f"http.proxy={proxy}"] if proxy else []
    return ["git", *proxy_opts, "-c", "http.lowSpeedLimit=1", "-c",
            f"http.lowSpeedTime={int(max(1, timeout))}", "ls-remote", url]


def judge(exit_code: int, stdout: str, stderr: str) -> tuple[bool, str]:
    lines = stderr_lines(stderr)
    text = one_line(" ".join(lines))
    if exit_code == 0 or _HTTP_STATUS in text or (
            "unable to access" not in text and _AFTER_HANDSHAKE.search(text)):
        return True, ""
    fatal = next((ln for ln in lines if ln.startswith("fatal:")), text or f"exit {exit_code}")
    return False, fatal.removeprefix("fatal:").strip()
