"""Java (the JDK's JSSE).

Store: -Djavax.net.ssl.trustStore in JAVA_TOOL_OPTIONS (or _JAVA_OPTIONS, JDK_JAVA_OPTIONS),
else the cacerts of the JDK that ``java`` on PATH belongs to, then JAVA_HOME's, then
/etc/ssl/certs/java/cacerts; any trusted entry is an anchor.
Proxy: none of the variables; only -Dhttps.proxyHost/-Dhttps.proxyPort.

To run it, a tiny HttpsGet class (clients/data/HttpsGet.java) is compiled once per source
version into a cache directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from trustwall.clients.base import ClientUse, ProxyChoice, ignored_proxies, judge_by_exit
from trustwall.clients.login import base_environment
from trustwall.errors import BadInput

if TYPE_CHECKING:
    from trustwall.tls.probe import Target
    from trustwall.tls.verify import Anchors

NAME = "java"
_OPTION_VARIABLES = ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS")
_compile_lock = threading.Lock()


def _option(environ: Mapping[str, str], prop: str) -> str | None:
    for var in _OPTION_VARIABLES:
        m = re.search(rf"-D{re.escape(prop)}=(\S+)", environ.get(var, ""))
        if m:
            return m.group(1)
    return None


def truststore(environ: Mapping[str, str], root: Path) -> str | None:
    """The keystore java reads here (see module doc)."""
    explicit = _option(environ, "javax.net.ssl.trustStore")
    if explicit:
        return explicit
    # The JDK that runs is the `java` on PATH: a tarball JDK under /opt keeps its own
    # lib/security/cacerts, which the distribution's tools never update (Debian's JDKs link
    # theirs to /etc/ssl/certs/java/cacerts). Only meaningful for this host's own root.
    candidates = []
    java = shutil.which("java", path=environ.get("PATH", "")) if str(root) == "/" else None
    if java:
        home = Path(os.path.realpath(java)).parent.parent
        candidates.append(str(home / "lib/security/cacerts"))
    if environ.get("JAVA_HOME"):
        candidates.append(os.path.join(environ["JAVA_HOME"], "lib/security/cacerts"))
    candidates.append(str(root / "etc/ssl/certs/java/cacerts"))
    return next((os.path.realpath(c) for c in candidates if os.path.isfile(c)), None)


def anchor_file(keystore: str, password: str, cache_dir: Path) -> str:
    """The keystore's trusted certificates as a PEM file, read once with ``keytool -list -rfc``
    and cached by the keystore's content digest (a JVM start costs ~0.3 s)."""
    from trustwall.certs import load_certs
    from trustwall.journal.atomic import atomic_write
    from trustwall.proc import run

    digest = hashlib.sha256(Path(keystore).read_bytes()).hexdigest()[:24]
    cached = cache_dir / f"java-{digest}.pem"
    if cached.is_file():
        return str(cached)
    listing = run(["keytool", "-list", "-rfc", "-keystore", keystore, "-storepass", password],
                  timeout=60).stdout
    certs = load_certs(listing.encode(), source=keystore) if "BEGIN CERT" in listing else []
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(cached, "".join(c.pem for c in certs).encode())
    return str(cached)


def anchors(environ: Mapping[str, str], root: Path, stores: Mapping[str, Anchors], *,
            cache_dir: Path) -> dict[str, Anchors]:
    from trustwall.tls.verify import Anchors

    keystore = truststore(environ, root)
    if keystore is None:
        return {}
    password = _option(environ, "javax.net.ssl.trustStorePassword") or "changeit"
    try:
        pem = anchor_file(keystore, password, cache_dir)
    except Exception as exc:  # keytool missing or wrong password: report, do not stop
        return {"java-cacerts": Anchors("java-cacerts", error=f"{keystore}: {exc}")}
    return {"java-cacerts": Anchors("java-cacerts", files=(pem,),
                                    note=f"read from {keystore} with keytool")}


def store(environ: Mapping[str, str], stores: Mapping[str, Anchors]) -> ClientUse | None:
    if "java-cacerts" not in stores:
        return None
    return ClientUse(NAME, "java-cacerts", stores["java-cacerts"].note or "cacerts",
                     partial_chain=True)


def proxy(target: Target, environ: Mapping[str, str]) -> ProxyChoice:
    from trustwall.tls.probe import parse_proxy

    host = _option(environ, "https.proxyHost")
    if host:
        port = _option(environ, "https.proxyPort")
        return ProxyChoice(parse_proxy(f"http://{host}:{port or 443}"),
                           "-Dhttps.proxyHost in JAVA_TOOL_OPTIONS")
    ignored = ignored_proxies(environ)
    return ProxyChoice(None, "java ignores https_proxy and -Dhttps.proxyHost is not set"
                       + (f" ({', '.join(ignored)} is set, unused)" if ignored else ""))


def classes() -> Path:
    """Compile HttpsGet.java once per source version into a cache directory and return it."""
    source = resources.files("trustwall.clients").joinpath("data/HttpsGet.java").read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:12]
    cache = _cache_root() / f"httpsget-{digest}"
    with _compile_lock:
        if (cache / "HttpsGet.class").exists():
            return cache
        cache.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        build = Path(tempfile.mkdtemp(prefix=".build-", dir=cache.parent))
        try:
            (build / "HttpsGet.java").write_bytes(source)
            subprocess.run(["javac", "-d", str(build), str(build / "HttpsGet.java")],
                           check=True, capture_output=True, timeout=120,
                           env=base_environment(str(build)))
            (build / "HttpsGet.java").unlink()
            # Another process may win the race; its copy is identical.
            with contextlib.suppress(OSError):
                build.rename(cache)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return cache


def _cache_root() -> Path:
    """Root's /var/cache (not a world-writable /tmp name that anyone could create first and
    fill with a class of their own), else the user's cache."""
    if os.geteuid() == 0:
        return Path("/var/cache/trustwall")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trustwall"


def argv(url: str, *, proxy: str | None = None, timeout: float = 15) -> list[str]:
    props = []
    if proxy:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if not parts.hostname or not parts.port:
            raise BadInput(f"proxy {proxy!r}: expected http://host:port")
        props = [f"-Dhttps.proxyHost={parts.hostname}", f"-Dhttps.proxyPort={parts.port}"]
    return ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", *props,
            "-cp", str(classes()), "HttpsGet", url, str(int(max(1, timeout)))]


def judge(exit_code: int, stdout: str, stderr: str) -> tuple[bool, str]:
    return judge_by_exit(exit_code, stderr)
