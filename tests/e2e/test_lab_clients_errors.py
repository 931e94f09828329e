"""How the clients runner reads each client's exit and output (strings recorded from the real
clients in the lab), and how it builds command lines and the login environment."""

from __future__ import annotations

import pytest

from trustwall.errors import BadInput
from trustwall.lab.clients import _error_text, client_argv, parse_pam_environment

GIT_TLS = ("fatal: unable to access 'https://good.lab.test/': server certificate verification "
           "failed. CAfile: none CRLfile: none\n")


@pytest.mark.parametrize(("name", "code", "stderr", "ok", "error"), [
    ("curl", 60, "curl: (60) SSL certificate problem: unable to get local issuer certificate\n"
                 "More details here: https://curl.se/docs/sslcerts.html\n\ncurl failed to "
                 "verify the legitimacy of the server\n", False,
     "(60) SSL certificate problem: unable to get local issuer certificate"),
    ("curl", 0, "", True, ""),
    ("wget", 5, "ERROR: The certificate of ‘good.lab.test’ is not trusted.\nERROR: The "
                "certificate of ‘good.lab.test’ doesn't have a known issuer.\n", False,
     "The certificate of ‘good.lab.test’ is not trusted. The certificate of ‘good.lab.test’ "
     "doesn't have a known issuer."),
    ("wget", 8, "2026-11-29 URL:https://x/ ERROR 404: Not Found.\n", True, ""),
    ("wget", 4, "", False, "exit 4"),
    ("git", 128, GIT_TLS, False, "unable to access 'https://good.lab.test/': server "
                                 "certificate verification failed. CAfile: none CRLfile: none"),
    ("git", 128, "fatal: https://good.lab.test/info/refs not valid: is this a git "
                 "repository?\n", True, ""),
    ("git", 128, "remote: Not found\nfatal: repository 'https://good.lab.test/' not found\n",
     True, ""),
    ("git", 128, "fatal: unable to access 'https://good.lab.test/': The requested URL "
                 "returned error: 404\n", True, ""),
    ("git", 128, "fatal: unable to access 'https://nohost.lab.test/': Could not resolve host: "
                 "nohost.lab.test\n", False,
     "unable to access 'https://nohost.lab.test/': Could not resolve host: nohost.lab.test"),
    ("java", 1, "Picked up JAVA_TOOL_OPTIONS: -Dx=y\njavax.net.ssl.SSLHandshakeException: PKIX "
                "path building failed\n", False,
     "javax.net.ssl.SSLHandshakeException: PKIX path building failed"),
    ("node", 1, "", False, "exit 1"),
])
def test_error_text_is_the_clients_own_words_on_one_line(name: str, code: int, stderr: str,
                                                          ok: bool, error: str) -> None:
    assert _error_text(name, code, "", stderr) == (ok, error)


def test_every_client_gets_the_proxy_its_own_way() -> None:
    proxy = "http://198.18.1.1:8080"
    url = "https://good.lab.test/"
    assert client_argv("curl", url, proxy=proxy)[-3:] == ["--proxy", proxy, url]
    assert "https_proxy=" + proxy in client_argv("wget", url, proxy=proxy)
    java = client_argv("java", url, proxy=proxy)
    assert "-Dhttps.proxyHost=198.18.1.1" in java and "-Dhttps.proxyPort=8080" in java
    assert f"http.proxy={proxy}" in client_argv("git", url, proxy=proxy)
    # node's https module has no proxy support: the argv is the same with or without one.
    assert client_argv("node", url, proxy=proxy) == client_argv("node", url)
    with pytest.raises(BadInput):
        client_argv("java", url, proxy="198.18.1.1")
    with pytest.raises(BadInput):
        client_argv("lynx", url)


def test_pam_environment_syntax() -> None:
    text = ('# comment\nPATH="/usr/local/bin:/usr/bin"\nexport NODE_EXTRA_CA_CERTS=/b.pem\n'
            "REQUESTS_CA_BUNDLE='/a.pem'\n\nnot an assignment\n")
    assert parse_pam_environment(text) == {"PATH": "/usr/local/bin:/usr/bin",
                                           "NODE_EXTRA_CA_CERTS": "/b.pem",
                                           "REQUESTS_CA_BUNDLE": "/a.pem"}
