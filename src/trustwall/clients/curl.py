"""curl (the tool, built on OpenSSL here).

Store: ``--cacert`` > CURL_CA_BUNDLE > SSL_CERT_FILE/SSL_CERT_DIR > the compiled-in bundle;
since 7.68 it sets X509_V_FLAG_PARTIAL_CHAIN (a trusted intermediate is an anchor).
Proxy: https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY (curl(1) ENVIRONMENT), and no_proxy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from trustwall.clients.base import ClientUse, ProxyChoice, env_or, env_proxy, stderr_lines

if TYPE_CHECKING:
    from trustwall.tls.probe import Target
    from trustwall.tls.verify import Anchors

NAME = "curl"


def store(environ: Mapping[str, str], stores: Mapping[str, Anchors]) -> ClientUse:
    name, why = env_or(environ, ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"),
                       "system-bundle", "compiled-in CA bundle")
    return ClientUse(NAME, name, why, partial_chain=True)


def proxy(target: Target, environ: Mapping[str, str]) -> ProxyChoice:
    return env_proxy(NAME, target, environ)


def argv(url: str, *, proxy: str | None = None, timeout: float = 15) -> list[str]:
    return ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}\\n", "--max-time",
            str(int(max(1, timeout))), *(["--proxy", proxy] if proxy else []), url]


def judge(exit_code: int, stdout: str, stderr: str) -> tuple[bool, str]:
    if exit_code == 0:
        return True, ""
    lines = stderr_lines(stderr)
    first = next((ln for ln in lines if ln.startswith("curl:")),
                 lines[0] if lines else f"exit {exit_code}")
    return False, first.removeprefix("curl:").strip()
