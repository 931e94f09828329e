"""npm's ``cafile`` in the global npmrc (``$PREFIX/etc/npmrc``; Debian's npm says /etc/npmrc
in its builtin npmrc). Other npmrc files lying around are not read and not touched.

Unset, npm trusts node's built-in roots (plus NODE_EXTRA_CA_CERTS); set, the file replaces
them. Installing points it at the merged system bundle. A user's ~/.npmrc overrides the
global file, and ``npm_config_cafile`` in the environment overrides both.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from trustwall.stores.base import TrustStore, inside
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
        npm, node = shutil.which("npm"), shutil.which("node")
        if npm is None or node is None:
            return None
        npm_dir = Path(os.path.realpath(npm)).parents[1]  # <npm>/bin/npm-cli.js
        prefix = str(Path(os.path.realpath(node)).parents[1])
    else:
        npm_dir = next((inside(root, d) for d in NPM_DIRS if inside(root, d).is_dir()), None)
        if npm_dir is None:
            return None
        prefix = "/usr/local" if inside(root, "/usr/local/bin/node").exists() else "/usr"
    configured = _ini_value(npm_dir / "npmrc", "globalconfig")
    if configured:
        return inside(root, configured)
    prefix = _ini_value(npm_dir / "npmrc", "prefix") or prefix
    return inside(root, prefix) / "etc/npmrc"


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
