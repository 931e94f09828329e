"""Every human view at 60, 80 and 200 columns (COLUMNS, as in a pipe): verdicts, error names
and paths are never cut, commands stand whole on their own line with no box border a copy
would pick up (issue 17).

Views of things this unit test cannot produce for real (a probe through an intercepting proxy,
a lab) are rendered from their typed results; everything readable from files runs for real.
"""

from __future__ import annotations

import pytest

from trustwall.certs.model import pem_encode
from trustwall.certs.synth import make_cert, name_der, new_key
from trustwall.cli.main import main as cli_main

WIDTHS = (60, 80, 200)
BORDERS = set("│┃║╭╮╰╯┌┐└┘─━")
LONG_ERROR = "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
URL = "https://build-artifacts.internal.example-corporation.test/repository/"
FIX = f"sudo trustwall fix {URL}"
RULES = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
         "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
         "-A INPUT -i lo -j ACCEPT\n"
         "-A INPUT -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n")


def intact(text: str, *words: str) -> None:
    """Each word appears whole within one line."""
    lines = text.splitlines()
    for word in words:
        assert any(word in line for line in lines), f"{word!r} cut or missing in:\n{text}"


def command_line(text: str, command: str) -> None:
    """``command`` is a line of its own (indentation aside), free of box borders."""
    lines = [line.strip() for line in text.splitlines()]
    assert command in lines, f"{command!r} not on a line of its own in:\n{text}"
    assert not BORDERS & set(command)


@pytest.fixture(params=WIDTHS)
def columns(request, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(request.param))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return request.param


def probe_report(code: str = "unable_to_get_issuer_cert_locally"):
    from trustwall.tls.intercept import Interception
    from trustwall.tls.report import (
        ChainEntry,
        ClientVerdict,
        Connection,
        Diagnosis,
        ProbeReport,
        StoreVerdict,
    )

    sha = ":".join(["AB"] * 32)
    chain = (ChainEntry("CN=build-artifacts.internal.example-corporation.test",
                        "CN=Example Corporation SSL Inspection CA,O=Example Corporation", sha,
                        "2026-01-01", "2027-01-01", False),)
    clients = {name: ClientVerdict(False, "/etc/ssl/certs/ca-certificates.crt",
                                   f"X509_V_ERR_{LONG_ERROR}",
                                   "reads the system bundle, which lacks the inspection CA")
               for name in ("curl", "wget", "python", "requests", "pip", "node", "java")}
    return ProbeReport(
        URL, Connection("203.0.113.10:443", "http://proxy.example-corporation.test:3128",
                        None, "TLSv1.3", "TLS_AES_256_GCM_SHA384", "h2", None, None, 80.0),
        chain, Interception(True, "Zscaler", ("issuer names Zscaler",), "high"),
        {"debian": StoreVerdict(False, f"X509_V_ERR_{LONG_ERROR}", "depth 0")}, clients,
        Diagnosis(code, "The chain is signed by a CA no store here has.", FIX,
                  "TLS inspection re-signs every site with the company's CA."))


def test_probe(columns, capsys):
    from trustwall.cli.probe import _render_report

    _render_report(probe_report())
    out = capsys.readouterr().out
    intact(out, LONG_ERROR, "unable_to_get_issuer_cert_locally", ":".join(["AB"] * 32),
           "/etc/ssl/certs/ca-certificates.crt", "http://proxy.example-corporation.test:3128")
    command_line(out, FIX)


def test_scan(columns, capsys):
    from types import SimpleNamespace

    from trustwall.cli.scan import render_scan

    summary = SimpleNamespace(endpoints=2, elapsed_s=0.4, all_clients_ok=0, trust_problems=2,
                              unreachable=0, intercepted=2)
    render_scan([probe_report(), probe_report()], summary)
    out = capsys.readouterr().out
    intact(out, URL, "unable_to_get_issuer_cert_locally", "clients failing")
    command_line(out, FIX)


def test_explain(columns, capsys):
    assert cli_main(["explain", "curl: (60) SSL certificate problem: unable to get local "
                     "issuer certificate"]) == 0
    out = capsys.readouterr().out
    intact(out, "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY")
    assert any(line.strip().startswith("sudo trustwall") or line.strip().startswith("trustwall")
               for line in out.splitlines())


