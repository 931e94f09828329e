"""``trustwall scan`` of 1,000 loopback TLS endpoints vs sslyze's certificate-info scan of the
same endpoints (whole processes). Goal: >= 5x sslyze's throughput.

The endpoints are 1,000 listening ports of one asyncio TLS server in a separate process, each
presenting its own leaf (IP SAN 127.0.0.1) + one shared intermediate, as sites behind one
inspection proxy do. sslyze runs from its own virtualenv
(.venv-bench: it pins its own cryptography/nassl); when that venv is missing the result says so
and only trustwall's throughput is reported.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, TRUSTWALL, version_of, write_result

N_ENDPOINTS = int(os.environ.get("TW_BENCH_ENDPOINTS", "1000"))
SSLYZE = ROOT / ".venv-bench" / "bin" / "sslyze"

_SERVER = r"""
import asyncio, json, ssl, sys
async def main(n, directory):
    async def handle(reader, writer):
        try:
            await asyncio.wait_for(reader.read(1), 10)
        except Exception:
            pass
        writer.close()
    servers = []
    for i in range(n):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{directory}/chain{i}.pem", f"{directory}/key{i}.pem")
        servers.append(await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx, backlog=128))
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    await asyncio.Event().wait()
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""


def _pki(tmp: Path, n: int) -> Path:
    """One leaf per endpoint (as distinct sites have), all under one issuing CA (as behind
    one inspection proxy): chain{i}.pem / key{i}.pem in ``tmp``."""
    from trustwall.lab.ca import issue_leaf, make_ca

    root = make_ca("Bench Root", org="Bench")
    inter = make_ca("Bench Issuing CA", org="Bench", issuer=root)
    for i in range(n):
        leaf = issue_leaf(inter, [f"site{i}.bench.test", "127.0.0.1"])
        (tmp / f"chain{i}.pem").write_bytes(leaf.cert_pem + inter.cert_pem)
        (tmp / f"key{i}.pem").write_bytes(leaf.key_pem)
    return tmp


CPU: dict[str, float] = {}


def _timed(argv: list[str], timeout: float = 900) -> tuple[float, int, str]:
    """Wall seconds, exit code and stdout; the process's CPU seconds go to CPU[argv[0]]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[argv[0]] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
                         3)
    return wall, proc.returncode, proc.stdout


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        server = subprocess.Popen([sys.executable, "-c", _SERVER, str(N_ENDPOINTS),
                                   str(_pki(tmp, N_ENDPOINTS))], stdout=subprocess.PIPE,
                                  text=True)
        try:
            ports = json.loads(server.stdout.readline())  # type: ignore[union-attr]
            targets = tmp / "targets.txt"
            targets.write_text("".join(f"127.0.0.1:{p}\n" for p in ports))
            tw_s, tw_rc, tw_out = _timed([TRUSTWALL, "scan", str(targets), "--json",
                                          "--concurrency", "200", "--no-java"])
            lines = [json.loads(line) for line in tw_out.splitlines() if line.strip()]
            summary = lines[-1]["summary"]
            assert summary["endpoints"] == N_ENDPOINTS, summary
            assert summary["unreachable"] == 0, summary
            peer: dict[str, object]
            if SSLYZE.exists():
                out_json = tmp / "sslyze.json"
                sz_s, sz_rc, _ = _timed([str(SSLYZE), "--certinfo", "--quiet",
                                         f"--targets_in={targets}", f"--json_out={out_json}"])
                scanned = json.loads(out_json.read_text())["server_scan_results"]
                completed = sum(r.get("scan_status") == "COMPLETED" for r in scanned)
                peer = {"sslyze": version_of([str(SSLYZE), "--help"]) and "sslyze 6.3.1",
                        "sslyze_seconds": round(sz_s, 3), "sslyze_exit": sz_rc,
                        "sslyze_completed": completed,
                        "sslyze_endpoints_per_s": round(N_ENDPOINTS / sz_s, 1),
                        "ratio_trustwall_throughput_over_sslyze": round(sz_s / tw_s, 2),
                        "sslyze_cpu_s": CPU[str(SSLYZE)],
                        # CPU seconds per scan: fairer than wall time on a loaded machine.
                        "ratio_cpu_sslyze_over_trustwall": round(
                            CPU[str(SSLYZE)] / CPU[TRUSTWALL], 2)}
            else:
                peer = {"sslyze": "not installed (.venv-bench missing): throughput only"}
        finally:
            server.kill()
            server.wait()
    write_result("tls_scan", {
        "what": f"scan of {N_ENDPOINTS} loopback TLS endpoints, whole process",
        "trustwall_seconds": round(tw_s, 3),
        "trustwall_exit": tw_rc,
        "trustwall_cpu_s": CPU[TRUSTWALL],
        "load_average_1min": os.getloadavg()[0],
        "trustwall_endpoints_per_s": round(N_ENDPOINTS / tw_s, 1),
        "trustwall_checks_per_endpoint": "chain capture + every store and client verdict + "
                                         "interception + diagnosis",
        "trustwall_summary": summary,
        **peer,
        "goal": "trustwall throughput >= 5x sslyze",
    })


if __name__ == "__main__":
    main()
