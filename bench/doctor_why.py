"""``trustwall why`` and ``trustwall why-in`` in the lab vs what a person would run instead.

* ``why https://good.lab.test`` (the whole ladder: DNS, route, TCP, proxy, TLS, trust for
  curl, HEAD) vs one ``curl -sS -o /dev/null`` of the same URL with the same CA file, both in
  the client namespace (interception off, so both succeed).
* ``why-in 18745`` (listener and process, bind, host name, firewall trace + planned rule,
  replies and rp_filter) vs ``ss -ltnp`` + ``iptables-save`` in the server namespace.

Whole processes, start-up included, interleaved. Run as root:
``.venv/bin/python -m bench.doctor_why``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import summary, version_of, write_result

REPEAT = 10


def _wrap(tmp: Path, argv: list[str]) -> list[str]:
    """In a private mount namespace whose resolv.conf names a local, silent nameserver (the
    host's own nameserver is unreachable from the lab)."""
    resolv = tmp / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    return ["unshare", "-m", "sh", "-c", f"mount --bind {resolv} /etc/resolv.conf; exec \"$@\"",
            "sh", *argv]


def _time(ns: object, argvs: dict[str, list[str]], env: dict[str, str],
          ok: dict[str, tuple[int, ...]]) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in argvs}
    for round_ in range(REPEAT + 1):
        for name, argv in argvs.items():
            start = time.perf_counter()
            proc = subprocess.run(ns.argv(argv), env=env, capture_output=True,  # type: ignore
                                  text=True, check=False)
            elapsed = time.perf_counter() - start
            if proc.returncode not in ok[name]:
                raise RuntimeError(f"{name} exited {proc.returncode}: {proc.stderr[-300:]}")
            if round_:  # the first round warms caches
                samples[name].append(elapsed)
    return samples


def main() -> None:
    from trustwall.clients.login import base_environment
    from trustwall.lab.topology import Lab

    env = base_environment("/root")
    with tempfile.TemporaryDirectory() as scratch, Lab() as lab, lab.intercepting(None):
        tmp = Path(scratch)
        ca = str(lab.ca_file("public-root"))
        url = "https://good.lab.test/"
        out = _time(lab.client, {
            "trustwall_why": _wrap(tmp, [sys.executable, "-m", "trustwall", "why", url,
                                         "--json"]),
            "curl": _wrap(tmp, ["curl", "-sS", "-o", "/dev/null", "--cacert", ca, url]),
        }, {**env, "CURL_CA_BUNDLE": ca}, {"trustwall_why": (0,), "curl": (0,)})
        inbound = _time(lab.server, {
            "trustwall_why_in": [sys.executable, "-m", "trustwall", "why-in", "18745",
                                 "--json"],
            "ss_and_iptables_save": ["sh", "-c", "ss -ltnp 'sport = :18745'; iptables-save"],
        }, env, {"trustwall_why_in": (1,), "ss_and_iptables_save": (0,)})
    med = {name: statistics.median(s) for name, s in {**out, **inbound}.items()}
    write_result("doctor_why", {
        "peers": {"curl": version_of(["curl", "--version"]),
                  "iptables": version_of(["iptables", "--version"])},
        "why": {name: summary(s) for name, s in out.items()},
        "why_in": {name: summary(s) for name, s in inbound.items()},
        "ratio_why_vs_curl": round(med["trustwall_why"] / med["curl"], 2),
        "ratio_why_in_vs_ss_iptables_save": round(
            med["trustwall_why_in"] / med["ss_and_iptables_save"], 2),
        "note": "the doctor runs every rung (and a second connection for TLS, a third for "
                "HEAD); the peers answer one question each",
    })


if __name__ == "__main__":
    main()
