"""Hostile text in firewall fields (issue 18): refused on the way in, read faithfully (or
refused clearly) on the way back, never split where iptables does not split."""

from __future__ import annotations

import textwrap

import pytest

from trustwall.errors import BadInput, ParseError
from trustwall.firewall.analysis.plan import build_rule
from trustwall.firewall.change.apply import ruleset_differences
from trustwall.firewall.change.policy import compile_policy, load_policy, rule_name
from trustwall.firewall.change.session import _address
from trustwall.firewall.iptables import fields
from trustwall.firewall.iptables.live import decode, encode
from trustwall.firewall.iptables.parse import parse_save
from trustwall.firewall.iptables.render import render_save

INJECTION = 'x"\n-A INPUT -j ACCEPT\n#'
# Every character str.splitlines cuts at, and Unicode spaces str.split cuts at.
SPLITTERS = ["\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
SPACES = ["\u00a0", "\u2003", "\u3000"]


@pytest.mark.parametrize("text", [INJECTION, "web\rapp", "a\tb", "nul\x00", "del\x7f",
                                  "bad\udcff", *(f"a{c}b" for c in SPLITTERS + SPACES)])
def test_comment_with_control_or_separator_characters_is_refused(text):
    with pytest.raises(fields.FieldError, match="comment"):
        fields.comment(text)


def test_comment_length_is_the_kernels_255_bytes():
    assert fields.comment("é" * 127 + "a") == "é" * 127 + "a"  # 255 bytes
    with pytest.raises(fields.FieldError, match="256 bytes"):
        fields.comment("é" * 128)
    assert fields.comment('web app "quoted" \\ back-slash ünïcode') is not None


@pytest.mark.parametrize("name", ["x\n-A INPUT", "x\r-A", "eth 0", "a/b", "eth0:1", "a+b",
                                  "x" * 16, "", ".", "..", '"eth0', "eth\\0", "!eth0",
                                  "é", "eth\u2028"])
def test_bad_interface_names_are_refused(name):
    with pytest.raises(fields.FieldError):
        fields.interface(name)


@pytest.mark.parametrize("name", ["eth0", "eth+", "veth.10", "x" * 15, "br-1a2b", "wg@0"])
def test_kernel_interface_names_are_accepted(name):
    assert fields.interface(name) == name


@pytest.mark.parametrize("name", ["AUDIT - [0:0]\n-I INPUT -j ACCEPT\n#", "C" * 29, "-x",
                                  "!x", "a b", 'a"b', "a'b", "a\\b", "tab\tx", "é", ""])
def test_bad_chain_names_are_refused(name):
    with pytest.raises(fields.FieldError):
        fields.chain_name(name)


@pytest.mark.parametrize("name", ["C" * 28, "DOCKER-USER", "f2b-sshd", "GOOD~STUFF",
                                  "ufw-before-input", "a:b.c@d+e"])
def test_real_chain_names_are_accepted(name):
    assert fields.chain_name(name) == name


@pytest.mark.parametrize("kwargs", [
    {"comment": INJECTION}, {"comment": "web\rapp"}, {"in_iface": "x\n-A INPUT"},
    {"out_iface": "x\r-A"}, {"chain": "INPUT\n-A INPUT"},
])
def test_fw_allow_refuses_injection_before_anything_is_planned(kwargs):
    args = {"proto": "tcp", "dport": "18745", **kwargs}
    if "out_iface" in args:
        args["chain"] = "OUTPUT"
    with pytest.raises(BadInput):
        build_rule("ACCEPT", **args)


def _policy(tmp_path, body: str):
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_policy_user_chain_and_unmanaged_chain_injection_is_refused(tmp_path):
    user_chain = _policy(tmp_path, """\
        version: 1
        ipv4:
          filter:
            "AUDIT - [0:0]\\n-I INPUT -j ACCEPT\\n#":
              rules: []
        """)
    with pytest.raises(ParseError, match="chain name"):
        load_policy(user_chain)
    unmanaged = _policy(tmp_path, """\
        version: 1
        ipv4:
          filter:
            unmanaged: ["DOCKER - [0:0]\\n-I INPUT -j ACCEPT\\n#"]
        """)
    with pytest.raises(ParseError, match="chain name"):
        load_policy(unmanaged)


def test_policy_rule_with_a_newline_in_its_comment_is_refused(tmp_path):
    path = _policy(tmp_path, """\
        version: 1
        ipv4:
          filter:
            INPUT:
              rules:
                - name: web
                  rule: '-p tcp --dport 80 -m comment --comment "a

                    -A INPUT -j ACCEPT" -j ACCEPT'
                  reason: r
                  owner: o
        """)
    with pytest.raises(ParseError, match="rule web: comment"):
        compile_policy(load_policy(path))


SEED = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{}COMMIT\n"


def test_reader_splits_lines_on_newline_only_and_words_on_space_and_tab():
    # What iptables-save prints for `-i "$(printf 'x\r-A INPUT')" -j ACCEPT`: the kernel's
    # rule matches nothing; reading it as ACCEPT-all (str.splitlines) was the bug.
    with pytest.raises(ParseError, match="bad argument"):
        parse_save(SEED.format("-A INPUT -i x\r-A INPUT -j ACCEPT\n"))
    one = parse_save(SEED.format("-A INPUT -i x\r-A -j ACCEPT\n"))
    (rule,) = one.chain("filter", "INPUT").rules
    assert rule.in_interface.name == "x\r-A" and rule.target_name == "ACCEPT"


@pytest.mark.parametrize("sep", SPLITTERS + SPACES)
def test_comments_holding_any_separator_are_read_and_rendered_faithfully(sep):
    text = SEED.format(f'-A INPUT -m comment --comment "web{sep}app" -j ACCEPT\n')
    ruleset = parse_save(text)
    assert ruleset.chain("filter", "INPUT").rules[0].comment == f"web{sep}app"
    assert render_save(ruleset) == text


def test_non_utf8_bytes_survive_a_read_and_write_round_trip():
    raw = SEED.format('-A INPUT -m comment --comment "caf\xe9 \xff" -j ACCEPT\n')
    data = raw.encode("latin-1")
    ruleset = parse_save(decode(data))
    assert encode(render_save(ruleset)) == data
    assert not encode(render_save(ruleset)).decode("utf-8", "replace").isascii()


def test_crlf_files_still_read():
    ruleset = parse_save(SEED.format("-A INPUT -j ACCEPT\n").replace("\n", "\r\n"))
    assert ruleset.chain("filter", "INPUT").rules[0].target_name == "ACCEPT"


def test_differences_name_the_unplanned_rule_escaped():
    planned = parse_save(SEED.format('-A INPUT -p tcp -m tcp --dport 18745 -j ACCEPT\n'))
    held = parse_save(SEED.format('-A INPUT -p tcp -m tcp --dport 18745 -j ACCEPT\n'
                                  '-A INPUT -m comment --comment "a\rb" -j ACCEPT\n'))
    (line,) = ruleset_differences(planned, held)
    assert line == 'filter +-A INPUT -m comment --comment "a\\rb" -j ACCEPT'
    assert ruleset_differences(planned, planned) == []


def test_rule_name_of_a_bare_prefix_does_not_crash():
    ruleset = parse_save(SEED.format('-A INPUT -m comment --comment "tw:" -j ACCEPT\n'))
    assert rule_name(ruleset.chain("filter", "INPUT").rules[0]) is None


def test_proc_net_tcp_addresses():
    assert _address("0100007F:0016") == ("127.0.0.1", 22)
    assert _address("0000000000000000FFFF00000200A8C6:1F90") == ("198.168.0.2", 8080)
    assert _address("B80D0120000000000000000001000000:0016") == ("2001:db8::1", 22)
