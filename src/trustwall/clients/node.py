"""node's https module.

Store: its built-in Mozilla roots (approximated with certifi, the same set) plus
NODE_EXTRA_CA_CERTS; ``--use-openssl-ca`` in NODE_OPTIONS switches to OpenSSL's default paths.
Proxy: none -- node's https module ignores https_proxy (docs/quirks-found.md); only
transparent interception catches it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall.clients.base import ClientUse, ProxyChoice, ignored_proxies, judge_by_exit

if TYPE_CHECKING:
    from trustwall.tls.probe import Target
    from trustwall.tls.verify import Anchors

NAME = "node"

_SCRIPT = """
const https = require("https");
const req = https.get(process.argv[1], {timeout: Number(process.argv[2]) * 1000}, (res) => {
  console.log(res.statusCode); res.resume(); res.on("end", () => process.exit(0));
});
req.on("timeout", () => req.destroy(new Error("timed out")));
req.on("error", (err) => { console.error(`${err.code || err.name}: ${err.message}`);
  process.exit(1); });
"""


def anchors(environ: Mapping[str, str], root: Path,
            stores: Mapping[str, Anchors]) -> dict[str, Anchors]:
    from trustwall.tls.verify import Anchors

    openssl = "--use-openssl-ca" in shlex.split(environ.get("NODE_OPTIONS", ""))
    base = stores["openssl-default"] if openssl else stores["certifi"]
    extra = environ.get("NODE_EXTRA_CA_CERTS")
    return {"node": Anchors(
        "node", files=base.files + ((extra,) if extra else ()), dirs=base.dirs, optional=True,
        note=None if openssl else
        "node's built-in roots approximated with certifi (both are Mozilla's set)")}


def store(environ: Mapping[str, str], stores: Mapping[str, Anchors]) -> ClientUse:
    return ClientUse(NAME, "node", "NODE_EXTRA_CA_CERTS" if environ.get("NODE_EXTRA_CA_CERTS")
                     else "built-in roots", note=stores["node"].note)


def proxy(target: Target, environ: Mapping[str, str]) -> ProxyChoice:
    ignored = ignored_proxies(environ)
    return ProxyChoice(None, "node's https module ignores https_proxy"
                       + (f" ({', '.join(ignored)} is set, unused)" if ignored else ""))


def argv(url: str, *, proxy: str | None = None, timeout: float = 15) -> list[str]:
    return ["node", "-e", _SCRIPT, url, str(int(max(1, timeout)))]


def judge(exit_code: int, stdout: str, stderr: str) -> tuple[bool, str]:
    return judge_by_exit(exit_code, stderr)
