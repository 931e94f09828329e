"""The seed's JConsole story on a real kernel: policy import → edit → diff → apply → connect
works → undo → byte-identical ruleset; expiry; dry-run; refusal of a broken policy; rollback
unless confirmed. Everything runs inside lab namespaces (``ip netns exec``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml
from fw_hosts import CLIENT_IP, LISTENER, SERVER_IP, connect, two_hosts

from trustwall.lab.netns import Netns, veth
from trustwall.lab.topology import SEED_RULESET

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

SEED_RULES = SEED_RULESET  # the seed's RHEL-like INPUT: rules 1-9 accept, 10 rejects


@pytest.fixture
def hosts():
    with two_hosts("fwserver") as pair:
        yield pair


def tw(ns: Netns, *args: str, check: bool = True, env: dict[str, str] | None = None
       ) -> subprocess.CompletedProcess:
    full_env = {"PATH": os.environ["PATH"], "HOME": "/root", "NO_COLOR": "1", **(env or {})}
    proc = ns.run([sys.executable, "-m", "trustwall", *args], check=False, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"trustwall {' '.join(args)} exited {proc.returncode}: "
                             f"{proc.stderr}{proc.stdout}")
    return proc


def saved(ns: Netns) -> str:
    """iptables-save without its dated comment lines and chain counters (traffic moves them)."""
    return "".join(line + "\n" for line in no_counters(ns.run(["iptables-save"]).stdout))


def no_counters(text: str) -> list[str]:
    return [re.sub(r" \[\d+:\d+\]$", "", line) for line in text.splitlines()
            if not line.startswith("#")]


def add_jmx_rule(policy_text: str, **extra: str) -> str:
    doc = yaml.safe_load(policy_text)
    rules = doc["ipv4"]["filter"]["INPUT"]["rules"]
    rules.insert(len(rules) - 1, {"name": "jmx",
                                  "rule": "-p tcp -m state --state NEW -m tcp --dport 18745 "
                                          "-j ACCEPT",
                                  "reason": "JConsole", "owner": "app-team", **extra})
    return yaml.safe_dump(doc, sort_keys=False)


def test_jconsole_story_apply_then_undo_byte_identical(hosts, tmp_path):
    server, client = hosts
    assert connect(client) == "FAIL No route to host"
    before = saved(server)

    imported = tw(server, "fw", "import", "--live", "--owner", "netops").stdout
    policy = tmp_path / "policy.yaml"
    policy.write_text(add_jmx_rule(imported))
    state, persist = tmp_path / "state", tmp_path / "rules.v4"
    common = ["--state-dir", str(state), "--persist-file", f"4={persist}"]

    dry = tw(server, "fw", "apply", str(policy), "--dry-run", "--json", *common)
    assert json.loads(dry.stdout)["dry_run"] is True
    assert saved(server) == before

    result = json.loads(tw(server, "fw", "apply", str(policy), "--yes", "--json",
                           "--confirm-within", "0", *common).stdout)
    assert result["applied"] is True
    assert [c["tables"] for c in result["changes"]] == [["filter"]]
    assert connect(client) == "OK JMX"

    rules = [line for line in saved(server).splitlines() if line.startswith("-A INPUT")]
    assert "--dport 18745" in rules[9] and '"tw:jmx"' in rules[9]  # position 10
    assert "REJECT" in rules[10]
    assert no_counters(persist.read_text()) == saved(server).splitlines()

    # Applying the same policy again changes nothing.
    again = json.loads(tw(server, "fw", "apply", str(policy), "--yes", "--json",
                          "--confirm-within", "0", *common).stdout)
    assert again["applied"] is False and again["changes"] == [], again

    code = ("from trustwall.journal.transaction import undo; import sys; "
            f"print(undo(state_dir={str(state)!r}).undone)")
    server.run([sys.executable, "-c", code])
    assert saved(server) == before
    assert not persist.exists()
    assert connect(client) == "FAIL No route to host"


def test_expired_rule_is_removed_by_fw_expire(hosts, tmp_path):
    server, client = hosts
    imported = tw(server, "fw", "import", "--live").stdout
    policy = tmp_path / "policy.yaml"
    policy.write_text(add_jmx_rule(imported, expires="2020-01-01T00:00:00Z"))
    common = ["--state-dir", str(tmp_path / "state"), "--no-persist"]
    tw(server, "fw", "apply", str(policy), "--yes", "--confirm-within", "0", *common)
    assert connect(client) == "OK JMX"
    out = tw(server, "fw", "expire", "--json", *common).stdout
    removed = json.loads(out)["removed"]
    assert len(removed) == 1 and "tw:jmx expires=2020-01-01T00:00:00Z" in removed[0]
    assert connect(client) == "FAIL No route to host"
    assert "18745" not in saved(server)


def test_broken_policy_is_refused_and_kernel_untouched(hosts, tmp_path):
    server, _ = hosts
    before = saved(server)
    policy = tmp_path / "policy.yaml"
    policy.write_text(add_jmx_rule(tw(server, "fw", "import", "--live").stdout)
                      .replace("--dport 18745", "--dport 77777"))
    proc = tw(server, "fw", "apply", str(policy), "--yes", "--state-dir",
              str(tmp_path / "state"), check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "77777" in proc.stderr
    assert saved(server) == before


def test_unconfirmed_change_rolls_back_even_if_the_applier_dies(hosts, tmp_path):
    server, client = hosts
    before = saved(server)
    policy = tmp_path / "policy.yaml"
    policy.write_text(add_jmx_rule(tw(server, "fw", "import", "--live").stdout))
    state = tmp_path / "state"
    tw(server, "fw", "apply", str(policy), "--yes", "--confirm-within", "2", "--no-persist",
       "--state-dir", str(state))
    assert connect(client) == "OK JMX"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and saved(server) != before:
        time.sleep(0.3)
    assert saved(server) == before
    assert connect(client) == "FAIL No route to host"
    late = tw(server, "fw", "confirm", "--state-dir", str(state), check=False)
    assert late.returncode != 0


def test_confirmed_change_stays(hosts, tmp_path):
    server, client = hosts
    policy = tmp_path / "policy.yaml"
    policy.write_text(add_jmx_rule(tw(server, "fw", "import", "--live").stdout))
    state = tmp_path / "state"
    persist = tmp_path / "rules.v4"
    tw(server, "fw", "apply", str(policy), "--yes", "--confirm-within", "3",
       "--persist-file", f"4={persist}", "--state-dir", str(state))
    assert not persist.exists()  # nothing persisted before the confirmation
    tw(server, "fw", "confirm", "--state-dir", str(state))
    time.sleep(3.5)
    assert connect(client) == "OK JMX"
    assert "18745" in persist.read_text()


ECHO_22 = ("import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, "
           "socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', 22)); s.listen(4)\n"
           "c, _ = s.accept()\nwhile True:\n    d = c.recv(100)\n    if not d: break\n"
           "    c.sendall(d)\n")
# Stands for the operator's SSH session: connects, prints its own port, then echoes lines.
SESSION = ("import socket,sys\n"
           f"s=socket.create_connection(('{SERVER_IP}', 22), timeout=5)\n"
           "print(s.getsockname()[1], flush=True)\n"
           "for line in sys.stdin:\n    s.sendall(line.encode())\n"
           "    print(s.recv(100).decode().strip(), flush=True)\n")


def cut_ssh(policy_text: str) -> str:
    """The policy minus the ESTABLISHED and port-22 rules: it would cut the operator off."""
    doc = yaml.safe_load(policy_text)
    rules = doc["ipv4"]["filter"]["INPUT"]["rules"]
    doc["ipv4"]["filter"]["INPUT"]["rules"] = [
        r for r in rules if "ESTABLISHED" not in r["rule"] and "--dport 22 " not in r["rule"]]
    return yaml.safe_dump(doc, sort_keys=False)


def test_lockout_is_refused_statically_and_rolled_back_when_forced(hosts, tmp_path):
    server, client = hosts
    server.popen([sys.executable, "-c", ECHO_22], stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    session = client.popen([sys.executable, "-c", SESSION], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    port = int(session.stdout.readline())
    ssh = {"SSH_CONNECTION": f"{CLIENT_IP} {port} {SERVER_IP} 22"}
    before = saved(server)
    policy = tmp_path / "policy.yaml"
    policy.write_text(cut_ssh(tw(server, "fw", "import", "--live").stdout))
    state = tmp_path / "state"

    refused = tw(server, "fw", "apply", str(policy), "--yes", "--no-persist", "--state-dir",
                 str(state), env=ssh, check=False)
    assert refused.returncode == 1, refused.stderr
    assert "lockout" not in refused.stdout
    assert "the session would be REJECT" in refused.stderr
    assert saved(server) == before

    # Forced, with a short confirmation window, and the applying process killed right after:
    # the detached watcher still restores the old ruleset.
    applier = server.popen([sys.executable, "-m", "trustwall", "fw", "apply", str(policy),
                            "--yes", "--force", "--confirm-within", "2", "--no-persist",
                            "--state-dir", str(state)],
                           env={"PATH": os.environ["PATH"], "HOME": "/root", **ssh},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and saved(server) == before:
        time.sleep(0.05)
    assert saved(server) != before, "the forced apply never happened"
    applier.kill()
    while time.monotonic() < deadline and saved(server) != before:
        time.sleep(0.2)
    assert saved(server) == before
    session.stdin.write("still here\n")
    session.stdin.flush()
    assert session.stdout.readline().strip() == "still here"
    session.stdin.close()


def big_ruleset(n: int, marker: str) -> str:
    """A filter table with n rules and a nat table with n/10, all tagged with ``marker``."""
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]"]
    lines += [f"-A PREROUTING -d 198.19.{i // 250}.{i % 250 + 1}/32 -p tcp -m tcp --dport 8080 "
              f"-m comment --comment {marker} -j REDIRECT --to-ports 80" for i in range(n // 10)]
    lines += ["COMMIT", "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]",
              ":OUTPUT ACCEPT [0:0]"]
    lines += [f"-A INPUT -s 198.19.{i // 250}.{i % 250 + 1}/32 -p tcp -m tcp "
              f"--dport {1000 + i % 999} -m comment --comment {marker} -j ACCEPT"
              for i in range(n)]
    lines += ["COMMIT"]
    return "\n".join(lines) + "\n"


def table_markers(ns: Netns) -> dict[str, set[str]]:
    """Which markers each table's rules carry (one marker per table = not half-applied)."""
    out: dict[str, set[str]] = {}
    table = ""
    for line in ns.run(["iptables-save"]).stdout.splitlines():
        if line.startswith("*"):
            table = line[1:]
            out[table] = set()
        elif line.startswith("-A"):
            out[table].add(re.search(r"--comment \"?([a-z]+)", line).group(1))
    return out


