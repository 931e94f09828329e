"""p11-kit trust sources (RHEL/Fedora, Arch, SUSE): anchors are files in a source directory,
and the per-format files programs read are extracted from them.

By default the CA goes into ``source/`` as an OpenSSL TRUSTED CERTIFICATE that carries the
serverAuth purpose only: p11-kit then trusts it for TLS servers, not for e-mail or code
signing (``all_purposes`` puts a plain certificate into ``source/anchors/`` instead).
On the running host the family's extract command regenerates the extracted files, with
every file under the extracted directory journaled first; under ``--root`` nothing can run,
so the store says which command to run inside the image.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall.errors import EnvironmentMissing, StoreError, TrustwallError
from trustwall.proc import which
from trustwall.stores.base import TrustStore, file_slug, fingerprint, inside, pem_ders

if TYPE_CHECKING:
    from trustwall.certs import Cert
    from trustwall.journal.transaction import Transaction

SERVER_AUTH_OID = bytes.fromhex("06082b06010505070301")  # 1.3.6.1.5.5.7.3.1


@dataclass(frozen=True)
class Family:
    name: str
    source: str      # where local trust sources go
    shipped: str     # the distribution's own sources
    extracted: str   # what the extract command rewrites
    extract: tuple[str, ...]


FAMILIES = (
    Family("redhat", "/etc/pki/ca-trust/source", "/usr/share/pki/ca-trust-source",
           "/etc/pki/ca-trust/extracted", ("update-ca-trust", "extract")),
    Family("arch", "/etc/ca-certificates/trust-source", "/usr/share/ca-certificates/trust-source",
           "/etc/ca-certificates/extracted", ("trust", "extract-compat")),
    Family("suse", "/etc/pki/trust", "/usr/share/pki/trust", "/var/lib/ca-certificates",
           ("update-ca-certificates",)),
)


def _tlv(tag: int, content: bytes) -> bytes:
    from trustwall.certs.der import encode_tlv

    return encode_tlv(tag, content)


def trusted_certificate_pem(cert: Cert, alias: str) -> str:
    """``openssl x509 -addtrust serverAuth -setalias ALIAS -trustout``, byte for byte."""
    aux = _tlv(0x30, _tlv(0x30, SERVER_AUTH_OID) + _tlv(0x0C, alias.encode()))
    b64 = base64.b64encode(cert.der + aux).decode()
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN TRUSTED CERTIFICATE-----\n{lines}\n-----END TRUSTED CERTIFICATE-----\n"


class P11KitStore(TrustStore):
    kind = "p11kit"
    writer = "update-ca-trust / trust extract-compat"

    def __init__(self, root: Path, path: Path, family: Family | None = None,
                 all_purposes: bool = False) -> None:
        super().__init__(root, path)
        self.family = family or next((f for f in FAMILIES
                                      if str(path).endswith(f.source)), FAMILIES[0])
        self.all_purposes = all_purposes

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        return [cls(root, inside(root, f.source), f) for f in FAMILIES
                if inside(root, f.source).is_dir()]

    def _files(self) -> list[Path]:
        out = []
        for directory in (self.path, self.path / "anchors"):
            if directory.is_dir():
                out.extend(sorted(p for p in directory.iterdir() if p.is_file()))
        return out

    def ders(self) -> list[bytes]:
        out = []
        for directory in (inside(self.root, self.family.shipped), self.path):
            for sub in (directory, directory / "anchors"):
                if sub.is_dir():
                    out.extend(self._read(p) for p in sorted(sub.iterdir()) if p.is_file())
        return [d for ders in out for d in ders]

    def added_ders(self) -> list[bytes]:
        return [d for p in self._files() for d in self._read(p)]

    def removable(self) -> set[str]:
        return {fingerprint(d) for d in self.added_ders()}

    @staticmethod
    def _read(path: Path) -> list[bytes]:
        try:
            return pem_ders(path.read_bytes())
        except (OSError, TrustwallError):
            return []

    def clients(self) -> tuple[str, ...]:
        return ("everything reading the extracted bundles: curl, wget, openssl, python, "
                "java (extracted java/cacerts), NSS via p11-kit-trust",)

    def notes(self) -> tuple[str, ...]:
        if str(self.root) != "/":
            return (f"{self.family.name} family under --root: run "
                    f"`{' '.join(self.family.extract)}` inside the image after changes",)
        return ()

    def _add(self, certs: Sequence[Cert], txn: Transaction) -> None:
        for cert in certs:
            slug = file_slug(cert)
            if self.all_purposes:
                txn.write_file(self.path / "anchors" / f"{slug}.pem", cert.pem.encode())
            else:
                txn.write_file(self.path / f"{slug}.pem",
                               trusted_certificate_pem(cert, slug).encode())
        self._extract(txn)

    def _remove(self, fingerprints: Sequence[str], txn: Transaction) -> None:
        wanted = set(fingerprints)
        for path in self._files():
            ders = self._read(path)
            if any(fingerprint(d) in wanted for d in ders):
                if len(ders) > 1:
                    raise StoreError(f"{path} holds {len(ders)} certificates; not removing "
                                     "the others with it", hint="split the file first")
                txn.remove_file(path)
        self._extract(txn)

    def _extract(self, txn: Transaction) -> None:
        if str(self.root) != "/":
            return
        try:
            which(self.family.extract[0])
        except EnvironmentMissing:
            return
        extracted = Path(self.family.extracted)
        if extracted.is_dir():
            txn.snapshot_tree(extracted)
        txn.run(list(self.family.extract), env={**os.environ, "LC_ALL": "C"})
