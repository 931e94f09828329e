"""Debian/Ubuntu: /usr/local/share/ca-certificates/*.crt, compiled by update-ca-certificates
into /etc/ssl/certs (one ``<name>.pem`` link per CA, hash links, ca-certificates.crt).

We do update-ca-certificates' work incrementally, through the journal, instead of running it:
the same files come out byte for byte (a test compares them with the real tool), it takes
milliseconds instead of a second, and every file it touches gets a before-image for undo --
re-running the distro tool is not an undo (it leaves removed CAs in Java's cacerts and
rewrites bytes). The update.d hooks are not run: the Java store is handled by its own kind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall.errors import StoreError, TrustwallError
from trustwall.stores.base import (
    TrustStore,
    file_slug,
    fingerprint,
    inside,
    pem_ders,
    resolve_in_root,
)
from trustwall.stores.hashdir import apply_rehash, subject_hash_of

if TYPE_CHECKING:
    from trustwall.certs import Cert
    from trustwall.journal.transaction import Transaction

LOCAL = "/usr/local/share/ca-certificates"
SHARED = "/usr/share/ca-certificates"
CONF = "/etc/ca-certificates.conf"
ETC_CERTS = "/etc/ssl/certs"
BUNDLE = "ca-certificates.crt"
HOOKS = "/etc/ca-certificates/update.d"


def pem_link_name(crt_name: str) -> str:
    """The ``/etc/ssl/certs`` link name update-ca-certificates derives from a ``.crt`` name."""
    stem = crt_name[:-4] if crt_name.endswith(".crt") else crt_name
    return stem.replace(" ", "_").replace("(", "=").replace(")", "=").replace(",", "_") + ".pem"


def _with_newline(data: bytes) -> bytes:
    # sed -e '$a\' adds the missing final newline (Debian bug #635570).
    return data if not data or data.endswith(b"\n") else data + b"\n"


class DebianStore(TrustStore):
    kind = "debian"
    writer = "update-ca-certificates"

    def __init__(self, root: Path, path: Path) -> None:
        super().__init__(root, path)
        self.local = inside(self.root, LOCAL)
        self.shared = inside(self.root, SHARED)
        self.conf = inside(self.root, CONF)
        self.etc_certs = inside(self.root, ETC_CERTS)
        self.bundle = self.etc_certs / BUNDLE

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        if inside(root, CONF).exists() and inside(root, ETC_CERTS).is_dir():
            return [cls(root, inside(root, LOCAL))]
        return []

    def ders(self) -> list[bytes]:
        try:
            return pem_ders(self.bundle.read_bytes())
        except FileNotFoundError:
            return []

    def local_files(self) -> list[Path]:
        """What ``find -L LOCALCERTSDIR -type f -name '*.crt' | sort`` lists (C-locale order)."""
        if not self.local.is_dir():
            return []
        found = [p for p in self.local.rglob("*.crt") if resolve_in_root(self.root, p).is_file()]
        return sorted(found, key=lambda p: str(p).encode())

    def added_ders(self) -> list[bytes]:
        out = []
        for path in self.local_files():
            try:
                out.extend(pem_ders(resolve_in_root(self.root, path).read_bytes()))
            except (OSError, TrustwallError):
                continue
        return out

    def removable(self) -> set[str]:
        return {fingerprint(d) for d in self.added_ders()}

    def notes(self) -> tuple[str, ...]:
        notes = []
        hooks = inside(self.root, HOOKS)
        if hooks.is_dir():
            for hook in sorted(hooks.iterdir()):
                if hook.name != "jks-keystore" and os.access(hook, os.X_OK):
                    notes.append(f"hook {hook} is not run by trustwall (the java kind "
                                 "replaces jks-keystore); run update-ca-certificates if the "
                                 "program it feeds needs the change")
        if self.local.is_dir():
            for p in sorted(self.local.rglob("*")):
                if p.is_file() and not p.name.endswith(".crt"):
                    notes.append(f"{p} is ignored: update-ca-certificates reads only *.crt "
                                 f"(rename it to {p.stem}.crt)")
            for p in self.local_files():
                try:
                    n = len(pem_ders(resolve_in_root(self.root, p).read_bytes()))
                except (OSError, TrustwallError):
                    n = 0
                if n != 1:
                    notes.append(f"{p} holds {n} certificates: they go into the bundle, but "
                                 "CApath (hash links) readers skip the file")
        return tuple(notes)

    def clients(self) -> tuple[str, ...]:
        out = ["curl, wget, git, python ssl/urllib, openssl (ca-certificates.crt and CApath)"]
        if str(self.root) == "/":
            from trustwall.stores.bundle import BUNDLE_VARIABLES

            bundle = os.path.realpath(self.bundle)
            pointing = [v for v in BUNDLE_VARIABLES
                        if os.environ.get(v) and os.path.realpath(os.environ[v]) == bundle]
            if pointing:
                out.append("programs run with " + ", ".join(pointing))
        if len(out) == 1:
            out.append("requests/node only via REQUESTS_CA_BUNDLE / NODE_EXTRA_CA_CERTS")
        return tuple(out)

    def build_bundle(self) -> bytes:
        """ca-certificates.crt as update-ca-certificates concatenates it."""
        parts = []
        if self.conf.exists():
            for line in self.conf.read_text(errors="replace").splitlines():
                name = line.strip()
                if not name or name.startswith(("#", "!")):
                    continue
                real = resolve_in_root(self.root, self.shared / name)
                if real.is_file():
                    parts.append(_with_newline(real.read_bytes()))
        for path in self.local_files():
            parts.append(_with_newline(resolve_in_root(self.root, path).read_bytes()))
        return b"".join(parts)

    def _add(self, certs: Sequence[Cert], txn: Transaction) -> None:
        for cert in certs:
            name = f"{file_slug(cert)}.crt"
            txn.write_file(self.local / name, cert.pem.encode(), mode=0o644)
            txn.symlink(self.etc_certs / pem_link_name(name), f"{LOCAL}/{name}")
        self._compile(txn, {c.subject_hash for c in certs})

    def _remove(self, fingerprints: Sequence[str], txn: Transaction) -> None:
        wanted, hashes = set(fingerprints), set()
        for path in self.local_files():
            ders = pem_ders(resolve_in_root(self.root, path).read_bytes())
            hits = [d for d in ders if fingerprint(d) in wanted]
            if not hits:
                continue
            if len(ders) > 1:
                raise StoreError(f"{path} holds {len(ders)} certificates; not removing the "
                                 "others with it", hint="split the file, then remove again")
            hashes.add(subject_hash_of(hits[0]))
            txn.remove_file(path)
            link = self.etc_certs / pem_link_name(path.name)
            if link.is_symlink():
                txn.remove_file(link)
        self._compile(txn, hashes)

    def _compile(self, txn: Transaction, hashes: set[str]) -> None:
        apply_rehash(self.etc_certs, self.root, txn, hashes)
        txn.write_file(self.bundle, self.build_bundle(), mode=0o644)
