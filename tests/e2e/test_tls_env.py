"""Which store each client reads, one environment variable at a time: the roll-up's prediction
against the real clients (curl, wget, python, requests, node, git and pip itself), with the
variable pointing at the only bundle that trusts the loopback site."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tls_pki import https_server, make_pki, write_pem

from trustwall.clients import run_all
from trustwall.tls.probe import parse_target
from trustwall.tls.report import probe_report

PKI = make_pki()
CLIENTS = ("curl", "wget", "python", "requests", "node", "git")
VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
             "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "PIP_CERT", "NONE")
PIP_VARIABLES = {"PIP_CERT", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "NONE"}


def _pip_trusts(url: str, env: dict[str, str], home: Path) -> bool:
    """Run the real pip against the site: a TLS failure says CERTIFICATE_VERIFY_FAILED; a
    handshake that passed ends in "No matching distribution" (the site is no index)."""
    proc = subprocess.run(
        [sys.executable, "-I", "-m", "pip", "download", "--no-deps", "--retries", "0",
         "--timeout", "5", "-d", str(home / "dl"), "--index-url", f"{url}simple/", "nothing"],
        capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), **env})
    out = proc.stdout + proc.stderr
    assert "No matching distribution" in out or "CERTIFICATE_VERIFY_FAILED" in out, out
    return "CERTIFICATE_VERIFY_FAILED" not in out


@pytest.mark.parametrize("variable", VARIABLES)
def test_one_variable_routes_the_clients_it_should(tmp_path: Path, variable: str) -> None:
    bundle = write_pem(tmp_path / "bundle.pem", PKI.root)
    hashdir = tmp_path / "hashdir"
    hashdir.mkdir()
    write_pem(hashdir / "root.pem", PKI.root)
    subprocess.run(["openssl", "rehash", str(hashdir)], check=True, capture_output=True)
    value = str(hashdir) if variable.endswith(("_DIR", "_CAPATH")) else str(bundle)
    env = {} if variable == "NONE" else {variable: value}
    root = tmp_path / "root"  # no system store: only the variable can make a client trust
    root.mkdir()
    with https_server(tmp_path, PKI.leaf("localhost", "127.0.0.1"), PKI.inter) as port:
        url = f"https://localhost:{port}/"
        report = probe_report(parse_target(url), environ={**env, "HOME": str(tmp_path)},
                              root=str(root), use_env_proxy=False, java=False, timeout=5)
        real = run_all(url, clients=CLIENTS, env=env, timeout=10)
        # pip (~2 s a run) where its own rule decides: PIP_CERT, the requests variables,
        # truststore's OpenSSL default paths, and nothing at all.
        pip = {"pip": _pip_trusts(url, env, tmp_path)} if variable in PIP_VARIABLES else {}
    predicted = {c: report.clients[c].trusted for c in (*CLIENTS, *pip)}
    actual = {**{c: real[c].ok for c in CLIENTS}, **pip}
    assert predicted == actual, {c: real[c].error for c in CLIENTS}
