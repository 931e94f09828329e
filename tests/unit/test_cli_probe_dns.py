"""A name whose resolver never answers is explained as DNS, not as packets dropped by a
firewall (issue 17). The resolver is outside the machine, so it is the one thing replaced."""

from __future__ import annotations

import socket
import time

from trustwall.cli.main import main as cli_main


def test_dns_time_out_is_not_explained_as_a_drop_rule(monkeypatch, capsys):
    def silent_resolver(*args, **kwargs):
        time.sleep(1.0)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", silent_resolver)
    monkeypatch.setenv("COLUMNS", "80")
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    code = cli_main(["probe", "https://nosuch.lab.test/", "--timeout", "0.3", "--no-java"])
    captured = capsys.readouterr()
    assert code == 3
    text = captured.out + captured.err
    assert "resolving nosuch.lab.test timed out" in text
    assert "does not resolve" in text
    assert "DROP" not in text and "silently dropped" not in text
