"""`trustwall lab demo`: the seed stories, told on the lab with real clients and a real kernel.

The getting-out fix and the letting-in change are made by trustwall itself -- ``trustwall fix
URL --yes`` in the client's playground sandbox, ``trustwall fw allow … --apply`` on the server,
then ``trustwall undo`` for both -- exactly as a user runs them with ``trustwall lab exec``.

The demo is a list of steps; each returns a :class:`Step` (what happened, what it means, the
command a user would type, and one row per observation). The CLI draws the steps as they come
(``on_step``); ``--json`` prints the whole :class:`DemoReport`. The lab is always torn down,
also on Ctrl-C or an error, and the last step checks that nothing is left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from trustwall.lab.playground import playground_env
from trustwall.lab.proxy import ChainMode, ProxyConfig
from trustwall.lab.sites import DOMAIN
from trustwall.lab.story import Row, Step
from trustwall.lab.topology import (
    CLIENT_IP,
    EDGE_CLIENT_IP,
    JMX_PORT,
    ORIGIN_IP,
    SEED_RULESET,
    SERVER_IP,
    SERVER_NAME,
    Lab,
)

GOOD_URL = f"https://good.{DOMAIN}/"
STORY_CLIENTS = ("curl", "python", "java", "node")


@dataclass(frozen=True)
class DemoReport:
    steps: tuple[Step, ...]
    startup_seconds: float
    total_seconds: float
    left_behind: tuple[str, ...]


def _connect(lab: Lab, ns_name: str, host: str, port: int) -> str:
    """Connect from inside a namespace; return the first line received or the OS error."""
    ns = {"client": lab.client, "server": lab.server}[ns_name]
    script = ("import socket,sys\n"
              "try:\n"
              " s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3)\n"
              " print(s.recv(100).decode().strip() or 'connected')\n"
              "except OSError as e:\n"
              " print(e.strerror or e)\n")
    proc = ns.run([sys.executable, "-I", "-c", script, host, str(port)], check=False,
                  env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    return proc.stdout.strip() or proc.stderr.strip()


_CHAIN_LINE = re.compile(r"^\s*(\d+) s:(.*)$")
_ISSUER_LINE = re.compile(r"^\s+i:(.*)$")


def presented_chain(lab: Lab, *, proxy: str | None) -> tuple[list[tuple[str, str]], str]:
    """(subject, issuer) of each certificate the client is shown, and OpenSSL's verdict."""
    argv = ["openssl", "s_client", "-connect", f"good.{DOMAIN}:443", "-servername",
            f"good.{DOMAIN}", "-showcerts", "-verify_hostname", f"good.{DOMAIN}"]
    if proxy:
        argv += ["-proxy", proxy.removeprefix("http://")]
    proc = lab.client.run(argv, input="", check=False, env={"PATH": "/usr/bin:/bin"})
    chain: list[tuple[str, str]] = []
    for line in proc.stdout.splitlines():
        if m := _CHAIN_LINE.match(line):
            chain.append((m[2].strip(), ""))
        elif (m := _ISSUER_LINE.match(line)) and chain and not chain[-1][1]:
            chain[-1] = (chain[-1][0], m[1].strip())
    verdict = next((line.split(":", 1)[1].strip() for line in proc.stdout.splitlines()
                    if line.strip().startswith("Verify return code")), "no handshake")
    return chain, verdict


def trustwall_in_playground(lab: Lab, role: str, *args: str) -> subprocess.CompletedProcess:
    """``trustwall ARGS`` on the playground's ``role`` host, as `trustwall lab exec` runs it."""
    box = lab.playground(role)
    return box.run([sys.executable, "-m", "trustwall", *args], check=False, timeout=180,
                   env=playground_env(str(box.home), role), cwd=str(box.home))


def _client_rows(results: dict) -> tuple[Row, ...]:
    return tuple(Row(name, "OK" if r.ok else "FAIL", r.error or "HTTP 200")
                 for name, r in results.items())


def _one_line(proc: subprocess.CompletedProcess) -> str:
    lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    return f"exit {proc.returncode}" + (f": {lines[-1]}" if lines else "")


