"""Lab start-up and teardown, next to the one part we cannot make faster: mitmproxy's own start.

Peers measured in the same run:
* ``mitmdump`` alone in a fresh namespace, until it listens (what the lab waits for anyway);
* ``openssl req -x509 -newkey ec`` making one self-signed CA, next to the whole lab CA set
  (six CAs) from :func:`trustwall.lab.ca.lab_cas`.

Needs root. Run: ``.venv/bin/python -m bench.lab_startup``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import summary, time_call, version_of, write_result


def _lab_once(teardowns: list[float]) -> None:
    from trustwall.lab.topology import Lab

    lab = Lab().start()
    start = time.perf_counter()
    lab.stop()
    teardowns.append(time.perf_counter() - start)


def _mitmdump_once() -> None:
    from trustwall.lab.ca import lab_cas
    from trustwall.lab.netns import Netns
    from trustwall.lab.proxy import ProxyConfig, mitmdump_path, wait_listening, write_confdir

    with tempfile.TemporaryDirectory() as confdir, Netns.create("benchmitm") as ns:
        # The same CA file as the lab's proxy: mitmproxy would otherwise make an RSA CA first.
        write_confdir(lab_cas(), ProxyConfig(), Path(confdir))
        proc = ns.popen([str(mitmdump_path()), "--quiet", "--set", f"confdir={confdir}",
                         "--mode", "regular@8080", "--mode", "transparent@8081"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(proc, (8080, 8081), "mitmdump")


def _ca_set_once(counter: list[int]) -> None:
    from trustwall.lab.ca import _lab_cas, _today

    counter[0] += 1
    _lab_cas(f"bench-{counter[0]}".encode(), _today())  # a new seed: no cache hit


def _openssl_ca_once() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{tmp}/k.pem",
                        "-out", f"{tmp}/c.pem", "-subj", "/CN=Bench CA", "-days", "30"],
                       check=True, capture_output=True)


def main() -> None:
    if os.geteuid() != 0:
        print("bench.lab_startup: needs root (network namespaces); skipped")
        return
    from trustwall.lab.proxy import mitmdump_path

    teardowns: list[float] = []
    lab = time_call(lambda: _lab_once(teardowns), repeat=5, warmup=1)
    mitm = time_call(_mitmdump_once, repeat=5, warmup=1)
    counter = [0]
    ca_set = time_call(lambda: _ca_set_once(counter), repeat=15, warmup=2)
    openssl_ca = time_call(_openssl_ca_once, repeat=15, warmup=2)
    lab_s, mitm_s = summary(lab), summary(mitm)
    ca_s, openssl_s = summary(ca_set), summary(openssl_ca)
    write_result("lab_startup", {
        "versions": {"mitmdump": version_of([str(mitmdump_path()), "--version"]),
                     "openssl": version_of(["openssl", "version"])},
        "load_average_at_end": os.getloadavg(),
        "lab_start": lab_s,
        "lab_teardown": summary(teardowns[1:] or teardowns),
        "peer_mitmdump_start": mitm_s,
        "ratio_lab_vs_mitmdump": lab_s["median_s"] / mitm_s["median_s"],
        "lab_ca_set_6_cas": ca_s,
        "peer_openssl_one_ca": openssl_s,
        "ratio_ca_set_vs_one_openssl_ca": ca_s["median_s"] / openssl_s["median_s"],
        "note": "lab_start = 4 namespaces, 3 veth pairs, hosts, sites, JMX stand-in, "
                "firewall, mitmproxy listening, interception rule",
        "source": str(Path(__file__).name),
    })


if __name__ == "__main__":
    main()
