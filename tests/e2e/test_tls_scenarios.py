"""Every TLS scenario on loopback: trustwall's per-store and per-client verdicts against the
real oracles - `openssl verify` for the store verdict (same code), and the real clients (curl,
wget, python urllib, requests, node, git, java) run with an explicit environment that points
each at the scenario's bundle."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from tls_pki import Issued, Pki, https_server, issue, make_pki, write_pem

from trustwall.clients import run_all
from trustwall.tls.probe import parse_target
from trustwall.tls.report import probe_report
from trustwall.tls.verify import Anchors, Verifier

CLIENTS = ("curl", "wget", "python", "requests", "node", "git", "java")
# A JVM start is the slowest oracle: Java runs where its rule (any trusted entry is an anchor)
# decides something - an untrusted root sent, a trusted intermediate only.
JAVA_SCENARIOS = {"interception_leaf_root", "intermediate_trusted_only"}


@dataclass(frozen=True)
class Scenario:
    name: str
    presented: tuple[Issued, ...]  # leaf first
    trusted: tuple[Issued, ...]  # what the bundle holds
    expect_code: int  # openssl verify code for the bundle (0 = ok)


def _scenarios(pki: Pki) -> list[Scenario]:
    corp_inter = issue("Fortinet Issuing CA", issuer=pki.corp, ca=True, org="Fortinet")
    weak = issue("ACME Inspection CA", ca=True, org="ACME", bc_critical=False)
    return [
        Scenario("clean", (pki.leaf("localhost", "127.0.0.1"), pki.inter), (pki.root,), 0),
        Scenario("interception_leaf_only",
                 (pki.leaf("localhost", "127.0.0.1", issuer=pki.corp),), (pki.root,), 20),
        Scenario("interception_leaf_root",
                 (pki.leaf("localhost", "127.0.0.1", issuer=pki.corp), pki.corp), (pki.root,),
                 19),
        Scenario("interception_leaf_intermediate",
                 (pki.leaf("localhost", "127.0.0.1", issuer=corp_inter), corp_inter),
                 (pki.root,), 20),
        Scenario("interception_ca_installed",
                 (pki.leaf("localhost", "127.0.0.1", issuer=pki.corp),), (pki.root, pki.corp), 0),
        Scenario("missing_intermediate", (pki.leaf("localhost", "127.0.0.1"),), (pki.root,), 20),
        Scenario("intermediate_trusted_only", (pki.leaf("localhost", "127.0.0.1"),),
                 (pki.inter,), 2),
        Scenario("expired", (pki.leaf("localhost", "127.0.0.1", expired=True), pki.inter),
                 (pki.root,), 10),
        Scenario("wrong_host", (pki.leaf("other.example"), pki.inter), (pki.root,), 62),
        Scenario("self_signed", (issue("localhost", names=("localhost", "127.0.0.1")),),
                 (pki.root,), 18),
        Scenario("noncritical_bc_ca",
                 (pki.leaf("localhost", "127.0.0.1", issuer=weak),), (pki.root, weak), 0),
    ]


PKI = make_pki()
SCENARIOS = _scenarios(PKI)


def _openssl_verify(tmp: Path, sc: Scenario, *extra: str) -> int:
    leaf = write_pem(tmp / "ov-leaf.pem", sc.presented[0])
    untrusted = write_pem(tmp / "ov-untrusted.pem", *sc.presented[1:]) if sc.presented[1:] \
        else None
    bundle = write_pem(tmp / "ov-bundle.pem", *sc.trusted)
    argv = ["openssl", "verify", *extra, "-CAfile", str(bundle), "-purpose", "sslserver",
            "-verify_hostname", "localhost"]
    if untrusted:
        argv += ["-untrusted", str(untrusted)]
    out = subprocess.run([*argv, str(leaf)], capture_output=True, text=True, check=False,
                         env={"PATH": "/usr/bin:/bin"})
    if out.returncode == 0:
        return 0
    import re

    m = re.search(r"error (\d+) at \d+ depth", out.stdout + out.stderr)
    assert m, out.stdout + out.stderr
    return int(m.group(1))


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_store_verdict_matches_openssl_verify(tmp_path: Path, sc: Scenario) -> None:
    bundle = write_pem(tmp_path / "bundle.pem", *sc.trusted)
    verdict = Verifier().verify(tuple(c.der for c in sc.presented),
                                Anchors("bundle", files=(str(bundle),)), "localhost")
    oracle = _openssl_verify(tmp_path, sc)
    assert oracle == sc.expect_code
    assert verdict.code == oracle
    assert verdict.trusted == (oracle == 0)


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_strict_verdict_matches_openssl_x509_strict(tmp_path: Path, sc: Scenario) -> None:
    """What Python 3.13+ (VERIFY_X509_STRICT) would say, against the host's OpenSSL 3.0."""
    bundle = write_pem(tmp_path / "bundle.pem", *sc.trusted)
    verdict = Verifier().verify(tuple(c.der for c in sc.presented),
                                Anchors("bundle", files=(str(bundle),)), "localhost",
                                strict=True)
    assert verdict.code == _openssl_verify(tmp_path, sc, "-x509_strict")


