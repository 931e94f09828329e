"""`trustwall lab demo` tells the seed stories with real clients and a real kernel, and the
suite's host fingerprint notices a change to what it watches."""

from __future__ import annotations

import io
import sys

import pytest

from trustwall.lab.demo import DemoReport, Step, run_demo
from trustwall.lab.topology import SEED_RULESET, Lab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def report(lab: Lab) -> DemoReport:
    return run_demo(lab=lab)


def _step(report: DemoReport, words: str) -> Step:
    return next(step for step in report.steps if words in step.title)


def test_demo_shows_each_client_failing_with_its_own_error(report: DemoReport) -> None:
    rows = {row.subject: row for row in _step(report, "every client fails").rows}
    assert {name: row.verdict for name, row in rows.items()} == {
        "curl": "FAIL", "python": "FAIL", "java": "FAIL", "node": "FAIL"}
    assert "(60) SSL certificate problem: unable to get local issuer certificate" in \
        rows["curl"].detail
    assert "CERTIFICATE_VERIFY_FAILED" in rows["python"].detail
    assert "PKIX path building failed" in rows["java"].detail
    assert rows["node"].detail.startswith("UNABLE_TO_VERIFY_LEAF_SIGNATURE")


def test_demo_fixes_with_trustwall_fix_and_undoes_it(report: DemoReport) -> None:
    fix = _step(report, "trustwall fix")
    assert fix.command == "trustwall fix https://good.lab.test/ --yes"
    rows = {row.subject: row for row in fix.rows}
    assert {"debian", "java", "certifi", "env"} <= set(rows)  # stores of the sandbox
    clients = [r for r in fix.rows if r.verdict != "INFO"]
    assert len(clients) == 8 and all(r.verdict == "OK" for r in clients), clients
    undo = {row.subject: row.verdict for row in _step(report, "until trustwall undo").rows}
    assert undo == {**{f"{c}, fixed": "OK" for c in ("curl", "python", "java", "node")},
                    "trustwall undo": "OK",
                    **{f"{c}, undone": "FAIL" for c in ("curl", "python", "java", "node")}}


def test_demo_shows_the_forged_chain_and_the_jmx_story(report: DemoReport) -> None:
    forged = _step(report, "signs the site's certificate").rows
    assert "issued by O = Acme Widgets, CN = Acme Widgets Inspection CA" in forged[0].detail
    jmx = {row.subject: row for row in _step(report, "No route to host").rows}
    assert jmx["from client"].detail == "No route to host"
    assert jmx["on the server"].detail == "JMX lab listener"
    assert jmx["decisive rule"].detail.startswith("rule 10: -A INPUT -j REJECT")
    allow = _step(report, "fw allow --apply, then trustwall undo")
    assert allow.command == "trustwall fw allow -p tcp --dport 18745 --apply"
    assert [(row.subject, row.verdict) for row in allow.rows] == [
        ("fw allow --apply", "OK"), ("from client", "OK"), ("trustwall undo", "OK"),
        ("from client", "FAIL")]
    assert allow.rows[0].detail.startswith("position 10:")
    assert allow.rows[1].detail == "JMX lab listener"
    assert allow.rows[3].detail == "No route to host"


def test_demo_tells_the_jconsole_story_on_a_firewalld_server(report: DemoReport) -> None:
    refused = {row.subject: row for row in _step(report, "On a firewalld server").rows}
    assert refused["from client"].verdict == "FAIL"
    assert refused["from client"].detail == "No route to host"
    assert refused["zone public"].detail.endswith("ports: (none)")
    why = {row.subject: row for row in _step(report, "firewalld server: why-in").rows}
    assert why["firewall"].verdict == "FAIL"
    # the trace walked firewalld's own nft table and names its rule and handle
    assert "REJECT by nft inet firewalld filter_IN_public rule " in why["firewall"].detail
    assert "(handle " in why["firewall"].detail
    # asked --from the client, the doctor opens the port to that client only, runtime and
    # permanent, through firewalld
    assert why["next"].detail.startswith("sudo firewall-cmd --zone public --add-rich-rule ")
    assert why["next"].detail.count("firewall-cmd") == 2
    assert 'source address="198.18.' in why["next"].detail
    assert "--permanent" in why["next"].detail
    plan = _step(report, "firewalld's own commands").rows
    assert [(r.subject, r.detail) for r in plan] == [
        ("owner", "firewalld"),
        ("command", "firewall-cmd --zone public --add-port 18745/tcp"),
        ("command", "firewall-cmd --permanent --zone public --add-port 18745/tcp"),
        ("effect", "NEW tcp/18745 from any in zone public: REJECT -> ACCEPT")]
    applied = _step(report, "through firewalld, then trustwall undo")
    assert applied.command == "trustwall fw allow -p tcp --dport 18745 --apply"
    assert [(row.subject, row.verdict) for row in applied.rows] == [
        ("fw allow --apply", "OK"), ("from client", "OK"), ("firewall-cmd", "INFO"),
        ("trustwall undo", "OK"), ("from client", "FAIL")]
    assert applied.rows[1].detail == "JMX lab listener"
    assert applied.rows[2].detail == "--list-all: ports: 18745/tcp"
    assert applied.rows[3].detail.endswith("--list-all as before")
    assert applied.rows[4].detail == "No route to host"
    seconds = sum(s.seconds for s in report.steps if "firewalld" in s.chapter)
    print(f"\nfirewalld chapter: {seconds:.2f} s")


def test_borrowed_lab_is_given_back_as_it_was(report: DemoReport, lab: Lab) -> None:
    rules = lab.server.run(["iptables-save", "-t", "filter"]).stdout
    assert [ln for ln in rules.splitlines() if ln.startswith("-A")] == \
        [ln for ln in SEED_RULESET.splitlines() if ln.startswith("-A")]
    assert lab.intercepted_by == lab.default_proxy
    assert report.left_behind == ()


def test_demo_renders_as_numbered_panels(report: DemoReport) -> None:
    from rich.console import Console

    from trustwall.cli.lab import _DemoRenderer

    buffer = io.StringIO()
    renderer = _DemoRenderer(Console(file=buffer, width=100, no_color=True))
    for step in report.steps:
        renderer.step(step)
    renderer.finish(report)
    text = buffer.getvalue()
    assert "3. Through the inspection proxy, every client fails" in text
    assert "Letting in" in text and "nothing left behind" in text


def test_host_fingerprint_notices_a_changed_store(tmp_path, monkeypatch) -> None:
    conftest = sys.modules[next(name for name, mod in sys.modules.items()
                                if name.endswith("conftest") and hasattr(mod, "host_fingerprint"))]
    store = tmp_path / "certs"
    store.mkdir()
    (store / "a.pem").write_text("A")
    (store / "link.pem").symlink_to("a.pem")
    monkeypatch.setattr(conftest, "TRUST_TREES", (str(store),))
    before = conftest.host_fingerprint()
    assert before == conftest.host_fingerprint()
    (store / "link.pem").unlink()
    (store / "link.pem").symlink_to("b.pem")
    assert conftest.host_fingerprint() != before
