"""`trustwall fw show` / `fw save`, the lazy fw group, and the live reader (in a namespace)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trustwall.cli.main import main
from trustwall.firewall.iptables.parse import parse_save
from trustwall.firewall.iptables.render import render_listing, render_save

RULES = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 198.18.0.2:80
COMMIT
*filter
:INPUT DROP [3:180]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[9:540] -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT
COMMIT
"""


@pytest.fixture()
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.v4"
    path.write_text(RULES)
    return path


def test_fw_save_prints_canonical_text(rules_file: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    assert main(["fw", "save", "--file", str(rules_file)]) == 0
    out = capsys.readouterr().out
    assert out == render_save(parse_save(RULES))
    assert "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT" in out
    assert "-j REJECT --reject-with icmp-port-unreachable" in out


def test_fw_save_one_table_with_counters(rules_file: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    assert main(["fw", "save", "--file", str(rules_file), "-t", "filter", "-c"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("*filter\n:INPUT DROP [3:180]") and "*nat" not in out
    assert "[9:540] -A INPUT -m state" in out


def test_fw_show_is_the_iptables_listing(rules_file: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    assert main(["fw", "show", "--file", str(rules_file), "INPUT", "-v", "-x"]) == 0
    out = capsys.readouterr().out
    assert out == render_listing(parse_save(RULES), "filter", "INPUT", verbose=True, exact=True)
    assert out.splitlines()[2].startswith("1           9      540 ACCEPT")


def test_fw_show_json(rules_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fw", "show", "--file", str(rules_file), "-t", "nat", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["table"] == "nat" and data["family"] == 4
    rule = data["chains"][0]["rules"][0]
    assert rule["number"] == 1 and rule["target"] == "DNAT"
    assert rule["rule"] == "-p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.18.0.2:80"


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["fw", "show", "--file", "/nonexistent/rules"], 2, "cannot read"),
    (["fw", "show", "--file", "{file}", "-t", "raw"], 2, "table 'raw' is not in this ruleset"),
    (["fw", "show", "--file", "{file}", "NOPE"], 2, "no chain 'NOPE'"),
    (["fw", "save", "--file", "{file}", "--live"], 2, "either --file or --live"),
])
def test_fw_errors_are_one_line(argv: list[str], code: int, message: str, rules_file: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.replace("{file}", str(rules_file)) for a in argv]
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_broken_file_names_line_and_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    path = tmp_path / "bad.v4"
    path.write_text("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 70000 -j DROP\nCOMMIT\n")
    assert main(["fw", "save", "--file", str(path)]) == 0  # a saved file is read leniently
    path.write_text("*filter\n:INPUT ACCEPT [0:0]\nthis is not a rule\nCOMMIT\n")
    assert main(["fw", "save", "--file", str(path)]) == 2
    assert f"{path}:3:" in capsys.readouterr().err


def _lab() -> bool:
    return os.geteuid() == 0 and shutil.which("iptables-restore") is not None


@pytest.mark.lab
@pytest.mark.skipif(not _lab(), reason="needs root and iptables")
def test_live_read_in_a_namespace(rules_file: Path) -> None:
    from trustwall.firewall.iptables.live import detect_backend, read_live, save_text
    from trustwall.lab.netns import Netns

    with Netns.create("fwlive") as ns:
        subprocess.run(ns.argv(["iptables-restore", "-c"]), input=RULES, text=True, check=True)
        live = read_live(netns=ns.name, counters=True)
        assert render_save(live, table="filter", counters=True) == \
            render_save(parse_save(RULES), table="filter", counters=True)
        backend = detect_backend(netns=ns.name)
        assert backend.default == "nft" and backend.nft_rules is True
        assert backend.legacy_rules in (False, None) and not backend.both_hold_rules
        assert "-A INPUT -j REJECT" in save_text(netns=ns.name)
        cli = subprocess.run(ns.argv([str(Path(sys.executable).with_name("trustwall")),
                                      "fw", "show", "--live", "-v"]),
                             capture_output=True, text=True, check=True)
        kernel = subprocess.run(ns.argv(["iptables", "-L", "-n", "-v", "--line-numbers"]),
                                capture_output=True, text=True, check=True)
        assert cli.stdout == kernel.stdout
        if shutil.which("iptables-legacy") and Path("/proc/net/ip_tables_names").exists():
            # a legacy rule next to the nft ones: half of the firewall is invisible to
            # plain `iptables -L`; detect_backend must say both hold rules
            subprocess.run(ns.argv(["iptables-legacy", "-A", "INPUT", "-j", "DROP"]), check=True)
            assert detect_backend(netns=ns.name).both_hold_rules
            warned = subprocess.run(ns.argv([str(Path(sys.executable).with_name("trustwall")),
                                             "fw", "save", "--live"]),
                                    capture_output=True, text=True, check=True)
            assert "legacy backend holds rules too" in warned.stderr


def test_file_with_both_families_picks_one(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "all.rules"
    path.write_text("# Generated by iptables-save v1.8.9\n" + RULES
                    + "# Generated by ip6tables-save v1.8.9\n*filter\n:INPUT DROP [0:0]\n"
                    "-A INPUT -p ipv6-icmp -j ACCEPT\nCOMMIT\n")
    assert main(["fw", "save", "--file", str(path), "-t", "filter"]) == 0
    assert "-A INPUT -j REJECT --reject-with icmp-port-unreachable" in capsys.readouterr().out
    assert main(["fw", "save", "--file", str(path), "-6"]) == 0
    assert capsys.readouterr().out == ("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n"
                                       ":OUTPUT ACCEPT [0:0]\n-A INPUT -p ipv6-icmp -j ACCEPT\n"
                                       "COMMIT\n")


def test_every_fw_subcommand_resolves() -> None:
    """The lazy table names only modules that exist (the 'not in this build' fallback is gone)."""
    import importlib

    from trustwall.cli.fw import FW_COMMANDS

    for name, (target, _) in FW_COMMANDS.items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), name
