"""Targets, proxies and no_proxy: what the user typed or the environment says, parsed strictly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustwall.errors import BadInput
from trustwall.tls.probe import Proxy, Target, parse_proxy, parse_target, proxy_from_env


@pytest.mark.parametrize("text,expected", [
    ("example.com", Target("example.com", 443)),
    ("Example.COM:8443", Target("example.com", 8443)),
    ("https://example.com", Target("example.com", 443)),
    ("https://example.com:444/path?q=1", Target("example.com", 444)),
    ("https://[2001:db8::1]:8443/", Target("2001:db8::1", 8443)),
    ("[::1]:443", Target("::1", 443)),
    ("::1", Target("::1", 443)),
    ("10.0.0.1:636", Target("10.0.0.1", 636)),
    ("ldaps://dc.corp", Target("dc.corp", 636, "ldaps")),
    ("bücher.example", Target("xn--bcher-kva.example", 443)),
])
def test_parse_target_accepts(text: str, expected: Target) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", [
    "", "ftp://example.com", "http://example.com", "example.com:0", "example.com:65536",
    "example.com:https", "https://example.com:0/", "exa mple.com", "[::1", "[nothost]:443",
    "user@example.com", "example.com/path", "-bad-.example", "https://", "a..b",
    "https://[::1", "https://[::1/x", "https://[2001:db8::1:443/",
])
def test_parse_target_rejects_with_bad_input(text: str) -> None:
    with pytest.raises(BadInput):
        parse_target(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parse_target_never_crashes(text: str) -> None:
    try:
        target = parse_target(text)
    except BadInput:
        return
    assert 0 < target.port < 65536 and target.host


@pytest.mark.parametrize("argv", [["probe", "https://[::1"], ["ca", "fetch", "https://[::1",
                                   "-o", "never-written.pem"],
                                  ["probe", "https://example.com", "--proxy", "http://[::1"]])
def test_a_malformed_url_is_a_one_line_bad_input(argv: list[str], tmp_path, monkeypatch,
                                                 capsys) -> None:
    from trustwall.cli import main as cli_main

    monkeypatch.chdir(tmp_path)
    assert cli_main.main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("trustwall: error: malformed") and "Invalid IPv6 URL" in err[0]
    assert len(err) <= 2 and all(line.startswith("trustwall: ") for line in err)
    assert list(tmp_path.iterdir()) == []


def test_target_url_round_trips() -> None:
    for text in ("https://example.com", "https://example.com:8443", "https://[2001:db8::1]:444"):
        assert parse_target(parse_target(text).url) == parse_target(text)


def test_parse_proxy_with_credentials() -> None:
    proxy = parse_proxy("http://al%40ice:p%3Ass@proxy.corp:3128")
    assert proxy == Proxy("proxy.corp", 3128, "al@ice", "p:ss")
    assert proxy.display == "http://al@ice:***@proxy.corp:3128"
    assert parse_proxy("proxy.corp:8080") == Proxy("proxy.corp", 8080)
    with pytest.raises(BadInput):
        parse_proxy("socks5://proxy:1080")


@pytest.mark.parametrize("host,no_proxy,bypass", [
    ("intranet.corp", "corp", True),
    ("intranet.corp", ".corp", True),
    ("intranet.corp", "*.corp", True),
    ("corp", ".corp", True),
    ("notcorp", "corp", False),
    ("example.com", "*", True),
    ("example.com", "localhost, 127.0.0.1", False),
    ("10.1.2.3", "10.0.0.0/8", True),
    ("192.168.1.1", "10.0.0.0/8", False),
    ("example.com", "example.com:8443", False),
])
def test_no_proxy_rules(host: str, no_proxy: str, bypass: bool) -> None:
    env = {"https_proxy": "http://proxy:3128", "no_proxy": no_proxy}
    got = proxy_from_env(Target(host, 443), env)
    assert (got is None) == bypass


def test_lowercase_https_proxy_wins_and_absent_means_direct() -> None:
    env = {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}
    assert proxy_from_env(Target("x.example", 443), env) == Proxy("lower", 1)
    assert proxy_from_env(Target("x.example", 443), {"HTTPS_PROXY": "http://u:2"}) == \
        Proxy("u", 2)
    assert proxy_from_env(Target("x.example", 443), {}) is None
