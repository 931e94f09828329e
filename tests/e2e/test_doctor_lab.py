"""The doctor in the lab: every rung broken on purpose, one at a time. ``trustwall why`` runs in
the client namespace and ``trustwall why-in`` in the server namespace, each in a private mount
(and UTS) namespace with its own /etc/hosts, resolv.conf (a stub DNS server in the client
namespace) and host name, with an explicit environment. Each case checks that the doctor names
the right rung and nothing else, and where practical runs the command it suggests and shows
that the case is fixed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustwall.clients.login import SYSTEM_PATH, base_environment

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")]

ORIGIN_IP = "198.18.2.2"
SERVER_IP = "198.18.3.2"
GOOD = "https://good.lab.test"

# A stub DNS server: A records from a JSON zone, NXDOMAIN for every other name.
DNS_STUB = r"""
import json, socket, struct, sys
zone = json.loads(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
while True:
    q, peer = s.recvfrom(512)
    ident = struct.unpack("!H", q[:2])[0]
    at, labels = 12, []
    while q[at]:
        labels.append(q[at + 1:at + 1 + q[at]].decode())
        at += 1 + q[at]
    qtype = struct.unpack("!H", q[at + 1:at + 3])[0]
    question = q[12:at + 5]
    addr = zone.get(".".join(labels).lower())
    if addr is None:
        s.sendto(struct.pack("!HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question, peer)
        continue
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(addr) \
        if qtype == 1 else b""
    s.sendto(struct.pack("!HHHHHH", ident, 0x8180, 1, 1 if answer else 0, 0, 0)
             + question + answer, peer)
"""

# An HTTP proxy whose policy forbids every CONNECT.
REFUSING_PROXY = r"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 3128))
s.listen(8)
while True:
    c, _ = s.accept()
    c.recv(4096)
    c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    c.close()
"""

# A listener standing in for a service (its extra argv, e.g. JMX flags, is what ps shows).
LISTENER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
while True:
    s.accept()[0].close()
"""


@pytest.fixture(scope="module")
def dns(lab: object) -> Iterator[None]:
    """The stub nameserver in the client namespace (good.lab.test and the server)."""
    zone = {"good.lab.test": ORIGIN_IP, "server.lab.test": SERVER_IP}
    proc = lab.client.popen([sys.executable, "-c", DNS_STUB, json.dumps(zone)],  # type: ignore
                            stdin=subprocess.DEVNULL)
    try:
        for _ in range(100):
            probe = lab.client.run(["ss", "-Hlun", "sport = :53"], check=False)  # type: ignore
            if "127.0.0.1:53" in probe.stdout:
                break
            time.sleep(0.02)
        yield
    finally:
        proc.kill()
        proc.wait()


def _env(tmp: Path, lab: object, *cas: str, **extra: str) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    bundle = tmp / "bundle.pem"
    bundle.write_bytes(b"".join(lab.ca_file(c).read_bytes() for c in cas))  # type: ignore
    return {**base_environment(str(home)),
            "CURL_CA_BUNDLE": str(bundle), "SSL_CERT_FILE": str(bundle),
            "NODE_EXTRA_CA_CERTS": str(bundle), **extra}


def _doctor(ns: object, tmp: Path, args: list[str], env: dict[str, str], *,
            hosts: str | None = None, hostname: str | None = None) -> dict:
    """Run ``trustwall ARGS --json`` inside ``ns`` with its own /etc/hosts, resolv.conf and
    host name (a private mount and UTS namespace: nothing of the host changes)."""
    tmp.mkdir(parents=True, exist_ok=True)
    resolv = tmp / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    script = [f"mount --bind {resolv} /etc/resolv.conf"]
    if hosts is not None:
        hosts_file = tmp / "hosts"
        hosts_file.write_text(hosts)
        script.append(f"mount --bind {hosts_file} /etc/hosts")
    if hostname is not None:
        script.append(f"hostname {hostname}")
    script.append('exec "$@"')
    argv = ["unshare", "-m", "-u", "sh", "-c", "; ".join(script), "sh",
            sys.executable, "-m", "trustwall", *args, "--json"]
    proc = ns.run(argv, env=env, check=False, timeout=60)  # type: ignore[attr-defined]
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"target", "rungs", "broken"}
    assert proc.returncode == (1 if report["broken"] else 0), report  # the exit code contract
    return report


def _rungs(report: dict) -> dict[str, dict]:
    return {r["name"]: r for r in report["rungs"]}


def _only_broken(report: dict, name: str, evidence: tuple[str, ...] = ()) -> dict:
    """``name`` is the broken rung; nothing before it is broken, everything after skipped
    (except the ``evidence`` rungs that showed an earlier rung to be the cause)."""
    assert report["broken"] == name, report
    names = [r["name"] for r in report["rungs"]]
    at = names.index(name)
    assert all(r["status"] in ("ok", "warning") for r in report["rungs"][:at]), report
    assert all(r["status"] == "skipped" for r in report["rungs"][at + 1:]
               if r["name"] not in evidence), report
    return report["rungs"][at]


def _lab_hosts(lab: object, *, drop: str | None = None, extra: str = "") -> str:
    text = lab.hosts_file.read_text()  # type: ignore[attr-defined]
    lines = [line for line in text.splitlines() if drop is None or drop not in line.split()]
    return "\n".join(lines) + "\n" + extra


# -- outbound ------------------------------------------------------------------------------
def test_why_passes_every_rung_when_the_origin_is_reached(lab_direct: object, dns: None,
                                                          tmp_path: Path) -> None:
    env = _env(tmp_path, lab_direct, "public-root")
    report = _doctor(lab_direct.client, tmp_path / "run", ["why", GOOD + "/"], env,  # type: ignore
                         hosts=_lab_hosts(lab_direct))
    assert report["broken"] is None
    rungs = _rungs(report)
    assert [r["status"] for r in report["rungs"]] == ["ok"] * 7, report
    assert "from /etc/hosts" in rungs["dns"]["found"] and ORIGIN_IP in rungs["dns"]["found"]
    assert "TLSv1.3" in rungs["tls"]["found"] or "TLSv1.2" in rungs["tls"]["found"]
    assert rungs["http"]["found"].startswith("HTTP 200")


def test_why_names_a_missing_dns_name(lab: object, dns: None, tmp_path: Path) -> None:
    env = _env(tmp_path, lab, "public-root")
    report = _doctor(lab.client, tmp_path / "run", ["why", "https://missing.lab.test",  # type: ignore
                                                        "--timeout", "2"], env,
                         hosts=_lab_hosts(lab))
    rung = _only_broken(report, "dns")
    assert "NXDOMAIN" in rung["found"] and "not in /etc/hosts" in rung["found"]


def test_why_blames_a_stale_hosts_entry_and_its_fix_works(lab_direct: object, dns: None,
                                                          tmp_path: Path) -> None:
    env = _env(tmp_path, lab_direct, "public-root")
    # The server has no HTTPS site: a stale entry pointing there is answered with a reset.
    hosts = _lab_hosts(lab_direct, drop="good.lab.test", extra=f"{SERVER_IP}\tgood.lab.test\n")
    report = _doctor(lab_direct.client, tmp_path / "run", ["why", GOOD], env,  # type: ignore
                         hosts=hosts)
    rung = _only_broken(report, "dns", evidence=("route", "tcp"))
    assert _rungs(report)["tcp"]["status"] == "broken"
    assert f"sends good.lab.test to {SERVER_IP}" in rung["found"]
    assert f"says {ORIGIN_IP}" in rung["found"]
    # The suggested command (sed -i 'Nd' /etc/hosts), run on that hosts file, fixes it.
    hosts_file = tmp_path / "run" / "hosts"
    command = rung["next_command"].split("#")[0].split(";")[0].replace("/etc/hosts",
                                                                        str(hosts_file))
    subprocess.run(command, shell=True, check=True)
    report = _doctor(lab_direct.client, tmp_path / "run", ["why", GOOD], env,  # type: ignore
                         hosts=hosts_file.read_text())
    assert report["broken"] is None, report


def test_why_names_a_refused_port(lab: object, dns: None, tmp_path: Path) -> None:
    env = _env(tmp_path, lab, "public-root")
    # The server's INPUT accepts tcp/9090 (rule 9) but nothing listens there.
    report = _doctor(lab.client, tmp_path / "run",  # type: ignore[attr-defined]
                         ["why", "https://server.lab.test:9090"], env, hosts=_lab_hosts(lab))
    rung = _only_broken(report, "tcp")
    assert "a TCP reset from 198.18.3.2" in rung["found"]
    assert rung["next_command"] == "on 198.18.3.2: trustwall why-in 9090 --from 198.18.1.2"


def test_why_names_a_silent_drop(lab: object, dns: None, tmp_path: Path) -> None:
    env = _env(tmp_path, lab, "public-root")
    rule = ["INPUT", "-p", "tcp", "--dport", "9090", "-j", "DROP"]
    lab.server.run(["iptables", "-I", *rule])  # type: ignore[attr-defined]
    try:
        report = _doctor(lab.client, tmp_path / "run",  # type: ignore[attr-defined]
                             ["why", "https://server.lab.test:9090", "--timeout", "1"], env,
                             hosts=_lab_hosts(lab))
    finally:
        lab.server.run(["iptables", "-D", *rule])  # type: ignore[attr-defined]
    rung = _only_broken(report, "tcp")
    assert "no answer within the timeout" in rung["found"]
    assert "why-in 9090" in rung["next_command"]


def test_why_names_the_client_own_output_reject(lab_direct: object, dns: None,
                                                tmp_path: Path) -> None:
    env = _env(tmp_path, lab_direct, "public-root")
    rule = ["OUTPUT", "-d", ORIGIN_IP, "-p", "tcp", "--dport", "443", "-j", "REJECT"]
    client = lab_direct.client  # type: ignore[attr-defined]
    client.run(["iptables", "-A", *rule])
    try:
        report = _doctor(client, tmp_path / "run", ["why", GOOD], env,
                             hosts=_lab_hosts(lab_direct))
        rung = _only_broken(report, "tcp")
        assert "this host's own firewall stops it: filter OUTPUT rule 1" in rung["found"]
        assert rung["next_command"] == "trustwall fw delete --plan OUTPUT 1"
        plan = client.run([sys.executable, "-m", "trustwall", *rung["next_command"].split()[1:]],
                          env=env)
        deletion = plan.stdout.splitlines()[0]
        assert deletion.startswith("iptables -D OUTPUT 1")
        client.run(deletion.split())  # the planned deletion fixes it
        report = _doctor(client, tmp_path / "run", ["why", GOOD], env,
                             hosts=_lab_hosts(lab_direct))
        assert report["broken"] is None, report
    finally:
        client.run(["iptables", "-D", *rule], check=False)


def test_why_says_a_proxy_is_required(lab_direct: object, dns: None, tmp_path: Path) -> None:
    edge = lab_direct.edge  # type: ignore[attr-defined]
    rule = ["FORWARD", "-i", "c0", "-p", "tcp", "--dport", "443", "-j", "REJECT",
            "--reject-with", "icmp-admin-prohibited"]
    edge.run(["iptables", "-I", *rule])
    try:
        env = _env(tmp_path, lab_direct, "public-root", "acme-root")
        hosts = _lab_hosts(lab_direct)
        report = _doctor(lab_direct.client, tmp_path / "run", ["why", GOOD], env,  # type: ignore
                             hosts=hosts)
        rung = _only_broken(report, "proxy")
        assert _rungs(report)["tcp"]["status"] == "warning"
        assert "198.18.1.1 on the way forbids direct connections" in rung["found"]
        assert rung["next_command"].startswith("export https_proxy=")
        # Following it: with the proxy set, every rung passes (its CA is trusted here) ...
        env["https_proxy"] = lab_direct.proxy_url  # type: ignore[attr-defined]
        report = _doctor(lab_direct.client, tmp_path / "run", ["why", GOOD], env,  # type: ignore
                             hosts=hosts)
        assert report["broken"] is None, report
        assert "CONNECT good.lab.test:443" in _rungs(report)["proxy"]["checked"]
        # ... but not for node, whose https module ignores https_proxy.
        report = _doctor(lab_direct.client, tmp_path / "run",  # type: ignore
                             ["why", GOOD, "--client", "node"], env, hosts=hosts)
        rung = _only_broken(report, "proxy")
        assert "node's https module ignores https_proxy" in rung["found"]
    finally:
        edge.run(["iptables", "-D", *rule])


def test_why_names_a_proxy_refusing_connect(lab: object, dns: None, tmp_path: Path) -> None:
    proc = lab.client.popen([sys.executable, "-c", REFUSING_PROXY],  # type: ignore
                            stdin=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if "127.0.0.1:3128" in lab.client.run(["ss", "-Hltn"]).stdout:  # type: ignore
                break
            time.sleep(0.02)
        env = _env(tmp_path, lab, "public-root", https_proxy="http://127.0.0.1:3128")
        report = _doctor(lab.client, tmp_path / "run", ["why", GOOD], env,  # type: ignore
                             hosts=_lab_hosts(lab))
    finally:
        proc.kill()
        proc.wait()
    rung = _only_broken(report, "proxy")
    assert "refused CONNECT good.lab.test:443" in rung["found"]
    assert "403 Forbidden" in rung["found"]
    assert _rungs(report)["tcp"]["checked"].startswith("TCP connect to the proxy")


def test_why_finds_interception_and_hands_to_fix(lab: object, dns: None,
                                                 tmp_path: Path) -> None:
    env = _env(tmp_path, lab, "public-root")
    report = _doctor(lab.client, tmp_path / "run", ["why", GOOD], env,  # type: ignore
                         hosts=_lab_hosts(lab))
    rung = _only_broken(report, "trust")
    assert rung["found"].startswith("TLS inspection")
    assert "Acme Widgets Inspection CA" in rung["found"]
    assert rung["next_command"] == f"sudo trustwall fix {GOOD}"


def test_why_names_a_missing_route(tmp_path: Path) -> None:
    from trustwall.lab.netns import Netns

    with Netns.create("docroute") as ns:  # loopback only: no route anywhere
        report = _doctor(ns, tmp_path, ["why", "https://198.51.100.7"],
                         {"PATH": SYSTEM_PATH, "HOME": str(tmp_path)})
    rung = _only_broken(report, "route")
    assert "no route to 198.51.100.7" in rung["found"]


# An HTTPS site that is up but failing: every request gets 503.
FAILING_SITE = r"""
import ssl, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_HEAD(self):
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = HTTPServer(("127.0.0.1", 8443), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def test_why_names_a_failing_http_answer(lab: object, dns: None, tmp_path: Path) -> None:
    from trustwall.lab.ca import issue_leaf

    leaf = issue_leaf(lab.cas.public_inter, ["down.lab.test"])  # type: ignore[attr-defined]
    cert, key = tmp_path / "down.pem", tmp_path / "down.key"
    cert.write_bytes(leaf.fullchain_pem)
    key.write_bytes(leaf.key_pem)
    proc = lab.client.popen([sys.executable, "-c", FAILING_SITE, str(cert), str(key)],  # type: ignore
                            stdin=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if "127.0.0.1:8443" in lab.client.run(["ss", "-Hltn"]).stdout:  # type: ignore
                break
            time.sleep(0.02)
        env = _env(tmp_path, lab, "public-root")
        report = _doctor(lab.client, tmp_path / "run",  # type: ignore[attr-defined]
                         ["why", "https://down.lab.test:8443"], env,
                         hosts=_lab_hosts(lab, extra="127.0.0.1\tdown.lab.test\n"))
    finally:
        proc.kill()
        proc.wait()
    rung = _only_broken(report, "http")
    assert rung["found"] == "HTTP 503 Service Unavailable"
    assert _rungs(report)["trust"]["status"] == "ok"


# -- inbound -------------------------------------------------------------------------------
SERVER_HOSTS = f"127.0.0.1\tlocalhost\n{SERVER_IP}\tlabserver\n"
JMX_HOSTS = "127.0.0.1\tlocalhost\n127.0.1.1\tlabserver\n"


def _connects(lab: object, port: int) -> bool:
    probe = ("import socket,sys\ns=socket.socket();s.settimeout(2)\n"
             f"sys.exit(s.connect_ex(('{SERVER_IP}', {port})))")
    return lab.client.run([sys.executable, "-c", probe], check=False).returncode == 0  # type: ignore


def test_why_in_finds_the_reject_and_its_planned_rule_fixes_it(lab: object, dns: None,
                                                                tmp_path: Path) -> None:
    env = _env(tmp_path, lab, "public-root")
    # From the client: the destination's own firewall answers host-prohibited.
    report = _doctor(lab.client, tmp_path / "out",  # type: ignore[attr-defined]
                         ["why", "https://server.lab.test:18745", "--timeout", "2"], env,
                         hosts=_lab_hosts(lab))
    rung = _only_broken(report, "tcp")
    assert "ICMP host-prohibited from the destination itself" in rung["found"]
    assert "trustwall why-in 18745" in rung["next_command"]
    # On the server: the JMX stand-in listens everywhere, INPUT rule 10 rejects.
    report = _doctor(lab.server, tmp_path / "in", ["why-in", "18745"], env,  # type: ignore
                         hosts=SERVER_HOSTS, hostname="labserver")
    rung = _only_broken(report, "firewall")
    rungs = _rungs(report)
    assert "0.0.0.0:18745" in rungs["listen"]["found"]
    assert rungs["bind"]["found"] == "bound to every address"
    assert "REJECT by filter INPUT rule 10" in rung["found"]
    # The next step is trustwall's own journaled change; the plan shows the exact rule.
    assert rung["next_command"] == "sudo trustwall fw allow -p tcp --dport 18745 --apply"
    planned = "iptables -I INPUT 10 -p tcp -m tcp --dport 18745 -j ACCEPT"
    assert rung["found"].endswith(f"plans: {planned}")
    # Only from the client: the planned rule names the source.
    report = _doctor(lab.server, tmp_path / "in", ["why-in", "18745", "--from", "198.18.1.2"],  # type: ignore
                     env, hosts=SERVER_HOSTS, hostname="labserver")
    only_client = _only_broken(report, "firewall")
    assert only_client["next_command"] == \
        "sudo trustwall fw allow -p tcp --dport 18745 --src 198.18.1.2 --apply"
    assert only_client["found"].endswith(
        "plans: iptables -I INPUT 10 -s 198.18.1.2/32 -p tcp -m tcp --dport 18745 -j ACCEPT")
    assert not _connects(lab, 18745)
    lab.server.run(planned.split())  # type: ignore[attr-defined]
    try:
        assert _connects(lab, 18745)
        report = _doctor(lab.server, tmp_path / "in", ["why-in", "18745"], env,  # type: ignore
                             hosts=SERVER_HOSTS, hostname="labserver")
        assert report["broken"] is None, report
        assert "accepted by filter INPUT rule 10" in _rungs(report)["firewall"]["found"]
        # From the client the connection now opens, and the next rung breaks: JMX is not TLS.
        report = _doctor(lab.client, tmp_path / "out",  # type: ignore[attr-defined]
                         ["why", "https://server.lab.test:18745", "--timeout", "2"], env,
                         hosts=_lab_hosts(lab))
        rung = _only_broken(report, "tls")
        assert _rungs(report)["tcp"]["found"].startswith("connected to 198.18.3.2:18745")
    finally:
        lab.server.run(["iptables", "-D", "INPUT", "10"])  # type: ignore[attr-defined]


def _listener(lab: object, address: str, port: int, *flags: str) -> subprocess.Popen:
    proc = lab.server.popen([sys.executable, "-c", LISTENER, address, str(port),  # type: ignore
                             *flags], stdin=subprocess.DEVNULL)
    for _ in range(200):
        if f":{port} " in lab.server.run(["ss", "-Hltn"]).stdout:  # type: ignore
            return proc
        time.sleep(0.02)
    raise AssertionError("listener did not start")


def test_why_in_names_a_loopback_only_service(lab: object, tmp_path: Path) -> None:
    proc = _listener(lab, "127.0.0.1", 18801)
    try:
        report = _doctor(lab.server, tmp_path, ["why-in", "18801"],  # type: ignore
                             {"PATH": SYSTEM_PATH}, hosts=SERVER_HOSTS, hostname="labserver")
    finally:
        proc.kill()
        proc.wait()
    rung = _only_broken(report, "bind")
    assert rung["found"].startswith("bound to 127.0.0.1 only")


def test_why_in_names_the_jmx_hostname_trap_and_the_flag_fixes_it(lab: object,
                                                                   tmp_path: Path) -> None:
    jmx = ["-Dcom.sun.management.jmxremote.port=18802",
           "-Dcom.sun.management.jmxremote.authenticate=false"]
    proc = _listener(lab, "0.0.0.0", 18802, *jmx)
    try:
        report = _doctor(lab.server, tmp_path, ["why-in", "18802"],  # type: ignore
                             {"PATH": SYSTEM_PATH}, hosts=JMX_HOSTS, hostname="labserver")
    finally:
        proc.kill()
        proc.wait()
    rung = _only_broken(report, "hostname")
    assert "labserver -> 127.0.1.1 (/etc/hosts line 2)" in rung["found"]
    assert rung["next_command"].startswith(
        f"restart the JVM with -Djava.rmi.server.hostname={SERVER_IP}")
    # Restarted with the suggested flag, the host name rung passes (the firewall is next).
    flag = rung["next_command"].split()[4]
    proc = _listener(lab, "0.0.0.0", 18802, *jmx, flag)
    try:
        report = _doctor(lab.server, tmp_path, ["why-in", "18802"],  # type: ignore
                             {"PATH": SYSTEM_PATH}, hosts=JMX_HOSTS, hostname="labserver")
    finally:
        proc.kill()
        proc.wait()
    assert _rungs(report)["hostname"]["status"] == "ok"
    assert report["broken"] == "firewall"


def test_why_in_names_replies_dropped_by_output(lab: object, tmp_path: Path) -> None:
    proc = _listener(lab, "0.0.0.0", 22)  # INPUT rule 4 accepts tcp/22
    rule = ["OUTPUT", "-p", "tcp", "--sport", "22", "-j", "DROP"]
    env = {"PATH": SYSTEM_PATH}
    server = lab.server  # type: ignore[attr-defined]
    server.run(["iptables", "-A", *rule])
    before = server.run(["iptables-save", "-t", "filter"]).stdout
    try:
        report = _doctor(server, tmp_path, ["why-in", "22"], env, hosts=SERVER_HOSTS,
                         hostname="labserver")
        rung = _only_broken(report, "reverse")
        assert "accepted by filter INPUT rule 4" in _rungs(report)["firewall"]["found"]
        assert "the replies are stopped (DROP) by filter OUTPUT rule 1" in rung["found"]
        # The suggested planner gives the exact rule; inserted, the replies get out.
        plan = server.run([sys.executable, "-m", "trustwall",
                           *rung["next_command"].split()[1:]], env=env)
        insert = plan.stdout.splitlines()[0]
        assert insert.startswith("iptables -I OUTPUT 1 -p tcp -m state --state ESTABLISHED")
        server.run(insert.split())
        report = _doctor(server, tmp_path, ["why-in", "22"], env, hosts=SERVER_HOSTS,
                         hostname="labserver")
        assert report["broken"] is None, report
    finally:
        server.run(["iptables-restore", "-T", "filter"], input=before)
        server.run(["iptables", "-D", *rule])
        proc.kill()
        proc.wait()


def test_why_in_names_a_port_nobody_listens_on(lab: object, tmp_path: Path) -> None:
    report = _doctor(lab.server, tmp_path, ["why-in", "18999"],  # type: ignore
                         {"PATH": SYSTEM_PATH}, hosts=SERVER_HOSTS, hostname="labserver")
    rung = _only_broken(report, "listen")
    assert rung["found"] == "nothing listens on tcp/18999 here"



# -- a real JVM with JMX: the 127.0.1.1 trap as JConsole meets it ---------------------------
JMX_CLIENT = """import javax.management.remote.*;
public class JmxClient { public static void main(String[] a) throws Exception {
  JMXServiceURL u = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://" + a[0] + "/jmxrmi");
  try (JMXConnector c = JMXConnectorFactory.connect(u)) {
    System.out.println("connected: " + c.getMBeanServerConnection().getMBeanCount()); } } }
"""
JMX_PORT = 18803


def _wrapped(tmp: Path, argv: list[str], *, hosts: str, hostname: str) -> list[str]:
    """``argv`` in a private mount+UTS namespace with its own hosts, resolv.conf, host name."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "hosts").write_text(hosts)
    (tmp / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    script = (f"mount --bind {tmp / 'hosts'} /etc/hosts; "
              f"mount --bind {tmp / 'resolv.conf'} /etc/resolv.conf; "
              f"hostname {hostname}; exec \"$@\"")
    return ["unshare", "-m", "-u", "sh", "-c", script, "sh", *argv]


def _jvm(lab: object, tmp: Path, *flags: str) -> subprocess.Popen:
    """A JVM with the JMX agent on; its main class (the JDK's RMI registry) needs no compiling
    and runs until killed."""
    argv = ["java", "-XX:TieredStopAtLevel=1",
            f"-Dcom.sun.management.jmxremote.port={JMX_PORT}",
            f"-Dcom.sun.management.jmxremote.rmi.port={JMX_PORT}",
            "-Dcom.sun.management.jmxremote.authenticate=false",
            "-Dcom.sun.management.jmxremote.ssl=false", *flags,
            "-m", "java.rmi/sun.rmi.registry.RegistryImpl", str(JMX_PORT + 1)]
    proc = lab.server.popen(_wrapped(tmp, argv, hosts=JMX_HOSTS, hostname="labserver"),  # type: ignore
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(300):
        if f":{JMX_PORT} " in lab.server.run(["ss", "-Hltn"]).stdout:  # type: ignore
            return proc
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the JVM did not open its JMX port")


def _jconsole(lab: object, tmp: Path, classes: Path) -> subprocess.CompletedProcess:
    """What a remote JConsole does: look up jmxrmi in the registry, then call the stub."""
    argv = ["java", "-XX:TieredStopAtLevel=1", "-cp", str(classes), "JmxClient",
            f"{SERVER_IP}:{JMX_PORT}"]
    return lab.client.run(_wrapped(tmp, argv, hosts="127.0.0.1\tlocalhost\n",  # type: ignore
                                   hostname="labclient"), check=False, timeout=60)


def test_a_real_jmx_jvm_behind_the_127_0_1_1_trap(lab: object, tmp_path: Path) -> None:
    if subprocess.run(["which", "javac"], capture_output=True).returncode != 0:
        pytest.skip("no JDK")
    classes = tmp_path / "classes"
    (tmp_path / "JmxClient.java").write_text(JMX_CLIENT)
    javac = subprocess.Popen(["javac", "-J-XX:TieredStopAtLevel=1", "-d", str(classes),
                              str(tmp_path / "JmxClient.java")])
    env = {"PATH": SYSTEM_PATH}
    jvm = _jvm(lab, tmp_path / "jvm")
    opened = False
    try:
        report = _doctor(lab.server, tmp_path / "doc", ["why-in", str(JMX_PORT)], env,  # type: ignore
                         hosts=JMX_HOSTS, hostname="labserver")
        rung = _only_broken(report, "hostname")
        assert "by pid" in _rungs(report)["listen"]["found"]
        assert "java" in _rungs(report)["listen"]["found"]
        # Open the port as the doctor's planner says (the firewall rung's own command) ...
        plan = lab.server.run([sys.executable, "-m", "trustwall", "fw", "allow", "--proto",  # type: ignore
                               "tcp", "--dport", str(JMX_PORT), "--plan"], env=env)
        insert = plan.stdout.splitlines()[0]
        lab.server.run(insert.split())  # type: ignore[attr-defined]
        opened = True
        assert javac.wait(timeout=120) == 0
        # ... and JConsole's symptom appears: the registry answers, the stub says 127.0.1.1.
        jconsole = _jconsole(lab, tmp_path / "jc1", classes)
        assert jconsole.returncode != 0
        assert "Connection refused to host: 127.0.1.1" in jconsole.stderr, jconsole.stderr
        # The doctor's fix: restart the JVM with -Djava.rmi.server.hostname=<routable IP>.
        flag = rung["next_command"].split()[4]
        assert flag == f"-Djava.rmi.server.hostname={SERVER_IP}"
        jvm.kill()
        jvm.wait()
        jvm = _jvm(lab, tmp_path / "jvm", flag)
        report = _doctor(lab.server, tmp_path / "doc", ["why-in", str(JMX_PORT)], env,  # type: ignore
                         hosts=JMX_HOSTS, hostname="labserver")
        assert report["broken"] is None, report
        jconsole = _jconsole(lab, tmp_path / "jc2", classes)
        assert jconsole.returncode == 0, jconsole.stderr
        assert jconsole.stdout.startswith("connected: ")
    finally:
        javac.wait(timeout=120)
        jvm.kill()
        jvm.wait()
        if opened:
            lab.server.run(["iptables", "-D", "INPUT", "-p", "tcp", "-m", "tcp", "--dport",  # type: ignore
                            str(JMX_PORT), "-j", "ACCEPT"])
