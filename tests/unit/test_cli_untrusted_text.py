"""Hostile text on the terminal (issue 18): certificate names, interface names and rule text are
printed, never obeyed — no rich markup, no emoji codes, no terminal escape sequences.

Each test renders with colour forced on (FORCE_COLOR), as on a real terminal, so a markup tag
that got through would show up as an escape sequence.
"""

from __future__ import annotations

import pytest

from trustwall.certs.model import Cert, pem_encode
from trustwall.certs.synth import make_cert, name_der, new_key
from trustwall.cli.main import main as cli_main

KEY = new_key()
CONCEAL = "\x1b[8m"  # what rich writes for [conceal]


def ca_with_org(tmp_path, org: str):
    der = make_cert(name_der([[("2.5.4.3", 0x0C, b"Corp Root")],
                              [("2.5.4.10", 0x0C, org.encode())]]), key=KEY)
    path = tmp_path / "ca.pem"
    path.write_text(pem_encode(der))
    return path, Cert.from_der(der)


@pytest.fixture(autouse=True)
def colour_terminal(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def test_closing_tag_in_the_organisation_is_shown_not_a_crash(tmp_path, capsys):
    path, _ = ca_with_org(tmp_path, "Evil [/] Corp")
    assert cli_main(["cert", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "O=Evil [/] Corp" in out


def test_conceal_markup_cannot_hide_the_fingerprint_or_forge_one(tmp_path, capsys):
    fake = "5E:11:" + ":".join(["00"] * 30)
    path, cert = ca_with_org(tmp_path, f"x SHA-256 {fake}[conceal]")
    assert cli_main(["cert", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert CONCEAL not in out
    assert "[conceal]" in out  # shown as the text it is
    real = cert.to_json()["sha256"]
    sha_lines = [line for line in out.splitlines() if line.lstrip("\x1b[0123456789;m")
                 .startswith("SHA-256")]
    assert len(sha_lines) == 1 and real in sha_lines[0]


def test_fix_and_ca_install_show_the_real_fingerprint_under_a_hostile_name(tmp_path, capsys):
    from trustwall.cli.ca import show_certs

    _, cert = ca_with_org(tmp_path, "x\n  SHA-256 00:00[conceal]\x1b[8m")
    show_certs([cert])
    err = capsys.readouterr().err
    assert CONCEAL not in err
    sha_lines = [line for line in err.splitlines() if "SHA-256" in line]
    assert len(sha_lines) == 2  # the forged one stays inside the subject line
    assert sha_lines[1].strip().endswith(cert.sha256)


def test_colon_codes_in_fingerprints_are_not_emoji(capsys):
    from trustwall.cli.output import console

    text = "12:AB:34:ab:smile:cd:+1:"
    console().print(text)
    assert capsys.readouterr().out.strip() == text


def test_markup_in_an_interface_name_is_shown(tmp_path, capsys):
    rules = tmp_path / "rules.v4"
    rules.write_text("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                     ":OUTPUT ACCEPT [0:0]\n-A INPUT -i eth0 -j DROP\nCOMMIT\n")
    assert cli_main(["fw", "trace", "-f", str(rules), "-s", "10.0.0.1", "-d", "10.0.0.2",
                     "--dport", "22", "--in", "eth[/x]"]) == 0
    out = capsys.readouterr().out
    assert "in eth[/x]" in out
    assert cli_main(["fw", "allow", "-f", str(rules), "-p", "tcp", "--dport", "22",
                     "--in", "eth[/x]", "--plan"]) in (0, 1, 2)
    assert "MarkupError" not in capsys.readouterr().err


def test_escape_sequences_in_any_printed_string_are_made_visible(capsys):
    from trustwall.cli.output import console, print_table

    out = console()
    print_table(out, ["name", "verdict"], [["a\x1b]0;title\x07b", "ok\u202e"]])
    printed = capsys.readouterr().out
    assert "\x1b]" not in printed and "\x07" not in printed and "\u202e" not in printed
    assert "\\x1b]0;title\\x07b" in printed and "\\u202e" in printed


def test_file_names_and_rule_comments_are_shown_escaped(tmp_path, capsys):
    certs = tmp_path / "certs"
    certs.mkdir()
    der = make_cert(name_der([[("2.5.4.3", 0x0C, b"Named Root")]]), key=KEY)
    (certs / "a\x1b[8mb.pem").write_text(pem_encode(der))
    assert cli_main(["rehash", "--dry-run", str(certs)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "a\\x1b[8mb.pem" in out

    rules = tmp_path / "rules.v4"
    rules.write_text("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                     '-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ssh\x1b[8m" '
                     "-j ACCEPT\nCOMMIT\n")
    assert cli_main(["fw", "show", "-f", str(rules)]) == 0
    out = capsys.readouterr().out
    assert CONCEAL not in out and "ssh\\x1b[8m" in out
