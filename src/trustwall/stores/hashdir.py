"""OpenSSL hashed directory (CApath, SSL_CERT_DIR): one PEM per CA plus ``HHHHHHHH.N`` links.

The links are decided by the certs toolbox's ``rehash_dir`` (apps/rehash.c step by step) in
dry-run mode and then written through the transaction, so they are exactly what
``openssl rehash`` would make and every link is journaled. Under ``--root`` the directory's
symlinks point at root-relative paths; the decision runs on a shadow directory whose entries
resolve inside the root.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall.errors import TrustwallError
from trustwall.proc import pid_alive
from trustwall.stores.base import (
    TrustStore,
    file_slug,
    fingerprint,
    inside,
    pem_ders,
    resolve_in_root,
)

if TYPE_CHECKING:
    from trustwall.certs import Cert
    from trustwall.journal.transaction import Transaction

CERT_EXTENSIONS = (".pem", ".crt", ".cer")
ETC_CERTS = "/etc/ssl/certs"


def is_hash_link(name: str) -> bool:
    stem, dot, number = name.partition(".")
    return (len(stem) == 8 and bool(dot) and all(c in "0123456789abcdef" for c in stem)
            and (number.isdigit() or (number[:1] == "r" and number[1:].isdigit())))


def _shadow_parent() -> str | None:
    shm = "/dev/shm"
    if not (os.path.isdir(shm) and os.access(shm, os.W_OK)):
        return None
    _sweep_stale_shadows(shm)
    return shm


def _sweep_stale_shadows(parent: str) -> None:
    """Remove shadow dirs of processes that died inside rehash_plan (kill -9): /dev/shm is RAM."""
    import shutil

    for entry in os.scandir(parent):
        parts = entry.name.split("-")
        if (entry.name.startswith(_SHADOW_PREFIX) and len(parts) > 3 and parts[2].isdigit()
                and not pid_alive(int(parts[2]))):
            shutil.rmtree(entry.path, ignore_errors=True)


_SHADOW_PREFIX = "tw-rehash-"


def rehash_plan(directory: Path, root: Path,
                hashes: set[str] | None = None) -> list[tuple[str, str, str]]:
    """``(action, link, target)`` for every link ``openssl rehash`` would create or remove.

    With ``hashes`` only those buckets are decided (rehash decides each bucket on its own):
    their links, the files the links name, and every file not linked yet. That keeps an
    incremental install from reading the whole directory.
    """
    from trustwall.certs.rehash import rehash_dir

    entries = list(os.scandir(directory))
    linked, ours = set(), set()  # targets of any hash link / of links in the wanted buckets
    for entry in entries:
        if entry.is_symlink() and is_hash_link(entry.name):
            target = os.readlink(entry.path)
            linked.add(target)
            if hashes is None or entry.name[:8] in hashes:
                ours.add(target)
    with tempfile.TemporaryDirectory(prefix=f"{_SHADOW_PREFIX}{os.getpid()}-",
                                     dir=_shadow_parent()) as shadow:
        for entry in entries:
            dest = os.path.join(shadow, entry.name)
            if entry.is_symlink() and is_hash_link(entry.name):
                if hashes is None or entry.name[:8] in hashes:
                    os.symlink(os.readlink(entry.path), dest)
            elif entry.name.lower().endswith((*CERT_EXTENSIONS, ".crl")) and (
                    hashes is None or entry.name not in linked or entry.name in ours):
                os.symlink(resolve_in_root(root, Path(entry.path)), dest)
        result = rehash_dir(shadow, dry_run=True)
    changes = [(c.action, c.link, c.target) for c in result.changes if c.action != "kept"]
    if hashes is not None:
        changes = [c for c in changes if c[1][:8] in hashes]
    return changes


def apply_rehash(directory: Path, root: Path, txn: Transaction,
                 hashes: set[str] | None = None) -> None:
    """Bring the hash links of ``directory`` up to date through ``txn``."""
    for action, link, target in rehash_plan(directory, root, hashes):
        if action == "created":
            txn.symlink(directory / link, target)
        else:
            txn.remove_file(directory / link)


def subject_hash_of(der: bytes) -> str:
    from trustwall.certs.der import certificate_names
    from trustwall.certs.names import name_hash

    return name_hash(certificate_names(der)[1])


def single_cert_files(directory: Path, root: Path) -> dict[Path, bytes]:
    """Files OpenSSL's CApath lookup can use (exactly one certificate each) -> their DER."""
    out: dict[Path, bytes] = {}
    if not directory.is_dir():
        return out
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if is_hash_link(entry.name) or not entry.name.lower().endswith(CERT_EXTENSIONS):
            continue
        real = resolve_in_root(root, Path(entry.path))
        try:
            ders = pem_ders(real.read_bytes())
        except (OSError, TrustwallError):  # unreadable or garbled: OpenSSL skips it too
            continue
        if len(ders) == 1:
            out[Path(entry.path)] = ders[0]
    return out


class HashDirStore(TrustStore):
    kind = "hashdir"
    writer = "openssl rehash"

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        if str(root) != "/":
            return []
        # The Debian-managed /etc/ssl/certs is the debian kind's (it keeps it in step with
        # the bundle); a second writer there would add each CA twice.
        managed = {os.path.realpath(inside(root, ETC_CERTS))} \
            if inside(root, "/etc/ca-certificates.conf").exists() else set()
        dirs = [d for d in os.environ.get("SSL_CERT_DIR", "").split(":") if d]
        return [cls(root, Path(d)) for d in dict.fromkeys(dirs)
                if Path(d).is_dir() and os.path.realpath(d) not in managed]

    def ders(self) -> list[bytes]:
        return list(single_cert_files(self.path, self.root).values())

    def clients(self) -> tuple[str, ...]:
        return ("OpenSSL CApath users (SSL_CERT_DIR): curl, wget, python ssl, git",)

    def _add(self, certs: Sequence[Cert], txn: Transaction) -> None:
        for cert in certs:
            txn.write_file(self.path / f"{file_slug(cert)}.pem", cert.pem.encode())
        apply_rehash(self.path, self.root, txn, {c.subject_hash for c in certs})

    def _remove(self, fingerprints: Sequence[str], txn: Transaction) -> None:
        wanted, hashes = set(fingerprints), set()
        for path, der in single_cert_files(self.path, self.root).items():
            if fingerprint(der) in wanted:
                hashes.add(subject_hash_of(der))
                txn.remove_file(path)
        apply_rehash(self.path, self.root, txn, hashes)

