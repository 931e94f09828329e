"""Which trust store each client would use on this host, given its environment.

Everything is computed from an explicit ``environ`` mapping and a ``root`` directory, so tests
(and a probe of another machine's files) never depend on the running host's variables. The
stores every OpenSSL-like client may read are found here; the rule of each client (which of
them it reads, and the stores only it reads) is in its module under :mod:`trustwall.clients`,
checked against the real clients in tests/e2e.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trustwall.clients import CLIENTS, ClientUse, client_anchors, client_uses
from trustwall.tls.verify import Anchors

ENV_FILE_STORES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT",
                   "AWS_CA_BUNDLE", "GIT_SSL_CAINFO")
ENV_DIR_STORES = ("SSL_CERT_DIR", "GIT_SSL_CAPATH")

_SYSTEM_BUNDLES = ("etc/ssl/certs/ca-certificates.crt", "etc/pki/tls/certs/ca-bundle.crt",
                   "etc/ssl/ca-bundle.pem", "etc/ssl/cert.pem")


@dataclass(frozen=True)
class Environment:
    """The trust stores found and which client reads which."""

    stores: dict[str, Anchors]
    clients: dict[str, ClientUse]


def _system_bundle(root: Path) -> str:
    for rel in _SYSTEM_BUNDLES:
        if os.path.isfile(root / rel):
            return str(root / rel)
    return str(root / _SYSTEM_BUNDLES[0])


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
    stores["system-bundle"] = Anchors("system-bundle", files=(_system_bundle(root_path),))
    capath = root_path / "etc/ssl/certs"
    if capath.is_dir():
        stores["system-capath"] = Anchors("system-capath", dirs=(str(capath),))
    stores["certifi"] = Anchors("certifi", files=(certifi_path,))
    for var in ENV_FILE_STORES:
        if environ.get(var):
            stores[f"env:{var}"] = Anchors(f"env:{var}", files=(environ[var],))
    for var in ENV_DIR_STORES:
        if environ.get(var):
            stores[f"env:{var}"] = Anchors(f"env:{var}", dirs=(environ[var],))
    # OpenSSL's default paths as Python's ssl (and pip's truststore) load them.
    openssl_file = environ.get("SSL_CERT_FILE") or str(root_path / "usr/lib/ssl/cert.pem")
    openssl_dir = environ.get("SSL_CERT_DIR") or str(root_path / "usr/lib/ssl/certs")
    stores["openssl-default"] = Anchors("openssl-default", files=(openssl_file,),
                                        dirs=(openssl_dir,), optional=True)
    stores.update(client_anchors(environ, root_path, stores, java=java,
                                 cache_dir=cache_dir or default_cache_dir(environ)))
    return Environment(stores, client_uses(environ, stores))


__all__ = ["CLIENTS", "ENV_DIR_STORES", "ENV_FILE_STORES", "Environment", "discover"]
