"""Issue 18's attacks on the firewall half, reproduced on a real kernel in lab namespaces:
each is refused (exit 2, kernel untouched) or harmless (read faithfully), and what validation
might miss is caught by the post-apply comparison with the kernel and rolled back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import yaml
from fw_hosts import CLIENT_IP, SERVER_IP, connect, two_hosts

from trustwall.lab.netns import Netns
from trustwall.lab.topology import SEED_RULESET

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

INJECTION = 'x"\n-A INPUT -j ACCEPT\n#'
ENV = {"PATH": os.environ["PATH"], "HOME": "/root", "NO_COLOR": "1"}
# The seed without its ESTABLISHED and tcp/22 rules: nothing lets an SSH session in or keeps it.
SEED_NO_SSH = "".join(line for line in SEED_RULESET.splitlines(keepends=True)
                      if "ESTABLISHED" not in line and "--dport 22 " not in line)


@pytest.fixture
def hosts():
    with two_hosts("fwhostile") as pair:
        yield pair


def tw(ns: Netns, *args: str) -> subprocess.CompletedProcess:
    """Run trustwall; its output may carry the kernel's bytes, so decode them losslessly."""
    proc = ns.run([sys.executable, "-m", "trustwall", *args], check=False, env=ENV, text=False)
    proc.stdout = proc.stdout.decode("utf-8", "surrogateescape")
    proc.stderr = proc.stderr.decode("utf-8", "surrogateescape")
    return proc


def saved(ns: Netns) -> bytes:
    """iptables-save as bytes (comments may hold any byte), minus dated lines and counters."""
    import re

    out = ns.run(["iptables-save"], text=False).stdout
    return b"".join(re.sub(rb" \[\d+:\d+\]$", b"", line) + b"\n"
                    for line in out.split(b"\n") if line and not line.startswith(b"#"))