def test_kill_9_during_apply_never_leaves_a_half_applied_table(tmp_path):
    import random

    rng = random.Random(1234)
    with Netns.create("fwkill") as ns:
        ns.run(["iptables-restore"], input=big_ruleset(1500, "old"))
        (tmp_path / "new.v4").write_text(big_ruleset(1500, "new"))
        policy = tmp_path / "policy.yaml"
        policy.write_text(tw(ns, "fw", "import", "--file", str(tmp_path / "new.v4")).stdout)
        recover = ("from trustwall.journal.transaction import recover; "
                   f"recover(state_dir={str(tmp_path / 'state')!r})")
        outcomes = set()
        for _ in range(6):
            ns.run(["iptables-restore"], input=big_ruleset(1500, "old"))
            proc = ns.popen([sys.executable, "-m", "trustwall", "fw", "apply", str(policy),
                             "--yes", "--confirm-within", "0", "--no-persist", "--state-dir",
                             str(tmp_path / "state")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.2, 1.5))
            proc.kill()
            proc.wait()
            time.sleep(0.3)  # an iptables-restore child may still be committing
            for markers in table_markers(ns).values():
                assert len(markers) == 1, markers  # each table wholly old or wholly new
            ns.run([sys.executable, "-c", recover])
            final = table_markers(ns)
            assert final["filter"] == final["nat"], final  # and the tables agree after recovery
            outcomes.add(next(iter(final["filter"])))
        assert outcomes <= {"old", "new"}


