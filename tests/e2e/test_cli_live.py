"""The newcomer's firewall path on a real kernel (issue 17), in two network namespaces:
a live fw trace from just a port, one confirmation behaviour for fw allow --apply (refused
without a terminal, one question on one), the journal showing the rule itself, fw diff POLICY
against the running firewall, undo.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fw_hosts import CLIENT_IP, SERVER_IP, connect, two_hosts

from trustwall.lab.netns import Netns

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

ENV = {"PATH": os.environ["PATH"], "HOME": "/root", "NO_COLOR": "1", "COLUMNS": "80",
       **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}  # the code under test


@pytest.fixture
def hosts():
    with two_hosts("clisrv") as (server, client):
        # a default route: the live trace derives --in from the route back to any source
        server.run(["ip", "route", "add", "default", "via", CLIENT_IP])
        yield server, client


def tw(ns: Netns, *args: str) -> subprocess.CompletedProcess:
    # input="": stdin is a pipe, never the terminal pytest may have been started from.
    return ns.run([sys.executable, "-m", "trustwall", *args], check=False, env=ENV, input="")


def on_a_terminal(ns: Netns, args: list[str], answer: str) -> tuple[int, str]:
    main, secondary = os.openpty()
    try:
        proc = subprocess.Popen(ns.argv([sys.executable, "-m", "trustwall", *args]),
                                stdin=secondary, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ENV)
        os.write(main, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(main)
        os.close(secondary)
    return proc.returncode, out + err


def saved(ns: Netns) -> str:
    return "".join(line + "\n" for line in ns.run(["iptables-save"]).stdout.splitlines()
                   if not line.startswith("#"))



def test_newcomer_firewall_path(hosts, tmp_path):
    server, client = hosts
    before = saved(server)

    # fw trace needs only the port: any remote, arriving by the route back to it, to here.
    trace = tw(server, "fw", "trace", "--dport", "18745")
    assert trace.returncode == 0, trace.stderr
    assert f"Packet  tcp 192.0.2.10 -> {SERVER_IP}:18745, NEW, in eth0" in trace.stdout
    assert "REJECT  decided by filter INPUT rule 10" in trace.stdout
    assert "exit status" not in trace.stdout + trace.stderr
    assert "give --src" in trace.stderr  # the assumptions are said, on stderr
    named = tw(server, "fw", "trace", "-s", CLIENT_IP, "--dport", "18745/tcp")
    assert f"tcp {CLIENT_IP} -> {SERVER_IP}:18745, NEW, in eth0" in named.stdout

    # No terminal, no --yes: one line naming --yes, nothing changed.
    state = ["--state-dir", str(tmp_path / "state"), "--no-persist", "--confirm-within", "0"]
    allow = ["fw", "allow", "--dport", "18745/tcp", "--apply", *state]
    refused = tw(server, *allow)
    assert refused.returncode == 2
    assert [line for line in refused.stderr.splitlines() if line] == [
        "trustwall: error: refusing to change the firewall without confirmation (no terminal "
        "to ask on): rerun with --yes"]
    assert saved(server) == before

    # A terminal gets the change and one question; no "dry run" line before it.
    code, text = on_a_terminal(server, allow, "n")
    assert code == 2 and text.count("Apply this change? [y/N]") == 1, text
    assert "Dry run" not in text and "REJECT → ACCEPT" in text
    assert saved(server) == before
    code, text = on_a_terminal(server, allow, "y")
    assert code == 0, text
    assert connect(client) == "OK JMX"

    # The journal shows the rule itself, on one line.
    log = tw(server, "log", "--state-dir", str(tmp_path / "state"))
    lines = log.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("fw-rule: add filter INPUT rule 10: -p tcp -m tcp --dport 18745 "
                             "-j ACCEPT"), lines

    # fw diff POLICY compares with the running firewall without being told --live.
    policy = tmp_path / "policy.yaml"
    policy.write_text(tw(server, "fw", "import").stdout)
    diff = tw(server, "fw", "diff", str(policy))
    assert diff.returncode == 0 and "no packet changes verdict" in diff.stdout, diff.stderr

    undo = tw(server, "undo", "--state-dir", str(tmp_path / "state"))
    assert undo.returncode == 0, undo.stderr
    assert saved(server) == before
    assert connect(client) == "FAIL No route to host"