def refused(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def test_injection_through_comment_and_interfaces_is_refused(hosts, tmp_path):
    server, client = hosts
    before = saved(server)
    state = ["--apply", "--yes", "--state-dir", str(tmp_path / "state"), "--no-persist",
             "--confirm-within", "0"]
    attacks = [("--comment", INJECTION), ("--comment", "web\rapp"),
               ("--in", "x\n-A INPUT"), ("--in", "eth0/1"), ("--comment", "é" * 200)]
    for flag, value in attacks:
        err = refused(tw(server, "fw", "allow", "-p", "tcp", "--dport", "18745", flag, value,
                         *state))
        assert "\n-A INPUT" not in err  # the hostile value is shown escaped
    # --plan refuses as well: nothing a plan shows may differ from what an apply would do.
    refused(tw(server, "fw", "allow", "-p", "tcp", "--dport", "18745", "--comment", INJECTION,
               "--plan"))
    assert saved(server) == before
    assert connect(client) == "FAIL No route to host"
    assert not (tmp_path / "state" / "txns").exists() or not any(
        (tmp_path / "state" / "txns").iterdir())


@pytest.mark.parametrize("where", ["user chain", "unmanaged"])
def test_policy_chain_name_injection_is_refused_by_diff_dry_run_and_apply(hosts, tmp_path,
                                                                          where):
    server, client = hosts
    before = saved(server)
    policy = tmp_path / "policy.yaml"
    bad = "AUDIT - [0:0]\n-I INPUT -j ACCEPT\n#"
    doc = yaml.safe_load(tw(server, "fw", "import", "--live").stdout)
    if where == "user chain":
        doc["ipv4"]["filter"][bad] = {"rules": []}
    else:
        doc["ipv4"]["filter"]["unmanaged"] = [bad]
    policy.write_text(yaml.safe_dump(doc, sort_keys=False))
    for args in (["diff", "--live", str(policy)],
                 ["apply", str(policy), "--dry-run"],
                 ["apply", str(policy), "--yes", "--no-persist", "--confirm-within", "0",
                  "--state-dir", str(tmp_path / "state")]):
        err = refused(tw(server, "fw", *args))
        assert "chain name" in err and "policy.yaml" in err
    assert saved(server) == before
    assert connect(client) == "FAIL No route to host"


def test_hand_made_rule_with_cr_in_its_interface_is_not_read_as_accept_all(hosts, tmp_path):
    server, client = hosts
    # Matches nothing in the kernel; iptables-save prints it as "-i x\r-A INPUT -j ACCEPT".
    server.run(["iptables", "-I", "INPUT", "1", "-i", "x\r-A INPUT", "-j", "ACCEPT"])
    before = saved(server)
    trace = tw(server, "fw", "trace", "-s", CLIENT_IP, "-d", SERVER_IP, "--dport", "8080",
               "--in", "eth0", "--state", "new")
    assert "ACCEPT" not in trace.stdout  # it used to say accepted; the kernel rejects
    # the rule, named (fw trace --live reads iptables-nft's tables through iptables-nft-save)
    assert "iptables-nft-save:6: bad argument" in refused(trace)
    deny = tw(server, "fw", "deny", "-p", "udp", "--dport", "9999", "--apply", "--yes",
              "--no-persist", "--confirm-within", "0", "--state-dir", str(tmp_path / "s"))
    refused(deny)
    assert saved(server) == before
    assert b"\n-A INPUT -j ACCEPT\n" not in saved(server)
    assert connect(client) == "FAIL No route to host"


def test_odd_comments_in_the_kernel_are_kept_byte_for_byte_and_expiry_still_works(hosts,
                                                                                   tmp_path):
    """A comment with \\r, one with a byte that is not UTF-8, and an expired temporary rule:
    show, import, an unrelated apply and expire all work, and the odd rules survive."""
    server, client = hosts
    for comment in (b"web\rapp", b"caf\xe9 \xff", b"tw:old expires=2020-01-01T00:00:00Z"):
        add = server.argv(["iptables", "-I", "INPUT", "1", "-p", "tcp", "--dport", "18745",
                           "-m", "comment", "--comment"])
        subprocess.run([*add, comment, b"-j", b"ACCEPT"], check=True, capture_output=True)
    assert connect(client) == "OK JMX"
    odd = [line for line in saved(server).split(b"\n") if b"web\rapp" in line
           or b"\xff" in line]
    assert len(odd) == 2
    for args in (["show"], ["show", "--json"], ["save"], ["lint"]):
        proc = tw(server, "fw", *args)
        assert proc.returncode in (0, 1), proc.stderr  # lint: 1 = findings
    assert b"caf\xe9 \xff" in tw(server, "fw", "save").stdout.encode("utf-8", "surrogateescape")
    # A policy file is UTF-8 text: import says which rule it cannot write, and why.
    assert "filter INPUT rule 2 holds bytes that are not UTF-8" in refused(
        tw(server, "fw", "import", "--live"))
    common = ["--no-persist", "--confirm-within", "0", "--state-dir", str(tmp_path / "state")]
    proc = tw(server, "fw", "deny", "-p", "udp", "--dport", "9999", "--apply", "--yes",
              *common)
    assert proc.returncode == 0, proc.stderr
    proc = tw(server, "fw", "expire", "--json", *common)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["removed"]) == 1
    after = saved(server)
    assert b"tw:old" not in after and b"--dport 9999" in after
    assert all(line in after.split(b"\n") for line in odd)


