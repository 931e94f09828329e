"""The intercepting proxy: mitmproxy in the edge namespace, re-signing with the inspection CA.

One mitmproxy process serves both ways a corporate network intercepts: an explicit proxy
(``https_proxy=http://EDGE:PORT``) and a transparent one (the edge router REDIRECTs forwarded
tcp/443 to mitmproxy's transparent port; see :meth:`trustwall.lab.topology.Lab.intercepting`).

What the proxy sends after its forged leaf is set by what follows the key in its
``mitmproxy-ca.pem``: mitmproxy loads that file as OpenSSL's chain store, and OpenSSL sends as
much of the chain as it can build from it (docs/quirks-found.md). So:

* ``leaf``               key + signing CA                -> leaf only (mitmproxy's default)
* ``leaf+intermediate``  key + issuing CA + issuing CA   -> leaf + issuing CA (root not found)
* ``leaf+root``          key + root + root               -> leaf + root

Each proxy gets its own confdir in the lab's work directory; nothing touches ~/.mitmproxy.
"""

from __future__ import annotations

import enum
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from trustwall.clients.login import base_environment
from trustwall.errors import EnvironmentMissing, TrustwallError
from trustwall.lab.ca import LabCAs
from trustwall.lab.netns import Netns

MITMDUMP_CANDIDATES = (
    Path(__file__).resolve().parents[3] / ".venv-mitm" / "bin" / "mitmdump",  # scripts/setup.sh
)
START_TIMEOUT = 20.0


class ChainMode(str, enum.Enum):
    """Which certificates the proxy presents."""

    LEAF = "leaf"
    LEAF_INTERMEDIATE = "leaf+intermediate"
    LEAF_ROOT = "leaf+root"


@dataclass(frozen=True)
class ProxyConfig:
    """How the proxy re-signs: which inspection CA variant and which chain it sends.

    ``ca`` is a :meth:`LabCAs.acme_variant` name; ``leaf+intermediate`` requires
    ``intermediate`` (the only variant with an issuing CA under its root).
    ``upstream_insecure`` makes the proxy accept any origin certificate and re-sign it anyway,
    hiding the origin's own chain errors from the client (some appliances do this).
    """

    ca: str = "root"
    chain: ChainMode = ChainMode.LEAF
    upstream_insecure: bool = False

    @property
    def key(self) -> str:
        return f"{self.ca}-{self.chain.value.replace('+', '-')}" + (
            "-insecure" if self.upstream_insecure else "")


@dataclass(frozen=True)
class ProxyInfo:
    """A running proxy: where to point clients and what a client must trust."""

    config: ProxyConfig
    address: str
    explicit_port: int
    transparent_port: int
    pid: int
    confdir: Path
    anchor_pem: bytes  # the inspection root a client must trust to get through
    signer_pem: bytes  # the CA certificate that signs the forged leaves

    @property
    def url(self) -> str:
        """The value for https_proxy / http_proxy."""
        return f"http://{self.address}:{self.explicit_port}"


def mitmdump_path() -> Path:
    for candidate in MITMDUMP_CANDIDATES:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise EnvironmentMissing("mitmproxy (mitmdump) is not installed for the lab",
                             hint="run scripts/setup.sh (it installs .venv-mitm)")


def ca_file_contents(cas: LabCAs, config: ProxyConfig) -> bytes:
    """The mitmproxy-ca.pem for ``config``: signing key, signing CA, then the chain store."""
    signer = cas.acme_variant(config.ca)
    if config.chain is ChainMode.LEAF:
        extra = b""
    elif config.chain is ChainMode.LEAF_ROOT:
        extra = signer.anchor_pem
    else:
        if signer.root_pem is None:
            raise ValueError("leaf+intermediate needs the 'intermediate' inspection CA")
        extra = signer.cert_pem
    return signer.key_pem + signer.cert_pem + extra


def write_confdir(cas: LabCAs, config: ProxyConfig, confdir: Path) -> None:
    from trustwall.journal.atomic import atomic_write

    confdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(confdir / "mitmproxy-ca.pem", ca_file_contents(cas, config), mode=0o600)


def listening(pid: int, port: int) -> bool:
    """True when the network namespace of ``pid`` has a TCP socket listening on ``port``.

    /proc/PID/net/tcp shows the sockets of that process's namespace, so this works from the
    host without entering the namespace. Until ``ip netns exec`` has switched namespaces, the
    process is still in ours, whose listeners must not count.
    """
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
            return False
    except OSError:
        return False
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def wait_listening(proc: subprocess.Popen, ports: tuple[int, ...], what: str,
                   log: Path | None = None, timeout: float = START_TIMEOUT) -> None:
    """Wait until ``proc`` listens on every port; fail with its last log line otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if all(listening(proc.pid, port) for port in ports):
            return
        time.sleep(0.02)
    tail = ""
    if log is not None and log.exists():
        lines = log.read_text(errors="replace").strip().splitlines()
        tail = f": {lines[-1]}" if lines else ""
    state = f"exited with {proc.returncode}" if proc.poll() is not None else (
        f"not listening on {ports} after {timeout:.0f}s")
    raise TrustwallError(f"{what} did not come up ({state}){tail}")


def start_proxy(edge: Netns, cas: LabCAs, config: ProxyConfig, *, workdir: Path,
                address: str, explicit_port: int, transparent_port: int,
                upstream_ca_file: Path, wait: bool = True) -> tuple[ProxyInfo, subprocess.Popen]:
    """Start mitmdump in ``edge`` with explicit and transparent listeners.

    With ``wait`` (the default) return once both ports listen; otherwise the caller calls
    :func:`wait_proxy` (the lab starts its other daemons meanwhile).
    """
    confdir = workdir / f"proxy-{config.key}"
    write_confdir(cas, config, confdir)
    argv = [
        str(mitmdump_path()), "--quiet",
        "--set", f"confdir={confdir}",
        "--mode", f"regular@{explicit_port}",
        "--mode", f"transparent@{transparent_port}",
        "--set", "block_global=false",
        "--set", "flow_detail=0",
        "--set", "termlog_verbosity=warn",
    ]
    if config.upstream_insecure:
        argv += ["--ssl-insecure"]
    else:
        argv += ["--set", f"ssl_verify_upstream_trusted_ca={upstream_ca_file}"]
    log = confdir / "mitmdump.log"
    env = base_environment(str(confdir))
    with open(log, "wb") as out:
        proc = edge.popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                          env=env, cwd=str(confdir))
    signer = cas.acme_variant(config.ca)
    info = ProxyInfo(config, address, explicit_port, transparent_port, proc.pid, confdir,
                     signer.anchor_pem, signer.cert_pem)
    if wait:
        wait_proxy(info, proc)
    return info, proc


def wait_proxy(info: ProxyInfo, proc: subprocess.Popen) -> None:
    wait_listening(proc, (info.explicit_port, info.transparent_port), "mitmproxy",
                   info.confdir / "mitmdump.log")
