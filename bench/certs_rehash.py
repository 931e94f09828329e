"""``trustwall rehash`` vs ``openssl rehash`` vs ``c_rehash`` on ~1,000 certificates.

Whole processes (start-up included), interleaved so machine noise hits all alike; the hash
links are removed (untimed) before every run so each tool does the full job. Goal: trustwall
within 1.5x of ``openssl rehash``. Only a temporary directory is ever rehashed.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import TRUSTWALL, summary, version_of, write_result

N_CERTS = 1000
REPEAT = 9
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}  # no SSL_CERT_DIR leaks in


def populate(directory: Path, n: int = N_CERTS) -> None:
    """``n`` EC certificates (one key: signing is the slow part), 1 in 20 sharing a subject
    with its neighbour (hash collisions), plus a few CRLs, multi-cert files and junk."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from trustwall.certs.factory import empty_crl, issue, new_key

    key = new_key()
    for i in range(n):
        label = i - 1 if i % 20 == 1 else i
        name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Bench Org {label % 37}"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Bench CA {label}"),
        ])
        # Bare CAs (basicConstraints only), as before: what rehash reads is the subject.
        made = issue("", subject=name, ca=True, key=key, serial=i + 1, days=365,
                     key_usage=False, ski=False, aki=False)
        (directory / f"cert{i:04d}.pem").write_bytes(made.pem)
        if i % 100 == 0:
            (directory / f"crl{i:04d}.crl").write_bytes(empty_crl(made))
    (directory / "bundle.crt").write_bytes(
        (directory / "cert0000.pem").read_bytes() + (directory / "cert0002.pem").read_bytes())
    (directory / "README.txt").write_text("not a certificate\n")


def clear_links(directory: Path) -> None:
    for entry in os.scandir(directory):
        if entry.is_symlink():
            os.unlink(entry.path)


def time_once(argv: list[str], directory: Path) -> tuple[float, float]:
    """``(wall seconds, CPU seconds user+system)`` of one whole run. CPU time is reported too
    because this 2-core box is shared: wall time swings with the neighbours' load."""
    clear_links(directory)
    before = os.times()
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                   check=False)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user
           + after.children_system - before.children_system)
    return wall, cpu


def links(directory: Path) -> dict[str, str]:
    return {e.name: os.readlink(e.path) for e in os.scandir(directory) if e.is_symlink()}


def main() -> None:
    load_at_start = os.getloadavg()
    openssl = shutil.which("openssl", path=ENV["PATH"])
    c_rehash = shutil.which("c_rehash", path=ENV["PATH"])
    with tempfile.TemporaryDirectory(prefix="tw-bench-rehash-") as tmp:
        directory = Path(tmp) / "certs"
        directory.mkdir()
        populate(directory)
        tools = {"trustwall": [TRUSTWALL, "rehash", str(directory)],
                 "openssl": [openssl, "rehash", str(directory)]}
        samples: dict[str, list[float]] = {name: [] for name in tools}
        cpu: dict[str, list[float]] = {name: [] for name in tools}
        for argv in tools.values():  # warm-up (page cache, pyc files)
            time_once(argv, directory)
        clear_links(directory)  # and the link sets must agree
        subprocess.run(tools["openssl"], env=ENV, capture_output=True, check=False)
        expected = links(directory)
        clear_links(directory)
        subprocess.run(tools["trustwall"], env=ENV, capture_output=True, check=False)
        agree = links(directory) == expected
        for _ in range(REPEAT):
            for name, argv in tools.items():
                wall, used = time_once(argv, directory)
                samples[name].append(wall)
                cpu[name].append(used)
        c_rehash_s = (time_once([c_rehash, str(directory)], directory)[0] if c_rehash
                      else None)
        n_links = len(expected)
    tw, ossl = summary(samples["trustwall"]), summary(samples["openssl"])
    write_result("certs_rehash", {
        "files": N_CERTS + N_CERTS // 100 + 2,
        "links": n_links,
        "link_sets_agree": agree,
        "trustwall": {"command": "trustwall rehash DIR", **tw,
                      "cpu_median_s": statistics.median(cpu["trustwall"])},
        "openssl": {"command": "openssl rehash DIR", "version": version_of([openssl, "version"]),
                    **ossl, "cpu_median_s": statistics.median(cpu["openssl"])},
        "c_rehash": ({"command": "c_rehash DIR (one run)", "seconds": c_rehash_s}
                     if c_rehash_s is not None else "not installed"),
        "ratio_trustwall_vs_openssl": round(tw["median_s"] / ossl["median_s"], 2),
        "ratio_cpu_trustwall_vs_openssl": round(statistics.median(cpu["trustwall"])
                                                / statistics.median(cpu["openssl"]), 2),
        "load_average_at_start": load_at_start,
        "ratio_c_rehash_vs_openssl": (round(c_rehash_s / ossl["median_s"], 1)
                                      if c_rehash_s is not None else None),
        "spread_note": f"medians of {REPEAT} interleaved runs; stdev trustwall "
                       f"{statistics.pstdev(samples['trustwall']):.4f}s",
        "goal": "ratio_trustwall_vs_openssl <= 1.5",
    })


if __name__ == "__main__":
    main()
