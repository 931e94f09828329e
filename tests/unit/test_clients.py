"""How each client module judges its client's exit and output (strings recorded from the real
clients in the lab), and how it builds command lines, picks a proxy, and reads
/etc/environment."""

from __future__ import annotations

import pytest

from trustwall.clients import CLIENTS, client, client_argv, parse_environment
from trustwall.errors import BadInput
from trustwall.tls.probe import parse_target

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
    # pip: a reachable index without the package is a passed handshake.
    ("pip", 1, "ERROR: Could not find a version that satisfies the requirement x (from "
               "versions: none)\nERROR: No matching distribution found for x\n", True, ""),
    ("pip", 1, "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, "
               "status=None)) after connection broken by 'SSLError(SSLCertVerificationError(1, "
               "'[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed "
               "certificate (_ssl.c:1006)'))': /x/\nERROR: No matching distribution found for "
               "x\n", False,
     "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
     "verify failed: self-signed certificate (_ssl.c:1006)'))"),
])
def test_error_text_is_the_clients_own_words_on_one_line(name: str, code: int, stderr: str,
                                                          ok: bool, error: str) -> None:
    assert client(name).judge(code, "", stderr) == (ok, error)


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
    assert parse_environment(text) == {"PATH": "/usr/local/bin:/usr/bin",
                                           "NODE_EXTRA_CA_CERTS": "/b.pem",
                                           "REQUESTS_CA_BUNDLE": "/a.pem"}


@pytest.mark.parametrize(("name", "env", "proxy"), [
    ("curl", {"ALL_PROXY": "http://p:1"}, "http://p:1"),
    ("wget", {"HTTPS_PROXY": "http://p:1"}, None),  # wget reads only the lower-case name
    ("python", {"all_proxy": "http://p:1"}, None),  # urllib: no all_proxy for https
    ("pip", {"https_proxy": "http://p:1", "no_proxy": "good.lab.test"}, None),
    ("node", {"https_proxy": "http://p:1"}, None),
    ("java", {"JAVA_TOOL_OPTIONS": "-Dhttps.proxyHost=p -Dhttps.proxyPort=1"}, "http://p:1"),
])
def test_each_client_picks_its_proxy_by_its_own_rule(name: str, env: dict[str, str],
                                                    proxy: str | None) -> None:
    choice = client(name).proxy(parse_target("https://good.lab.test/"), env)
    assert (choice.proxy.display if choice.proxy else None) == proxy
    assert choice.reason


def test_every_known_client_has_a_module_with_the_four_rules() -> None:
    for name in CLIENTS:
        module = client(name)
        assert name == module.NAME
        for rule in ("store", "proxy", "argv", "judge"):
            assert callable(getattr(module, rule))