def test_verify_and_fix(columns, capsys):
    from types import SimpleNamespace

    from trustwall.cli.fix import _render_fix
    from trustwall.cli.verify import render_matrix

    error = "(60) SSL certificate problem: unable to get local issuer certificate"
    result = SimpleNamespace(url=URL, clients=[SimpleNamespace(name=n, ok=False, error=error)
                                               for n in ("curl", "requests")], ok=False)
    render_matrix("clients", result)
    store = SimpleNamespace(kind="debian", added=("ab",), path="/usr/local/share/"
                            "ca-certificates/trustwall/Example_Corporation_Inspection_CA.crt")
    after = SimpleNamespace(url=URL, clients=[SimpleNamespace(name="curl", ok=True, error="")])
    _render_fix(SimpleNamespace(install=SimpleNamespace(stores=[store], txn="12", dry_run=False),
                                after=after, before=result, root=None))
    out = capsys.readouterr().out
    intact(out, error, store.path)
    command_line(out, "trustwall undo 12")


def cert_file(tmp_path):
    der = make_cert(name_der([[("2.5.4.3", 0x0C, b"Example Corporation SSL Inspection CA")],
                              [("2.5.4.10", 0x0C, b"Example Corporation International")]]),
                    key=new_key())
    path = tmp_path / "a-rather-long-directory-name-for-the-ca" / "inspection-ca.pem"
    path.parent.mkdir()
    path.write_text(pem_encode(der))
    return path


def test_cert_show_lint_and_stores(columns, capsys, tmp_path):
    from trustwall.certs import load_certs

    pem = cert_file(tmp_path)
    cert = load_certs(str(pem))[0]
    assert cli_main(["cert", "show", str(pem)]) == 0
    assert cli_main(["cert", "lint", str(pem)]) in (0, 1)
    bundle = pem.parent / "bundle-read-by-every-client-on-this-host.pem"
    bundle.write_text(pem.read_text())
    assert cli_main(["stores", "--store", f"bundle:{bundle}"]) == 0
    assert cli_main(["ca", "list", "--store", f"bundle:{bundle}"]) == 0
    out = capsys.readouterr().out
    intact(out, cert.sha256, str(bundle), "CN=Example Corporation SSL Inspection CA")


def test_journal(columns, capsys, tmp_path):
    pem = cert_file(tmp_path)
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("")
    state = ["--state-dir", str(tmp_path / "state")]
    assert cli_main(["ca", "install", str(pem), "--store", f"bundle:{bundle}", *state,
                     "--yes"]) == 0
    assert cli_main(["log", "-v", *state]) == 0
    assert cli_main(["undo", *state]) == 0
    out = capsys.readouterr().out
    intact(out, "trust O=Example Corporation International,CN=Example Corporation SSL "
                "Inspection CA", str(bundle))
    command_line(out, "trustwall undo 1")
    command_line(out, "trustwall undo 2")


def test_firewall_views(columns, capsys, tmp_path):
    rules = tmp_path / "rules.v4"
    rules.write_text(RULES)
    other = tmp_path / "other.v4"
    other.write_text(RULES.replace("-A INPUT -i lo -j ACCEPT\n", "-A INPUT -i lo -j ACCEPT\n"
                                   "-A INPUT -p tcp -m tcp --dport 18745 -j ACCEPT\n"))
    assert cli_main(["fw", "trace", "-f", str(rules), "--local-addr", "192.0.2.1", "-s",
                     "198.51.100.200",
                     "-d", "192.0.2.1", "--dport", "18745", "-i", "eth0"]) == 0
    trace = capsys.readouterr().out
    intact(trace, "REJECT", "icmp-host-prohibited", "decided by filter INPUT rule 3")
    assert cli_main(["fw", "allow", "-f", str(rules), "--dport", "18745/tcp", "-s",
                     "198.51.100.0/24", "--plan"]) == 0
    plan = capsys.readouterr().out
    command_line(plan, "iptables -I INPUT 3 -s 198.51.100.0/24 -p tcp -m tcp --dport 18745 "
                       "-j ACCEPT")
    assert cli_main(["fw", "diff", str(rules), str(other)]) == 1
    intact(capsys.readouterr().out, "REJECT → ACCEPT")
    shadowed = tmp_path / "shadowed.v4"
    shadowed.write_text(RULES.replace("COMMIT", "-A INPUT -p tcp -m tcp --dport 18745 -j ACCEPT"
                                                "\nCOMMIT"))
    assert cli_main(["fw", "lint", "-f", str(shadowed)]) == 1
    intact(capsys.readouterr().out, "filter INPUT 4: after_terminal: -A INPUT -p tcp -m tcp "
                                    "--dport 18745 -j ACCEPT")
    assert cli_main(["fw", "show", "-f", str(rules), "-v"]) == 0
    intact(capsys.readouterr().out, "RELATED,ESTABLISHED", "reject-with icmp-host-prohibited")


