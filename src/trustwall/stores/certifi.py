"""certifi's ``cacert.pem``: the whole trust list of requests, httpx, pip and friends in one
Python environment (they ignore the system store unless REQUESTS_CA_BUNDLE & co. say so).

Found in the Python running trustwall (certifi only), $VIRTUAL_ENV (host only) and every
virtualenv (a directory holding ``pyvenv.cfg``) up to three levels under the ``--venv-root``
directories given. pip carries its own copy (``pip/_vendor/certifi``): pip >= 24.2 reads it
*and* the system store (truststore), older pips only it; ``PIP_CERT`` / ``pip config
global.cert`` replace both. A certifi that is a link to the system bundle (Debian's
python3-certifi) belongs to the system store and is skipped.

Adding appends the PEM (after a ``# trustwall:`` comment line) exactly as the bundle kind does;
removing takes out any block certifi did not ship (certifi's own blocks carry a ``# Label:``
header).
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
from pathlib import Path

from trustwall.stores.base import Scope, TrustStore, fingerprint, inside, pem_ders
from trustwall.stores.bundle import BundleStore
from trustwall.stores.env import SYSTEM_BUNDLES

BUNDLE_GLOBS = ("lib/python3*/site-packages/certifi/cacert.pem",
                "lib/python3*/site-packages/pip/_vendor/certifi/cacert.pem")
VENV_DEPTH = 3
# pip's configuration files, in the order pip reads them (later ones win).
PIP_CONFIGS = ("/etc/xdg/pip/pip.conf", "/etc/pip.conf")
_HEADED_BLOCK = re.compile(rb"((?:#[^\n]*\n)*)(-----BEGIN CERTIFICATE-----.*?"
                           rb"-----END CERTIFICATE-----)", re.S)


def _prefix_of(path: Path) -> Path:
    """The environment (``sys.prefix``) a cacert.pem belongs to."""
    parts = path.parts
    return Path(*parts[:parts.index("lib")]) if "lib" in parts else path.parent


def _venvs_under(top: Path) -> list[Path]:
    found = []
    for depth in range(VENV_DEPTH + 1):
        pattern = "/".join(["*"] * depth + ["pyvenv.cfg"])
        found.extend(sorted(p.parent for p in top.glob(pattern)))
    return found


def _bundles_of(prefix: Path) -> list[Path]:
    # A link is listed even when its target only exists inside the root (glob would follow
    # it on the host); detection then resolves it in the root and checks who owns what.
    return [d / name for pattern in BUNDLE_GLOBS
            for d in sorted(prefix.glob(os.path.dirname(pattern)))
            if os.path.lexists(d / (name := os.path.basename(pattern)))]


def _running_python() -> list[Path]:
    """certifi of the Python running trustwall: the one the lab sandbox copies (pip's vendored
    copy there is left alone: pip >= 24.2 also reads the system store)."""
    spec = importlib.util.find_spec("certifi")  # locates, does not import
    return [Path(spec.origin).parent / "cacert.pem"] if spec and spec.origin else []


def pip_cert(prefix: Path, root: Path) -> str | None:
    """The ``cert`` pip in ``prefix`` is configured with (env, then config files), if any."""
    if str(root) == "/" and os.environ.get("PIP_CERT"):
        return os.environ["PIP_CERT"]
    home = os.environ.get("HOME", "") if str(root) == "/" else ""
    files = [inside(root, f) for f in PIP_CONFIGS]
    if home:
        files += [Path(home) / ".pip/pip.conf", Path(home) / ".config/pip/pip.conf"]
    files.append(prefix / "pip.conf")
    value = None
    for path in files:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path)
        except configparser.Error:
            continue
        value = parser.get("global", "cert", fallback=value)
    return value


def _owned_alike(path: Path, real: Path) -> bool:
    """Whether following ``path`` to ``real`` crosses no owner: a virtualenv's user may link
    its cacert.pem anywhere, and root must not append to the file it points at (another
    user's, or root's own) on that user's word. Links owned by root are the system's own."""
    try:
        if not path.is_symlink() and path.resolve() == real.resolve():
            return True
        link_owner, real_owner = path.lstat().st_uid, real.stat().st_uid
    except OSError:
        return False
    return link_owner == 0 or link_owner == real_owner


class CertifiStore(BundleStore):
    kind = "certifi"
    writer = "(append to cacert.pem)"

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        return cls.detect_in(root, Scope())

    @classmethod
    def detect_in(cls, root: Path, scope: Scope) -> list[TrustStore]:
        candidates: list[Path] = []
        if str(root) == "/":
            candidates += _running_python()
            if os.environ.get("VIRTUAL_ENV"):
                candidates += _bundles_of(Path(os.environ["VIRTUAL_ENV"]))
        for top in scope.venv_roots:
            for prefix in _venvs_under(inside(root, os.path.abspath(top))):
                candidates += _bundles_of(prefix)
        system = {os.path.realpath(inside(root, b)) for b in SYSTEM_BUNDLES}
        found: dict[str, TrustStore] = {}
        for path in candidates:
            store = cls(root, path)
            real = str(store.real)
            if store.real.is_file() and real not in system and _owned_alike(path, store.real):
                found.setdefault(real, store)
        return list(found.values())

    def _blocks(self) -> list[tuple[bool, bytes]]:
        """(shipped by certifi, DER) for every block of the file."""
        try:
            data = self.real.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for match in _HEADED_BLOCK.finditer(data):
            for der in pem_ders(match.group(2) + b"\n"):
                out.append((b"# Label:" in match.group(1), der))
        return out

    def added_ders(self) -> list[bytes]:
        return [der for shipped, der in self._blocks() if not shipped]

    def removable(self) -> set[str]:
        return {fingerprint(der) for der in self.added_ders()}

    def clients(self) -> tuple[str, ...]:
        prefix = _prefix_of(self.path)
        if "_vendor" in self.path.parts:
            return (f"pip in {prefix} (pip >= 24.2 also reads the system store)",)
        return (f"python requests, httpx, aiohttp… in {prefix} (unless REQUESTS_CA_BUNDLE "
                "or SSL_CERT_FILE is set)",)

    def notes(self) -> tuple[str, ...]:
        if "_vendor" in self.path.parts:
            return ()
        return (*self._hooks(), *self._pip())

    def _hooks(self) -> tuple[str, ...]:
        """.pth start-up hooks that touch certifi (pip-system-certs and the like) run at every
        interpreter start and may rewrite or bypass this file."""
        site = self.path.parent.parent
        hooks = [p.name for p in sorted(site.glob("*.pth"))
                 if b"certifi" in p.read_bytes()[:100_000]]
        return tuple(f"{name} in {site} touches certifi at every start: this file may be "
                     "rewritten or bypassed" for name in hooks)

    def _pip(self) -> tuple[str, ...]:
        prefix = _prefix_of(self.path)
        if not list(prefix.glob("lib/python3*/site-packages/pip")):
            return ()
        cert = pip_cert(prefix, self.root)
        if cert:
            return (f"pip in {prefix} reads {cert} instead of certifi (PIP_CERT or "
                    "pip config global.cert)",)
        return (f"pip in {prefix} uses certifi (its vendored copy; pip >= 24.2 also the system "
                "store) unless PIP_CERT or pip config global.cert is set",)
