"""The knowledge base: pasted client errors -> code, cause, next command."""

from __future__ import annotations

import pytest

from trustwall.tls.explain import ENTRIES, VERIFY_CODES, explain, finding, verify_code_name

DOCUMENTED = (2, 9, 10, 18, 19, 20, 21, 62, 79, 85, 86, 89, 92)


@pytest.mark.parametrize("code", DOCUMENTED)
def test_each_documented_code_has_its_own_entry(code: int) -> None:
    name = verify_code_name(code)
    assert name in ENTRIES
    for text in (str(code), name, name.removeprefix("X509_V_ERR_"),
                 f"verify error:num={code}:{VERIFY_CODES[code][1]}",
                 f"certificate verify failed: {VERIFY_CODES[code][1]} (_ssl.c:1006)"):
        found = explain(text).findings
        assert found and found[0].code == name, text
        assert found[0].verify_code == code
        assert found[0].next_command and found[0].cause


@pytest.mark.parametrize("text,code,client", [
    ("curl: (60) SSL certificate problem: unable to get local issuer certificate",
     "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "curl"),
    ("curl: (60) SSL certificate problem: self signed certificate in certificate chain",
     "X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN", "curl"),
    ("curl: (60) SSL certificate problem: self-signed certificate",
     "X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT", "curl"),
    ("urllib.error.URLError: <urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate "
     "verify failed: unable to get local issuer certificate (_ssl.c:1006)>",
     "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "python"),
    ("Error: unable to verify the first certificate\n  code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'",
     "X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE", "node"),
    ("Error: self-signed certificate in certificate chain code: 'SELF_SIGNED_CERT_IN_CHAIN'",
     "X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN", "node"),
    ("ERROR: The certificate of 'site.example' is not trusted.\nERROR: The certificate of "
     "'site.example' doesn't have a known issuer.", "gnutls_unknown_issuer", "wget"),
    ("javax.net.ssl.SSLHandshakeException: PKIX path building failed: "
     "sun.security.provider.certpath.SunCertPathBuilderException: unable to find valid "
     "certification path to requested target", "java_pkix", "java"),
    ("java.security.cert.CertificateException: No subject alternative DNS name matching "
     "site.example found.", "X509_V_ERR_HOSTNAME_MISMATCH", "java"),
    ("Hostname mismatch, certificate is not valid for 'site.example'. (_ssl.c:1006)",
     "X509_V_ERR_HOSTNAME_MISMATCH", None),
    ("fatal: unable to access 'https://git.corp/x.git/': server certificate verification "
     "failed. CAfile: none CRLfile: none", "gnutls_unknown_issuer", "git"),
    ("curl: (7) Failed to connect to site.example port 443 after 1 ms: No route to host",
     "no_route", "curl"),
    ("curl: (7) Failed to connect to site.example port 443 after 1 ms: Connection refused",
     "connection_refused", "curl"),
    ("curl: (28) Connection timed out after 10001 milliseconds", "timeout", "curl"),
    ("curl: (6) Could not resolve host: site.invalid", "dns_failure", "curl"),
    ("wget: unable to resolve host address 'site.invalid'", "dns_failure", None),
    ("getaddrinfo ENOTFOUND site.invalid", "dns_failure", None),
    ("curl: (56) Received HTTP code 403 from proxy after CONNECT", "proxy_refused", "curl"),
    ("curl: (56) Received HTTP code 502 from proxy after CONNECT", "proxy_upstream_failed",
     "curl"),
    ("curl: (56) Received HTTP code 407 from proxy after CONNECT", "proxy_auth_required",
     "curl"),
    ("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)", "not_tls", None),
    ("connect ECONNRESET 10.0.0.1:443", "connection_reset", None),
    ("Error response from daemon: Get \"https://registry.corp/v2/\": tls: failed to verify "
     "certificate: x509: certificate signed by unknown authority", "go_unknown_authority",
     "go"),
    ("x509: certificate is valid for other.example, not site.example",
     "X509_V_ERR_HOSTNAME_MISMATCH", "go"),
    ("connect: Network is unreachable", "network_unreachable", None),
])
def test_client_texts(text: str, code: str, client: str | None) -> None:
    found = explain(text).findings
    assert found, text
    assert found[0].code == code
    if client is not None:
        assert found[0].client == client


def test_next_command_names_the_host_from_the_text() -> None:
    found = explain("curl: (60) SSL certificate problem: unable to get local issuer "
                    "certificate\nMore details here: https://proxy.corp.example:8443/x")
    assert found.host == "proxy.corp.example"
    assert "https://proxy.corp.example:8443" in found.findings[0].next_command


def test_unknown_text_is_not_recognised() -> None:
    result = explain("the coffee machine is empty")
    assert not result.recognised and result.findings == ()


def test_finding_fills_the_endpoint_in() -> None:
    f = finding("X509_V_ERR_HOSTNAME_MISMATCH", host="site.example", port=8443)
    assert f.next_command == "trustwall probe https://site.example:8443 --servername site.example"
    other = finding("X509_V_ERR_CERT_REVOKED", host="h")
    assert other.verify_code == 23 and "certificate revoked" in other.summary


def test_every_code_name_is_unique_and_numbered() -> None:
    names = [name for name, _ in VERIFY_CODES.values()]
    assert len(set(names)) == len(names)
    assert verify_code_name(20) == "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
    assert verify_code_name(999) == "X509_V_ERR_999"
