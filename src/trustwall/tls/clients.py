"""Which trust store each client would use on this host, given its environment.

Everything is computed from an explicit ``environ`` mapping and a ``root`` directory, so tests
(and a probe of another machine's files) never depend on the running host's variables.

Sources for each client's rule (checked against the real clients in tests/e2e):
  * curl (tool, OpenSSL): ``--cacert`` > CURL_CA_BUNDLE > SSL_CERT_DIR/SSL_CERT_FILE >
    compiled-in bundle; since 7.68 it sets X509_V_FLAG_PARTIAL_CHAIN.
  * wget (GnuTLS on Debian): the system bundle; GnuTLS accepts a trusted intermediate.
  * python ssl (urllib): OpenSSL default paths, overridden by SSL_CERT_FILE / SSL_CERT_DIR;
    3.13+ adds VERIFY_X509_STRICT and VERIFY_X509_PARTIAL_CHAIN.
  * requests: REQUESTS_CA_BUNDLE > CURL_CA_BUNDLE > its certifi.
  * pip: PIP_CERT > REQUESTS_CA_BUNDLE > CURL_CA_BUNDLE > the system (truststore, pip >= 24.2).
  * java: -Djavax.net.ssl.trustStore in JAVA_TOOL_OPTIONS, else the cacerts of the JDK that
    `java` on PATH belongs to (then JAVA_HOME's, then /etc/ssl/certs/java/cacerts); any
    trusted entry is an anchor.
  * node: its built-in Mozilla roots (approximated with certifi) + NODE_EXTRA_CA_CERTS;
    ``--use-openssl-ca`` in NODE_OPTIONS switches to the OpenSSL default paths.
  * git (libcurl-gnutls on Debian): GIT_SSL_CAINFO > GIT_SSL_CAPATH > the system bundle.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trustwall.tls.verify import Anchors

CLIENTS = ("curl", "wget", "python", "requests", "pip", "java", "node", "git")

ENV_FILE_STORES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT",
                   "AWS_CA_BUNDLE", "GIT_SSL_CAINFO")
ENV_DIR_STORES = ("SSL_CERT_DIR", "GIT_SSL_CAPATH")

_SYSTEM_BUNDLES = ("etc/ssl/certs/ca-certificates.crt", "etc/pki/tls/certs/ca-bundle.crt",
                   "etc/ssl/ca-bundle.pem", "etc/ssl/cert.pem")


@dataclass(frozen=True)
class ClientUse:
    """The store a client would read here, and how it verifies."""

    client: str
    store: str
    because: str  # which setting chose the store
    partial_chain: bool = False
    strict: bool = False
    note: str | None = None


@dataclass(frozen=True)
class Environment:
    """The trust stores found and which client reads which."""

    stores: dict[str, Anchors]
    clients: dict[str, ClientUse]


def _under(root: Path, rel: str) -> str:
    return str(root / rel)


def _system_bundle(root: Path) -> str:
    for rel in _SYSTEM_BUNDLES:
        if os.path.isfile(_under(root, rel)):
            return _under(root, rel)
    return _under(root, _SYSTEM_BUNDLES[0])


def _java_truststore(environ: Mapping[str, str], root: Path) -> str | None:
    for var in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS"):
        m = re.search(r"-Djavax\.net\.ssl\.trustStore=(\S+)", environ.get(var, ""))
        if m:
            return m.group(1)
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
    candidates.append(_under(root, "etc/ssl/certs/java/cacerts"))
    return next((os.path.realpath(c) for c in candidates if os.path.isfile(c)), None)


def _wgetrc_ca(environ: Mapping[str, str], root: Path
               ) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """ca_certificate / ca_directory from /etc/wgetrc and $WGETRC (or ~/.wgetrc); wget adds
    them to GnuTLS's system trust."""
    files: list[str] = []
    dirs: list[str] = []
    user = environ.get("WGETRC") or os.path.join(environ.get("HOME", "/root"), ".wgetrc")
    for rc in (_under(root, "etc/wgetrc"), user):
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


def _java_password(environ: Mapping[str, str]) -> str:
    for var in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS"):
        m = re.search(r"-Djavax\.net\.ssl\.trustStorePassword=(\S+)", environ.get(var, ""))
        if m:
            return m.group(1)
    return "changeit"


def java_anchor_file(keystore: str, password: str, cache_dir: Path) -> str:
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


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME", "/root"), ".cache")
    return Path(base) / "trustwall"


def running_certifi() -> str:
    """certifi's bundle for the running Python, found without importing certifi (its
    importlib.resources start-up costs ~50 ms); certifi ships cacert.pem beside __init__."""
    import importlib.util

    spec = importlib.util.find_spec("certifi")
    if spec is None or spec.origin is None:
        return "certifi-is-not-installed"
    return os.path.join(os.path.dirname(spec.origin), "cacert.pem")


