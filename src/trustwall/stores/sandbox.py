"""A copy of this host's trust stores under a temporary root, for tests, benchmarks and demos.

Only reads the host: the system store files are copied (symlinks kept as they are, so the
tree looks like a real root), Java's cacerts comes along inside /etc/ssl/certs/java, a JDK
directory links to it as on Debian, and a fresh empty NSS database is created.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from trustwall import proc

COPIED = ("etc/ssl/certs", "usr/share/ca-certificates", "usr/local/share/ca-certificates")
JDK_CACERTS = "usr/lib/jvm/java-17-openjdk-amd64/lib/security/cacerts"
NSSDB = "root/.pki/nssdb"


def make_sandbox(dest: Path, *, nss: bool = True) -> Path:
    """Populate ``dest`` (created) as a root holding copies of the host's stores."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in COPIED:
        src = Path("/") / rel
        target = dest / rel
        if src.is_dir():
            shutil.copytree(src, target, symlinks=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
    conf = Path("/etc/ca-certificates.conf")
    if conf.exists():
        shutil.copy2(conf, dest / "etc/ca-certificates.conf")
    jdk = dest / JDK_CACERTS
    if (dest / "etc/ssl/certs/java/cacerts").exists():
        jdk.parent.mkdir(parents=True, exist_ok=True)
        jdk.symlink_to("/etc/ssl/certs/java/cacerts")
    if nss:
        db = dest / NSSDB
        db.mkdir(parents=True, exist_ok=True)
        proc.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"])
    return dest
