"""The seed story on real clients: through the interception proxy every client fails with its
own error; once the enterprise CA is placed in the sandboxed stores by hand, every client gets
through; the host's stores are untouched throughout."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from trustwall.clients import CLIENTS, login_environment, run_all, run_client
from trustwall.lab.proxy import ChainMode
from trustwall.lab.sandbox import Sandbox, store_fingerprint
from trustwall.lab.topology import Lab

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")]

URL = "https://good.lab.test/"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# node's https module ignores https_proxy (docs/quirks-found.md): through the explicit proxy it
# is not intercepted at all, so it only takes part in the transparent runs.
EXPLICIT = tuple(c for c in CLIENTS if c != "node")

# Each client's own words for "the proxy's CA is not trusted" (docs/quirks-found.md); mitmproxy
# sends the forged leaf only, so the "missing issuer" flavour is what every client reports.
UNTRUSTED = {
    "curl": r"^\(60\) SSL certificate problem: unable to get local issuer certificate$",
    "wget": r"The certificate of .good\.lab\.test. is not trusted\. The certificate of "
            r".good\.lab\.test. doesn't have a known issuer\.",
    "python": r"^\[SSL: CERTIFICATE_VERIFY_FAILED\] certificate verify failed: unable to get "
              r"local issuer certificate",
    "requests": r"^SSLError: .*CERTIFICATE_VERIFY_FAILED\] certificate verify failed: unable "
                r"to get local issuer certificate",
    "pip": r"CERTIFICATE_VERIFY_FAILED\] certificate verify failed: unable to get local issuer "
           r"certificate",
    "node": r"^UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate$",
    "java": r"^javax\.net\.ssl\.SSLHandshakeException: PKIX path building failed: .*unable to "
            r"find valid certification path to requested target$",
    "git": r"^unable to access 'https://good\.lab\.test/': server certificate verification "
           r"failed\.",
}


@pytest.fixture(scope="module")
def clients_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The session lab from tests/conftest.py when there is one, else a lab of our own."""
    try:
        shared = request.getfixturevalue("lab")
    except pytest.FixtureLookupError:
        shared = None
    if shared is not None:
        yield shared
        return
    with Lab() as own:
        yield own


def _summary(results: dict) -> str:
    return "\n".join(f"{r.name}: ok={r.ok} exit={r.exit_code} error={r.error!r} "
                     f"stderr={r.stderr[-300:]!r}" for r in results.values())


def test_clients_fail_through_interception_then_succeed_with_the_ca_installed_by_hand(
        clients_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = clients_lab
    before = store_fingerprint()
    acme_root = lab.ca_file("acme-root")
    # The machine exports CA variables; point them at a bundle that WOULD trust the proxy.
    # The runner must not pass them on, or the failures below could not happen.
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
                "GIT_SSL_CAINFO", "WGETRC"):
        monkeypatch.setenv(var, str(acme_root))
    proxy = lab.proxy_url
    assert lab.intercepted_by is not None

    with Sandbox(lab.client) as sandbox:
        # 1. Fails: explicit proxy and transparent interception, each client its own error.
        for results in (run_all(URL, clients=EXPLICIT, inside=sandbox, proxy=proxy),
                        run_all(URL, inside=sandbox)):
            for name, result in results.items():
                assert not result.ok, _summary(results)
                assert re.search(UNTRUSTED[name], result.error), _summary(results)
                assert "\n" not in result.error

        # 2. The enterprise CA placed in the sandboxed system store by hand.
        local = sandbox.path("/usr/local/share/ca-certificates")
        (local / "acme-inspection.crt").write_bytes(acme_root.read_bytes())
        out = sandbox.run(["update-ca-certificates"], timeout=120).stdout
        assert "Processing triggers for ca-certificates-java" in out  # the Java hook ran
        bundle = sandbox.path(SYSTEM_BUNDLE).read_text()
        assert acme_root.read_text().strip() in bundle
        cacerts = sandbox.path("/etc/ssl/certs/java/cacerts")
        assert cacerts.read_bytes()[:4] == b"\xfe\xed\xfe\xed"  # still JKS
        java_list = sandbox.run(["keytool", "-list", "-cacerts", "-storepass", "changeit",
                                 "-alias", "debian:acme-inspection.pem"], check=False)
        assert java_list.returncode == 0, java_list.stdout
        # dpkg ran the ca-certificates-java trigger against the sandbox's overlay.
        assert "ca-certificates-java" in sandbox.run(["tail", "-n5", "/var/log/dpkg.log"]).stdout
        assert not (os.path.exists("/usr/local/share/ca-certificates/acme-inspection.crt"))

        # 3. The system store is enough for curl, wget, urllib, java and git; requests reads
        #    certifi and node its built-in roots, so they still fail (docs/quirks-found.md).
        own_roots = run_all(URL, clients=("requests", "node"), inside=sandbox)
        assert not own_roots["requests"].ok and not own_roots["node"].ok, _summary(own_roots)

        # 4. ...until their variables point at the system bundle. Then everyone gets through.
        env = {"REQUESTS_CA_BUNDLE": SYSTEM_BUNDLE, "NODE_EXTRA_CA_CERTS": SYSTEM_BUNDLE}
        for results in (run_all(URL, clients=EXPLICIT, inside=sandbox, proxy=proxy, env=env),
                        run_all(URL, inside=sandbox, env=env)):
            for result in results.values():
                assert result.ok, _summary(results)
                assert result.error == ""
    assert store_fingerprint() == before