def test_post_apply_check_rolls_back_what_validation_misses(hosts, tmp_path):
    """With the field checks switched off, the original attack reaches the kernel; the
    comparison of the kernel with the plan catches it, rolls back and says what it saw."""
    server, client = hosts
    before = saved(server)
    script = textwrap.dedent(f"""\
        import sys
        from trustwall.firewall.iptables import fields
        fields.check_added = fields.check_rule = lambda *a, **k: None
        from trustwall.errors import TrustwallError
        from trustwall.firewall.change.apply import Options
        from trustwall.firewall.analysis.plan import build_rule
        from trustwall.firewall.change.quick import apply_rule
        rule = build_rule("ACCEPT", proto="tcp", dport="18745", comment={INJECTION!r})
        try:
            apply_rule(rule, options=Options(confirm_within=0, persist=False,
                                             state_dir={str(tmp_path / 'state')!r}))
        except TrustwallError as exc:
            print(type(exc).__name__, exc.exit_code, exc)
            sys.exit(0)
        sys.exit("applied without complaint")
        """)
    proc = server.run([sys.executable, "-c", script], env=ENV, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("KernelMismatch 1 IPv4: after the restore the kernel holds")
    assert "previous ruleset is back in place" in proc.stdout
    assert saved(server) == before
    assert connect(client) == "FAIL No route to host"
    log = json.loads(tw(server, "log", "--json", "--state-dir", str(tmp_path / "state")).stdout)
    assert [t["status"] for t in log["records"]] == ["rolled-back"]


# -- whose session is this? (sudo and Ansible's become strip SSH_CONNECTION) -------------------

# Stands for sshd: for each session it is given, accept one connection on port 22 and run
# the session's commands as children with a clean environment (as `sudo` leaves it: no
# SSH_CONNECTION), print each child's exit code and stderr as one JSON line, then close.
SSHD = """\
import json, socket, subprocess, sys
sessions = json.loads(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 22)); s.listen(4)
print("ready", flush=True)
for commands in sessions:
    conn, _ = s.accept()
    for argv in commands:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "NO_COLOR": "1"}
        if argv[0] == "SSH_CONNECTION=":
            env["SSH_CONNECTION"], argv = "", argv[1:]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        print(json.dumps([proc.returncode, proc.stderr]), flush=True)
    conn.close()
"""
# The operator's ssh client: one connection per command, each held until the server closes it.
SSH = f"""\
import socket, sys
for _ in range(int(sys.argv[1])):
    c = socket.create_connection(("{SERVER_IP}", 22), timeout=60)
    c.recv(1)
"""


def through_sshd(server: Netns, client: Netns, *sessions: list[list[str]]
                 ) -> list[tuple[int, str]]:
    """Run each session's commands as children of an (ssh) session holding its own client
    connection; (exit code, stderr) per command."""
    sshd = server.popen([sys.executable, "-c", SSHD, json.dumps(list(sessions))],
                        stdout=subprocess.PIPE, text=True)
    assert sshd.stdout.readline().strip() == "ready"
    client.popen([sys.executable, "-c", SSH, str(len(sessions))])
    results = [tuple(json.loads(sshd.stdout.readline())) for s in sessions for _ in s]
    sshd.wait(timeout=30)
    return results  # type: ignore[return-value]


def trustwall(*args: str) -> list[str]:
    return [sys.executable, "-m", "trustwall", *args]


def test_sudo_stripped_session_is_found_in_the_kernel_and_protected(hosts, tmp_path):
    server, client = hosts
    before = saved(server)
    common = ["--apply", "--yes", "--no-persist", "--state-dir", str(tmp_path / "state")]
    ((code, err),) = through_sshd(server, client, [trustwall(
        "fw", "deny", "-p", "tcp", "--dport", "22", "--confirm-within", "0", *common)])
    assert code == 1, err
    assert f"tcp {CLIENT_IP}:" in err and f"-> {SERVER_IP}:22" in err
    assert "would be DROP" in err
    assert saved(server) == before


def test_confirm_checks_the_real_peer_not_the_environment(hosts, tmp_path):
    server, client = hosts
    state = ["--state-dir", str(tmp_path / "state")]
    results = through_sshd(
        server, client,
        [trustwall("fw", "allow", "-p", "tcp", "--dport", "18745", "--apply", "--yes",
                   "--no-persist", *state),  # over SSH: a 60 s confirm window by default
         ["SSH_CONNECTION=", *trustwall("fw", "confirm", *state)]],  # same session: refused
        [trustwall("fw", "confirm", *state)])  # a new connection
    (applied, _), (same, same_err), (new, new_err) = results
    assert applied == 0
    assert same == 2 and "NEW connection" in same_err  # it used to confirm
    assert new == 0, new_err
    assert connect(client) == "OK JMX"


def test_an_ssh_session_that_cannot_be_read_needs_a_confirm_window_or_force(hosts, tmp_path):
    """A process named sshd that holds no connection: an SSH session is evident, but which
    connection is not, so the lockout check cannot protect it."""
    server, _ = hosts
    before = saved(server)
    blind = ("import subprocess, sys\nopen('/proc/self/comm', 'w').write('sshd')\n"
             "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "print(p.returncode, p.stderr.strip(), p.stdout)\n")
    base = trustwall("fw", "allow", "-p", "tcp", "--dport", "18745", "--apply", "--yes",
                     "--no-persist", "--state-dir", str(tmp_path / "state"))
    env = {"PATH": os.environ["PATH"], "HOME": "/root"}
    out = server.run([sys.executable, "-c", blind, *base, "--dry-run"], env=env).stdout
    assert out.startswith("1 trustwall: error: refusing: this runs in an SSH session whose "
                          "connection cannot be found"), out
    out = server.run([sys.executable, "-c", blind, *base, "--dry-run", "--confirm-within",
                      "30"], env=env).stdout
    assert out.startswith("0"), out
    out = server.run([sys.executable, "-c", blind, *base, "--force"], env=env).stdout
    assert out.startswith("0") and "could not be found" in out, out
    assert saved(server) != before


def test_relative_state_dir_still_rolls_back(hosts, tmp_path):
    """The watcher runs in /: a relative --state-dir used to make it look in the wrong place
    and never roll back."""
    server, client = hosts
    before = saved(server)
    cmd = (f"cd {tmp_path} && exec {sys.executable} -m trustwall fw allow -p tcp --dport 18745 "
           "--apply --yes --no-persist --confirm-within 1 --state-dir rel")
    server.run(["sh", "-c", cmd], env=ENV)
    assert connect(client) == "OK JMX"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and saved(server) != before:
        time.sleep(0.2)
    assert saved(server) == before
    assert (tmp_path / "rel" / "txns").is_dir()


# -- undo must never do harm ------------------------------------------------------------------

def allow_jmx(ns: Netns, state: str) -> None:
    proc = tw(ns, "fw", "allow", "-p", "tcp", "--dport", "18745", "--apply", "--yes",
              "--no-persist", "--confirm-within", "0", "--state-dir", state)
    assert proc.returncode == 0, proc.stderr


def test_undo_refuses_when_the_firewall_changed_since(hosts, tmp_path):
    """After the apply someone adds a rule by hand (to keep SSH open, say): undo used to wipe
    it silently by restoring the before-image over it."""
    server, client = hosts
    state = str(tmp_path / "state")
    allow_jmx(server, state)
    server.run(["iptables", "-I", "INPUT", "1", "-p", "tcp", "--dport", "2222", "-j", "ACCEPT"])
    changed = saved(server)
    err = refused(tw(server, "undo", "--state-dir", state))
    assert "changed since" in err and "--dport 2222" in err
    refused(tw(server, "undo", "--dry-run", "--state-dir", state))
    assert saved(server) == changed and connect(client) == "OK JMX"
    # Forced, the operator accepts losing the hand-made rule: the before-image comes back.
    proc = tw(server, "undo", "--force", "--state-dir", state)
    assert proc.returncode == 0, proc.stderr
    assert b"2222" not in saved(server) and connect(client) == "FAIL No route to host"


def test_undo_refuses_in_another_network_namespace_even_forced(hosts, tmp_path):
    """A transaction journaled in one namespace (a lab's) must never be undone in another (the
    host's): it would load the lab's ruleset there."""
    server, _ = hosts
    state = str(tmp_path / "state")
    allow_jmx(server, state)
    with Netns.create("fwother") as other:
        other.run(["iptables", "-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "ACCEPT"])
        before = saved(other)
        for extra in ([], ["--force"], ["--dry-run"]):
            err = refused(tw(other, "undo", "--state-dir", state, *extra))
            assert "another network namespace" in err
        assert saved(other) == before
    proc = tw(server, "undo", "--state-dir", state)  # where it was made, it undoes
    assert proc.returncode == 0, proc.stderr


def test_undo_runs_the_lockout_check_on_its_result(hosts, tmp_path):
    """The transaction opened SSH; undoing it from that SSH session would cut the session."""
    server, client = hosts
    no_ssh = SEED_NO_SSH
    server.run(["iptables-restore"], input=no_ssh)
    state = ["--state-dir", str(tmp_path / "state")]
    proc = tw(server, "fw", "allow", "-p", "tcp", "--dport", "22", "--apply", "--yes",
              "--no-persist", "--confirm-within", "0", *state)
    assert proc.returncode == 0, proc.stderr
    opened = saved(server)
    ((code, err), (dry, dry_err)) = through_sshd(
        server, client, [trustwall("undo", *state), trustwall("undo", "--dry-run", *state)])
    assert code == 2 and "would lock you out" in err and f"{CLIENT_IP}:" in err, err
    assert dry == 2 and "would lock you out" in dry_err
    assert saved(server) == opened
    proc = tw(server, "undo", *state)  # from the console (no session): allowed
    assert proc.returncode == 0, proc.stderr
    assert b"--dport 22 " not in saved(server)
