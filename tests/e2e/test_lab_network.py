"""The lab network: sites fail each their own way, the proxy re-signs in every chain mode, the
firewalled JMX port says "No route to host", and nothing of it appears on the host."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest

from trustwall.lab.proxy import ChainMode, ProxyConfig
from trustwall.lab.sites import SITES
from trustwall.lab.topology import JMX_PORT, ORIGIN_IP, SERVER_NAME, Lab

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]


def s_client(lab: Lab, name: str, ca_file: str, proxy: str | None = None) -> tuple[int, list[str]]:
    """OpenSSL's verify code for ``name`` seen from the client, and the presented subjects."""
    argv = ["openssl", "s_client", "-connect", f"{name}:443", "-servername", name,
            "-verify_hostname", name, "-CAfile", ca_file, "-showcerts"]
    if proxy:
        argv += ["-proxy", proxy.removeprefix("http://")]
    out = lab.client.run(argv, input="", check=False, env={"PATH": "/usr/bin:/bin"}).stdout
    code = re.search(r"Verify return code: (\d+)", out)
    subjects = re.findall(r"^\s*\d+ s:(.*)$", out, re.MULTILINE)
    return (int(code[1]) if code else -1), subjects


def connect(lab: Lab, ns: str, host: str, port: int) -> str:
    script = ("import socket,sys\n"
              "try:\n"
              " s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3)\n"
              " print(s.recv(64).decode().strip())\n"
              "except OSError as e:\n"
              " print(e.strerror)\n")
    netns = {"client": lab.client, "server": lab.server}[ns]
    return netns.run([sys.executable, "-I", "-c", script, host, str(port)],
                     env={"PATH": "/usr/bin:/bin"}).stdout.strip()


@pytest.mark.parametrize("site", SITES, ids=lambda s: s.name.split(".")[0])
def test_each_origin_site_gives_its_own_verify_code(lab_direct: Lab, site) -> None:
    code, subjects = s_client(lab_direct, site.name, str(lab_direct.ca_file("public-root")))
    assert code == site.openssl_code
    expected_length = 2 if site.name.startswith(("good", "expired", "wronghost")) else 1
    assert len(subjects) == expected_length


def test_curl_through_origin_directly_and_through_interception(lab: Lab, clean_env) -> None:
    curl = ["curl", "-sS", "--max-time", "10", f"https://good.{'lab.test'}/"]
    with lab.intercepting(None):
        direct = lab.client.run([*curl, "--cacert", str(lab.ca_file("public-root"))],
                                env=clean_env, check=False)
    assert direct.stdout == "hello from good.lab.test\n", direct.stderr
    # The default lab intercepts transparently: the public root no longer suffices…
    intercepted = lab.client.run([*curl, "--cacert", str(lab.ca_file("public-root"))],
                                 env=clean_env, check=False)
    assert intercepted.returncode == 60
    assert "unable to get local issuer certificate" in intercepted.stderr
    # …and the inspection root does, transparently and as an explicit proxy.
    for extra in ([], ["--proxy", lab.proxy_url]):
        ok = lab.client.run([*curl, "--cacert", str(lab.ca_file("acme-root")), *extra],
                            env=clean_env, check=False)
        assert ok.stdout == "hello from good.lab.test\n", ok.stderr


PROXY_MODES = (ProxyConfig(chain=ChainMode.LEAF_ROOT),
               ProxyConfig(ca="intermediate", chain=ChainMode.LEAF_INTERMEDIATE),
               ProxyConfig(ca="intermediate"), ProxyConfig(ca="weak"), ProxyConfig(ca="expired"))


@pytest.fixture(scope="module")
def proxy_modes(lab: Lab) -> Lab:
    lab.proxies(*PROXY_MODES)  # in parallel, once for this module
    return lab


@pytest.mark.parametrize(("config", "anchor", "presented"), [
    (ProxyConfig(), "acme-root", ["CN = good.lab.test"]),
    (ProxyConfig(chain=ChainMode.LEAF_ROOT), "acme-root",
     ["CN = good.lab.test", "O = Acme Widgets, CN = Acme Widgets Inspection CA"]),
    (ProxyConfig(ca="intermediate", chain=ChainMode.LEAF_INTERMEDIATE), "acme-root",
     ["CN = good.lab.test", "O = Acme Widgets, CN = Acme Widgets Inspection Issuing CA"]),
], ids=["leaf", "leaf+root", "leaf+intermediate"])
def test_proxy_sends_the_chain_its_mode_says(proxy_modes: Lab, config: ProxyConfig, anchor: str,
                                            presented: list[str]) -> None:
    lab = proxy_modes
    proxy = lab.proxy(config)
    code, subjects = s_client(lab, "good.lab.test", str(lab.ca_file(anchor)), proxy.url)
    assert subjects == presented
    assert code == 0
    # Without the inspection root the client cannot verify, whatever the proxy sends.
    code, _ = s_client(lab, "good.lab.test", str(lab.ca_file("public-root")), proxy.url)
    assert code == {ChainMode.LEAF: 21, ChainMode.LEAF_ROOT: 19,
                    ChainMode.LEAF_INTERMEDIATE: 20}[config.chain]


