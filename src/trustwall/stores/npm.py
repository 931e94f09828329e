"""npm's ``cafile`` in the global npmrc (``$PREFIX/etc/npmrc``; Debian's npm says /etc/npmrc
in its builtin npmrc). Other npmrc files lying around are not read and not touched.

Unset, npm trusts node's built-in roots (plus NODE_EXTRA_CA_CERTS); set, the file replaces
them. Installing points it at the merged system bundle. A user's ~/.npmrc overrides the
global file, and ``npm_config_cafile`` in the environment overrides both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from trustwall.errors import EnvironmentMissing, StoreError
from trustwall.proc import which
from trustwall.stores.base import TrustStore, inside, resolve_in_root
from trustwall.stores.pointer import PointerStore, system_bundle, user_files

NPM_DIRS = ("/usr/local/lib/node_modules/npm", "/usr/lib/node_modules/npm",
            "/usr/share/nodejs/npm")
_LINE = re.compile(r"^\s*cafile\s*=\s*(.*?)\s*$", re.M)


def _ini_value(path: Path, key: str) -> str | None:
    try:
        text = path.read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
    found = re.findall(rf"^\s*{key}\s*=\s*(.*?)\s*$", text, re.M)
    return found[-1].strip("\"'") if found else None


def global_npmrc(root: Path) -> Path | None:
    """The global npmrc npm reads (``npm config get globalconfig``), worked out as npm does:
    its builtin npmrc may set ``globalconfig`` or ``prefix``; else ``<node's prefix>/etc``."""
    if str(root) == "/":
        try:  # the system's npm, never one a user's $PATH puts first
            npm, node = which("npm"), which("node")
        except EnvironmentMissing:
            return None
        npm_dir = Path(os.path.realpath(npm)).parents[1]  # <npm>/bin/npm-cli.js
        prefix = str(Path(os.path.realpath(node)).parents[1])
    else:
        npm_dir = next((inside(root, d) for d in NPM_DIRS if inside(root, d).is_dir()), None)
        if npm_dir is None:
            return None
        prefix = "/usr/local" if inside(root, "/usr/local/bin/node").exists() else "/usr"
    _only_root_writes(npm_dir / "npmrc")
    configured = _ini_value(npm_dir / "npmrc", "globalconfig")
    if configured:
        path = resolve_in_root(root, inside(root, configured))
        if path.name != "npmrc":
            raise StoreError(f"{npm_dir / 'npmrc'} sets globalconfig = {configured!r}, which is "
                             "not an npmrc file; refusing to write it")
        _only_root_writes(path)
        return path
    prefix = _ini_value(npm_dir / "npmrc", "prefix") or prefix
    return inside(root, prefix) / "etc/npmrc"


def _only_root_writes(path: Path) -> None:
    """``path`` (if it exists) and its directory are root's alone: npm's own config decides
    which file root rewrites, so a user-writable one could aim it at any file."""
    for item in (path, path.parent):
        try:
            st = item.lstat()
        except FileNotFoundError:
            continue
        if st.st_uid != 0 or st.st_mode & 0o022:
            raise StoreError(f"{item}: not owned by root or writable by others; not trusting "
                             "npm's configuration there",
                             hint=f"chown root {item}; chmod go-w {item}")


class NpmStore(PointerStore):
    kind = "npm"
    writer = "npm config set --global cafile"
    setting = "cafile"

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        if system_bundle(root) is None:
            return []
        path = global_npmrc(root)
        return [cls(root, path)] if path is not None else []

    def current(self) -> str | None:
        matches = _LINE.findall(self.text())
        value = matches[-1].strip("\"'") if matches else ""
        return value or None

    def rewritten(self, text: str, bundle: str) -> str:
        if _LINE.search(text):
            lines = [f"cafile={bundle}" if _LINE.fullmatch(line) else line
                     for line in text.splitlines()]
            return "\n".join(lines) + "\n"
        if text and not text.endswith("\n"):
            text += "\n"
        return text + f"cafile={bundle}\n"

    def clients(self) -> tuple[str, ...]:
        return ("npm (unless ~/.npmrc or npm_config_cafile sets cafile)",)

    def notes(self) -> tuple[str, ...]:
        out = list(super().notes())
        for path in user_files(self.root, ".npmrc"):
            value = _ini_value(path, "cafile")
            if value and value != self.bundle:
                out.append(f"{path} sets cafile = {value}: that user's npm ignores this file")
        return tuple(out)
