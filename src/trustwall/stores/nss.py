"""NSS databases (Firefox and Chromium profiles, ~/.pki/nssdb, /etc/pki/nssdb): certutil.

certutil changes the SQLite files in place, so it runs on a private copy of the database and
the changed files go back through the transaction atomically, keeping the user's ownership.
Reading needs no certutil: certificate objects are rows of cert9.db's nssPublic table
(CKA_CLASS in column a0, CKA_VALUE in a11, CKA_LABEL in a3), and their trust objects.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall import proc
from trustwall.stores.base import (
    TrustStore,
    file_slug,
    fingerprint,
    inside,
    owner_and_mode,
    store_name_arg,
)

if TYPE_CHECKING:
    from trustwall.certs import Cert
    from trustwall.journal.transaction import Transaction

PLACES = ("etc/pki/nssdb", "root/.pki/nssdb", "home/*/.pki/nssdb",
          "home/*/.local/share/pki/nssdb", "root/.mozilla/firefox/*",
          "home/*/.mozilla/firefox/*", "home/*/.config/mozilla/firefox/*",
          "home/*/snap/chromium/current/.pki/nssdb",
          "home/*/snap/firefox/common/.mozilla/firefox/*",
          "home/*/.var/app/org.mozilla.firefox/.mozilla/firefox/*")
# Directories with a Firefox profiles.ini: its profiles may live anywhere (IsRelative=0).
FIREFOX_DIRS = ("root/.mozilla/firefox", "home/*/.mozilla/firefox",
                "root/.config/mozilla/firefox", "home/*/.config/mozilla/firefox",
                "home/*/snap/firefox/common/.mozilla/firefox",
                "home/*/.var/app/org.mozilla.firefox/.mozilla/firefox")
DB_FILES = ("cert9.db", "key4.db", "pkcs11.txt")
CKO_CERTIFICATE = bytes.fromhex("00000001")
# NSS vendor attributes (lib/util/pkcs11n.h): CKO_NSS_TRUST objects carry the SHA-1 of the
# certificate and its trust per purpose; "C" for TLS is CKT_NSS_TRUSTED_DELEGATOR.
CKO_NSS_TRUST = bytes.fromhex("ce534353")
CKT_NSS_TRUSTED_DELEGATOR = bytes.fromhex("ce534352")
SERVER_AUTH_COLUMN = "ace536358"  # CKA_TRUST_SERVER_AUTH
SHA1_COLUMN = "ace5363b4"  # CKA_CERT_SHA1_HASH


def firefox_profiles(root: Path, directory: Path) -> list[Path]:
    """The profile directories a profiles.ini in ``directory`` names (relative or absolute)."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(directory / "profiles.ini", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return []
    out = []
    for section in parser.sections():
        path = parser.get(section, "Path", fallback="")
        if not section.startswith("Profile") or not path:
            continue
        relative = parser.get(section, "IsRelative", fallback="1").strip() != "0"
        out.append(directory / path if relative else inside(root, path))
    return out


def _firefox_dirs(root: Path) -> list[Path]:
    dirs = [d for pattern in FIREFOX_DIRS for d in sorted(root.glob(pattern))]
    home = os.environ.get("HOME")
    if str(root) == "/" and home:
        config = os.environ.get("XDG_CONFIG_HOME") or f"{home}/.config"
        dirs += [Path(home) / ".mozilla/firefox", Path(config) / "mozilla/firefox"]
    return dirs


def _client_for(path: Path) -> str:
    text = str(path)
    if "firefox" in text:
        return "firefox (profile)"
    if "chromium" in text:
        return "chromium (snap)"
    if text.endswith("etc/pki/nssdb"):
        return "system-wide NSS users"
    return "chromium/chrome, NSS tools (user db)"


class NssStore(TrustStore):
    kind = "nss"
    writer = "certutil"

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        candidates = [d for pattern in PLACES for d in sorted(root.glob(pattern))]
        home = os.environ.get("HOME")
        if str(root) == "/" and home:  # the invoking user's own db, wherever HOME is
            candidates.append(Path(home) / ".pki/nssdb")
        for directory in _firefox_dirs(root):
            candidates += firefox_profiles(root, directory)
        found: dict[str, TrustStore] = {}
        for directory in candidates:
            if (directory / "cert9.db").is_file():
                found.setdefault(os.path.realpath(directory), cls(root, directory))
        return list(found.values())

    def entries(self) -> list[tuple[str, bytes]]:
        uri = f"file:{self.path / 'cert9.db'}?mode=ro"
        with sqlite3.connect(uri, uri=True) as db:
            rows = db.execute("SELECT a3, a11 FROM nssPublic WHERE a0 = ?",
                              (CKO_CERTIFICATE,)).fetchall()
        return [(bytes(label or b"").decode(errors="replace"), bytes(value))
                for label, value in rows if value]

    def ders(self) -> list[bytes]:
        """Certificates trusted as a CA for TLS servers (a trust object saying so), not
        merely present: a cert imported with ``-t ,,`` is in the db but trusted for nothing."""
        uri = f"file:{self.path / 'cert9.db'}?mode=ro"
        try:
            with sqlite3.connect(uri, uri=True) as db:
                rows = db.execute(f"SELECT {SHA1_COLUMN} FROM nssPublic WHERE a0 = ? AND "
                                  f"{SERVER_AUTH_COLUMN} = ?",
                                  (CKO_NSS_TRUST, CKT_NSS_TRUSTED_DELEGATOR)).fetchall()
        except sqlite3.OperationalError:  # no trust attribute was ever stored in this db
            return []
        trusted = {bytes(sha1) for (sha1,) in rows if sha1}
        return [der for _, der in self.entries() if hashlib.sha1(der).digest() in trusted]

    def clients(self) -> tuple[str, ...]:
        return (_client_for(self.path),)

    def _edit(self, txn: Transaction, steps: list[list[str]]) -> None:
        with tempfile.TemporaryDirectory(prefix="tw-nss-") as tmp:
            work = Path(tmp)
            for name in DB_FILES:
                if (self.path / name).exists():
                    shutil.copyfile(self.path / name, work / name)
            for step in steps:
                proc.run(["certutil", *step, "-d", f"sql:{work}"])
            for name in DB_FILES:
                new = work / name
                if not new.exists():
                    continue
                data = new.read_bytes()
                old = self.path / name
                if old.exists() and old.read_bytes() == data:
                    continue
                owner, mode = owner_and_mode(old, 0o600)
                txn.write_file(old, data, mode=mode, owner=owner)

    def _add(self, certs: Sequence[Cert], txn: Transaction) -> None:
        with tempfile.TemporaryDirectory(prefix="tw-nss-pem-") as tmp:
            steps = []
            for cert in certs:
                pem = Path(tmp) / f"{file_slug(cert)}.pem"
                pem.write_text(cert.pem)
                # C,, : a trusted CA for TLS servers only (not e-mail, not code signing).
                steps.append(["-A", "-n", f"trustwall-{file_slug(cert)}", "-t", "C,,",
                              "-i", str(pem)])
            self._edit(txn, steps)

    def _remove(self, fingerprints: Sequence[str], txn: Transaction) -> None:
        wanted = set(fingerprints)
        nicks = [store_name_arg(nick, self.path) for nick, der in self.entries()
                 if fingerprint(der) in wanted]
        self._edit(txn, [["-D", "-n", nick] for nick in dict.fromkeys(nicks)])
