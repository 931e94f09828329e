"""wget (GnuTLS on Debian).

Store: GnuTLS's system trust (the system bundle), plus ``ca_certificate``/``ca_directory``
from /etc/wgetrc and $WGETRC (or ~/.wgetrc); GnuTLS accepts a trusted intermediate.
Proxy: only the lower-case https_proxy and no_proxy (wget(1) "Proxies").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall.clients.base import ClientUse, ProxyChoice, env_proxy, one_line, stderr_lines

if TYPE_CHECKING:
    from trustwall.tls.probe import Target
    from trustwall.tls.verify import Anchors

NAME = "wget"


def _wgetrc_ca(environ: Mapping[str, str], root: Path
               ) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """ca_certificate / ca_directory from /etc/wgetrc and $WGETRC (or ~/.wgetrc)."""
    files: list[str] = []
    dirs: list[str] = []
    user = environ.get("WGETRC") or os.path.join(environ.get("HOME", "/root"), ".wgetrc")
    for rc in (str(root / "etc/wgetrc"), user):
        try:
            text = Path(rc).read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            key, sep, value = line.split("#", 1)[0].partition("=")
            key = key.strip().lower().replace("_", "")
            if sep and key == "cacertificate":
                files.append(os.path.expanduser(value.strip()))
            elif sep and key == "cadirectory":
                dirs.append(os.path.expanduser(value.strip()))
    return (tuple(files), tuple(dirs)) if files or dirs else None


def anchors(environ: Mapping[str, str], root: Path,
            stores: Mapping[str, Anchors]) -> dict[str, Anchors]:
    from trustwall.tls.verify import Anchors

    wgetrc = _wgetrc_ca(environ, root)
    if not wgetrc:
        return {}
    return {"wget": Anchors("wget", files=(*stores["system-bundle"].files, *wgetrc[0]),
                            dirs=wgetrc[1], optional=True)}


def store(environ: Mapping[str, str], stores: Mapping[str, Anchors]) -> ClientUse:
    if "wget" in stores:
        return ClientUse(NAME, "wget", "GnuTLS system trust + wgetrc ca_certificate",
                         partial_chain=True)
    return ClientUse(NAME, "system-bundle", "GnuTLS system trust", partial_chain=True)


def proxy(target: Target, environ: Mapping[str, str]) -> ProxyChoice:
    return env_proxy(NAME, target, environ, ("https_proxy",), ("no_proxy",))


def argv(url: str, *, proxy: str | None = None, timeout: float = 15) -> list[str]:
    proxy_opts = ["-e", "use_proxy=yes", "-e", f"https_proxy={proxy}"] if proxy else []
    return ["wget", "-nv", "-O", "/dev/null", "--tries=1",
            f"--timeout={int(max(1, timeout))}", *proxy_opts, url]


def judge(exit_code: int, stdout: str, stderr: str) -> tuple[bool, str]:
    if exit_code in (0, 8):  # 8: the server answered with an HTTP error status
        return True, ""
    lines = stderr_lines(stderr)
    errors = [ln.removeprefix("ERROR:").strip() for ln in lines if ln.startswith("ERROR")]
    return False, one_line(" ".join(errors) or (lines[-1] if lines else f"exit {exit_code}"))
