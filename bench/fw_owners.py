"""Opening tcp/18745 through each firewall owner: trustwall vs the manager's own command, in
the same lab host and the same run, for firewalld, ufw, plain nftables and iptables-persistent
(trustwall.lab.managed hosts; issue 15's "apply latency per owner").

* trustwall: the whole CLI process ``trustwall fw allow -p tcp --dport 18745 --apply --yes``
  run inside the host (interpreter start, owner detection, plan, lockout check, journal, the
  owner's commands, read-back);
* peer: what an admin types to make the same change persistent, no journal, no undo:
  firewalld ``firewall-cmd --zone public --add-port 18745/tcp`` and its ``--permanent`` twin;
  ufw ``ufw allow 18745/tcp``; nftables ``nft insert rule inet filter input tcp dport 18745
  accept`` then the ruleset saved to /etc/nftables.conf; iptables ``iptables -I INPUT …`` then
  ``iptables-save -f /etc/iptables/rules.v4``;
* also ``trustwall undo``, the manager's reload, the simulated reboot and the host's start-up.

Every timed change is checked with a real connect and reverted (untimed for the peer) before
the next. Needs root. Run: ``.venv/bin/python -m bench.fw_owners`` (``TW_BENCH_OWNER_RUNS``,
default 5; ``TW_BENCH_OWNERS=ufw,nftables`` for some owners only).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import summary, version_of, write_result

REPEAT = int(os.environ.get("TW_BENCH_OWNER_RUNS", "5"))
ALLOW = ["fw", "allow", "-p", "tcp", "--dport", "18745", "--apply", "--yes"]
FIREWALL_CMD = [["firewall-cmd", "--zone", "public", "--add-port", "18745/tcp"],
                ["firewall-cmd", "--permanent", "--zone", "public", "--add-port", "18745/tcp"]]
NFT_SAVE = "{ echo 'flush ruleset'; nft list ruleset; } > /etc/nftables.conf.new && " \
           "mv /etc/nftables.conf.new /etc/nftables.conf"


def _owners() -> dict[str, tuple[Callable[[], Any], list[list[str]]]]:
    """owner -> (its host, started; the peer's commands)."""
    from trustwall.lab.firewalld import FirewalldHost
    from trustwall.lab.managed import IptablesPersistentHost, NftablesHost
    from trustwall.lab.ufw import UfwHost

    def ufw_host() -> UfwHost:
        host = UfwHost().start()
        host.enable()
        host.ufw("allow", "22/tcp")
        host.reload()
        return host

    return {
        "firewalld": (lambda: FirewalldHost().start(), FIREWALL_CMD),
        "ufw": (ufw_host, [["ufw", "allow", "18745/tcp"]]),
        "nftables": (lambda: NftablesHost().start(),
                     [["nft", "insert", "rule", "inet", "filter", "input", "tcp", "dport",
                       "18745", "accept"], ["sh", "-c", NFT_SAVE]]),
        "iptables": (lambda: IptablesPersistentHost().start(),
                     [["iptables", "-I", "INPUT", "3", "-p", "tcp", "-m", "tcp", "--dport",
                       "18745", "-j", "ACCEPT"],
                      ["iptables-save", "-f", "/etc/iptables/rules.v4"]]),
    }


def _timed(func: Callable[[], object]) -> float:
    began = time.perf_counter()
    func()
    return time.perf_counter() - began


def bench_owner(make: Callable[[], Any], peer: list[list[str]]) -> dict[str, Any]:
    began = time.perf_counter()
    host = make()
    try:
        start_s = time.perf_counter() - began
        before = host.snapshot()
        ours, undos, bare, reloads, boots = [], [], [], [], []
        for round_ in range(REPEAT + 1):  # the first round warms caches, untimed
            tw = _timed(lambda: host.trustwall(*ALLOW))
            assert host.connect(timeout=1).startswith("OK")
            reload_s = _timed(host.reload)
            boot_s = _timed(host.reboot)
            assert host.connect(timeout=1).startswith("OK")
            undo = _timed(lambda: host.trustwall("undo"))
            assert host.connect(timeout=1).startswith("FAIL")
            assert host.snapshot() == before
            native = _timed(lambda: [host.run(argv) for argv in peer])
            assert host.connect(timeout=1).startswith("OK")
            _revert(host, before)
            if round_:
                ours.append(tw)
                undos.append(undo)
                bare.append(native)
                reloads.append(reload_s)
                boots.append(boot_s)
        ratio = statistics.median(ours) / statistics.median(bare)
        return {"trustwall_allow_apply": summary(ours), "peer": summary(bare),
                "peer_commands": [" ".join(argv) for argv in peer],
                "ratio_trustwall_vs_peer": round(ratio, 2),
                "trustwall_undo": summary(undos), "manager_reload": summary(reloads),
                "simulated_reboot": summary(boots), "lab_host_start_s": round(start_s, 3)}
    finally:
        host.close()


def _revert(host: Any, before: dict[str, str]) -> None:
    """Back to ``before`` after the peer's change, the manager's own way (untimed)."""
    if host.kind == "firewalld":
        for argv in FIREWALL_CMD:
            host.run([*argv[:-2], "--remove-port", "18745/tcp"])
    elif host.kind == "ufw":
        host.ufw("delete", "allow", "18745/tcp")
    else:  # a boot file: put it back, load it
        host.write(host.boot_file, before[host.boot_file])
        host.reload()
    assert host.connect(timeout=1).startswith("FAIL")
    assert host.snapshot() == before


def main() -> None:
    if os.geteuid() != 0:
        print("bench.fw_owners: needs root (namespaces); skipped")
        return
    chosen = [o for o in os.environ.get("TW_BENCH_OWNERS", "").split(",") if o]
    owners = {name: spec for name, spec in _owners().items() if not chosen or name in chosen}
    results = {name: bench_owner(*spec) for name, spec in owners.items()}
    print(f"{'owner':<10} {'trustwall':>10} {'peer':>8} {'ratio':>6} {'undo':>7} "
          f"{'reload':>7} {'reboot':>7}")
    for name, r in results.items():
        print(f"{name:<10} {r['trustwall_allow_apply']['median_s']:>9.2f}s "
              f"{r['peer']['median_s']:>7.2f}s {r['ratio_trustwall_vs_peer']:>5.1f}x "
              f"{r['trustwall_undo']['median_s']:>6.2f}s {r['manager_reload']['median_s']:>6.2f}s "
              f"{r['simulated_reboot']['median_s']:>6.2f}s")
    write_result("fw_owners", {
        "change": "open tcp/18745 (closed by each owner's default-deny) persistently",
        "owners": results,
        "versions": {"firewalld": version_of(["dpkg-query", "-W", "-f=${Version}",
                                              "firewalld"]),
                     "ufw": version_of(["ufw", "version"]),
                     "nft": version_of(["nft", "--version"]),
                     "iptables": version_of(["iptables", "--version"])},
        "load_average_at_end": os.getloadavg(),
        "python": sys.version.split()[0],
        "note": "medians of whole processes run inside each lab host (nsenter included on "
                "both sides); trustwall = the CLI (interpreter start, detection, plan, lockout "
                "check, journal, the owner's commands, read-back)",
    })


if __name__ == "__main__":
    main()
