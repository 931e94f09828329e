"""Program settings that name the CA bundle a program reads *instead of* its default roots:
git ``http.sslCAInfo``, npm ``cafile``, conda ``ssl_verify``.

Such a setting must point at the merged system bundle (distro roots + every CA added to the
system store, kept in step by the debian/p11kit kinds), never at a lone enterprise CA: that
would make every other site fail. So these kinds come after the system kinds in the registry,
"contain" whatever the bundle they point at holds, and adding a CA means pointing the setting
at the system bundle -- refused if the system bundle does not hold the CA yet. Removing a CA
leaves the setting alone (pointing at the system bundle stays right).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall.errors import StoreError
from trustwall.stores.base import (
    TrustStore,
    fingerprint,
    fp_of,
    inside,
    owner_and_mode,
    pem_ders,
    resolve_in_root,
)
from trustwall.stores.env import SYSTEM_BUNDLES

if TYPE_CHECKING:
    from trustwall.certs import Cert
    from trustwall.journal.transaction import Transaction


def system_bundle(root: Path) -> str | None:
    """The merged system bundle (root-relative) this family keeps, if the root has one."""
    return next((b for b in SYSTEM_BUNDLES if inside(root, b).is_file()), None)


def user_files(root: Path, rel: str) -> list[Path]:
    """``rel`` (say ``.npmrc``) in every home under ``root``, and in $HOME on the host."""
    paths = [*sorted(root.glob(f"home/*/{rel}")), inside(root, f"/root/{rel}")]
    home = os.environ.get("HOME")
    if str(root) == "/" and home:
        paths.append(Path(home) / rel)
    found: dict[str, Path] = {}
    for path in paths:
        if path.is_file():
            found.setdefault(os.path.realpath(path), path)
    return list(found.values())


class PointerStore(TrustStore):
    """A config file (``self.path``) whose setting names the bundle the program reads."""

    setting: str = ""

    def current(self) -> str | None:
        """The bundle the setting names now (root-relative path), or None when unset."""
        raise NotImplementedError

    def rewritten(self, text: str, bundle: str) -> str:
        """``text`` (the config file, maybe empty) with the setting naming ``bundle``."""
        raise NotImplementedError

    def default(self) -> str | None:
        """What the program reads when the setting is unset (None: its own built-in roots)."""
        return None

    @property
    def bundle(self) -> str | None:
        return system_bundle(self.root)

    def _read(self, name: str | None) -> list[bytes]:
        if not name:
            return []
        try:
            return pem_ders(resolve_in_root(self.root, inside(self.root, name)).read_bytes())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            return []

    def ders(self) -> list[bytes]:
        return self._read(self.current() or self.default())

    def added_ders(self) -> list[bytes]:
        return []  # nothing is added here: the system store lists what was added to the bundle

    def removable(self) -> set[str]:
        return set()

    def follows_system_bundle(self) -> bool:
        return self.bundle is not None and (self.current() or self.default()) == self.bundle

    def notes(self) -> tuple[str, ...]:
        now = self.current()
        if now and now != self.bundle:
            return (f"{self.setting} = {now}: replaces the default roots; installing a CA "
                    f"points it at {self.bundle}",)
        return ()

    def text(self) -> str:
        try:
            return self.path.read_text(errors="surrogateescape")
        except FileNotFoundError:
            return ""

    def _add(self, certs: Sequence[Cert], txn: Transaction) -> None:
        bundle = self.bundle
        held = {fingerprint(d) for d in self._read(bundle)}
        missing = [c.subject_str for c in certs if fp_of(c) not in held]
        if bundle is None or missing:
            raise StoreError(f"{self.kind}: the system bundle {bundle or '(none)'} does not "
                             f"trust {', '.join(missing)} yet, so pointing {self.setting} at "
                             "it would not help",
                             hint="install into the system store as well (leave out --store, "
                                  "or add --store debian / p11kit)")
        data = self.rewritten(self.text(), bundle).encode(errors="surrogateescape")
        owner, mode = owner_and_mode(self.path)
        txn.write_file(self.path, data, mode=mode, owner=owner)

    def _remove(self, fingerprints: Sequence[str], txn: Transaction) -> None:
        raise AssertionError("removable() is empty")
