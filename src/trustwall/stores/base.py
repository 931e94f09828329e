"""The one interface every trust store kind implements, and helpers they share.

A store is found under a root (``/`` or an image/chroot tree given with ``--root``); paths
inside it are host paths (``root / "etc/ssl/certs"``), while symlink targets written into the
tree are root-relative, exactly as the distro tools write them, so an image stays valid when
booted.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from trustwall.certs.model import fingerprint
from trustwall.errors import BadInput, StoreError

if TYPE_CHECKING:
    from trustwall.certs import Cert
    from trustwall.journal.transaction import Transaction


def inside(root: Path, path: str) -> Path:
    """``/etc/x`` under ``root``."""
    return root / path.lstrip("/")


def resolve_in_root(root: Path, path: Path) -> Path:
    """Follow symlinks the way a process chrooted at ``root`` would (absolute targets are
    re-rooted, ``..`` stops at the root); the result is a host path, which may not exist."""
    from trustwall.journal.rootfs import resolve

    return resolve(root, path, follow_last=True)


def store_name_arg(name: str, store: Path) -> str:
    """An alias/nickname read from a store, checked before it goes into a tool's argv: one
    starting with ``-`` would be read as an option (keytool hands ``-J…`` to the JVM)."""
    if not name or name.startswith("-") or not name.isprintable():
        raise StoreError(f"{store}: entry name {name!r} cannot be passed to a tool safely",
                         hint="remove that entry by hand")
    return name


def fp_of(cert: Cert) -> str:
    return cert.fingerprint


def pem_ders(data: bytes) -> list[bytes]:
    """DER of every certificate PEM block in ``data`` (fast path: no parsing of the DER)."""
    from trustwall.certs.load import pem_blocks

    wanted = {"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"}
    out = []
    for label, der in pem_blocks(data, "<store>"):
        if label in wanted:
            out.append(_first_tlv(der) if label == "TRUSTED CERTIFICATE" else der)
    return out


def _first_tlv(der: bytes) -> bytes:
    from trustwall.certs.der import read_tlv

    _, _, end = read_tlv(der, 0)
    return der[:end]


def file_slug(cert: Cert) -> str:
    """A file/alias name that says what the CA is and cannot collide: ``corp-proxy-ca-1a2b3c4d``.

    Lower-case letters, digits and dashes only: update-ca-certificates mangles spaces, commas
    and parentheses in names, and `sort` orders other characters differently per locale.
    """
    from cryptography.x509.oid import NameOID

    try:
        names = cert.x509.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(names[0].value) if names else cert.subject_str
    except ValueError:  # a subject cryptography cannot decode (see QUIRKS): use our string
        cn = cert.subject_str
    slug = re.sub(r"[^a-z0-9]+", "-", cn.lower()).strip("-")[:40] or "ca"
    return f"{slug}-{fp_of(cert)[:8]}"


def check_installable(cert: Cert, *, force: bool, now: dt.datetime | None = None) -> None:
    """Refuse what must not become a trust anchor by accident: a non-CA or expired certificate."""
    now = now or dt.datetime.now(dt.timezone.utc)
    where = f" ({cert.source})" if cert.source else ""
    if not force and not cert.is_ca:
        raise BadInput(f"{cert.subject_str}{where} is not a CA certificate "
                       "(no basicConstraints CA:TRUE); trusting it would not help",
                       hint="trust the CA that issued it, or --force if you really mean it")
    if not force and cert.not_after < now:
        raise BadInput(f"{cert.subject_str}{where} expired on {cert.not_after:%Y-%m-%d}",
                       hint="get the current CA certificate, or --force")


@dataclass(frozen=True)
class Scope:
    """Places to look beyond each kind's fixed ones: trees holding virtualenvs (certifi) and
    registries (``HOST:PORT``) whose Docker certs.d directory should get the CA."""

    venv_roots: tuple[str, ...] = ()
    registries: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoreInfo:
    """What ``trustwall stores`` shows for one store."""

    kind: str
    path: str
    count: int
    clients: tuple[str, ...]
    writer: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoreChange:
    """What one install/remove did (or would do) to one store."""

    kind: str
    path: str
    added: tuple[str, ...] = ()      # sha256 hex of certificates added
    removed: tuple[str, ...] = ()
    already: tuple[str, ...] = ()    # present before: nothing to do (idempotent)
    absent: tuple[str, ...] = ()     # asked to remove, not there
    notes: tuple[str, ...] = field(default_factory=tuple)


class TrustStore:
    """Base of every kind. Subclasses set ``kind`` and implement the abstract methods."""

    kind: ClassVar[str] = ""
    writer: ClassVar[str] = ""  # the native tool this kind stands in for, for the listing

    def __init__(self, root: Path, path: Path) -> None:
        self.root = Path(root)
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        raise NotImplementedError

    @classmethod
    def detect_in(cls, root: Path, scope: Scope) -> list[TrustStore]:
        """``detect`` for kinds that also look where ``scope`` says (certifi, docker)."""
        return cls.detect(root)

    def ders(self) -> list[bytes]:
        """DER of every certificate the store trusts."""
        raise NotImplementedError

    def added_ders(self) -> list[bytes]:
        """Certificates added locally (by an admin or trustwall), not shipped by the distro."""
        return self.ders()

    def fingerprints(self) -> set[str]:
        return {fingerprint(d) for d in self.ders()}

    def contains(self, cert: Cert) -> bool:
        return fp_of(cert) in self.fingerprints()

    def clients(self) -> tuple[str, ...]:
        return ()

    def follows_system_bundle(self) -> bool:
        """True when this store *is* the system bundle as seen through a setting (git, npm,
        env…): it holds whatever the system kinds add, with nothing written here."""
        return False

    def notes(self) -> tuple[str, ...]:
        return ()

    def info(self) -> StoreInfo:
        return StoreInfo(self.kind, str(self.path), len(self.ders()), self.clients(),
                         self.writer, self.notes())

    def add(self, certs: Sequence[Cert], txn: Transaction) -> StoreChange:
        """Add the certificates not yet present (idempotent by fingerprint)."""
        have = self.fingerprints()
        todo = [c for c in _unique(certs) if fp_of(c) not in have]
        if todo:
            self._add(todo, txn)
        return StoreChange(self.kind, str(self.path),
                           added=tuple(fp_of(c) for c in todo),
                           already=tuple(fp_of(c) for c in _unique(certs) if fp_of(c) in have))

    def removable(self) -> set[str]:
        """Fingerprints ``remove`` can take out (a distro-shipped root may not be one)."""
        return self.fingerprints()

    def remove(self, fingerprints: Iterable[str], txn: Transaction) -> StoreChange:
        have = self.removable()
        wanted = list(dict.fromkeys(fingerprints))
        todo = [fp for fp in wanted if fp in have]
        if todo:
            self._remove(todo, txn)
        shipped = self.fingerprints() - have
        notes = tuple(f"{fp[:16]}… is shipped by the distribution, not added locally; "
                      "not removed" for fp in wanted if fp in shipped)
        return StoreChange(self.kind, str(self.path), removed=tuple(todo),
                           absent=tuple(fp for fp in wanted if fp not in have), notes=notes)

    def _add(self, certs: Sequence[Cert], txn: Transaction) -> None:
        raise NotImplementedError

    def _remove(self, fingerprints: Sequence[str], txn: Transaction) -> None:
        raise NotImplementedError


def _unique(certs: Sequence[Cert]) -> list[Cert]:
    seen: dict[str, Cert] = {}
    for c in certs:
        seen.setdefault(fp_of(c), c)
    return list(seen.values())


def owner_and_mode(path: Path, default_mode: int = 0o644) -> tuple[tuple[int, int], int]:
    """Keep the owner and mode of a file we rewrite (a user's NSS db stays theirs)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return (0, 0), default_mode
    return (st.st_uid, st.st_gid), st.st_mode & 0o7777
