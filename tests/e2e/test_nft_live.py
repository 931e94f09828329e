"""The nftables frontend against the real kernel, in network namespaces: several native tables
at different priorities (named and anonymous sets, a verdict map, user chains) beside an
iptables-nft table; read live, from a saved JSON file and from nft text; rendered and loaded
again; ``fw show --live`` listing all of it with nft's own handles; the whole picture with
rules in both iptables backends."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from trustwall.errors import BadInput, EnvironmentMissing
from trustwall.firewall.nftables import compile as nft_compile
from trustwall.firewall.nftables import live, parse, render
from trustwall.lab.netns import Netns

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

ENV = {"PATH": os.environ["PATH"], "HOME": "/root", "NO_COLOR": "1", "COLUMNS": "120",
       **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}

RULESET = """\
table inet fw {
    set allowed { type ipv4_addr; flags interval
                  elements = { 10.0.0.0/8, 192.168.1.1-192.168.1.9, 1.2.3.4 } }
    set pairs { type ipv4_addr . inet_service; elements = { 1.2.3.4 . 22, 5.6.7.8 . 443 } }
    map ports { type inet_service : verdict; elements = { 22 : accept, 80 : jump web } }
    chain web {
        tcp dport 80 counter accept comment "web"
        return
    }
    chain input {
        type filter hook input priority filter + 10; policy drop;
        ct state established,related accept
        iifname "veth*" ip saddr @allowed tcp dport { 22, 8000-8080 } accept
        ip saddr . tcp dport @pairs accept
        tcp dport vmap @ports
        meta l4proto udp udp dport != 53 reject with icmpx admin-prohibited
        ip6 saddr fe80::/10 icmpv6 type { nd-neighbor-solicit, nd-router-advert } accept
        icmp type echo-request limit rate 5/second accept
        tcp flags & (syn | ack) == syn meta mark set 0x10 counter
    }
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        tcp dport 8080 dnat ip to 10.0.0.2:80
    }
}
table ip early {
    chain in {
        type filter hook input priority -150; policy accept;
        ip saddr 203.0.113.0/24 drop
    }
}
table inet same {
    chain in {
        type filter hook input priority 10; policy accept;
        meta nfproto ipv6 accept
    }
}
"""


@pytest.fixture
def ns():
    with Netns.create("nftlive") as n:
        n.run(["nft", "-f", "-"], input=RULESET)
        n.run(["iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "2222", "-j", "ACCEPT"])
        n.run(["iptables-nft", "-A", "INPUT", "-m", "recent", "--name", "r", "--rcheck",
               "-j", "DROP"])
        yield n


def native_json(n: Netns) -> list[dict]:
    """The kernel's listing of the native tables, handles aside (the oracle)."""
    out = []
    for obj in json.loads(n.run(["nft", "-j", "list", "ruleset"]).stdout)["nftables"]:
        (kind, body), = obj.items()
        if kind == "metainfo" or (body.get("family"), body.get("table", body.get("name"))) == \
                ("ip", "filter"):
            continue
        out.append({kind: {k: v for k, v in body.items() if k != "handle"}})
    return out


def kernel_handles(n: Netns) -> dict[str, int]:
    """rule text -> handle, from ``nft -a list ruleset`` (nft's own listing)."""
    text = n.run(["nft", "-a", "list", "ruleset"]).stdout
    return {m.group(1).strip(): int(m.group(2))
            for m in re.finditer(r"^\t\t(.+?) # handle (\d+)$", text, re.M)}


def test_live_read_models_every_table_and_marks_iptables_nfts(ns):
    model = live.read_live(netns=ns.name)
    names = {(t.family, t.name): t for t in model.tables}
    assert set(names) == {("inet", "fw"), ("ip", "early"), ("inet", "same"), ("ip", "filter")}
    assert "xt" in names[("ip", "filter")].iptables_nft
    assert [t.name for t in model.native_tables] == ["fw", "early", "same"]
    fw = names[("inet", "fw")]
    base = {c.name: (c.hook, c.priority, c.policy) for c in fw.chains if c.is_base}
    assert base == {"input": ("input", 10, "drop"), "pre": ("prerouting", -100, "accept")}
    assert len(fw.set("allowed").elements) == 3 and fw.set("ports").is_verdict_map
    handles = kernel_handles(ns)
    for r in fw.chain("input").rules:
        text = render.rule_text(r)
        assert handles[text] == r.handle, text


