"""``trustwall probe`` vs ``openssl s_client`` against the same loopback TLS endpoint.

Whole processes, start-up included, interleaved so machine noise hits both alike. trustwall
does strictly more: it captures the chain and judges it against every store on this host
(system bundle and CApath, certifi, each env var store, node, Java cacerts - read through the
keytool cache, warmed once) and every client; s_client verifies against one CA file. Also
recorded: the in-process time of ``probe_report`` (no interpreter start-up). Goal: <= 1.5x.
"""

from __future__ import annotations

import contextlib
import os
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import TRUSTWALL, summary, version_of, write_result

REPEAT = 15


def _serve(tmp: Path) -> tuple[int, ssl.SSLContext, threading.Event]:
    """A TLS server thread on 127.0.0.1 presenting leaf + intermediate of a lab PKI."""
    import socket

    from trustwall.lab.ca import issue_leaf, make_ca

    root = make_ca("Bench Root", org="Bench")
    inter = make_ca("Bench Issuing CA", org="Bench", issuer=root)
    leaf = issue_leaf(inter, ["localhost", "127.0.0.1"])
    (tmp / "chain.pem").write_bytes(leaf.cert_pem + inter.cert_pem)
    (tmp / "key.pem").write_bytes(leaf.key_pem)
    (tmp / "root.pem").write_bytes(root.cert_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "chain.pem", tmp / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            with contextlib.suppress(OSError), sock:
                sock.settimeout(5)
                with ctx.wrap_socket(sock, server_side=True) as tls:
                    tls.recv(1)
        listener.close()

    threading.Thread(target=loop, daemon=True).start()
    return listener.getsockname()[1], ctx, stop


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        port, _, stop = _serve(tmp)
        try:
            s_client = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                        "localhost", "-showcerts", "-CAfile", str(tmp / "root.pem"),
                        "-verify_hostname", "localhost"]
            probe = [TRUSTWALL, "probe", f"localhost:{port}", "--json"]
            # Warm-up: the Java cacerts keytool read is cached by content digest.
            subprocess.run(probe, capture_output=True, check=False)
            samples: dict[str, list[float]] = {"trustwall": [], "openssl": []}
            cpu: dict[str, list[float]] = {"trustwall": [], "openssl": []}
            for _ in range(REPEAT):
                for name, argv in (("trustwall", probe), ("openssl", s_client)):
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    start = time.perf_counter()
                    subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                   check=False)
                    samples[name].append(time.perf_counter() - start)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime
                                     - before.ru_stime)
            from trustwall.tls.probe import parse_target
            from trustwall.tls.report import probe_report

            target = parse_target(f"localhost:{port}")
            in_process = []
            for _ in range(REPEAT):
                start = time.perf_counter()
                report = probe_report(target)
                in_process.append(time.perf_counter() - start)
        finally:
            stop.set()
    ratio = statistics.median(samples["trustwall"]) / statistics.median(samples["openssl"])
    write_result("tls_probe", {
        "what": "one probe of a loopback TLS endpoint (leaf + intermediate), whole process",
        "peer": version_of(["openssl", "version"]),
        "stores_judged": len(report.stores),
        "clients_judged": len(report.clients),
        "trustwall_process": summary(samples["trustwall"]),
        "openssl_s_client_process": summary(samples["openssl"]),
        "trustwall_in_process_probe_report": summary(in_process),
        "ratio_trustwall_over_openssl": round(ratio, 2),
        # CPU seconds (user + sys) of the client process: less sensitive to a loaded machine.
        "trustwall_cpu": summary(cpu["trustwall"]),
        "openssl_cpu": summary(cpu["openssl"]),
        "cpu_ratio_trustwall_over_openssl": round(
            statistics.median(cpu["trustwall"]) / statistics.median(cpu["openssl"]), 2),
        "load_average_1min": os.getloadavg()[0],
        "goal": "<= 1.5",
        "python": sys.version.split()[0],
    })


if __name__ == "__main__":
    main()