def discover(environ: Mapping[str, str], root: str | os.PathLike[str] = "/", *,
             certifi_path: str | None = None, java: bool = True,
             cache_dir: Path | None = None) -> Environment:
    """Find the stores and roll up which client reads which, from ``environ`` and ``root``.

    ``certifi_path`` defaults to the running Python's certifi; ``java=False`` skips keytool.
    """
    root_path = Path(root)
    if certifi_path is None:
        certifi_path = running_certifi()
    stores: dict[str, Anchors] = {}
    bundle = _system_bundle(root_path)
    stores["system-bundle"] = Anchors("system-bundle", files=(bundle,))
    capath = _under(root_path, "etc/ssl/certs")
    if os.path.isdir(capath):
        stores["system-capath"] = Anchors("system-capath", dirs=(capath,))
    stores["certifi"] = Anchors("certifi", files=(certifi_path,))
    for var in ENV_FILE_STORES:
        if environ.get(var):
            stores[f"env:{var}"] = Anchors(f"env:{var}", files=(environ[var],))
    for var in ENV_DIR_STORES:
        if environ.get(var):
            stores[f"env:{var}"] = Anchors(f"env:{var}", dirs=(environ[var],))
    # OpenSSL's default paths as Python's ssl (and pip's truststore) load them.
    openssl_file = environ.get("SSL_CERT_FILE") or _under(root_path, "usr/lib/ssl/cert.pem")
    openssl_dir = environ.get("SSL_CERT_DIR") or _under(root_path, "usr/lib/ssl/certs")
    stores["openssl-default"] = Anchors("openssl-default", files=(openssl_file,),
                                        dirs=(openssl_dir,), optional=True)
    node_options = shlex.split(environ.get("NODE_OPTIONS", ""))
    node_base = stores["openssl-default"] if "--use-openssl-ca" in node_options else \
        stores["certifi"]
    extra = environ.get("NODE_EXTRA_CA_CERTS")
    stores["node"] = Anchors(
        "node", files=node_base.files + ((extra,) if extra else ()), dirs=node_base.dirs,
        optional=True,
        note=None if node_base is stores["openssl-default"] else
        "node's built-in roots approximated with certifi (both are Mozilla's set)")
    wgetrc = _wgetrc_ca(environ, root_path)
    if wgetrc:
        stores["wget"] = Anchors("wget", files=(bundle, *wgetrc[0]), dirs=wgetrc[1],
                                 optional=True)
    java_store = _java_truststore(environ, root_path) if java else None
    if java_store is not None:
        try:
            pem = java_anchor_file(java_store, _java_password(environ),
                                   cache_dir or default_cache_dir(environ))
            stores["java-cacerts"] = Anchors("java-cacerts", files=(pem,),
                                             note=f"read from {java_store} with keytool")
        except Exception as exc:  # keytool missing or wrong password: report, do not stop
            stores["java-cacerts"] = Anchors("java-cacerts", error=f"{java_store}: {exc}")
    return Environment(stores, _clients(environ, stores))


def _clients(environ: Mapping[str, str], stores: dict[str, Anchors]) -> dict[str, ClientUse]:
    def env_or(names: tuple[str, ...], fallback: str, fallback_why: str) -> tuple[str, str]:
        for name in names:
            if environ.get(name):
                return f"env:{name}", name
        return fallback, fallback_why

    uses: dict[str, ClientUse] = {}
    store, why = env_or(("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"), "system-bundle",
                        "compiled-in CA bundle")
    uses["curl"] = ClientUse("curl", store, why, partial_chain=True)
    uses["wget"] = ClientUse("wget", "wget" if "wget" in stores else "system-bundle",
                             "GnuTLS system trust + wgetrc ca_certificate" if "wget" in stores
                             else "GnuTLS system trust", partial_chain=True)
    modern = sys.version_info >= (3, 13)
    uses["python"] = ClientUse(
        "python", "openssl-default",
        "SSL_CERT_FILE/SSL_CERT_DIR" if environ.get("SSL_CERT_FILE") or
        environ.get("SSL_CERT_DIR") else "OpenSSL default paths",
        partial_chain=modern, strict=modern)
    store, why = env_or(("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"), "certifi", "certifi")
    uses["requests"] = ClientUse("requests", store, why)
    store, why = env_or(("PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"), "openssl-default",
                        "truststore (pip >= 24.2)")
    uses["pip"] = ClientUse("pip", store, why)
    if "java-cacerts" in stores:
        uses["java"] = ClientUse("java", "java-cacerts", stores["java-cacerts"].note or "cacerts",
                                 partial_chain=True)
    uses["node"] = ClientUse("node", "node",
                             "NODE_EXTRA_CA_CERTS" if environ.get("NODE_EXTRA_CA_CERTS")
                             else "built-in roots", note=stores["node"].note)
    store, why = env_or(("GIT_SSL_CAINFO", "GIT_SSL_CAPATH"), "system-bundle",
                        "libcurl default bundle")
    uses["git"] = ClientUse("git", store, why, partial_chain=True)
    return uses