def test_rendered_native_tables_load_again_to_the_same_listing(ns):
    model = live.read_live(netns=ns.name)
    text = render.render_ruleset(model, tables=model.native_tables)
    with Netns.create("nftagain") as again:
        again.run(["nft", "-f", "-"], input=text)
        assert native_json(again) == native_json(ns)


def test_saved_json_and_nft_text_read_like_live(ns, tmp_path):
    saved = tmp_path / "ruleset.json"
    saved.write_text(ns.run(["nft", "-j", "list", "ruleset"]).stdout)
    text_file = tmp_path / "ruleset.nft"
    text_file.write_text(RULESET)
    live_text = render.render_ruleset(live.read_live(netns=ns.name))
    assert render.render_ruleset(live.read_file(saved)) == live_text
    from_text = live.read_file(text_file)  # loaded in a private namespace, listed back
    assert render.render_ruleset(from_text) == render.render_ruleset(
        live.read_live(netns=ns.name), tables=live.read_live(netns=ns.name).native_tables)
    (tmp_path / "part.nft").write_text("table inet part {\n chain c {\n  tcp dport 1 drop\n }\n}\n")
    (tmp_path / "main.nft").write_text('include "part.nft"\n')  # relative to the file
    assert [t.name for t in live.read_file(tmp_path / "main.nft").tables] == ["part"]
    bad = tmp_path / "bad.nft"
    bad.write_text("table inet x { chain c { tcp dport nosuchservice accept; } }\n")
    with pytest.raises(BadInput, match="nft refuses it"):
        live.read_file(bad)


def test_nft_text_file_without_root_says_so():
    with tempfile.TemporaryDirectory(prefix="tw-nftnoroot-") as work:
        os.chmod(work, 0o755)  # nobody must read the file: the refusal is about root alone
        text_file = Path(work) / "r.nft"
        text_file.write_text(RULESET)
        text_file.chmod(0o644)
        _as_nobody_reading(text_file)


def _as_nobody_reading(text_file: Path) -> None:
    code = ("import sys; from trustwall.firewall.nftables import live\n"
            "try:\n    live.read_file(sys.argv[1])\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-c", code, str(text_file)],
                          capture_output=True, text=True, env=ENV, check=False)
    if "Permission denied" in proc.stderr:
        pytest.skip("the virtualenv is not readable by nobody")
    assert proc.stdout.startswith(EnvironmentMissing.__name__), proc.stdout + proc.stderr
    assert "needs root" in proc.stdout


def tw(n: Netns, *args: str) -> subprocess.CompletedProcess:
    return n.run([sys.executable, "-m", "trustwall", *args], check=False, env=ENV, input="")


def test_fw_show_live_lists_iptables_and_nft_with_handles(ns):
    proc = tw(ns, "fw", "show", "--live")
    assert proc.returncode == 0, proc.stderr
    assert "Chain INPUT (policy ACCEPT)" in proc.stdout and "dpt:2222" in proc.stdout
    assert "table inet fw {" in proc.stdout and "table ip filter" not in proc.stdout
    for text, handle in kernel_handles(ns).items():
        if "dport 2222" in text or "xt match" in text:
            continue  # iptables-nft's rules are listed the iptables way
        assert f"{text} # handle {handle}" in proc.stdout
    assert "same priority 10" in proc.stderr and "inet fw input" in proc.stderr
    as_json = json.loads(tw(ns, "fw", "show", "--live", "--json").stdout)
    assert as_json["iptables"]["chains"][0]["rules"][0]["rule"] == \
        "-p tcp -m tcp --dport 2222 -j ACCEPT"
    nft_tables = {t["name"]: t for t in as_json["nft"]}
    assert set(nft_tables) == {"fw", "early", "same"}
    early = nft_tables["early"]["chains"][0]
    assert (early["hook"], early["priority"]) == ("input", -150)
    assert early["rules"][0]["handle"] == kernel_handles(ns)["ip saddr 203.0.113.0/24 drop"]
    assert any("same priority" in w for w in as_json["warnings"])