def test_quick_allow_for_two_hours_then_expiry_and_delete(hosts, tmp_path):
    server, client = hosts
    before = saved(server)
    state = ["--state-dir", str(tmp_path / "state"), "--no-persist", "--confirm-within", "0"]
    out = tw(server, "fw", "allow", "--proto", "tcp", "--dport", "18745", "--state", "NEW",
             "--name", "jmx", "--for", "2h", "--apply", "--yes", "--json", *state).stdout
    result = json.loads(out)
    assert result["position"] == 10 and result["result"]["applied"] is True
    assert connect(client) == "OK JMX"
    rules = [line for line in saved(server).splitlines() if line.startswith("-A INPUT")]
    assert '"tw:jmx expires=' in rules[9] and "REJECT" in rules[10]

    # Not expired yet: fw expire leaves it; the policy diff names it.
    assert json.loads(tw(server, "fw", "expire", "--json", *state).stdout)["removed"] == []
    # Deleting it by number through the planner restores the seed ruleset exactly.
    # With the test's own state dir: never a transaction in the host's /var/lib/trustwall
    # (a later `trustwall undo` there would load this lab's ruleset onto the host).
    tw(server, "fw", "delete", "--apply", "--yes", *state, "INPUT", "10")
    assert saved(server) == before
    assert connect(client) == "FAIL No route to host"


