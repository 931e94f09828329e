"""The probe on loopback: the chain as presented, connection failures classified precisely, the
CONNECT proxy (allowing, refusing, wanting credentials), ca fetch via AIA through the proxy,
scan, and the CLI's exit codes and JSON keys."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tls_pki import (
    connect_proxy,
    http_server,
    https_server,
    issue,
    make_pki,
    refused_port,
    silent_port,
    write_pem,
)

from trustwall.tls.fetch import fetch
from trustwall.tls.probe import Proxy, parse_target, probe
from trustwall.tls.scan import scan

PKI = make_pki()
TRUSTWALL = [sys.executable, "-m", "trustwall"]


def test_probe_keeps_untrusted_chain_as_presented(tmp_path: Path) -> None:
    leaf = PKI.leaf("localhost", issuer=PKI.corp)
    with https_server(tmp_path, leaf, PKI.corp) as port:
        hs = probe(parse_target(f"localhost:{port}"), timeout=5)
    assert hs.failure is None
    assert hs.presented_chain == (leaf.der, PKI.corp.der)
    assert hs.protocol in ("TLSv1.2", "TLSv1.3")
    assert hs.cipher and hs.alpn == "http/1.1"
    assert hs.servername == "localhost"


def test_probe_sends_servername_and_ip_without_sni(tmp_path: Path) -> None:
    with https_server(tmp_path, PKI.leaf("127.0.0.1"), PKI.inter) as port:
        by_ip = probe(parse_target(f"127.0.0.1:{port}"), timeout=5)
        named = probe(parse_target(f"127.0.0.1:{port}"), servername="site.example", timeout=5)
    assert by_ip.servername is None and by_ip.verify_name == "127.0.0.1"
    assert named.servername == "site.example" and named.verify_name == "site.example"


def test_refused_port_is_connection_refused() -> None:
    hs = probe(parse_target(f"127.0.0.1:{refused_port()}"), timeout=3)
    assert hs.failure is not None
    assert (hs.failure.kind, hs.failure.stage, hs.failure.detail) == (
        "connection_refused", "connect", "ECONNREFUSED")
    assert "refused" in hs.failure.message.lower()


def test_silent_listener_is_a_timeout_in_tls() -> None:
    with silent_port() as port:
        hs = probe(parse_target(f"127.0.0.1:{port}"), timeout=0.5)
    assert (hs.failure.kind, hs.failure.stage) == ("timeout", "tls")
    assert hs.elapsed_ms < 3000


def test_invalid_name_is_dns_failure() -> None:
    hs = probe(parse_target("no-such-host.invalid:443"), timeout=5)
    assert (hs.failure.kind, hs.failure.stage) == ("dns_failure", "dns")


def test_plain_http_port_is_not_tls() -> None:
    with http_server(b"") as port:
        hs = probe(parse_target(f"127.0.0.1:{port}"), timeout=3)
    assert hs.failure.kind in ("not_tls", "handshake_eof")
    assert hs.presented_chain == ()


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_ipv6_literal(tmp_path: Path) -> None:
    try:
        with https_server(tmp_path, PKI.leaf("::1"), PKI.inter, host="::1") as port:
            hs = probe(parse_target(f"[::1]:{port}"), timeout=5)
    except OSError:
        pytest.skip("::1 not configured")
    assert hs.failure is None and hs.address == "::1"


def test_proxy_tunnels_with_basic_credentials(tmp_path: Path) -> None:
    token = base64.b64encode(b"alice:s3cret").decode()
    leaf = PKI.leaf("localhost", issuer=PKI.corp)
    with https_server(tmp_path, leaf) as port, connect_proxy(credentials=token) as (pport, seen):
        hs = probe(parse_target(f"localhost:{port}"),
                   proxy=Proxy("127.0.0.1", pport, "alice", "s3cret"), timeout=5)
    assert hs.failure is None and hs.presented_chain == (leaf.der,)
    assert seen[0].startswith(f"CONNECT localhost:{port} HTTP/1.1")
    assert hs.proxy == f"http://alice:***@127.0.0.1:{pport}"


def test_proxy_refusal_keeps_status_line(tmp_path: Path) -> None:
    with connect_proxy(refuse=True) as (pport, _):
        hs = probe(parse_target("blocked.example:443"), proxy=Proxy("127.0.0.1", pport),
                   timeout=3)
    assert (hs.failure.kind, hs.failure.stage) == ("proxy_refused", "proxy")
    assert hs.failure.detail == "HTTP/1.1 403 Forbidden"


def test_proxy_that_cannot_reach_the_site_is_upstream_failure() -> None:
    with connect_proxy() as (pport, _):
        hs = probe(parse_target(f"127.0.0.1:{refused_port()}"),
                   proxy=Proxy("127.0.0.1", pport), timeout=3)
    assert (hs.failure.kind, hs.failure.detail) == ("proxy_upstream_failed",
                                                    "HTTP/1.1 502 Bad Gateway")


def test_proxy_wanting_credentials_is_407(tmp_path: Path) -> None:
    with connect_proxy(credentials="x") as (pport, _):
        hs = probe(parse_target("site.example:443"), proxy=Proxy("127.0.0.1", pport), timeout=3)
    assert hs.failure.kind == "proxy_auth_required"
    assert "407" in hs.failure.detail


def test_proxy_down_is_proxy_unreachable() -> None:
    hs = probe(parse_target("site.example:443"), proxy=Proxy("127.0.0.1", refused_port()),
               timeout=3)
    assert (hs.failure.kind, hs.failure.stage) == ("proxy_unreachable", "proxy")


def test_ca_fetch_root_presented(tmp_path: Path) -> None:
    with https_server(tmp_path, PKI.leaf("localhost", issuer=PKI.corp), PKI.corp) as port:
        got = fetch(parse_target(f"localhost:{port}"), timeout=5)
    assert got.root_found and [c.der for c in got.certs] == [PKI.corp.der]


def test_ca_fetch_follows_aia_through_proxy(tmp_path: Path) -> None:
    with http_server(PKI.root.der) as aia_port:
        inter = issue("Corp Issuing CA", issuer=PKI.root, ca=True,
                      aia=f"http://127.0.0.1:{aia_port}/root.crt")
        leaf = PKI.leaf("localhost", issuer=inter)
        with https_server(tmp_path, leaf, inter) as port, connect_proxy() as (pport, seen):
            got = fetch(parse_target(f"localhost:{port}"), proxy=Proxy("127.0.0.1", pport),
                        timeout=5)
    assert got.root_found
    assert [c.der for c in got.certs] == [inter.der, PKI.root.der]
    assert got.sources[1] == f"http://127.0.0.1:{aia_port}/root.crt"
    assert any(s.startswith("GET http://127.0.0.1") for s in seen)  # AIA went via the proxy


def test_ca_fetch_says_when_root_cannot_be_fetched(tmp_path: Path) -> None:
    inter = issue("Corp Issuing CA", issuer=PKI.root, ca=True)
    with https_server(tmp_path, PKI.leaf("localhost", issuer=inter), inter) as port:
        got = fetch(parse_target(f"localhost:{port}"), timeout=5)
    assert not got.root_found and [c.der for c in got.certs] == [inter.der]
    assert "not sent" in got.message and "browser" in got.message


def test_ca_fetch_never_offers_a_leaf_as_the_ca_to_trust(tmp_path: Path) -> None:
    """An inspection proxy that sends its forged leaf only, without AIA: there is no CA to
    write; the command says so, exits 1, writes nothing and points to fix --ca."""
    out_file = tmp_path / "enterprise-ca.pem"
    with https_server(tmp_path, PKI.leaf("localhost", issuer=PKI.corp)) as port:
        got = fetch(parse_target(f"localhost:{port}"), timeout=5)
        cli = _cli("ca", "fetch", f"https://localhost:{port}/", "-o", str(out_file))
    assert got.certs == () and not got.root_found
    assert "not a CA" in got.message and "--ca FILE" in got.message
    assert cli.returncode == 1 and not out_file.exists()
    assert "ca install" not in cli.stdout + cli.stderr
    assert f"trustwall fix https://localhost:{port} --ca FILE" in cli.stderr


def test_ca_fetch_follows_aia_from_a_lone_leaf_and_keeps_only_the_cas(tmp_path: Path) -> None:
    with http_server(PKI.root.der) as aia_port:
        leaf = PKI.leaf("localhost", issuer=PKI.root, aia=f"http://127.0.0.1:{aia_port}/r.crt")
        with https_server(tmp_path, leaf) as port:
            got = fetch(parse_target(f"localhost:{port}"), timeout=5)
    assert got.root_found and [c.der for c in got.certs] == [PKI.root.der]


def test_scan_many_endpoints(tmp_path: Path) -> None:
    bundle = write_pem(tmp_path / "b.pem", PKI.root)
    env = {"SSL_CERT_FILE": str(bundle)}
    with https_server(tmp_path, PKI.leaf("localhost", "127.0.0.1"), PKI.inter) as good, \
            https_server(tmp_path, PKI.leaf("localhost", issuer=PKI.corp)) as bad:
        targets = [parse_target(f"127.0.0.1:{p}") for p in [good] * 10 + [bad] * 5] + \
            [parse_target(f"127.0.0.1:{refused_port()}")]
        reports, summary = scan(targets, concurrency=8, timeout=5, environ=env,
                                root=str(tmp_path), java=False, use_env_proxy=False)
    assert len(reports) == summary.endpoints == 16
    assert summary.unreachable == 1
    python_ok = [r.clients["python"].trusted for r in reports if r.chain]
    assert python_ok.count(True) == 10 and python_ok.count(False) == 5
    # The lab's private root is not Mozilla's either, so all 15 chains count as intercepted;
    # only the Fortinet-issued ones name the product.
    assert summary.intercepted == 15
    assert sum(r.interception.product == "Fortinet FortiGate" for r in reports) == 5


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": "/tmp", "NO_COLOR": "1"}
    return subprocess.run([*TRUSTWALL, *args], capture_output=True, text=True, timeout=60,
                          env={**base, **(env or {})}, check=False)


@pytest.mark.parametrize("bad", ["ftp://host", "host:0", "https://host:99999", "exa mple.com",
                                 "http//x", "[::1", ""])
def test_cli_bad_input_exits_2(bad: str) -> None:
    out = _cli("probe", bad)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("trustwall: error:") and "Traceback" not in out.stderr


def test_cli_unreachable_exits_3() -> None:
    out = _cli("probe", f"127.0.0.1:{refused_port()}", "--no-java")
    assert out.returncode == 3
    assert "connection_refused" in out.stdout


def test_cli_json_keys_and_exit_codes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/ssl/certs").mkdir(parents=True)
    write_pem(root / "etc/ssl/certs/ca-certificates.crt", PKI.root)
    (root / "usr/lib/ssl").mkdir(parents=True)
    (root / "usr/lib/ssl/cert.pem").symlink_to("../../../etc/ssl/certs/ca-certificates.crt")
    with https_server(tmp_path, PKI.leaf("localhost", "127.0.0.1"), PKI.inter) as port:
        ok = _cli("probe", f"https://localhost:{port}", "--json", "--no-java", "--root",
                  str(root), env={"NODE_EXTRA_CA_CERTS": str(root / "etc/ssl/certs/"
                                                               "ca-certificates.crt"),
                                  "REQUESTS_CA_BUNDLE": str(root / "etc/ssl/certs/"
                                                            "ca-certificates.crt")})
        human = _cli("probe", f"https://localhost:{port}", "--no-java", "--root", str(root))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = json.loads(ok.stdout)
    assert {"chain", "interception", "stores", "clients", "diagnosis"} <= set(data)
    assert set(data["chain"][0]) == {"subject", "issuer", "sha256", "not_before", "not_after",
                                     "is_ca"}
    assert {"detected", "product", "evidence", "confidence"} <= set(data["interception"])
    assert {"trusted", "error"} <= set(data["stores"]["system-bundle"])
    assert {"trusted", "store", "error"} <= set(data["clients"]["requests"])
    assert {"code", "summary", "next_command"} <= set(data["diagnosis"])
    assert data["diagnosis"]["code"] == "ok"
    # Without the env overrides requests (certifi) and node (built-in roots) fail: exit 1,
    # and the diagnosis says the system store is fine but those clients read another store.
    assert human.returncode == 1
    assert "clients_use_other_stores" in human.stdout
    assert "REQUESTS_CA_BUNDLE=" in human.stdout.replace("\n", "")


def test_cli_explain() -> None:
    out = _cli("explain", "--json", "curl: (60) SSL certificate problem: self-signed "
               "certificate in certificate chain")
    assert out.returncode == 0
    found = json.loads(out.stdout)["findings"][0]
    assert found["code"] == "X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN"
    assert found["verify_code"] == 19 and found["client"] == "curl"
    assert _cli("explain", "nothing to see here").returncode == 1


def test_cli_ca_fetch_writes_presented_root(tmp_path: Path) -> None:
    out_file = tmp_path / "enterprise-ca.pem"
    with https_server(tmp_path, PKI.leaf("localhost", issuer=PKI.corp), PKI.corp) as port:
        out = _cli("ca", "fetch", f"https://localhost:{port}", "-o", str(out_file), "--json")
        missing = _cli("ca", "fetch", f"127.0.0.1:{refused_port()}", "-o",
                       str(tmp_path / "none.pem"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["root_found"] is True
    assert out_file.read_bytes() == PKI.corp.pem
    assert missing.returncode == 3 and not (tmp_path / "none.pem").exists()


def test_cli_scan_json_lines_and_table(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    with https_server(tmp_path, PKI.leaf("localhost", issuer=PKI.corp), PKI.corp) as port:
        urls.write_text(f"# lab\nhttps://localhost:{port}\n127.0.0.1:{refused_port()}\n")
        lines = _cli("scan", str(urls), "--json", "--no-java", "--concurrency", "2")
        table = _cli("scan", str(urls), "--no-java")
    assert lines.returncode == 1  # a trust problem outranks the unreachable endpoint
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert records[-1]["summary"]["endpoints"] == 2
    by_target = {r["target"]: r for r in records[:-1]}
    assert by_target[f"https://localhost:{port}"]["interception"]["product"] == \
        "Fortinet FortiGate"
    assert table.returncode == 1 and "connection_refused" in table.stdout
    bad = tmp_path / "bad.txt"
    bad.write_text("ok.example\nftp://nope\n")
    out = _cli("scan", str(bad))
    assert out.returncode == 2 and "bad.txt:2:" in out.stderr


def test_chain_is_kept_when_the_server_then_demands_a_client_certificate(tmp_path: Path) -> None:
    import ssl

    from tls_pki import _serving, _TLSServer

    leaf = PKI.leaf("localhost", issuer=PKI.corp)
    chain = write_pem(tmp_path / "c.pem", leaf)
    key = tmp_path / "k.pem"
    from cryptography.hazmat.primitives import serialization

    key.write_bytes(leaf.key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # 1.2: the refusal comes inside the handshake
    ctx.load_cert_chain(chain, key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=PKI.root.pem.decode())
    with _serving(_TLSServer(("127.0.0.1", 0), ctx)) as port:
        hs = probe(parse_target(f"localhost:{port}"), timeout=5)
    assert hs.presented_chain == (leaf.der,)
    assert hs.failure is not None and hs.failure.kind in ("handshake_alert", "handshake_eof")
