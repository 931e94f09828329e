"""Python's own ssl module (urllib).

Store: OpenSSL's default paths, overridden by SSL_CERT_FILE / SSL_CERT_DIR; 3.13+ adds
VERIFY_X509_STRICT and VERIFY_X509_PARTIAL_CHAIN.
Proxy: https_proxy / HTTPS_PROXY and no_proxy (urllib.request.getproxies_environment).

It runs with trustwall's own interpreter in isolated mode (``-I``): the system interpreters
here load a site start-up hook that changes certifi (docs/quirks-found.md).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from trustwall.clients.base import ClientUse, ProxyChoice, env_proxy, judge_by_exit

if TYPE_CHECKING:
    from trustwall.tls.probe import Target
    from trustwall.tls.verify import Anchors

NAME = "python"

_SCRIPT = """
import sys, urllib.error, urllib.request
url, proxy, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
handlers = [urllib.request.ProxyHandler({"https": proxy})] if proxy else []
try:
    with urllib.request.build_opener(*handlers).open(url, timeout=timeout) as resp:
        print(resp.status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except urllib.error.URLError as exc:
    sys.exit(str(exc.reason))
except Exception as exc:
    sys.exit(str(exc))
"""


def store(environ: Mapping[str, str], stores: Mapping[str, Anchors]) -> ClientUse:
    modern = sys.version_info >= (3, 13)
    return ClientUse(NAME, "openssl-default",
                     "SSL_CERT_FILE/SSL_CERT_DIR" if environ.get("SSL_CERT_FILE") or
                     environ.get("SSL_CERT_DIR") else "OpenSSL default paths",
                     partial_chain=modern, strict=modern)


def proxy(target: Target, environ: Mapping[str, str]) -> ProxyChoice:
    return env_proxy(NAME, target, environ, ("https_proxy", "HTTPS_PROXY"))


def argv(url: str, *, proxy: str | None = None, timeout: float = 15) -> list[str]:
    return [sys.executable, "-I", "-c", _SCRIPT, url, proxy or "", str(int(max(1, timeout)))]


def judge(exit_code: int, stdout: str, stderr: str) -> tuple[bool, str]:
    return judge_by_exit(exit_code, stderr)