def test_fw_show_live_is_unchanged_without_native_tables():
    with Netns.create("nftnone") as n:
        n.run(["iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"])
        proc = tw(n, "fw", "show", "--live")
        assert proc.returncode == 0 and "table " not in proc.stdout
        assert "dpt:22" in proc.stdout and "warning" not in proc.stderr
        as_json = json.loads(tw(n, "fw", "show", "--live", "--json").stdout)
        # the iptables listing's own keys, plus who owns it (issue 15), and no nft sections
        assert set(as_json) == {"family", "table", "chains", "owner", "owner_evidence",
                                "nft_tables"}
        assert as_json["owner"] == "none"
        assert [(t["family"], t["table"]) for t in as_json["nft_tables"]] == [("ip", "filter")]


def test_whole_picture_reads_both_iptables_backends_and_native_nft():
    with Netns.create("nftwhole") as n:
        n.run(["nft", "add", "table", "inet", "t"])
        n.run(["nft", "add", "chain", "inet", "t", "in",
               "{ type filter hook input priority 0; }"])
        n.run(["nft", "add", "rule", "inet", "t", "in", "tcp", "dport", "7", "drop"])
        n.run(["iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "8", "-j", "DROP"])
        n.run(["ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "DROP"])
        n.run(["iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "10", "-j", "DROP"])
        try:
            picture = live.whole_picture(netns=n.name)
        finally:
            n.run(["iptables-legacy", "-F"], check=False)
    assert set(picture.iptables) == {("nft", 4), ("nft", 6), ("legacy", 4)}
    legacy = picture.iptables[("legacy", 4)]
    assert [len(c.rules) for t in legacy.tables for c in t.chains if c.name == "INPUT"] == [1]
    assert any("both backends hold rules" in w for w in picture.warnings)
    # equal priority 0 at input: inet t, and iptables' filter tables (compiled or not yet)
    nft_tables = [t for t in picture.ruleset.tables if t.backend == "nft"]
    assert [(t.family, t.name) for t in nft_tables] == [("inet", "t")]
    (in_rule,) = nft_tables[0].chains[0].rules
    assert in_rule.source.text == "tcp dport 7 drop" and in_rule.action.kind == "drop"


def test_fw_show_file_lists_a_saved_nft_ruleset_with_handles(ns, tmp_path):
    saved = tmp_path / "saved.json"
    saved.write_text(ns.run(["nft", "-j", "list", "ruleset"]).stdout)
    proc = tw(ns, "fw", "show", "--file", str(saved))
    assert proc.returncode == 0, proc.stderr
    for text, handle in kernel_handles(ns).items():
        if "xt match" not in text:  # nft shows those as "# xt match …"; we keep the JSON
            assert f"{text} # handle {handle}" in proc.stdout
    assert "# iptables-nft: rules hold xt expressions" in proc.stdout
    as_json = json.loads(tw(ns, "fw", "show", "--file", str(saved), "--json").stdout)
    assert {t["name"] for t in as_json["tables"]} == {"fw", "early", "same", "filter"}


def test_a_real_firewalld_ruleset_is_read_understood_and_rendered_as_nft_lists_it():
    """Real firewalld 1.3.3 (lab.firewalld, issue 15's host) writes ``inet firewalld``: every
    rule renders exactly as ``nft -a list ruleset`` prints it, with its handle; every
    statement but the rpfilter fib test is understood; rendered, it loads to the same JSON."""
    firewalld = pytest.importorskip("trustwall.lab.firewalld")
    with firewalld.FirewalldHost(listener=False) as host:
        host.run(["firewall-cmd", "--add-service=http"])
        host.run(["firewall-cmd", "--add-rich-rule=rule family=ipv4 source "
                  "address=10.0.0.0/8 port port=22 protocol=tcp accept"])
        listing = host.run(["nft", "-j", "list", "ruleset"]).stdout
        nft_a = host.run(["nft", "-a", "list", "ruleset"]).stdout
    model = parse.loads(listing)
    assert [(t.family, t.name) for t in model.native_tables] == [("inet", "firewalld")]
    handles = {m.group(1).strip(): int(m.group(2))
               for m in re.finditer(r"^\t\t(.+?) # handle (\d+)$", nft_a, re.M)}
    rules = model.rules()
    assert len(rules) > 50
    assert {render.rule_text(r): r.handle for r in rules}.items() <= handles.items()
    table = model.tables[0]
    opaque = [render.statement(s) for r in rules for s in r.expr
              if not nft_compile.understood(s, table)]
    assert opaque == ["fib saddr . mark . iif oif missing"]
    with Netns.create("nftfwd") as again:
        again.run(["nft", "-f", "-"], input=render.render_ruleset(model))
        assert native_json(again) == [
            {k: {kk: vv for kk, vv in v.items() if kk != "handle"}}
            for o in json.loads(listing)["nftables"] for k, v in o.items() if k != "metainfo"]


def test_fw_show_live_lists_legacy_and_ipv6_iptables_rules_beside_nft():
    with Netns.create("nftshowall") as n:
        n.run(["nft", "add", "table", "inet", "t"])
        n.run(["nft", "add", "chain", "inet", "t", "in", "{ type filter hook input priority 0; }"])
        n.run(["iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "8", "-j", "DROP"])
        n.run(["ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "DROP"])
        n.run(["iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "10", "-j", "DROP"])
        try:
            proc = tw(n, "fw", "show", "--live")
            as_json = json.loads(tw(n, "fw", "show", "--live", "--json").stdout)
        finally:
            n.run(["iptables-legacy", "-F"], check=False)
    assert proc.returncode == 0, proc.stderr
    assert "dpt:8" in proc.stdout and "table inet t {" in proc.stdout
    legacy = proc.stdout.split("# iptables-legacy-save\n")[1]
    assert "-A INPUT -p tcp -m tcp --dport 10 -j DROP" in legacy
    ipv6 = proc.stdout.split("# ip6tables-nft-save\n")[1]
    assert "-A INPUT -p tcp -m tcp --dport 9 -j DROP" in ipv6
    assert {(d["backend"], d["family"]) for d in as_json["other_iptables"]} == \
        {("legacy", 4), ("nft", 6)}
    # the iptables listing's own warning, once (the picture's twin is not repeated)
    assert proc.stderr.count("legacy backend holds rules too") == 1
    assert "both backends" not in proc.stderr


def test_nft_rules_written_into_an_iptables_table_are_read_from_nft():
    """``ip saddr @s drop`` in ``ip filter INPUT`` saves as ``-A INPUT -j DROP`` through
    iptables-nft-save (1.8.9): the picture reads that table from nft's listing instead, and
    iptables-nft's own nat table still through iptables-nft-save."""
    with Netns.create("nftmixed") as n:
        n.run(["nft", "-f", "-"], input=(
            "table ip filter {\n set s { type ipv4_addr; elements = { 192.0.2.1 } }\n"
            " chain INPUT { type filter hook input priority 0; policy accept;\n"
            "  ip saddr @s drop\n }\n}\n"))
        n.run(["iptables-nft", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "80",
               "-j", "DNAT", "--to-destination", "192.0.2.9"])
        saved = n.run(["iptables-nft-save", "-t", "filter"]).stdout
        picture = live.whole_picture(netns=n.name)
        proc = tw(n, "fw", "show", "--live")
    assert "-A INPUT -j DROP" in saved  # the misreading this guards against
    native = [t for t in picture.ruleset.tables if t.backend == "nft"]
    assert [(t.family, t.name) for t in native] == [("ip", "filter")]
    (drop,) = native[0].chain("INPUT").rules
    assert [c.field for c in drop.conditions] == ["set"] and drop.action.kind == "drop"
    assert [t.name for t in picture.iptables[("nft", 4)].tables] == ["nat"]
    assert any("ip filter: an iptables table holding rules written with nft" in w
               for w in picture.warnings)
    assert "ip saddr @s drop # handle" in proc.stdout
