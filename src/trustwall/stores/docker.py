"""Docker's per-registry CAs: ``/etc/docker/certs.d/<host[:port]>/*.crt``.

dockerd trusts the system roots plus every ``*.crt`` in the registry's directory (``*.cert``
and ``*.key`` are client credentials), so here the lone CA is right, unlike the pointer kinds.
Found: every existing registry directory, and those named with ``--registry HOST[:PORT]``.
Adding appends to ``ca.crt``; removing edits ``ca.crt`` only (other files are the admin's).
dockerd reads the directory on each pull: no restart needed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall.errors import BadInput
from trustwall.stores.base import Scope, TrustStore, fingerprint, inside, pem_ders
from trustwall.stores.bundle import BundleStore

if TYPE_CHECKING:
    from trustwall.journal.transaction import Transaction

CERTS_D = "/etc/docker/certs.d"
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$")


def registry_dir(root: Path, registry: str) -> Path:
    if not _REGISTRY.match(registry):
        raise BadInput(f"--registry {registry!r}: expected HOST or HOST:PORT")
    return inside(root, CERTS_D) / registry


class DockerStore(BundleStore):
    kind = "docker"
    writer = "(ca.crt in certs.d)"

    def __init__(self, root: Path, path: Path, variables: tuple[str, ...] = ()) -> None:
        path = Path(path)
        super().__init__(root, path if path.name.endswith(".crt") else path / "ca.crt",
                         variables)

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        return cls.detect_in(root, Scope())

    @classmethod
    def detect_in(cls, root: Path, scope: Scope) -> list[TrustStore]:
        top = inside(root, CERTS_D)
        dirs = sorted(d for d in top.iterdir() if d.is_dir()) if top.is_dir() else []
        for registry in scope.registries:
            if registry_dir(root, registry) not in dirs:
                dirs.append(registry_dir(root, registry))
        return [cls(root, d) for d in dirs]

    @property
    def registry(self) -> str:
        return self.path.parent.name

    def ders(self) -> list[bytes]:
        directory = self.path.parent
        if not directory.is_dir():
            return []
        return [der for crt in sorted(directory.glob("*.crt")) for der in
                pem_ders(crt.read_bytes())]

    def removable(self) -> set[str]:
        return {fingerprint(d) for d in super().ders()}

    def _remove(self, fingerprints: Sequence[str], txn: Transaction) -> None:
        super()._remove(fingerprints, txn)
        if not self.real.read_bytes().strip():  # nothing left: no empty ca.crt behind
            txn.remove_file(self.real)

    def clients(self) -> tuple[str, ...]:
        return (f"docker pull/push with {self.registry} (besides the system roots)",)
