"""Verify a presented chain against one set of anchors, with OpenSSL's own semantics.

The verification is OpenSSL's ``X509_verify_cert`` (through pyOpenSSL), configured the way
clients configure it: purpose ``sslserver`` (the leaf's extendedKeyUsage must allow TLS
servers), the host name or IP address checked by OpenSSL itself (so a wrong name on an untrusted
chain reports the trust error first, and a wrong name on an expired chain reports the name, as
``openssl verify -verify_hostname`` and Python's ssl do), partial wildcards refused (as Python).
The error is reported by its ``X509_V_ERR_*`` name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from OpenSSL import crypto
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

from trustwall.tls.explain import verify_code_name


@dataclass(frozen=True)
class Anchors:
    """One trust store as a client loads it: PEM bundle files, OpenSSL CApath dirs, and
    certificates given directly (DER)."""

    name: str
    files: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()
    certs: tuple[bytes, ...] = ()
    note: str | None = None  # how faithful this is, e.g. node's built-in roots ~ certifi
    error: str | None = None  # the store exists but could not be read (e.g. keytool failed)
    optional: bool = False  # a composite store: missing parts are skipped, as clients do

    @functools.cached_property
    def key(self) -> tuple:
        """Identity for caching: the paths and their size and mtime when first asked."""
        def stat(path: str) -> tuple:
            try:
                st = os.stat(path)
            except OSError:
                return (path, None)
            return (path, st.st_size, st.st_mtime_ns)
        return (tuple(stat(f) for f in self.files), tuple(stat(d) for d in self.dirs),
                self.certs)

    def problem(self) -> str | None:
        """Why this store cannot be read, or None."""
        if self.error:
            return self.error
        if self.optional:
            present = [p for p in self.files if os.path.isfile(p)] + \
                [p for p in self.dirs if os.path.isdir(p)]
            return None if present or self.certs else \
                f"none of {', '.join(self.files + self.dirs)} exists"
        for path in self.files:
            if not os.path.isfile(path):
                return f"store file {path} does not exist"
            if not os.access(path, os.R_OK):
                return f"store file {path} is not readable"
        for path in self.dirs:
            if not os.path.isdir(path):
                return f"store directory {path} does not exist"
        if not self.files and not self.dirs and not self.certs:
            return "no store configured"
        return None


@dataclass(frozen=True)
class Verdict:
    """Whether the chain is trusted by one store, for one name."""

    trusted: bool
    error: str | None = None  # X509_V_ERR_* name, or a store problem
    code: int = 0  # OpenSSL verify code (0 = ok, -1 = store unreadable)
    depth: int | None = None
    message: str | None = None
    anchor: str | None = None  # subject of the anchor the path ends at

    @property
    def short(self) -> str:
        return "ok" if self.trusted else (self.error or "untrusted")


STORE_UNREADABLE = "STORE_UNREADABLE"
NO_CHAIN = "NO_CHAIN"


@functools.lru_cache(maxsize=4096)
def _x509(der: bytes) -> crypto.X509:
    """Parsed once: a chain is verified against every store (the objects are only read)."""
    return crypto.load_certificate(crypto.FILETYPE_ASN1, der)


class Verifier:
    """Builds OpenSSL stores once per (anchors, name, flags) and verifies chains.

    One verifier per probe or per scan: loading a 140-root bundle costs ~10 ms, so stores are
    cached (the host name lives in the store's parameters, hence in the key), and so are
    verdicts - a scan meets the same chain (often the same inspection CA's) again and again.
    """

    def __init__(self, *, at: dt.datetime | None = None, max_stores: int = 256) -> None:
        self.at = at
        self._stores: dict[tuple, crypto.X509Store] = {}
        self._verdicts: dict[tuple, Verdict] = {}
        self._max = max_stores

    def _store(self, anchors: Anchors, name: str | None, flags: int) -> crypto.X509Store:
        key = (anchors.key, name, flags)
        cached = self._stores.pop(key, None)
        if cached is not None:
            self._stores[key] = cached  # most recently used last: eviction takes the oldest
            return cached
        store = crypto.X509Store()
        for path in anchors.files:
            # A file without certificates: OpenSSL clients go on with what they have.
            with contextlib.suppress(crypto.Error):
                store.load_locations(path)
        for path in anchors.dirs:
            store.load_locations(None, path)
        for der in anchors.certs:
            store.add_cert(_x509(der))
        if flags:
            store.set_flags(flags)
        _lib.X509_STORE_set_purpose(store._store, _lib.X509_PURPOSE_SSL_SERVER)
        _set_params(store, name, self.at)
        if anchors.files or anchors.dirs:  # certificate-only stores cost nothing to rebuild
            if len(self._stores) >= self._max:
                self._stores.pop(next(iter(self._stores)))
            self._stores[key] = store
        return store

    def verify(self, presented: Sequence[bytes], anchors: Anchors, name: str | None, *,
               partial_chain: bool = False, strict: bool = False) -> Verdict:
        """Verify ``presented`` (DER, leaf first) for ``name`` against ``anchors``.

        ``partial_chain``: a trusted intermediate is enough (curl, git, Java, Python 3.13+ do
        this); ``strict``: X509_V_FLAG_X509_STRICT (Python 3.13+).
        """
        if not presented:
            return Verdict(False, NO_CHAIN, -1, message="no certificate was presented")
        flags = (crypto.X509StoreFlags.PARTIAL_CHAIN if partial_chain else 0) | \
            (crypto.X509StoreFlags.X509_STRICT if strict else 0)
        memo = (anchors.key, name, flags, tuple(presented))
        known = self._verdicts.get(memo)
        if known is None:
            known = self._verify(presented, anchors, name, flags, strict)
            if len(self._verdicts) >= 16 * self._max:
                self._verdicts.clear()
            self._verdicts[memo] = known
        return known

    def _verify(self, presented: Sequence[bytes], anchors: Anchors, name: str | None,
                flags: int, strict: bool) -> Verdict:
        problem = anchors.problem()
        if problem is not None:
            return Verdict(False, STORE_UNREADABLE, -1, message=problem)
        store = self._store(anchors, name, flags)
        leaf, *rest = (_x509(der) for der in presented)
        context = crypto.X509StoreContext(store, leaf, chain=rest)
        try:
            chain = context.get_verified_chain()
        except crypto.X509StoreContextError as exc:
            code, depth, message = exc.errors[0], exc.errors[1], exc.errors[2]
            return Verdict(False, verify_code_name(code), code, depth, message)
        path = [c.to_cryptography() for c in chain]
        if strict:
            depth = _bcons_not_critical(path)
            if depth is not None:
                return Verdict(False, verify_code_name(89), 89, depth,
                               "Basic Constraints of CA cert not marked critical")
        return Verdict(True, None, 0, anchor=path[-1].subject.rfc4514_string())


def _bcons_not_critical(path: list[x509.Certificate]) -> int | None:
    """Depth of the first CA whose basicConstraints is not critical, trust anchor included.

    OpenSSL 3.0 - which Python, curl and node link on this host - reports this (code 89) under
    X509_STRICT for the anchor too; the OpenSSL 4 inside the cryptography wheel that runs our
    verification no longer checks anchors, so the check is repeated here.
    """
    for depth, cert in enumerate(path):
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            continue
        if bc.value.ca and not bc.critical:
            return depth
    return None


def _set_params(store: crypto.X509Store, name: str | None, at: dt.datetime | None) -> None:
    """Put the expected host name / IP and the verification time into the store's parameters.

    pyOpenSSL has no API for the host: this is what ``SSL_set1_host`` does in Python's ssl and
    ``-verify_hostname`` in openssl, done on the store so the context inherits it.
    """
    param = _lib.X509_VERIFY_PARAM_new()
    param = _ffi.gc(param, _lib.X509_VERIFY_PARAM_free)
    if name:
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            ip = None
        if ip is not None:
            packed = ip.packed
            _lib.X509_VERIFY_PARAM_set1_ip(param, packed, len(packed))
        else:
            _lib.X509_VERIFY_PARAM_set_hostflags(
                param, _lib.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS)
            raw = name.encode("idna")
            _lib.X509_VERIFY_PARAM_set1_host(param, raw, len(raw))
    if at is not None:
        _lib.X509_VERIFY_PARAM_set_time(param, int(at.timestamp()))
    _lib.X509_STORE_set1_param(store._store, param)
