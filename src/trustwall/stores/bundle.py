"""A PEM bundle file that programs read as their whole trust list (SSL_CERT_FILE and kin).

The debian bundle (/etc/ssl/certs/ca-certificates.crt) belongs to the debian kind, which
regenerates it; this kind is for the other bundles environment variables point at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall.stores.base import (
    TrustStore,
    fingerprint,
    inside,
    owner_and_mode,
    pem_ders,
    resolve_in_root,
)

if TYPE_CHECKING:
    from trustwall.certs import Cert
    from trustwall.journal.transaction import Transaction

# Programs that read a bundle named by these variables (and replace their defaults with it).
BUNDLE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
                    "PIP_CERT", "AWS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
_BLOCK = re.compile(rb"(?:# trustwall: [^\n]*\n)?-----BEGIN CERTIFICATE-----.*?"
                    rb"-----END CERTIFICATE-----\r?\n?", re.S)


class BundleStore(TrustStore):
    kind = "bundle"
    writer = "(edit the PEM file)"

    def __init__(self, root: Path, path: Path, variables: tuple[str, ...] = ()) -> None:
        super().__init__(root, path)
        self.variables = variables

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        if str(root) != "/":
            return []
        debian = os.path.realpath(inside(root, "/etc/ssl/certs/ca-certificates.crt"))
        found: dict[str, list[str]] = {}
        for var in BUNDLE_VARIABLES:
            value = os.environ.get(var)
            if value and os.path.isfile(value) and os.path.realpath(value) != debian:
                found.setdefault(os.path.realpath(value), []).append(var)
        return [cls(root, Path(p), tuple(v)) for p, v in found.items()]

    @property
    def real(self) -> Path:
        return resolve_in_root(self.root, self.path)

    def ders(self) -> list[bytes]:
        try:
            return pem_ders(self.real.read_bytes())
        except FileNotFoundError:
            return []

    def clients(self) -> tuple[str, ...]:
        if self.variables:
            return tuple(f"programs run with {v}" for v in self.variables)
        return ("programs pointed at this file",)

    def _add(self, certs: Sequence[Cert], txn: Transaction) -> None:
        data = self.real.read_bytes() if self.real.exists() else b""
        if data and not data.endswith(b"\n"):
            data += b"\n"
        for cert in certs:
            data += f"# trustwall: {cert.subject_str}\n{cert.pem}".encode()
        owner, mode = owner_and_mode(self.real)
        txn.write_file(self.real, data, mode=mode, owner=owner)

    def _remove(self, fingerprints: Sequence[str], txn: Transaction) -> None:
        wanted = set(fingerprints)

        def keep(match: re.Match[bytes]) -> bytes:
            ders = pem_ders(match.group(0))
            return b"" if ders and fingerprint(ders[0]) in wanted else match.group(0)

        data = _BLOCK.sub(keep, self.real.read_bytes())
        owner, mode = owner_and_mode(self.real)
        txn.write_file(self.real, data, mode=mode, owner=owner)