def test_diff_of_a_policy_against_the_live_ruleset_names_the_change(hosts, tmp_path):
    server, _ = hosts
    policy = tmp_path / "policy.yaml"
    policy.write_text(add_jmx_rule(tw(server, "fw", "import", "--live").stdout))
    proc = tw(server, "fw", "diff", "--live", str(policy), "--json", check=False)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    changes = [str(c["packets"]) + ": " + c["before"] + " → " + c["after"]
               for h in doc["hooks"] for c in h["changes"]]
    assert changes == ["tcp dport 18745 state NEW in not lo from any: REJECT → ACCEPT"], changes
    assert "+ jmx (filter INPUT)" in doc["rules"]


def test_legacy_backend_is_managed_when_asked(tmp_path):
    """On a host whose rules live in x_tables, TRUSTWALL_IPTABLES_BACKEND=legacy makes every
    read and restore use iptables-legacy-*; the nft backend is never touched."""
    with Netns.create("fwlegacy") as server, Netns.create("fwlegclient") as client:
        veth(server, "eth0", f"{SERVER_IP}/24", client, "eth0", f"{CLIENT_IP}/24")
        server.run(["iptables-legacy-restore"], input=SEED_RULES)
        server.popen([sys.executable, "-c", LISTENER], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        assert connect(client) == "FAIL No route to host"
        env = {"TRUSTWALL_IPTABLES_BACKEND": "legacy"}
        out = tw(server, "fw", "allow", "--proto", "tcp", "--dport", "18745", "--apply",
                 "--yes", "--json", "--confirm-within", "0", "--no-persist", "--state-dir",
                 str(tmp_path / "state"), env=env).stdout
        assert json.loads(out)["position"] == 10
        assert connect(client) == "OK JMX"
        legacy = server.run(["iptables-legacy-save"]).stdout
        assert legacy.count("-A INPUT") == 11 and "--dport 18745" in legacy
        assert "-A " not in server.run(["iptables-nft-save"]).stdout
        bad = tw(server, "fw", "show", env={"TRUSTWALL_IPTABLES_BACKEND": "bpf"}, check=False)
        assert bad.returncode == 2 and "nft or legacy" in bad.stderr