def _reject_counter(lab: Lab) -> int:
    """Packets counted so far by the server's final REJECT rule (iptables-save -c)."""
    text = lab.server.run(["iptables-save", "-c", "-t", "filter"]).stdout
    for line in text.splitlines():
        if line.endswith("-A INPUT -j REJECT --reject-with icmp-host-prohibited"):
            return int(line[1:].split(":", 1)[0])
    return 0


def _input_rules(lab: Lab) -> list[str]:
    text = lab.server.run(["iptables-save", "-t", "filter"]).stdout
    return [line for line in text.splitlines() if line.startswith("-A INPUT ")]


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Ctrl-C and SIGTERM both end the demo through the same clean-up path."""
    def _raise(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(on_step: Callable[[Step], None] | None = None,
             on_progress: Callable[[str], None] | None = None,
             lab: Lab | None = None) -> DemoReport:
    """Build the lab, tell the stories, tear it all down. Returns what happened.

    Given a running ``lab`` (tests), the demo borrows it: it restores the server's firewall
    and the interception at the end instead of tearing the lab down.
    """
    from trustwall.clients import login_environment, run_all, run_client
    from trustwall.lab import story as doctor
    from trustwall.lab.netns import require_root

    require_root()
    steps: list[Step] = []
    say = on_progress or (lambda _msg: None)

    def record(step: Step) -> None:
        steps.append(step)
        if on_step:
            on_step(step)

    t_total = time.perf_counter()
    extra_names: list[str] = []  # namespaces of the chapters' own hosts (checked at the end)
    borrowed = lab is not None
    lab = lab or Lab()
    with _sigterm_as_interrupt():
        try:
            if not borrowed:
                say("building the lab: 4 network namespaces, HTTPS sites, mitmproxy, a firewall")
                lab.start()
            record(Step(
                "The lab", "A small corporate network, built in namespaces",
                "Four hosts, each in its own network namespace, nothing on the host's network. "
                "The edge router intercepts HTTPS like a corporate proxy: it re-signs every "
                "site with the Acme Widgets Inspection CA.",
                "trustwall lab up",
                (Row("client", "INFO", f"{CLIENT_IP}  (curl, python, java, node)"),
                 Row("edge", "INFO", f"{EDGE_CLIENT_IP}  router + mitmproxy "
                                     f"(explicit {lab.proxy_url}, transparent on :443)"),
                 Row("origin", "INFO", f"{ORIGIN_IP}  https://good.{DOMAIN}/ and 4 broken "
                                       "sites"),
                 Row("server", "INFO", f"{SERVER_IP}  {SERVER_NAME}: JMX on tcp/{JMX_PORT}, "
                                       "RHEL-like INPUT chain"),
                 Row("start-up", "INFO", f"{lab.startup_seconds:.2f} s")),
                lab.startup_seconds))

            t = time.perf_counter()
            say("asking the site directly, interception off")
            with lab.intercepting(None):
                direct = run_client("curl", GOOD_URL, inside=lab.client,
                                    env={"CURL_CA_BUNDLE": str(lab.ca_file("public-root"))})
                chain, verdict = presented_chain(lab, proxy=None)
            record(Step(
                "Getting out", "The site itself is fine",
                "Without the proxy, the origin presents its leaf and intermediate, and curl "
                "trusting the (lab's) public root gets through.",
                f"curl --cacert public-root.pem {GOOD_URL}",
                (Row("curl", "OK" if direct.ok else "FAIL", direct.error or "HTTP 200"),
                 *(Row(f"chain[{i}]", "INFO", f"{subj}  (issued by {iss})")
                   for i, (subj, iss) in enumerate(chain))),
                time.perf_counter() - t))

            t = time.perf_counter()
            say("running curl, python, java and node through the proxy")
            results = run_all(GOOD_URL, clients=STORY_CLIENTS, inside=lab.client,
                              proxy=lab.proxy_url)
            record(Step(
                "Getting out", "Through the inspection proxy, every client fails",
                "Each client uses this host's own trust store, which does not know the Acme "
                "Widgets Inspection CA. Each says so in its own words. node ignores "
                "https_proxy; the transparent interception catches it anyway.",
                f"https_proxy={lab.proxy_url} curl {GOOD_URL}",
                tuple(Row(name, "OK" if r.ok else "FAIL", r.error or "HTTP 200")
                      for name, r in results.items()),
                time.perf_counter() - t))

            say("asking the doctor: trustwall why")
            record(doctor.why_step(lab, GOOD_URL))

            t = time.perf_counter()
            chain, verdict = presented_chain(lab, proxy=lab.proxy_url)
            record(Step(
                "Getting out", "Why: the proxy signs the site's certificate itself",
                "The certificate the client sees for good.lab.test was made on the fly by the "
                "proxy. It sends the leaf only, so the client must already trust the "
                "inspection root.",
                f"openssl s_client -proxy {EDGE_CLIENT_IP}:8080 -connect good.{DOMAIN}:443 "
                "-showcerts",
                (*(Row(f"chain[{i}]", "INFO", f"{subj}  (issued by {iss})")
                   for i, (subj, iss) in enumerate(chain)),
                 Row("openssl", "FAIL" if not verdict.startswith("0 ") else "OK", verdict)),
                time.perf_counter() - t))

            t = time.perf_counter()
            say("trustwall fix, in the client's sandbox (a proxy that also sends its root)")
            with_root = lab.proxy(ProxyConfig(chain=ChainMode.LEAF_ROOT))
            with lab.intercepting(with_root):
                fixed = trustwall_in_playground(lab, "client", "fix", GOOD_URL, "--yes",
                                                "--json")
            report = json.loads(fixed.stdout) if fixed.returncode in (0, 1) else {}
            after = (report.get("after") or {}).get("clients", [])
            installed = ((report.get("install") or {}).get("stores")) or []
            record(Step(
                "Getting out", "trustwall fix: fetch the CA, trust it everywhere, verify",
                "On a network whose proxy also sends its root, fix takes the inspection CA "
                "from the handshake, shows its fingerprint, writes it into every trust store "
                "of the client (in the lab's sandbox: copies, never this host's) in one "
                "journaled transaction, and runs every real client again.",
                f"trustwall fix {GOOD_URL} --yes",
                (*(Row(s["kind"], "INFO", f"trusted in {s['path']}") for s in installed
                   if s["added"]),
                 *(Row(c["name"], "OK" if c["ok"] else "FAIL", c["error"] or "HTTP 200")
                   for c in after)) or (Row("fix", "FAIL", _one_line(fixed)),),
                time.perf_counter() - t))

            t = time.perf_counter()
            say("the same clients through the leaf-only proxy, then trustwall undo")
            box = lab.playground("client")
            # As a new login on the client: node reads NODE_EXTRA_CA_CERTS from
            # /etc/environment, which fix set and undo takes back.
            trusted = run_all(GOOD_URL, clients=STORY_CLIENTS, inside=box,
                              env=login_environment(box, home=str(box.home), user="root"))
            undone = trustwall_in_playground(lab, "client", "undo")
            again = run_all(GOOD_URL, clients=STORY_CLIENTS, inside=box,
                            env=login_environment(box, home=str(box.home), user="root"))
            record(Step(
                "Getting out", "Trusted everywhere, until trustwall undo",
                "The CA is trusted in the stores, so the leaf-only proxy is accepted too. "
                "trustwall undo restores every store byte for byte: the clients fail again.",
                "trustwall undo",
                (*(Row(f"{r.name}, fixed", "OK" if r.ok else "FAIL", r.error or "HTTP 200")
                   for r in trusted.values()),
                 Row("trustwall undo", "OK" if undone.returncode == 0 else "FAIL",
                     _one_line(undone)),
                 *(Row(f"{r.name}, undone", "OK" if r.ok else "FAIL", r.error or "HTTP 200")
                   for r in again.values())),
                time.perf_counter() - t))

            t = time.perf_counter()
            say(f"connecting to the JMX port tcp/{JMX_PORT}")
            before = _reject_counter(lab)
            from_client = _connect(lab, "client", SERVER_NAME, JMX_PORT)
            hits = _reject_counter(lab) - before
            on_server = _connect(lab, "server", "127.0.0.1", JMX_PORT)
            rules = _input_rules(lab)
            record(Step(
                "Letting in", f"The JMX port tcp/{JMX_PORT} answers: No route to host",
                "The JMX agent is listening, but the server's INPUT chain ends in a REJECT "
                "with icmp-host-prohibited, which the client reports as 'No route to host' "
                "(not 'Connection refused').",
                f"python -c 'socket.create_connection((\"{SERVER_NAME}\", {JMX_PORT}))'",
                (Row("from client", "FAIL" if "connected" not in from_client
                     and "JMX" not in from_client else "OK", from_client),
                 Row("on the server", "OK" if "JMX" in from_client + on_server else "FAIL",
                     on_server),
                 Row("decisive rule", "INFO",
                     f"rule {len(rules)}: {rules[-1]}  (+{hits} packets)")),
                time.perf_counter() - t))

            say(f"asking the doctor on the server: trustwall why-in {JMX_PORT}")
            record(doctor.why_in_step(lab, JMX_PORT))

            t = time.perf_counter()
            say(f"trustwall fw allow -p tcp --dport {JMX_PORT} --apply, then trustwall undo")
            allow = ("fw", "allow", "-p", "tcp", "--dport", str(JMX_PORT), "--apply", "--yes")
            applied = trustwall_in_playground(lab, "server", *allow, "--json")
            placed = json.loads(applied.stdout) if applied.returncode == 0 else {}
            opened = _connect(lab, "client", SERVER_NAME, JMX_PORT)
            undone = trustwall_in_playground(lab, "server", "undo")
            closed = _connect(lab, "client", SERVER_NAME, JMX_PORT)
            record(Step(
                "Letting in", "trustwall fw allow --apply, then trustwall undo",
                "fw allow plans the ACCEPT at the latest position that decides every such "
                "packet -- before the REJECT, not appended after it -- applies it atomically "
                "with a lockout check and journals it; undo restores the ruleset.",
                " ".join(("trustwall", *allow[:-1])),
                (Row("fw allow --apply", "OK" if applied.returncode == 0 else "FAIL",
                     f"position {placed['position']}: {placed['explanation']}" if placed
                     else _one_line(applied)),
                 Row("from client", "OK" if "JMX" in opened else "FAIL", opened),
                 Row("trustwall undo", "OK" if undone.returncode == 0 else "FAIL",
                     _one_line(undone)),
                 Row("from client", "FAIL" if "JMX" not in closed else "OK", closed)),
                time.perf_counter() - t))
            say("the same story on a firewalld server (real firewalld, private D-Bus)")
            for step in firewalld_story(extra_names):
                record(step)
        finally:
            names = [ns.name for ns in lab.namespaces.values()] + extra_names
            lab.close_playground()
            if borrowed:
                lab.server.run(["iptables-restore"], input=SEED_RULESET)
                lab.set_interception(lab.default_proxy)
            else:
                say("tearing the lab down")
            t = time.perf_counter()
            if not borrowed:
                lab.stop()
            left = _left_behind(lab, names) if not borrowed else \
                _left_behind(lab, extra_names, lab_files=False)
            record(Step(
                "The lab", "Restored" if borrowed else "Torn down",
                "The server's firewall and the interception are as they were." if borrowed
                else "Every namespace, process and file of the lab is gone.",
                "iptables-restore < seed.rules" if borrowed else "trustwall lab down",
                (Row("left behind", "OK" if not left else "FAIL",
                     ", ".join(left) or "nothing"),),
                time.perf_counter() - t))
    return DemoReport(tuple(steps), round(lab.startup_seconds, 3),
                      round(time.perf_counter() - t_total, 3), tuple(left))


def _left_behind(lab: Lab, names: list[str], *, lab_files: bool = True) -> list[str]:
    """Namespaces, /etc/netns entries and lab files still present after the teardown."""
    from trustwall.lab.netns import NETNS_DIR

    left = [name for name in names if (NETNS_DIR / name).exists()]
    left += [f"/etc/netns/{name}" for name in names if os.path.exists(f"/etc/netns/{name}")]
    if lab_files:
        left += [str(path) for path in (lab.workdir, lab.state_file) if path.exists()]
    return left


def firewalld_story(names: list[str]) -> Iterator[Step]:
    """The JConsole story on a firewalld server (lab.firewalld: real firewalld, private D-Bus,
    its own namespaces): the connect fails with "No route to host", ``why-in`` names firewalld
    and its command, ``fw allow --plan`` shows firewall-cmd commands, ``--apply``, the connect
    works, ``undo``. Everything trustwall does runs inside the server, as an operator would.
    The host's namespace names are appended to ``names`` (the teardown checks them)."""
    from trustwall.lab import story as doctor
    from trustwall.lab.firewalld import SERVER_IP as FWD_SERVER_IP
    from trustwall.lab.firewalld import FirewalldHost

    def _fwd(title: str, story: str, command: str, rows: tuple[Row, ...], began: float
             ) -> Step:
        return Step("Letting in, firewalld", title, story, command, rows,
                    time.perf_counter() - began)

    t = time.perf_counter()
    with FirewalldHost() as host:
        assert host.server is not None and host.client is not None
        names += [host.server.name, host.client.name]
        refused = host.connect()
        listing = host.listing()
        yield _fwd(
            f"On a firewalld server, JConsole to tcp/{JMX_PORT}: "
            "No route to host",
            "A second server whose firewall belongs to firewalld (zone public, the Debian "
            "default). The JMX agent listens, but firewalld's zone ends in a reject with "
            "icmpx admin-prohibited: the client reports 'No route to host'.",
            f"jconsole {FWD_SERVER_IP}:{JMX_PORT}",
            (Row("firewalld", "INFO", f"{FWD_SERVER_IP}: running in {host.startup_seconds:.2f} s"
                                      " (own network, mount namespace and D-Bus)"),
             _client_row(refused),
             Row("zone public", "INFO", _zone_line(listing, "services") + "; " +
                 _zone_line(listing, "ports"))),
            t)

        yield doctor.why_in_owner_step(host, JMX_PORT)

        t = time.perf_counter()
        allow = ("fw", "allow", "-p", "tcp", "--dport", str(JMX_PORT))
        planned = host.trustwall(*allow, "--plan", "--json", check=False)
        plan = json.loads(planned.stdout) if planned.returncode == 0 else {}
        yield _fwd(
            "fw allow --plan: firewalld's own commands",
            "On a firewalld host the plan goes through firewalld: the port in the zone the "
            "packet lands in, runtime and --permanent, never a raw nft or iptables rule that "
            "the next firewall-cmd --reload would wipe.",
            " ".join(("trustwall", *allow, "--plan")),
            (Row("owner", "INFO", plan.get("owner") or _one_line(planned)),
             *(Row("command", "INFO", c) for c in plan.get("commands", ())),
             *(Row("effect", "INFO", e) for e in plan.get("effect", ()))),
            t)

        t = time.perf_counter()
        applied = host.trustwall(*allow, "--apply", "--yes", check=False)
        opened = host.connect()
        shown = _zone_line(host.listing(), "ports")
        undone = host.trustwall("undo", check=False)
        closed = host.connect()
        same = host.listing() == listing
        yield _fwd(
            "fw allow --apply through firewalld, then trustwall undo",
            "The same command as on the iptables server: trustwall runs firewall-cmd, "
            "journaled (the zone files and settings before it), reads firewalld back; "
            "firewall-cmd --list-all shows the port. undo puts firewalld back exactly.",
            " ".join(("trustwall", *allow, "--apply")),
            (Row("fw allow --apply", "OK" if applied.returncode == 0 else "FAIL",
                 _one_line(applied)),
             _client_row(opened),
             Row("firewall-cmd", "INFO", f"--list-all: {shown}"),
             Row("trustwall undo", "OK" if undone.returncode == 0 and same else "FAIL",
                 _one_line(undone) + ("; --list-all as before" if same else
                                      "; --list-all differs from before")),
             _client_row(closed)),
            t)


def _client_row(connected: str) -> Row:
    """``OK <greeting>`` / ``FAIL <reason>`` (lab.netns.connect_tcp) as the client's row."""
    verdict, _, detail = connected.partition(" ")
    return Row("from client", "OK" if verdict == "OK" else "FAIL", detail)


def _zone_line(listing: str, key: str) -> str:
    """``ports: 18745/tcp`` from ``firewall-cmd --list-all`` (``ports: (none)`` if empty)."""
    for line in listing.splitlines():
        name, _, value = line.strip().partition(":")
        if name == key:
            return f"{key}: {value.strip() or '(none)'}"
    return f"{key}: ?"