def test_apply_result(columns, capsys):
    from types import SimpleNamespace

    from trustwall.cli.fw_policy import render_apply

    change = SimpleNamespace(family=4, tables=("filter",), effect=(
        "tcp dport 18745 state NEW in not lo from any: REJECT → ACCEPT",))
    render_apply(SimpleNamespace(changed=True, changes=[change], warnings=(), dry_run=False,
                                 txn_id="7", persisted=("/etc/iptables/rules.v4",),
                                 confirm_deadline="2026-12-07T04:00:00Z"))
    out = capsys.readouterr().out
    intact(out, "REJECT → ACCEPT", "/etc/iptables/rules.v4")
    command_line(out, "trustwall undo 7")
    command_line(out, "trustwall fw confirm")


def test_doctor(columns, capsys):
    from trustwall.cli.doctor import _show
    from trustwall.doctor.ladder import Ladder, Rung

    command = "sudo trustwall fw allow -p tcp --dport 18745 --apply"
    _show(Ladder("tcp/18745 on this host from 198.51.100.7", (
        Rung("listening", "ok", "ss -ltn", "java listens on 0.0.0.0:18745"),
        Rung("firewall", "broken", "trustwall fw trace", "REJECT by filter INPUT rule 10 "
             "(icmp-host-prohibited)", command))))
    out = capsys.readouterr().out
    intact(out, "BROKEN", "icmp-host-prohibited", "broken at: firewall")
    intact(out, command)


def test_lab_views(columns, capsys):
    from trustwall.cli.lab import StatusResult, _DemoRenderer, _render_status, _render_up
    from trustwall.cli.output import console
    from trustwall.lab.demo import Row, Step
    from trustwall.lab.topology import LabState, LabStatus

    state = LabState("tw-0123456789", 1, "up", 0.0, 1.2, {"client": "tw-0123456789-client"},
                     {"proxy": 2}, "/run/trustwall-lab/tw-0123456789", (),
                     "http://10.77.0.1:3128")
    _render_up(state)
    intact(capsys.readouterr().out, "http://10.77.0.1:3128", "trustwall lab down")
    _render_status(StatusResult((LabStatus(state, False, {"client": False},
                                           {"proxy": False}),)))
    out = capsys.readouterr().out
    intact(out, "broken", "(trustwall lab down)", "http://10.77.0.1:3128", "tw-0123456789")
    command = f"trustwall fix {URL} --yes"
    _DemoRenderer(console()).step(Step("Getting out", "Trust the inspection CA", "story",
                                       command, (Row("curl", "OK", "200 in 0.1 s"),), 1.5))
    out = capsys.readouterr().out
    command_line(out, f"$ {command}")


def test_ca_fetch(columns, capsys, tmp_path):
    from types import SimpleNamespace

    from trustwall.certs import load_certs
    from trustwall.cli.ca_fetch import _render

    cert = load_certs(str(cert_file(tmp_path)))[0]
    output = str(tmp_path / "enterprise-ca-from-the-inspection-proxy.pem")
    _render({"output": output, "fetched": SimpleNamespace(
        certs=[cert], sources=["presented"], root_found=True, message="the root")})
    out = capsys.readouterr().out
    intact(out, cert.sha256)
    command_line(out, f"sudo trustwall ca install {output}")
