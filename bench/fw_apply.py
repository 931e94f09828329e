"""fw apply: a 10k-rule policy (diff + checks + restore) vs a bare iptables-restore of the
compiled file (goal <= 1.2x), and 1,000 rules through one policy apply vs
ansible.builtin.iptables with one task per rule (goal >= 1000x).

Everything runs in a throw-away network namespace. Ansible is slow by design (a process per
task), so it runs a bounded sample of tasks and the per-rule figure is extrapolated to 1,000;
the result file says so.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, TRUSTWALL, summary, version_of, write_result
from trustwall.lab.netns import Netns

ANSIBLE = ROOT / ".venv-ansible" / "bin" / "ansible-playbook"
ANSIBLE_SAMPLE = int(os.environ.get("TW_BENCH_ANSIBLE_TASKS", "40"))


def ruleset(n: int, marker: str) -> str:
    nat = [f"-A PREROUTING -d 198.19.{i // 250}.{i % 250 + 1}/32 -p tcp -m tcp --dport 8080 "
           f"-m comment --comment {marker} -j REDIRECT --to-ports 80" for i in range(n // 10)]
    flt = [f"-A INPUT -s 198.19.{i // 250}.{i % 250 + 1}/32 -p tcp -m tcp "
           f"--dport {1000 + i % 999} -m comment --comment {marker} -j ACCEPT" for i in range(n)]
    return "\n".join(["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]",
                      ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", *nat, "COMMIT",
                      "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]",
                      ":OUTPUT ACCEPT [0:0]", *flt, "COMMIT", ""])


def timed(ns: Netns, argv: list[str], **kw: object) -> float:
    start = time.perf_counter()
    ns.run(argv, timeout=900, **kw)  # type: ignore[arg-type]
    return time.perf_counter() - start


def apply_10k(tmp: Path, repeat: int = 2) -> dict[str, object]:
    old, new = ruleset(10000, "old"), ruleset(10000, "new")
    (tmp / "new.v4").write_text(new)
    with Netns.create("benchapply") as ns:
        policy = tmp / "policy.yaml"
        policy.write_text(ns.run([TRUSTWALL, "fw", "import", "--file", str(tmp / "new.v4")],
                                 timeout=900).stdout)
        compiled = tmp / "compiled.v4"
        compiled.write_text(ns.run([TRUSTWALL, "fw", "compile", str(policy)],
                                   timeout=900).stdout)
        ours, peer = [], []
        for i in range(repeat):
            ns.run(["iptables-restore"], input=old)
            ours.append(timed(ns, [TRUSTWALL, "fw", "apply", str(policy), "--yes",
                                   "--confirm-within", "0", "--no-persist",
                                   "--state-dir", str(tmp / f"state{i}")]))
            ns.run(["iptables-restore"], input=old)
            peer.append(timed(ns, ["iptables-restore", str(compiled)]))
    return {"rules": 11000, "trustwall_apply": summary(ours),
            "iptables_restore": summary(peer),
            "ratio": round(statistics.median(ours) / statistics.median(peer), 2),
            "goal": "ratio <= 1.2"}


PLAY_HEAD = "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
TASK = ("    - ansible.builtin.iptables:\n        chain: INPUT\n        protocol: tcp\n"
        "        source: 198.19.{a}.{b}\n        destination_port: '{port}'\n"
        "        jump: ACCEPT\n        comment: rule{i}\n")


def ansible_vs_policy(tmp: Path) -> dict[str, object]:
    n = 1000
    rules = [(i // 250, i % 250 + 1, 1000 + i) for i in range(n)]
    lines = ["version: 1", "ipv4:", "  filter:", "    INPUT:", "      rules:"]
    lines += [f"        - {{name: rule{i}, rule: '-s 198.19.{a}.{b}/32 -p tcp -m tcp --dport "
              f"{port} -j ACCEPT', reason: bench, owner: bench}}"
              for i, (a, b, port) in enumerate(rules)]
    policy = tmp / "p1000.yaml"
    policy.write_text("\n".join(lines) + "\n")
    out: dict[str, object] = {"rules": n}
    with Netns.create("benchansible") as ns:
        t_ours = timed(ns, [TRUSTWALL, "fw", "apply", str(policy), "--yes",
                            "--confirm-within", "0", "--no-persist", "--state-dir",
                            str(tmp / "state-a")])
        out["trustwall_policy_apply_s"] = round(t_ours, 3)
        if not ANSIBLE.exists():
            out["ansible"] = "not installed (.venv-ansible): ratio not measured"
            return out
        ns.run(["iptables", "-F", "INPUT"])
        play = tmp / "play.yml"
        sample = rules[:ANSIBLE_SAMPLE]
        play.write_text(PLAY_HEAD + "".join(TASK.format(a=a, b=b, port=port, i=i)
                                            for i, (a, b, port) in enumerate(sample)))
        env = {"PATH": f"{ANSIBLE.parent}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp),
               "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3", "LANG": "C.UTF-8",
               "ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False"}
        t_ans = timed(ns, [str(ANSIBLE), "-i", "localhost,", "-c", "local", str(play)], env=env)
        per_rule = t_ans / ANSIBLE_SAMPLE
        loaded = ns.run(["iptables-save"]).stdout.count("-A INPUT")
        out.update({"ansible_tasks_measured": ANSIBLE_SAMPLE, "ansible_rules_loaded": loaded,
                    "ansible_measured_s": round(t_ans, 3),
                    "ansible_per_rule_s": round(per_rule, 4),
                    "ansible_1000_rules_extrapolated_s": round(per_rule * n, 1),
                    "ratio_extrapolated": round(per_rule * n / t_ours, 1),
                    "ansible_version": version_of([str(ANSIBLE), "--version"]),
                    "goal": "ratio >= 1000"})
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tw-bench-apply-") as d:
        tmp = Path(d)
        result = {"apply_10k": apply_10k(tmp), "vs_ansible": ansible_vs_policy(tmp),
                  "iptables": version_of(["iptables", "--version"]),
                  "python": sys.version.split()[0]}
    subprocess.run(["sync"], check=False)
    write_result("fw_apply", result)


if __name__ == "__main__":
    main()
