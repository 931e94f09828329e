"""Which stores a host (or a tree under --root) has, and the operations over all of them.

These functions are the API the CLI and the Ansible modules call: each returns one typed
result. Every change goes through one Transaction, so an install into five stores is undone
(or rolled back after a failure or a crash) as a whole.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall.errors import BadInput
from trustwall.stores.base import (
    Scope,
    StoreChange,
    StoreInfo,
    TrustStore,
    check_installable,
    fingerprint,
    fp_of,
)
from trustwall.stores.bundle import BundleStore
from trustwall.stores.certifi import CertifiStore
from trustwall.stores.conda import CondaStore
from trustwall.stores.debian import DebianStore
from trustwall.stores.docker import DockerStore
from trustwall.stores.env import EnvStore
from trustwall.stores.git import GitStore
from trustwall.stores.hashdir import HashDirStore
from trustwall.stores.java import JavaStore
from trustwall.stores.npm import NpmStore
from trustwall.stores.nss import NssStore
from trustwall.stores.p11kit import P11KitStore

if TYPE_CHECKING:
    from trustwall.certs import Cert

KINDS: dict[str, type[TrustStore]] = {
    "debian": DebianStore,
    "hashdir": HashDirStore,
    "bundle": BundleStore,
    "java": JavaStore,
    "nss": NssStore,
    "p11kit": P11KitStore,
    "certifi": CertifiStore,
    "docker": DockerStore,
    # These point settings at the system bundle the kinds above have just updated.
    "git": GitStore,
    "npm": NpmStore,
    "conda": CondaStore,
    "env": EnvStore,
}


# Kinds that regenerate the system bundle the pointer kinds and env point at.
SYSTEM_KINDS = ("debian", "p11kit")


def _root(root: str | os.PathLike[str] | None) -> Path:
    path = Path(root or "/")
    if not path.is_dir():
        raise BadInput(f"--root {path}: not a directory")
    return Path(os.path.abspath(path))


def detect_stores(root: str | os.PathLike[str] | None = None,
                  kinds: Sequence[str] | None = None, scope: Scope | None = None
                  ) -> list[TrustStore]:
    """The stores present under ``root``. ``kinds`` entries are ``KIND`` or ``KIND:PATH``
    (an explicit store, e.g. ``bundle:/opt/app/ca.pem`` or ``nss:/home/u/.pki/nssdb``);
    ``scope`` adds virtualenv trees and Docker registries to look at."""
    top = _root(root)
    scope = scope or Scope()
    stores: list[TrustStore] = []
    wanted = list(kinds or KINDS)
    for spec in wanted:
        kind, _, path = spec.partition(":")
        if kind not in KINDS:
            raise BadInput(f"unknown store kind {kind!r}", hint="one of: " + ", ".join(KINDS))
        if path:
            stores.append(KINDS[kind](top, Path(path)))
        else:
            stores.extend(KINDS[kind].detect_in(top, scope))
    return stores


@dataclass(frozen=True)
class CertSummary:
    subject: str
    sha256: str
    not_after: str
    is_ca: bool
    source: str | None

    @classmethod
    def of(cls, cert: Cert) -> CertSummary:
        return cls(cert.subject_str, fp_of(cert), cert.not_after.isoformat(), cert.is_ca,
                   cert.source)


@dataclass(frozen=True)
class ChangeResult:
    """What ``ca install`` / ``ca remove`` did (or, with dry_run, would do)."""

    action: str
    certs: tuple[CertSummary, ...]
    stores: tuple[StoreChange, ...]
    txn: str | None
    dry_run: bool

    @property
    def changed(self) -> bool:
        return any(s.added or s.removed for s in self.stores)


def load_for_install(files: Sequence[str], *, force: bool = False) -> list[Cert]:
    from trustwall.certs import load_certs

    certs: list[Cert] = []
    for name in files:
        certs.extend(load_certs(name))
    for cert in certs:
        check_installable(cert, force=force)
    return certs


def install(certs: Sequence[Cert], *, root: str | os.PathLike[str] | None = None,
            kinds: Sequence[str] | None = None, dry_run: bool = False, force: bool = False,
            all_purposes: bool = False, state_dir: str | os.PathLike[str] | None = None,
            scope: Scope | None = None) -> ChangeResult:
    """Trust ``certs`` in every store found (or those named); idempotent by fingerprint.

    ``all_purposes``: where trust can be limited by purpose (p11-kit), trust the CA for
    everything instead of TLS server authentication only.
    """
    from trustwall.journal.transaction import Transaction

    for cert in certs:
        check_installable(cert, force=force)
    stores = detect_stores(root, kinds, scope)
    for store in stores:
        if isinstance(store, P11KitStore):
            store.all_purposes = all_purposes
    if not stores:
        raise BadInput("no trust store found" + (f" under {root}" if root else ""),
                       hint="trustwall stores lists what is detected")
    summaries = tuple(CertSummary.of(c) for c in certs)
    if dry_run:
        changes = []
        bundled: set[str] = set()  # what the system kinds would add to the system bundle
        for store in stores:
            have = store.fingerprints()
            if store.follows_system_bundle():
                have |= bundled
            if store.kind in SYSTEM_KINDS:
                bundled |= {fp_of(c) for c in certs} - have
            changes.append(StoreChange(
                store.kind, str(store.path),
                added=tuple(fp_of(c) for c in certs if fp_of(c) not in have),
                already=tuple(fp_of(c) for c in certs if fp_of(c) in have)))
        return ChangeResult("install", summaries, tuple(changes), None, True)
    names = ", ".join(c.subject_str for c in certs)
    with Transaction("ca-install", f"trust {names}", root=_root(root),
                     state_dir=state_dir) as txn:
        changes = [store.add(certs, txn) for store in stores]
    result = ChangeResult("install", summaries, tuple(changes), None, False)
    return dataclasses.replace(result, txn=txn.id) if result.changed else result


def fingerprints_for(items: Sequence[str]) -> list[str]:
    """Arguments of ``ca remove``: certificate files or SHA-256 fingerprints (hex, colons ok)."""
    from trustwall.certs import load_certs
    from trustwall.certs.model import normalize_fingerprint

    out = []
    for item in items:
        text = normalize_fingerprint(item)
        if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
            out.append(text)
        else:
            out.extend(fingerprint(c.der) for c in load_certs(item))
    return out


def remove(fingerprints: Sequence[str], *, root: str | os.PathLike[str] | None = None,
           kinds: Sequence[str] | None = None, dry_run: bool = False,
           state_dir: str | os.PathLike[str] | None = None,
           scope: Scope | None = None) -> ChangeResult:
    from trustwall.journal.transaction import Transaction

    stores = detect_stores(root, kinds, scope)
    wanted = list(dict.fromkeys(fingerprints))
    if dry_run:
        changes = []
        for store in stores:
            have = store.removable()
            changes.append(StoreChange(store.kind, str(store.path),
                                       removed=tuple(f for f in wanted if f in have),
                                       absent=tuple(f for f in wanted if f not in have)))
        return ChangeResult("remove", (), tuple(changes), None, True)
    with Transaction("ca-remove", "remove " + ", ".join(f[:16] for f in wanted),
                     root=_root(root), state_dir=state_dir) as txn:
        changes = [store.remove(wanted, txn) for store in stores]
    result = ChangeResult("remove", (), tuple(changes), None, False)
    return dataclasses.replace(result, txn=txn.id) if result.changed else result


def store_infos(root: str | os.PathLike[str] | None = None,
                kinds: Sequence[str] | None = None,
                scope: Scope | None = None) -> list[StoreInfo]:
    return [s.info() for s in detect_stores(root, kinds, scope)]


@dataclass(frozen=True)
class ListedCert:
    kind: str
    store: str
    subject: str
    sha256: str
    not_after: str


def list_certs(root: str | os.PathLike[str] | None = None,
               kinds: Sequence[str] | None = None, *, added: bool = False,
               scope: Scope | None = None) -> list[ListedCert]:
    """Certificates per store (``added``: only those added locally, not shipped)."""
    from trustwall.certs import Cert

    out = []
    for store in detect_stores(root, kinds, scope):
        for der in (store.added_ders() if added else store.ders()):
            try:
                cert = Cert.from_der(der)
                subject, until = cert.subject_str, cert.not_after.isoformat()
            except BadInput:
                subject, until = "(undecodable certificate)", ""
            out.append(ListedCert(store.kind, str(store.path), subject, fingerprint(der), until))
    return out