def test_issuing_ca_alone_is_not_enough_when_the_proxy_sends_the_leaf_only(
        proxy_modes: Lab) -> None:
    lab = proxy_modes
    proxy = lab.proxy(ca="intermediate")
    code, subjects = s_client(lab, "good.lab.test", str(lab.ca_file("acme-root")), proxy.url)
    assert subjects == ["CN = good.lab.test"]
    assert code == 21  # the client has the root but not the issuing CA in between


def test_expired_inspection_ca_fails_even_once_trusted(proxy_modes: Lab) -> None:
    proxy = proxy_modes.proxy(ca="expired")
    code, subjects = s_client(proxy_modes, "good.lab.test",
                              str(proxy_modes.ca_file("acme-expired")), proxy.url)
    assert subjects == ["CN = good.lab.test"]
    assert code == 10  # certificate has expired (the CA, at depth 1)


def test_jmx_port_is_refused_with_no_route_to_host(lab: Lab) -> None:
    assert connect(lab, "client", SERVER_NAME, JMX_PORT) == "No route to host"
    # The listener is there: the firewall, not a missing service, is the cause.
    assert connect(lab, "server", "127.0.0.1", JMX_PORT) == "JMX lab listener"
    # tcp/22 is accepted by rule 4 but nothing listens: a different error.
    assert connect(lab, "client", SERVER_NAME, 22) == "Connection refused"


def test_lab_lives_only_in_its_namespaces(lab: Lab) -> None:
    host_addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert "198.18." not in host_addrs
    host_lookup = subprocess.run(["getent", "hosts", "good.lab.test"], capture_output=True)
    assert host_lookup.returncode != 0
    inside = lab.client.run(["getent", "hosts", "good.lab.test"]).stdout
    assert inside.split()[0] == ORIGIN_IP
    state = lab.state()
    assert set(state.namespaces) == {"client", "edge", "origin", "server"}
    assert lab.state_file.exists()


def test_starting_without_mitmproxy_fails_clearly_and_leaves_nothing(monkeypatch) -> None:
    from trustwall.errors import EnvironmentMissing
    from trustwall.lab import proxy as proxy_mod
    from trustwall.lab.netns import list_lab_namespaces

    monkeypatch.setattr(proxy_mod, "MITMDUMP_CANDIDATES", ())
    def ours() -> set[str]:
        # this process's namespaces only (Netns names carry the pid): another lab user on
        # the machine may create its own meanwhile
        return {n for n in list_lab_namespaces() if f"-{os.getpid()}-" in n}

    before = ours()
    broken = Lab()
    with pytest.raises(EnvironmentMissing, match="mitmproxy"):
        broken.start()
    assert ours() <= before
    assert not broken.state_file.exists()
    assert not broken.workdir.exists()


FETCH_TRUSTING = """
import ssl, sys, urllib.request as u
ctx = ssl.create_default_context(cafile=sys.argv[2])
opener = u.build_opener(u.ProxyHandler({"https": sys.argv[3]}), u.HTTPSHandler(context=ctx))
try:
    print(opener.open(sys.argv[1], timeout=10).read().decode().strip())
except Exception as exc:
    print(exc)
"""


def test_weak_inspection_ca_is_refused_by_python_313_even_once_trusted(proxy_modes: Lab) -> None:
    python313 = sorted(glob.glob("/root/.pyenv/versions/3.13*/bin/python3.13"))
    if not python313:
        pytest.skip("no Python 3.13 on this machine")
    lab = proxy_modes
    proxy = lab.proxy(ca="weak")
    weak = str(lab.ca_file("acme-weak"))
    argv = ["-c", FETCH_TRUSTING, "https://good.lab.test/", weak, proxy.url]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    # -I: the project venv (3.11, no strict flag); -S: no site hooks in the system 3.13.
    relaxed = lab.client.run([sys.executable, "-I", *argv], env=env).stdout.strip()
    assert relaxed == "hello from good.lab.test"
    strict = lab.client.run([python313[-1], "-S", "-I", *argv], env=env).stdout.strip()
    assert "CERTIFICATE_VERIFY_FAILED" in strict
    assert "Basic Constraints of CA cert not marked critical" in strict
