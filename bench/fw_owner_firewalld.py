"""Opening a port on a real firewalld: trustwall's owner apply next to the bare firewall-cmd
commands it plans, in the same lab host and the same run.

* peer: ``firewall-cmd --zone public --add-port 18745/tcp`` and its ``--permanent`` twin (what
  an admin types; no journal, no read-back, no undo);
* trustwall: one process running :func:`trustwall.firewall.owners.firewalld.plan` and
  :func:`~trustwall.firewall.owners.firewalld.apply` (reads firewalld's zones, journals the
  zone files and settings, runs the same two commands, reads back and compares), start-up of
  the interpreter included; its own split (plan / apply) is recorded too;
* ``trustwall undo`` of it, and the lab host's start-up (namespaces, D-Bus, firewalld).

Needs root. Run: ``.venv/bin/python -m bench.fw_owner_firewalld``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench.common import summary, version_of, write_result

REPEAT = 5
ADD = [["firewall-cmd", "--zone", "public", "--add-port", "18745/tcp"],
       ["firewall-cmd", "--permanent", "--zone", "public", "--add-port", "18745/tcp"]]
REMOVE = [[*argv[:-2], "--remove-port", "18745/tcp"] for argv in ADD]
API = """
import json, sys, time
began = time.perf_counter()
from trustwall.firewall.change.apply import Options
from trustwall.firewall.owners import firewalld
from trustwall.firewall.owners.base import Request
imported = time.perf_counter()
plan = firewalld.plan(Request("allow", proto="tcp", dport="18745"))
planned = time.perf_counter()
result = firewalld.apply(plan, Options(confirm_within=0))
assert result.applied, result
print(json.dumps({"import_s": imported - began, "plan_s": planned - imported,
                  "apply_s": time.perf_counter() - planned}))
"""


def main() -> None:
    if os.geteuid() != 0:
        print("bench.fw_owner_firewalld: needs root (namespaces); skipped")
        return
    from trustwall.lab.firewalld import FirewalldHost

    env = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "LANG": "C.UTF-8"}
    startups, firewalld_starts = [], []
    bare, tw_total, undo = [], [], []
    split: dict[str, list[float]] = {"import_s": [], "plan_s": [], "apply_s": []}
    for _ in range(2):  # two hosts: start-up samples (the second one also runs the rest)
        with FirewalldHost(env=env) as host:
            startups.append(host.startup_seconds)
            firewalld_starts.append(host.firewalld_seconds)
    with FirewalldHost(env=env) as host:
        startups.append(host.startup_seconds)
        firewalld_starts.append(host.firewalld_seconds)
        assert host.connect().startswith("FAIL")
        for round_ in range(REPEAT + 1):  # the first round warms caches, untimed
            began = time.perf_counter()
            for argv in ADD:
                host.run(argv)
            elapsed = time.perf_counter() - began
            assert host.connect().startswith("OK")
            for argv in REMOVE:
                host.run(argv)
            began = time.perf_counter()
            out = host.run([sys.executable, "-c", API]).stdout
            total = time.perf_counter() - began
            assert host.connect().startswith("OK")
            began = time.perf_counter()
            host.run([sys.executable, "-m", "trustwall", "undo"])
            undone = time.perf_counter() - began
            assert host.connect().startswith("FAIL")
            if round_ == 0:
                continue
            bare.append(elapsed)
            tw_total.append(total)
            undo.append(undone)
            for key, value in json.loads(out).items():
                split[key].append(value)
        version = host.run(["firewall-cmd", "--version"]).stdout.strip()
    bare_s, tw_s = summary(bare), summary(tw_total)
    write_result("fw_owner_firewalld", {
        "versions": {"firewalld": version, "nft": version_of(["nft", "--version"])},
        "load_average_at_end": os.getloadavg(),
        "peer_bare_firewall_cmd_add_runtime_and_permanent": bare_s,
        "trustwall_plan_and_apply_process": tw_s,
        "ratio_trustwall_vs_bare": tw_s["median_s"] / bare_s["median_s"],
        "trustwall_split_median_s": {k: statistics.median(v) for k, v in split.items()},
        "trustwall_undo_process": summary(undo),
        "lab_host_start": summary(startups),
        "lab_firewalld_start": summary(firewalld_starts),
        "note": "trustwall = interpreter start + plan (zones read over D-Bus with busctl, "
                "~20 ms a call) + apply (busctl reads for the journal's before-image, the same "
                "2 firewall-cmd commands as the peer, a busctl read-back); each firewall-cmd "
                "costs ~0.25-0.35 s of Python start-up on this 2-core machine",
        "source": str(Path(__file__).name),
    })


if __name__ == "__main__":
    main()