def _java_truststore(tmp: Path, certs: tuple[Issued, ...]) -> Path:
    store = tmp / "truststore.p12"
    for i, cert in enumerate(certs):
        pem = write_pem(tmp / f"java-{i}.pem", cert)
        subprocess.run(["keytool", "-importcert", "-noprompt", "-storetype", "PKCS12",
                        "-keystore", str(store), "-storepass", "changeit", "-alias", f"a{i}",
                        "-file", str(pem)], check=True, capture_output=True, timeout=60)
    return store


needs_clients = pytest.mark.skipif(
    any(shutil.which(p) is None for p in ("curl", "wget", "node", "git", "java", "keytool")),
    reason="the real clients are not installed")


@needs_clients
@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_client_predictions_match_real_clients(tmp_path: Path, sc: Scenario) -> None:
    bundle = write_pem(tmp_path / "bundle.pem", *sc.trusted)
    wgetrc = tmp_path / "wgetrc"
    wgetrc.write_text(f"ca_certificate = {bundle}\n")
    clients = CLIENTS if sc.name in JAVA_SCENARIOS else tuple(c for c in CLIENTS if c != "java")
    env = {
        "CURL_CA_BUNDLE": str(bundle), "SSL_CERT_FILE": str(bundle),
        "REQUESTS_CA_BUNDLE": str(bundle), "NODE_EXTRA_CA_CERTS": str(bundle),
        "GIT_SSL_CAINFO": str(bundle), "WGETRC": str(wgetrc),
    }
    if "java" in clients:
        truststore = _java_truststore(tmp_path, sc.trusted)
        env["JAVA_TOOL_OPTIONS"] = (f"-Djavax.net.ssl.trustStore={truststore} "
                                    "-Djavax.net.ssl.trustStorePassword=changeit "
                                    "-Djavax.net.ssl.trustStoreType=PKCS12")
    root = tmp_path / "root"  # no system stores: only what the environment names counts
    root.mkdir()
    with https_server(tmp_path, *sc.presented) as port:
        url = f"https://localhost:{port}/"
        report = probe_report(parse_target(url), environ={**env, "HOME": str(tmp_path)},
                              root=str(root), use_env_proxy=False, timeout=5)
        real = run_all(url, clients=clients, env=env, timeout=10)
    predicted = {c: report.clients[c].trusted for c in clients}
    actual = {c: real[c].ok for c in clients}
    assert predicted == actual, {c: real[c].error for c in clients}
    if sc.expect_code:
        assert report.exit_code == 1
        assert report.diagnosis.code != "ok"
    else:
        assert report.exit_code == 0
