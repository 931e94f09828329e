"""ufw owner: the same change (open tcp/18745 over the issue's ``deny 18745/tcp``) through
trustwall's ufw owner vs the bare ``ufw allow 18745/tcp``, both timed as whole processes run
inside one lab ufw host (trustwall.lab.ufw) in the same run.

trustwall's figure is a process that imports the owner, plans (``ufw --dry-run``, the live
ruleset, the effect diff) and applies (journal, ufw, read-back); the in-process split is
recorded too. Between runs the state goes back to the scenario (untimed: ``trustwall undo``
for trustwall's change, ``ufw deny 18745/tcp`` for ufw's). Also recorded: the lab host's
start-up, ``ufw reload`` and the simulated boot.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from bench.common import summary, version_of, write_result
from trustwall.lab.ufw import UfwHost

REPEAT = int(os.environ.get("TW_BENCH_UFW_RUNS", "5"))
PY = sys.executable
APPLY = r"""
import json, sys, time
t0 = time.perf_counter()
from trustwall.firewall.change.apply import Options
from trustwall.firewall.owners import ufw
from trustwall.firewall.owners.base import Request
t1 = time.perf_counter()
plan = ufw.plan(Request("allow", proto="tcp", dport="18745"))
t2 = time.perf_counter()
result = ufw.apply(plan, Options(confirm_within=0))
t3 = time.perf_counter()
assert result.applied, result
print(json.dumps({"import_s": t1 - t0, "plan_s": t2 - t1, "apply_s": t3 - t2}))
"""


def timed(host: UfwHost, argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = host.run(argv).stdout
    return time.perf_counter() - start, out


def main() -> None:
    ours, bare, reloads, boots, splits = [], [], [], [], []
    with UfwHost() as host:
        startup = host.startup_seconds
        host.enable()
        host.ufw("allow", "22/tcp")
        host.ufw("deny", "18745/tcp")
        host.reload()
        for _ in range(REPEAT):
            seconds, out = timed(host, [PY, "-c", APPLY])
            ours.append(seconds)
            splits.append(json.loads(out))
            host.run([PY, "-m", "trustwall", "undo"])
            seconds, _ = timed(host, ["ufw", "allow", "18745/tcp"])
            bare.append(seconds)
            host.ufw("deny", "18745/tcp")
            reloads.append(timed(host, ["ufw", "reload"])[0])
            start = time.perf_counter()
            host.reboot()
            boots.append(time.perf_counter() - start)
    result = {
        "change": "open tcp/18745 over `ufw deny 18745/tcp` (ufw updates the rule in place)",
        "trustwall_owner_apply": summary(ours),
        "ufw_allow": summary(bare),
        "ratio": round(statistics.median(ours) / statistics.median(bare), 2),
        "trustwall_split_median_s": {k: round(statistics.median(s[k] for s in splits), 3)
                                     for k in ("import_s", "plan_s", "apply_s")},
        "lab_host_startup_s": round(startup or 0.0, 3),
        "ufw_reload": summary(reloads),
        "simulated_boot": summary(boots),
        "ufw": version_of(["ufw", "version"]),
        "python": sys.version.split()[0],
    }
    write_result("owner_ufw", result)


if __name__ == "__main__":
    main()
