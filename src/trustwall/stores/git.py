"""git's ``http.sslCAInfo`` in the system gitconfig (/etc/gitconfig).

Unset, git reads libcurl's default bundle -- the system bundle on Debian -- so the system
store already covers it; set (say to a lone enterprise CA by an old setup script), it replaces
every default root. Installing points it at the merged system bundle. ``git config --file``
reads and writes the file (on a private copy, so the real one changes atomically through the
transaction). ``GIT_SSL_CAINFO`` overrides the file: the env kind sets it to the same bundle.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from trustwall import proc
from trustwall.errors import EnvironmentMissing
from trustwall.stores.base import TrustStore, inside
from trustwall.stores.pointer import PointerStore, system_bundle, user_files

GITCONFIG = "/etc/gitconfig"
KEY = "http.sslCAInfo"


def _git() -> str | None:
    try:
        return proc.which("git")
    except EnvironmentMissing:
        return None


def _env(home: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
            "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}


class GitStore(PointerStore):
    kind = "git"
    writer = "git config --system http.sslCAInfo"
    setting = KEY

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        present = inside(root, GITCONFIG).exists() or inside(root, "/usr/bin/git").exists()
        if present and _git() and system_bundle(root):
            return [cls(root, inside(root, GITCONFIG))]
        return []

    def _config(self, *args: str, path: Path | None = None) -> str:
        with tempfile.TemporaryDirectory(prefix="tw-git-") as home:
            done = proc.run([_git() or "git", "config", "--file", str(path or self.path),
                             *args], env=_env(home), check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    def current(self) -> str | None:
        if not self.path.is_file():
            return None
        return self._config("--get", KEY) or None

    def default(self) -> str | None:
        return self.bundle

    def rewritten(self, text: str, bundle: str) -> str:
        with tempfile.TemporaryDirectory(prefix="tw-git-") as tmp:
            copy = Path(tmp) / "gitconfig"
            copy.write_text(text, errors="surrogateescape")
            with tempfile.TemporaryDirectory(prefix="tw-git-home-") as home:
                proc.run([_git() or "git", "config", "--file", str(copy), KEY, bundle],
                         env=_env(home))
            return copy.read_text(errors="surrogateescape")

    def clients(self) -> tuple[str, ...]:
        return ("git over https (unless GIT_SSL_CAINFO is set)",)

    def notes(self) -> tuple[str, ...]:
        out = list(super().notes())
        for path in user_files(self.root, ".gitconfig"):
            value = self._config("--get", KEY, path=path)
            if value and value != self.bundle:
                out.append(f"{path} sets {KEY} = {value}: that user's git ignores this file")
        env = os.environ.get("GIT_SSL_CAINFO") if str(self.root) == "/" else None
        if env and env != self.bundle:
            out.append(f"GIT_SSL_CAINFO={env} in this environment overrides {KEY}")
        return tuple(out)

