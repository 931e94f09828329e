"""Java: the JDK/JRE ``cacerts`` keystores (JKS or PKCS12), written with keytool.

keytool rewrites a keystore in place, so it works on a private copy and the result goes
back through the transaction as one atomic write. Reading needs no JVM: JKS is parsed here;
PKCS12 is read with cryptography. A JDK whose cacerts links to a store already found (Debian's
/etc/ssl/certs/java/cacerts) is the same store, listed once.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall import proc
from trustwall.errors import StoreError
from trustwall.stores.base import (
    TrustStore,
    file_slug,
    fingerprint,
    inside,
    owner_and_mode,
    resolve_in_root,
    store_name_arg,
)

if TYPE_CHECKING:
    from trustwall.certs import Cert
    from trustwall.journal.transaction import Transaction

PASSWORD_ENV = "TRUSTWALL_STOREPASS"
CANDIDATES = ("/etc/ssl/certs/java/cacerts", "/usr/lib/jvm/*/lib/security/cacerts",
              "/usr/lib/jvm/*/jre/lib/security/cacerts", "/opt/*/lib/security/cacerts",
              "/opt/*/jre/lib/security/cacerts", "/opt/*/*/lib/security/cacerts",
              "/opt/*/*/jre/lib/security/cacerts")
JKS_MAGIC = 0xFEEDFEED
# JVM start-up dominates keytool's run time; these flags shave a part of it.
JVM_FAST = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-J-Xshare:auto")


def read_jks(data: bytes) -> list[tuple[str, bytes]]:
    """``(alias, der)`` of every trusted-certificate entry of a JKS keystore."""
    magic, version, count = struct.unpack_from(">III", data, 0)
    if magic != JKS_MAGIC or version not in (1, 2):
        raise StoreError("not a JKS keystore")
    pos, out = 12, []

    def utf() -> str:
        nonlocal pos
        (n,) = struct.unpack_from(">H", data, pos)
        text = data[pos + 2:pos + 2 + n].decode("utf-8", errors="replace")
        pos += 2 + n
        return text

    def blob() -> bytes:
        nonlocal pos
        (n,) = struct.unpack_from(">I", data, pos)
        chunk = data[pos + 4:pos + 4 + n]
        pos += 4 + n
        return chunk

    for _ in range(count):
        (tag,) = struct.unpack_from(">I", data, pos)
        pos += 4
        alias = utf()
        pos += 8  # timestamp
        if tag == 1:  # private key entry and its chain
            blob()
            (chain,) = struct.unpack_from(">I", data, pos)
            pos += 4
            for _ in range(chain):
                if version == 2:
                    utf()
                blob()
        elif tag == 2:
            if version == 2:
                utf()
            out.append((alias, blob()))
        else:
            raise StoreError(f"JKS entry type {tag} not understood")
    return out


def read_pkcs12(data: bytes, password: str) -> list[tuple[str, bytes]]:
    """``(alias, der)`` of the certificates in a PKCS12 keystore (Java keeps trusted
    certificates as bags with a friendly name, which is the alias)."""
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

    try:
        bundle = pkcs12.load_pkcs12(data, password.encode())
    except ValueError as exc:
        raise StoreError(f"cannot open the PKCS12 keystore: {exc}",
                         hint="is the store password right? (/etc/default/cacerts)") from exc
    out = [((c.friendly_name or b"").decode(errors="replace"),
            c.certificate.public_bytes(Encoding.DER)) for c in bundle.additional_certs]
    if bundle.cert is not None:
        out.append(((bundle.cert.friendly_name or b"").decode(errors="replace"),
                    bundle.cert.certificate.public_bytes(Encoding.DER)))
    return out


class JavaStore(TrustStore):
    kind = "java"
    writer = "keytool"

    def __init__(self, root: Path, path: Path, seen_as: tuple[str, ...] = ()) -> None:
        super().__init__(root, path)
        self.seen_as = seen_as or (str(path),)

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        candidates = []
        for pattern in CANDIDATES:
            candidates.extend(sorted(root.glob(pattern.lstrip("/"))))
        java_home = os.environ.get("JAVA_HOME")
        if str(root) == "/" and java_home:
            candidates.append(Path(java_home) / "lib/security/cacerts")
        found: dict[Path, list[str]] = {}
        for path in candidates:
            real = resolve_in_root(root, path)
            if real.is_file():
                found.setdefault(real, []).append(str(path))
        return [cls(root, real, tuple(dict.fromkeys(names))) for real, names in found.items()]

    @property
    def password(self) -> str:
        """storepass from /etc/default/cacerts (ca-certificates-java), else changeit.

        The value comes from the image: it only ever reaches keytool through the environment
        (``-storepass:env``), never argv, where ``-J-javaagent:…`` would run code as root.
        """
        conf = resolve_in_root(self.root, inside(self.root, "/etc/default/cacerts"))
        if conf.exists():
            for line in conf.read_text(errors="replace").splitlines():
                key, _, value = line.strip().partition("=")
                if key == "storepass" and value:
                    value = value.strip().strip("\"'")
                    if not value.isprintable():
                        raise StoreError(f"{conf}: storepass holds control characters")
                    return value
        return "changeit"

    @property
    def store_type(self) -> str:
        head = self.path.read_bytes()[:4]
        if head == b"\xfe\xed\xfe\xed":
            return "JKS"
        if head == b"\xce\xce\xce\xce":
            return "JCEKS"
        return "PKCS12"

    def entries(self) -> list[tuple[str, bytes]]:
        data = self.path.read_bytes()
        if data[:4] == b"\xfe\xed\xfe\xed":
            return read_jks(data)
        return read_pkcs12(data, self.password)

    def ders(self) -> list[bytes]:
        return [der for _, der in self.entries()]

    def added_ders(self) -> list[bytes]:
        return [der for alias, der in self.entries() if alias.startswith("trustwall-")]

    def clients(self) -> tuple[str, ...]:
        return tuple(f"java ({p})" for p in self.seen_as)

    def _keytool(self, args: list[str]) -> object:
        argv = ["keytool", *JVM_FAST, *args, "-storepass:env", PASSWORD_ENV,
                "-storetype", self.store_type]
        return proc.run(argv, timeout=120, env={**os.environ, PASSWORD_ENV: self.password})

    def _edit(self, txn: Transaction, steps: list[list[str]]) -> None:
        owner, mode = owner_and_mode(self.path)
        with tempfile.TemporaryDirectory(prefix="tw-java-") as tmp:
            work = Path(tmp) / "cacerts"
            shutil.copyfile(self.path, work)
            for step in steps:
                self._keytool([*step, "-keystore", str(work)])
            txn.write_file(self.path, work.read_bytes(), mode=mode, owner=owner)

    def _add(self, certs: Sequence[Cert], txn: Transaction) -> None:
        with tempfile.TemporaryDirectory(prefix="tw-java-pem-") as tmp:
            steps = []
            for cert in certs:
                pem = Path(tmp) / f"{file_slug(cert)}.pem"
                pem.write_text(cert.pem)
                steps.append(["-importcert", "-noprompt", "-trustcacerts",
                              "-alias", f"trustwall-{file_slug(cert)}", "-file", str(pem)])
            self._edit(txn, steps)

    def _remove(self, fingerprints: Sequence[str], txn: Transaction) -> None:
        wanted = set(fingerprints)
        aliases = [store_name_arg(alias, self.path) for alias, der in self.entries()
                   if fingerprint(der) in wanted]
        self._edit(txn, [["-delete", "-alias", alias] for alias in aliases])
