"""``trustwall ca install`` of one CA into every store of a sandbox tree (debian, java, nss)
vs the native commands doing the same work in the same run: copy the .crt +
update-ca-certificates (Java hook off: keytool does Java explicitly) + keytool -importcert +
certutil -A. Each run starts from a fresh copy of the same consistent tree (copying is not
timed). update-ca-certificates runs in a private mount namespace over the copy (needs root).

    .venv/bin/python -m bench.stores_install
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import TRUSTWALL, summary, version_of, write_result
from trustwall.clients.login import SYSTEM_PATH

REPEAT = 5
KINDS = ("debian", "java", "nss")  # what the native side does too (env settings excluded)
BINDS = ("etc/ssl/certs", "usr/share/ca-certificates", "usr/local/share/ca-certificates",
         "etc/ca-certificates.conf")


def _in_tree(tree: Path, argv: list[str]) -> None:
    mounts = "; ".join(f"mount --bind {tree / rel} /{rel}" for rel in BINDS)
    subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                    f"set -e; {mounts}; exec \"$@\"", "sh", *argv], check=True,
                   capture_output=True, env={"PATH": SYSTEM_PATH, "LC_ALL": "C"})


def _make_ca(directory: Path) -> Path:
    key, pem = directory / "ca.key", directory / "bench-corp-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(pem),
                    "-days", "30", "-subj", "/CN=Bench Corp CA",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True)
    return pem


def _native(tree: Path, pem: Path) -> None:
    shutil.copyfile(pem, tree / "usr/local/share/ca-certificates" / pem.name)
    _in_tree(tree, ["update-ca-certificates", "--hooksdir", "/nonexistent"])
    subprocess.run(["keytool", "-importcert", "-noprompt", "-trustcacerts", "-alias",
                    "bench-corp-ca", "-file", str(pem), "-keystore",
                    str(tree / "etc/ssl/certs/java/cacerts"), "-storepass", "changeit"],
                   check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-n", "bench-corp-ca", "-t", "C,,", "-i", str(pem),
                    "-d", f"sql:{tree / 'root/.pki/nssdb'}"], check=True, capture_output=True)


def _trustwall(tree: Path, pem: Path) -> None:
    subprocess.run([TRUSTWALL, "ca", "install", str(pem), "--root", str(tree), "--yes",
                    *(arg for kind in KINDS for arg in ("--store", kind))],
                   check=True, capture_output=True)


def _timed(template: Path, work: Path, pem: Path,
           step: Callable[[Path, Path], None]) -> float:
    tree = work / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(template, tree, symlinks=True)
    start = time.perf_counter()
    step(tree, pem)
    return time.perf_counter() - start


def main() -> None:
    from trustwall.stores.sandbox import make_sandbox

    with tempfile.TemporaryDirectory(prefix="tw-bench-stores-") as tmp:
        work = Path(tmp)
        template = make_sandbox(work / "template")
        _in_tree(template, ["update-ca-certificates", "--hooksdir", "/nonexistent"])
        pem = _make_ca(work)
        ours, theirs = [], []
        for _ in range(REPEAT):  # interleaved, so both see the same machine load
            ours.append(_timed(template, work, pem, _trustwall))
            theirs.append(_timed(template, work, pem, _native))
    tw, native = summary(ours), summary(theirs)
    write_result("stores_install", {
        "what": "one CA into debian + java (JKS) + nss stores of a sandbox tree",
        "peers": {
            "update-ca-certificates": version_of(["dpkg-query", "-W", "ca-certificates"]),
            "keytool": version_of(["java", "-version"]),
            "certutil": version_of(["dpkg-query", "-W", "libnss3-tools"]),
            "openssl": version_of(["openssl", "version"]),
        },
        "trustwall_ca_install": tw,
        "native_commands": native,
        "ratio_trustwall_over_native": round(tw["median_s"] / native["median_s"], 3),
        "samples": {"trustwall": ours, "native": theirs},
        "notes": "trustwall journals every file (before-images, fsync) and updates "
                 "/etc/ssl/certs incrementally with output byte-identical to "
                 "update-ca-certificates (tests/e2e/test_stores_debian.py).",
    })


if __name__ == "__main__":
    main()
