"""A fleet of lab hosts that real Ansible drives over SSH, and the fleet benchmark.

:class:`Fleet` builds N hosts, each its own network namespace with its own trust stores (a
:class:`~trustwall.lab.sandbox.Sandbox`) and a real sshd, plus a controller namespace linked to
every host by a veth pair; ``ansible-playbook`` runs in the controller namespace. The tests in
tests/e2e/test_ansible_*.py use it, and so does the benchmark below.

Benchmark (``.venv/bin/python -m bench.ansible_fleet``): 1,000 firewall rules on 3 hosts through
``trustwall.core.firewall_policy`` (one task) vs ``ansible.builtin.iptables`` (one task per
rule). Ansible's iptables module costs a process per task, so only a bounded sample of tasks
runs per host and the per-rule time is extrapolated to 1,000; the result file says so.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import version_of, write_result
from trustwall.lab.netns import Netns, veth
from trustwall.lab.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE_BIN = ROOT / ".venv-ansible" / "bin"
PYTHON = ROOT / ".venv" / "bin" / "python"  # the managed hosts' interpreter (trustwall importable)
SSH_PORT = 2222
SAMPLE = int(os.environ.get("TW_BENCH_ANSIBLE_TASKS", "30"))

SSHD_CONFIG = """\
Port {port}
ListenAddress {address}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
Subsystem sftp /usr/lib/openssh/sftp-server
"""

# Every task opens its own SSH connection (no ControlMaster/ControlPersist): a firewall change
# is confirmed over a connection the new ruleset had to let in. Pipelining only sends the
# module over that one connection's stdin instead of separate mkdir/put/exec connections.
ANSIBLE_CFG = """\
[defaults]
host_key_checking = False
interpreter_python = {python}
forks = 10
timeout = 20
retry_files_enabled = False
[ssh_connection]
ssh_args = -o ControlMaster=no -o ControlPersist=no
pipelining = True
"""


class Fleet:
    """``Fleet(n, workdir)``: n SSH-reachable lab hosts h1..hn; use as a context manager."""

    def __init__(self, n: int, workdir: Path) -> None:
        self.workdir = workdir
        self.hosts: dict[str, tuple[Netns, Sandbox, str]] = {}
        self.controller: Netns | None = None
        self._n = n

    def __enter__(self) -> Fleet:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        key = self.workdir / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, capture_output=True)
        (self.workdir / "authorized_keys").write_bytes(key.with_suffix(".pub").read_bytes())
        self.controller = Netns.create("ansctl")
        lines = ["[fleet]"]
        for i in range(1, self._n + 1):
            name = f"h{i}"
            ns = Netns.create(f"ans{name}")
            address = f"198.18.{100 + i}.2"
            veth(self.controller, f"to{name}", f"198.18.{100 + i}.1/24", ns, "eth0",
                 f"{address}/24")
            sandbox = Sandbox(ns)
            self.hosts[name] = (ns, sandbox, address)
            self._start_sshd(name, sandbox, address)
            tmp = self.workdir / name / "tmp"
            tmp.mkdir(parents=True)
            lines.append(f"{name} ansible_host={address} ansible_port={SSH_PORT} "
                         f"ansible_remote_tmp={tmp}")
        lines += ["[fleet:vars]", "ansible_user=root", f"ansible_ssh_private_key_file={key}",
                  "ansible_ssh_common_args='-o StrictHostKeyChecking=no "
                  "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'"]
        (self.workdir / "inventory.ini").write_text("\n".join(lines) + "\n")
        (self.workdir / "ansible.cfg").write_text(ANSIBLE_CFG.format(python=PYTHON))
        for name in self.hosts:
            self._wait_ssh(name)

    def _start_sshd(self, name: str, sandbox: Sandbox, address: str) -> None:
        base = self.workdir / name
        base.mkdir()
        host_key = base / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                       check=True, capture_output=True)
        config = base / "sshd_config"
        config.write_text(SSHD_CONFIG.format(port=SSH_PORT, address=address,
                                             host_key=host_key, pid_file=base / "sshd.pid",
                                             authorized=self.workdir / "authorized_keys"))
        # sshd needs its privilege-separation directory /run/sshd; the host has none (no sshd
        # service runs here), so sshd gets a private tmpfs /run instead of a host directory.
        script = ("mount -t tmpfs -o mode=755 tw-run /run && mkdir -m 755 /run/sshd && "
                  f"exec /usr/sbin/sshd -D -e -f {config}")
        log = (base / "sshd.log").open("wb")
        sandbox.popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                      stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _wait_ssh(self, name: str) -> None:
        assert self.controller is not None
        address = self.hosts[name][2]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            probe = self.controller.run(["bash", "-c", f"exec 3<>/dev/tcp/{address}/{SSH_PORT}"],
                                        check=False, timeout=5)
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        log = (self.workdir / name / "sshd.log").read_text(errors="replace")
        raise RuntimeError(f"sshd on {name} did not start: {log[-500:]}")

    def env(self) -> dict[str, str]:
        """The controller's environment: scrubbed, with the collection on the search path."""
        home = self.workdir / "controller-home"
        home.mkdir(exist_ok=True)
        return {"PATH": f"{ANSIBLE_BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home),
                "LANG": "C.UTF-8", "ANSIBLE_CONFIG": str(self.workdir / "ansible.cfg"),
                "ANSIBLE_COLLECTIONS_PATH": str(ROOT), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_FORCE_COLOR": "0"}

    def playbook(self, playbook: Path, *args: str, check: bool = True, timeout: float = 300,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``ansible-playbook`` from the controller namespace against the whole fleet."""
        assert self.controller is not None
        argv = [str(ANSIBLE_BIN / "ansible-playbook"), "-i",
                str(self.workdir / "inventory.ini"), str(playbook), *args]
        return self.controller.run(argv, env={**self.env(), **(env or {})}, check=check,
                                   timeout=timeout)

    def run(self, name: str, argv: list[str], **kw: object) -> subprocess.CompletedProcess:
        """Run a command on host ``name`` directly (the test's oracle, not through Ansible)."""
        return self.hosts[name][1].run(argv, **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        for ns, sandbox, _ in self.hosts.values():
            ns.delete()  # every process inside first (sshd, sessions, rollback watchers)
            with contextlib.suppress(Exception):
                sandbox.close()
        self.hosts.clear()
        if self.controller is not None:
            self.controller.delete()
            self.controller = None


# -- benchmark -----------------------------------------------------------------------------------

RULES = 1000
HEAD = "- hosts: fleet\n  gather_facts: false\n  tasks:\n"
POLICY_TASK = ("    - trustwall.core.firewall_policy:\n"
               "        content: \"{{{{ lookup('file', '{policy}') }}}}\"\n"
               "        persist: false\n")
IPTABLES_TASK = ("    - ansible.builtin.iptables:\n        chain: INPUT\n        protocol: tcp\n"
                 "        source: 198.19.{a}.{b}\n        destination_port: '{port}'\n"
                 "        jump: ACCEPT\n        comment: rule{i}\n")


def _rules() -> list[tuple[int, int, int]]:
    return [(i // 250, i % 250 + 1, 1000 + i) for i in range(RULES)]


def policy_text() -> str:
    lines = ["version: 1", "ipv4:", "  filter:", "    INPUT:", "      rules:",
             "        - {name: ssh, rule: '-p tcp -m tcp --dport 2222 -j ACCEPT', reason: ansible,"
             " owner: bench}"]
    lines += [f"        - {{name: rule{i}, rule: '-s 198.19.{a}.{b}/32 -p tcp -m tcp --dport "
              f"{port} -j ACCEPT', reason: bench, owner: bench}}"
              for i, (a, b, port) in enumerate(_rules())]
    return "\n".join(lines) + "\n"


def _timed_play(fleet: Fleet, path: Path, text: str) -> tuple[float, dict[str, float], dict]:
    """Wall seconds of the whole run, seconds per host (sum of its task times), the document."""
    import json

    path.write_text(text)
    start = time.perf_counter()
    done = fleet.playbook(path, timeout=1800,
                          env={"ANSIBLE_STDOUT_CALLBACK": "trustwall.core.fleet_json"})
    wall = time.perf_counter() - start
    doc = json.loads(done.stdout[done.stdout.index("{"):])
    per_host: dict[str, float] = {}
    for task in doc["plays"][0]["tasks"]:
        for host, result in task["hosts"].items():
            if result.get("failed") or result.get("unreachable"):
                raise RuntimeError(f"{host}: {result.get('msg')}")
            per_host[host] = per_host.get(host, 0.0) + result["seconds"]
    return wall, {h: round(s, 3) for h, s in sorted(per_host.items())}, doc


def run_benchmark(workdir: Path) -> dict[str, object]:
    policy = workdir / "policy.yaml"
    policy.write_text(policy_text())
    fleet_dir = workdir / "fleet"
    fleet_dir.mkdir()
    with Fleet(3, fleet_dir) as fleet:
        floor_wall, _, _ = _timed_play(fleet, workdir / "floor.yml",
                                       HEAD + "    - ansible.builtin.command: 'true'\n")
        sample = _rules()[:SAMPLE]
        peer_wall, peer_hosts, _ = _timed_play(
            fleet, workdir / "iptables.yml",
            HEAD + "".join(IPTABLES_TASK.format(a=a, b=b, port=port, i=i)
                           for i, (a, b, port) in enumerate(sample)))
        loaded = {h: fleet.run(h, ["iptables-save"]).stdout.count("-A INPUT")
                  for h in fleet.hosts}
        for host in fleet.hosts:
            fleet.run(host, ["iptables", "-F", "INPUT"])
        play = HEAD + POLICY_TASK.format(policy=policy)
        ours_wall, ours_hosts, _ = _timed_play(fleet, workdir / "policy.yml", play)
        applied = {h: fleet.run(h, ["iptables-save"]).stdout.count("-A INPUT")
                   for h in fleet.hosts}
        again_wall, again_hosts, again = _timed_play(fleet, workdir / "again.yml", play)
        unchanged = not any(r.get("changed") for t in again["plays"][0]["tasks"]
                            for r in t["hosts"].values())
    per_rule = peer_wall / len(sample)
    extrapolated = per_rule * RULES
    return {
        "hosts": 3, "rules": RULES,
        "trustwall_firewall_policy": {
            "playbook_wall_s": round(ours_wall, 3), "task_s_per_host": ours_hosts,
            "rules_loaded_per_host": applied,
            "second_run_wall_s": round(again_wall, 3), "second_run_task_s_per_host": again_hosts,
            "second_run_changed": not unchanged},
        "ansible_builtin_iptables": {
            "tasks_measured_per_host": len(sample), "playbook_wall_s": round(peer_wall, 3),
            "task_s_per_host": peer_hosts, "rules_loaded_per_host": loaded,
            "per_rule_wall_s": round(per_rule, 4),
            "1000_rules_extrapolated_wall_s": round(extrapolated, 1),
            "note": (f"only {len(sample)} tasks ran (one per rule, all 3 hosts in parallel); "
                     "the wall time per rule is extrapolated linearly to 1,000 rules")},
        "ratio_extrapolated": round(extrapolated / ours_wall, 1),
        "ansible_floor_wall_s": round(floor_wall, 3),
        "ansible_floor_note": ("one no-op task (command: true) on the 3 hosts: ansible-playbook "
                               "start-up plus one SSH connection and module run per host, the "
                               "least any one-task playbook costs here"),
        "goal": "ratio >= 1000",
        "ansible": version_of([str(ANSIBLE_BIN / "ansible-playbook"), "--version"]),
        "iptables": version_of(["iptables", "--version"]),
        "connection": "ssh per task (no ControlPersist), pipelining on, forks 10",
    }


def main() -> None:
    if not (ANSIBLE_BIN / "ansible-playbook").exists():
        write_result("ansible_fleet", {"skipped": "ansible-core not installed (.venv-ansible: "
                                                  "scripts/setup.sh)"})
        return
    with tempfile.TemporaryDirectory(prefix="tw-bench-fleet-") as d:
        result = run_benchmark(Path(d))
    result["python"] = sys.version.split()[0]
    write_result("ansible_fleet", result)


if __name__ == "__main__":
    main()
