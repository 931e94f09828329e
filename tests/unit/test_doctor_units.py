"""The doctor's pieces without the lab: ladders, /proc/net parsing (ss as the oracle), a DNS
question and answer, /etc/hosts lines, which proxy each client would use, and the CLI's exit
codes for bad input."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustwall.cli.main import main
from trustwall.doctor.inbound import listeners, parse_proc_net, why_in
from trustwall.doctor.ladder import Climb, Rung
from trustwall.doctor.net import (
    ask_dns,
    decode_answer,
    encode_query,
    hosts_entries,
    tcp_connect,
)
from trustwall.doctor.outbound import client_proxy
from trustwall.tls.probe import parse_target


# -- ladder ----------------------------------------------------------------------------------
def test_rungs_after_the_first_broken_one_are_skipped() -> None:
    climb = Climb("t", ("a", "b", "c"))
    climb.add(Rung("a", "warning", "x", "y"))
    climb.add(Rung("b", "broken", "x", "y", "fix it"))
    ladder = climb.finish()
    assert ladder.broken == "b" and ladder.exit_code == 1
    assert ladder.to_json() == {
        "target": "t", "broken": "b",
        "rungs": [{"name": "a", "status": "warning", "checked": "x", "found": "y",
                   "next_command": None},
                  {"name": "b", "status": "broken", "checked": "x", "found": "y",
                   "next_command": "fix it"},
                  {"name": "c", "status": "skipped", "checked": "-",
                   "found": "not checked: the b rung is broken", "next_command": None}]}


def test_blame_moves_the_answer_to_an_earlier_rung() -> None:
    climb = Climb("t", ("dns", "tcp"))
    climb.add(Rung("dns", "warning", "x", "override"))
    climb.add(Rung("tcp", "broken", "x", "refused"))
    climb.blame("dns", "stale entry", "sed")
    assert climb.finish().broken == "dns"


def test_a_rung_status_is_one_of_four() -> None:
    with pytest.raises(ValueError):
        Rung("a", "fine", "x", "y")


# -- sockets ---------------------------------------------------------------------------------
def test_listeners_agree_with_ss() -> None:
    with socket.socket() as v4, socket.socket(socket.AF_INET6) as v6:
        v4.bind(("127.0.0.1", 0))
        v4.listen()
        port = v4.getsockname()[1]
        v6.bind(("::1", port))
        v6.listen()
        found = listeners(port)
        ss = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                            text=True, check=True).stdout
    assert sorted(s.address for s in found) == ["127.0.0.1", "::1"]
    assert len(ss.splitlines()) == 2
    assert {s.pid for s in found} == {os.getpid()}
    assert all(s.loopback_only for s in found)


def test_parse_proc_net_reads_both_families() -> None:
    v4 = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
          "timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 "
          "00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n")
    v6 = ("  sl  local_address                         remote_address                        st "
          "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
          "   0: 00000000000000000000000001000000:4965 00000000000000000000000000000000:0000 0A "
          "00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0\n")
    (a,) = parse_proc_net(v4, "tcp", "0A")
    (b,) = parse_proc_net(v6, "tcp", "0A")
    assert (a.address, a.port, a.inode) == ("127.0.0.1", 8080, 12345)
    assert (b.address, b.port, b.inode) == ("::1", 18789, 777)


def test_why_in_names_a_loopback_listener_of_this_process() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        ladder = why_in(sock.getsockname()[1])
    assert ladder.broken == "bind"
    assert ladder.rung("listen").status == "ok"


def test_a_closed_port_is_a_reset_not_icmp() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: the kernel answers RST
        result = tcp_connect("127.0.0.1", port, timeout=2)
    assert not result.ok and result.errno_name == "ECONNREFUSED" and result.icmp is None


# -- dns -------------------------------------------------------------------------------------
_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)


@settings(max_examples=50, deadline=None)
@given(labels=st.lists(_label, min_size=1, max_size=4),
       addrs=st.lists(st.ip_addresses(), max_size=3), ident=st.integers(0, 65535))
def test_dns_answers_decode(labels: list[str], addrs: list, ident: int) -> None:
    query = encode_query(".".join(labels), 1, ident)
    answers = b""
    for addr in addrs:
        rtype = 1 if addr.version == 4 else 28
        answers += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 60, len(addr.packed)) \
            + addr.packed
    response = struct.pack("!HHHHHH", ident, 0x8180, 1, len(addrs), 0, 0) + query[12:] + answers
    assert decode_answer(response, ident) == (0, [str(a) for a in addrs])


def test_ask_dns_reads_nxdomain_and_addresses() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))

    def serve() -> None:
        for _ in range(4):
            data, peer = server.recvfrom(512)
            name_end = data.index(b"\0", 12)
            qtype = struct.unpack("!H", data[name_end + 1:name_end + 3])[0]
            known = b"\x04good" in data
            flags = 0x8180 if known else 0x8183
            answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + bytes([198, 18, 2, 2]) \
                if known and qtype == 1 else b""
            server.sendto(data[:2] + struct.pack("!HHHHH", flags, 1, 1 if answer else 0, 0, 0)
                          + data[12:name_end + 5] + answer, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    good = ask_dns("good.lab.test", "127.0.0.1", port=port)
    bad = ask_dns("missing.lab.test", "127.0.0.1", port=port)
    thread.join(5)
    server.close()
    assert good.addresses == ("198.18.2.2",) and good.rcode == 0
    assert bad.addresses == () and bad.nxdomain


def test_hosts_entries_name_the_line(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n# 10.0.0.1 box\n127.0.1.1\tBox.example box\n")
    (entry,) = hosts_entries("box", str(hosts))
    assert (entry.line, entry.address) == (3, "127.0.1.1")


# -- proxies ---------------------------------------------------------------------------------
TARGET = parse_target("https://good.lab.test")


@pytest.mark.parametrize("client,env,expected", [
    ("curl", {"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
    ("curl", {"all_proxy": "http://p:3128"}, "http://p:3128"),
    ("python", {"all_proxy": "http://p:3128"}, None),
    ("wget", {"HTTPS_PROXY": "http://p:3128"}, None),
    ("wget", {"https_proxy": "http://p:3128"}, "http://p:3128"),
    ("node", {"https_proxy": "http://p:3128"}, None),
    ("java", {"https_proxy": "http://p:3128"}, None),
    ("java", {"JAVA_TOOL_OPTIONS": "-Dhttps.proxyHost=p -Dhttps.proxyPort=3128"},
     "http://p:3128"),
    ("curl", {"https_proxy": "http://p:3128", "no_proxy": ".lab.test"}, None),
    ("wget", {"https_proxy": "http://p:3128", "NO_PROXY": ".lab.test"}, "http://p:3128"),
])
def test_each_client_reads_its_own_proxy_variables(client: str, env: dict[str, str],
                                                   expected: str | None) -> None:
    choice = client_proxy(client, TARGET, env)
    assert (choice.proxy.display if choice.proxy else None) == expected, choice.reason


def test_node_says_it_ignores_https_proxy() -> None:
    choice = client_proxy("node", TARGET, {"https_proxy": "http://p:3128"})
    assert choice.reason == "node's https module ignores https_proxy (https_proxy is set, unused)"


# -- cli -------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["why-in", "0"], ["why-in", "70000"],
                                  ["why-in", "80", "--from", "nonsense"],
                                  ["why", "ftp://example.test/"], ["why", "h", "--client", "x"]])
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2


def test_why_json_on_a_closed_local_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        code = main(["why", f"https://127.0.0.1:{port}", "--timeout", "2", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["broken"] == "tcp"
    assert [r["status"] for r in report["rungs"]] == ["ok", "ok", "broken"] + ["skipped"] * 4


def test_why_in_reads_udp_sockets_too() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        ladder = why_in(sock.getsockname()[1], proto="udp")
    assert ladder.broken == "bind"
    assert ladder.rung("listen").found.startswith("udp 127.0.0.1:")


def test_why_renders_the_ladder_for_people(capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        code = main(["why", f"https://127.0.0.1:{port}", "--timeout", "2"])
    text = capsys.readouterr().out
    assert code == 1
    assert f"BROKEN  tcp: 127.0.0.1:{port}: Connection refused" in text
    assert f"next: here: trustwall why-in {port} --from 127.0.0.1" in text
    assert "skipped  proxy, tls, trust, http: not checked" in text
    assert text.rstrip().endswith("broken at: tcp")
