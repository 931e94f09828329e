"""requests (with its certifi).

Store: REQUESTS_CA_BUNDLE > CURL_CA_BUNDLE > certifi's bundle.
Proxy: https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY and no_proxy (requests.utils
select_proxy over urllib's getproxies).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from trustwall.clients.base import ClientUse, ProxyChoice, env_or, env_proxy, judge_by_exit

if TYPE_CHECKING:
    from trustwall.tls.probe import Target
    from trustwall.tls.verify import Anchors

NAME = "requests"

_SCRIPT = """
import sys, requests
url, proxy, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
proxies = {"https": proxy} if proxy else None
try:
    print(requests.get(url, proxies=proxies, timeout=timeout).status_code)
except Exception as exc:
    sys.exit(f"{type(exc).__name__}: {exc}")
"""


def store(environ: Mapping[str, str], stores: Mapping[str, Anchors]) -> ClientUse:
    name, why = env_or(environ, ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"), "certifi", "certifi")
    return ClientUse(NAME, name, why)


def proxy(target: Target, environ: Mapping[str, str]) -> ProxyChoice:
    return env_proxy(NAME, target, environ)


def argv(url: str, *, proxy: str | None = None, timeout: float = 15) -> list[str]:
    return [sys.executable, "-I", "-c", _SCRIPT, url, proxy or "", str(int(max(1, timeout)))]


def judge(exit_code: int, stdout: str, stderr: str) -> tuple[bool, str]:
    return judge_by_exit(exit_code, stderr)
