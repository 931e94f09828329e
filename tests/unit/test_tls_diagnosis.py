"""Which store each client reads (from an explicit environment), interception detection, and the
diagnosis built from a captured handshake - all without the network."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from trustwall.certs import Cert
from trustwall.lab.ca import issue_leaf, make_ca
from trustwall.tls.clients import discover
from trustwall.tls.intercept import INSPECTION_PRODUCTS, detect, match_product
from trustwall.tls.probe import Handshake, Target
from trustwall.tls.report import diagnose

ROOT = make_ca("Lab Root", org="Lab")
CORP = make_ca("Fortinet_CA_SSL", org="Fortinet")
WEAK = make_ca("ACME Inspection CA", org="ACME", weak=True)


def _der(pem: bytes) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


def _fs(tmp: Path, *cas: object) -> tuple[Path, Path]:
    """A root dir with a system bundle holding ``cas`` and a certifi stand-in holding ROOT."""
    root = tmp / "root"
    (root / "etc/ssl/certs").mkdir(parents=True)
    (root / "etc/ssl/certs/ca-certificates.crt").write_bytes(
        b"".join(ca.cert_pem for ca in cas))  # type: ignore[attr-defined]
    (root / "usr/lib/ssl").mkdir(parents=True)  # Debian: OpenSSL's default file -> bundle
    (root / "usr/lib/ssl/cert.pem").symlink_to("../../../etc/ssl/certs/ca-certificates.crt")
    certifi = tmp / "certifi.pem"
    certifi.write_bytes(ROOT.cert_pem)
    return root, certifi


def test_client_stores_follow_the_environment(tmp_path: Path) -> None:
    root, certifi = _fs(tmp_path, ROOT)
    env = {"HOME": str(tmp_path), "CURL_CA_BUNDLE": "/c.pem", "REQUESTS_CA_BUNDLE": "/r.pem",
           "PIP_CERT": "/p.pem", "GIT_SSL_CAINFO": "/g.pem", "NODE_EXTRA_CA_CERTS": "/n.pem",
           "AWS_CA_BUNDLE": "/a.pem"}
    envr = discover(env, root, certifi_path=str(certifi), java=False)
    stores = {c: u.store for c, u in envr.clients.items()}
    assert stores == {"curl": "env:CURL_CA_BUNDLE", "wget": "system-bundle",
                      "python": "openssl-default", "requests": "env:REQUESTS_CA_BUNDLE",
                      "pip": "env:PIP_CERT", "node": "node", "git": "env:GIT_SSL_CAINFO"}
    assert envr.stores["node"].files == (str(certifi), "/n.pem")
    assert "env:AWS_CA_BUNDLE" in envr.stores
    bare = discover({"HOME": str(tmp_path)}, root, certifi_path=str(certifi), java=False)
    stores = {c: u.store for c, u in bare.clients.items()}
    assert stores["curl"] == "system-bundle" and stores["requests"] == "certifi"
    assert stores["pip"] == "openssl-default" and bare.clients["node"].because == \
        "built-in roots"
    assert bare.clients["curl"].partial_chain and not bare.clients["requests"].partial_chain


def test_requests_falls_back_to_curl_ca_bundle_and_node_can_use_openssl(tmp_path: Path) -> None:
    root, certifi = _fs(tmp_path, ROOT)
    envr = discover({"HOME": str(tmp_path), "CURL_CA_BUNDLE": "/c.pem",
                     "NODE_OPTIONS": "--use-openssl-ca", "SSL_CERT_FILE": "/s.pem"},
                    root, certifi_path=str(certifi), java=False)
    assert envr.clients["requests"].store == "env:CURL_CA_BUNDLE"
    assert envr.stores["node"].files == ("/s.pem",)


def test_wgetrc_ca_certificate_adds_to_system_trust(tmp_path: Path) -> None:
    root, certifi = _fs(tmp_path, ROOT)
    (tmp_path / ".wgetrc").write_text("# corp\nca_certificate = /corp.pem\n")
    envr = discover({"HOME": str(tmp_path)}, root, certifi_path=str(certifi), java=False)
    assert envr.clients["wget"].store == "wget"
    assert envr.stores["wget"].files[1] == "/corp.pem"


def test_java_truststore_from_java_tool_options(tmp_path: Path) -> None:
    root, certifi = _fs(tmp_path, ROOT)
    env = {"HOME": str(tmp_path),
           "JAVA_TOOL_OPTIONS": "-Xmx1g -Djavax.net.ssl.trustStore=/nonexistent.jks"}
    envr = discover(env, root, certifi_path=str(certifi), java=True,
                    cache_dir=tmp_path / "cache")
    assert envr.clients["java"].store == "java-cacerts"
    assert "nonexistent" in (envr.stores["java-cacerts"].problem() or "")


@pytest.mark.parametrize("name,product", [
    ("CN=Fortinet_CA_SSL,O=Fortinet", "Fortinet FortiGate"),
    ("CN=Zscaler Intermediate Root CA (zscaler.net),O=Zscaler Inc.", "Zscaler"),
    ("CN=Palo Alto Networks Forward Trust CA", "Palo Alto Networks"),
    ("CN=Cisco Umbrella Secondary SubCA ny-SG,O=Cisco", "Cisco Umbrella"),
    ("CN=Netskope Certificate Authority", "Netskope"),
    ("CN=mitmproxy,O=mitmproxy", "mitmproxy"),
    ("CN=Kaspersky Anti-Virus Personal Root Certificate", "Kaspersky (AV scanning)"),
    ("CN=DigiCert Global Root G2,O=DigiCert Inc", None),
    ("CN=ISRG Root X1,O=Internet Security Research Group", None),
])
def test_product_table(name: str, product: str | None) -> None:
    assert match_product(name) == product


def test_product_table_is_well_formed() -> None:
    products = [p for p, _ in INSPECTION_PRODUCTS]
    assert len(products) == len(set(products)) >= 20


def _cert(pem: bytes) -> Cert:
    return Cert.from_der(_der(pem))


def test_detect_names_product_with_high_confidence() -> None:
    leaf = issue_leaf(CORP, ["site.example"])
    result = detect([_cert(leaf.cert_pem)], public_trusted=False,
                    public_error="X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
                    name_matches=True)
    assert result.detected and result.product == "Fortinet FortiGate"
    assert result.confidence == "high" and len(result.evidence) >= 2


def test_detect_public_chain_is_not_interception() -> None:
    leaf = issue_leaf(ROOT, ["site.example"])
    result = detect([_cert(leaf.cert_pem)], public_trusted=True, public_error=None,
                    name_matches=True)
    assert not result.detected and result.confidence == "none"


def test_detect_unknown_private_ca_naming_the_site_is_medium() -> None:
    leaf = issue_leaf(WEAK, ["site.example"])
    result = detect([_cert(leaf.cert_pem)], public_trusted=False,
                    public_error="X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
                    name_matches=True)
    assert result.detected and result.product is None and result.confidence == "medium"


def _handshake(*pems: bytes, host: str = "site.example") -> Handshake:
    return Handshake(Target(host, 443), host, None, "192.0.2.1",
                     tuple(_der(p) for p in pems), "TLSv1.3", "TLS_AES_128_GCM_SHA256", None,
                     None, 12.0)


def test_diagnose_interception_leaf_only(tmp_path: Path) -> None:
    root, certifi = _fs(tmp_path, ROOT)
    envr = discover({"HOME": str(tmp_path)}, root, certifi_path=str(certifi), java=False)
    report = diagnose(_handshake(issue_leaf(CORP, ["site.example"]).cert_pem), envr)
    assert report.exit_code == 1
    assert report.stores["system-bundle"].error == "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
    assert not any(c.trusted for c in report.clients.values())
    assert report.interception.product == "Fortinet FortiGate"
    assert report.diagnosis.code == "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
    assert report.diagnosis.summary.startswith("TLS inspection by Fortinet FortiGate")
    assert report.diagnosis.next_command.startswith(
        "sudo trustwall fix https://site.example")


def test_diagnose_system_fixed_but_certifi_clients_fail(tmp_path: Path) -> None:
    root, certifi = _fs(tmp_path, ROOT, CORP)
    envr = discover({"HOME": str(tmp_path)}, root, certifi_path=str(certifi), java=False)
    report = diagnose(_handshake(issue_leaf(CORP, ["site.example"]).cert_pem), envr)
    failing = sorted(c for c, v in report.clients.items() if not v.trusted)
    assert failing == ["node", "requests"]
    assert report.diagnosis.code == "clients_use_other_stores"
    assert "REQUESTS_CA_BUNDLE=" in report.diagnosis.next_command
    assert "NODE_EXTRA_CA_CERTS=" in report.diagnosis.next_command


def test_diagnose_warns_about_python_strict_for_weak_ca(tmp_path: Path) -> None:
    root, certifi = _fs(tmp_path, ROOT, WEAK)
    env = {"HOME": str(tmp_path), "REQUESTS_CA_BUNDLE": str(root /
                                                              "etc/ssl/certs/ca-certificates.crt"),
           "NODE_EXTRA_CA_CERTS": str(root / "etc/ssl/certs/ca-certificates.crt")}
    envr = discover(env, root, certifi_path=str(certifi), java=False)
    report = diagnose(_handshake(issue_leaf(WEAK, ["site.example"]).cert_pem), envr)
    assert report.exit_code == 0 and report.diagnosis.code == "ok"
    assert any("VERIFY_X509_STRICT" in n and "X509_V_ERR_" in n for n in report.diagnosis.notes)


def test_diagnose_unreachable(tmp_path: Path) -> None:
    from trustwall.tls.probe import Failure

    root, certifi = _fs(tmp_path, ROOT)
    envr = discover({"HOME": str(tmp_path)}, root, certifi_path=str(certifi), java=False)
    hs = Handshake(Target("site.example", 443), "site.example", None, "192.0.2.1", (), None,
                   None, None, Failure("no_route", "connect",
                                       "connect to site.example: No route to host",
                                       "EHOSTUNREACH"), 3.0)
    report = diagnose(hs, envr)
    assert report.exit_code == 3 and report.diagnosis.code == "no_route"
    assert "ip route get" in report.diagnosis.next_command


def test_diagnose_trusted_chain_but_failed_handshake(tmp_path: Path) -> None:
    from trustwall.tls.probe import Failure

    root, certifi = _fs(tmp_path, ROOT)
    envr = discover({"HOME": str(tmp_path)}, root, certifi_path=str(certifi), java=False)
    leaf = issue_leaf(ROOT, ["site.example"])
    hs = Handshake(Target("site.example", 443), "site.example", None, "192.0.2.1",
                   (_der(leaf.cert_pem),), None, None, None,
                   Failure("handshake_alert", "tls", "TLS handshake failed: sslv3 alert "
                           "handshake failure", "sslv3 alert handshake failure"), 5.0)
    report = diagnose(hs, envr)
    assert all(c.trusted for c in report.clients.values())
    assert report.exit_code == 1 and report.diagnosis.code == "handshake_alert"
    assert "sslv3 alert handshake failure" in report.diagnosis.summary


def test_java_store_is_the_one_of_the_jdk_on_path(tmp_path: Path) -> None:
    from trustwall.clients.java import truststore as _java_truststore

    jdk = tmp_path / "opt/jdk-21"
    (jdk / "bin").mkdir(parents=True)
    (jdk / "lib/security").mkdir(parents=True)
    (jdk / "bin/java").write_text("#!/bin/sh\n")
    (jdk / "bin/java").chmod(0o755)
    (jdk / "lib/security/cacerts").write_bytes(b"\xfe\xed\xfe\xed")
    got = _java_truststore({"PATH": str(jdk / "bin")}, Path("/"))
    assert got == str(jdk / "lib/security/cacerts")
    # Another root (an image): the host's PATH means nothing there.
    assert _java_truststore({"PATH": str(jdk / "bin")}, tmp_path) is None