def _login(sandbox: Sandbox) -> dict[str, str]:
    return login_environment(sandbox, home=str(sandbox.home), user="root")


def test_login_env_reads_the_sandboxed_environment_and_profile_d(clients_lab: Lab) -> None:
    lab = clients_lab
    before = store_fingerprint()
    with Sandbox(lab.client) as sandbox:
        assert "REQUESTS_CA_BUNDLE" not in _login(sandbox)
        sandbox.path("/etc/environment").write_text(
            f'# trustwall\nREQUESTS_CA_BUNDLE="{SYSTEM_BUNDLE}"\n')
        (sandbox.path("/etc/profile.d") / "trustwall.sh").write_text(
            f"export NODE_EXTRA_CA_CERTS={SYSTEM_BUNDLE}\n")
        env = _login(sandbox)
        assert env["REQUESTS_CA_BUNDLE"] == SYSTEM_BUNDLE
        assert env["NODE_EXTRA_CA_CERTS"] == SYSTEM_BUNDLE
        assert env["HOME"] == str(sandbox.home)
        assert "SSL_CERT_FILE" not in env
    assert store_fingerprint() == before


def test_client_outside_any_namespace_reports_a_connection_error_on_one_line() -> None:
    """Port 9 on loopback: nothing listens; the runner still returns the client's words."""
    result = run_client("curl", "https://127.0.0.1:9/", timeout=5)
    assert not result.ok
    assert result.error.startswith("(7) Failed to connect to 127.0.0.1 port 9")


# What the proxy sends after its forged leaf changes the words (node most of all).
CHAIN_WORDS = {
    "leaf+root": {
        "curl": "(60) SSL certificate problem: self-signed certificate in certificate chain",
        "python": "certificate verify failed: self-signed certificate in certificate chain",
        "node": "SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain",
    },
    "leaf+intermediate": {
        "curl": "(60) SSL certificate problem: unable to get local issuer certificate",
        "python": "certificate verify failed: unable to get local issuer certificate",
        "node": "UNABLE_TO_GET_ISSUER_CERT_LOCALLY: unable to get local issuer certificate",
    },
}


@pytest.mark.parametrize("chain", sorted(CHAIN_WORDS))
def test_the_chain_the_proxy_sends_changes_the_clients_words(clients_lab: Lab,
                                                             chain: str) -> None:
    lab = clients_lab
    ca = "intermediate" if chain == "leaf+intermediate" else "root"
    proxy = lab.proxy(chain=ChainMode(chain), ca=ca)
    with lab.intercepting(proxy), Sandbox(lab.client) as sandbox:
        results = run_all(URL, clients=tuple(CHAIN_WORDS[chain]), inside=sandbox)
    for name, words in CHAIN_WORDS[chain].items():
        assert not results[name].ok
        assert words in results[name].error, _summary(results)
