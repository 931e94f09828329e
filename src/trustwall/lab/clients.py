"""Real clients runner: fetch a URL with curl, wget, Python urllib, requests, node, Java and git,
each with an explicit, scrubbed environment, and report OK/FAIL with the client's own error.

The environment of every client is built from nothing: ``PATH``, ``HOME`` (the sandbox's, or a
fresh empty directory), ``LANG`` and only what the caller passes. This machine — like many
corporate hosts — exports SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, NODE_EXTRA_CA_CERTS,
GIT_SSL_CAINFO, …; inheriting them would make every client trust what the test did not install.

What "OK" means: the TLS handshake verified and an HTTP answer arrived (any status; the lab
origin answers 200). For git (``git ls-remote``) the lab origin is not a git server, so an
answer that git rejects *after* the handshake (``not valid: is this a git repository?``,
``repository … not found``, ``The requested URL returned error: 404``) counts as OK too; a
transport error (``unable to access '…': <TLS error>``) is a FAIL.

Python urllib and requests run with the project's virtualenv interpreter in isolated mode
(``-I``): the system interpreters here load a site start-up hook that changes certifi
(QUIRKS.md). node's https module ignores https_proxy (QUIRKS.md), so ``proxy`` does not apply
to node: only transparent interception catches it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from trustwall.errors import BadInput
from trustwall.lab.netns import Netns
from trustwall.lab.sandbox import SYSTEM_PATH, Sandbox

CLIENTS = ("curl", "wget", "python", "requests", "node", "java", "git")


@dataclass(frozen=True)
class ClientResult:
    """What one client did with one URL. ``error`` is its own error text, on one line."""

    name: str
    ok: bool
    error: str
    exit_code: int
    stdout: str
    stderr: str
    seconds: float


_URLLIB_SCRIPT = """
import sys, urllib.error, urllib.request
url, proxy, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
handlers = [urllib.request.ProxyHandler({"https": proxy})] if proxy else []
try:
    with urllib.request.build_opener(*handlers).open(url, timeout=timeout) as resp:
        print(resp.status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except urllib.error.URLError as exc:
    sys.exit(str(exc.reason))
except Exception as exc:
    sys.exit(str(exc))
"""

_REQUESTS_SCRIPT = """
import sys, requests
url, proxy, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
proxies = {"https": proxy} if proxy else None
try:
    print(requests.get(url, proxies=proxies, timeout=timeout).status_code)
except Exception as exc:
    sys.exit(f"{type(exc).__name__}: {exc}")
"""

_NODE_SCRIPT = """
const https = require("https");
const req = https.get(process.argv[1], {timeout: Number(process.argv[2]) * 1000}, (res) => {
  console.log(res.statusCode); res.resume(); res.on("end", () => process.exit(0));
});
req.on("timeout", () => req.destroy(new Error("timed out")));
req.on("error", (err) => { console.error(`${err.code || err.name}: ${err.message}`);
  process.exit(1); });
"""

# git answers that prove the handshake passed (the lab origin is not a git server). A
# transport failure reads "unable to access '<url>': <reason>", except for an HTTP error
# status, which git reports the same way.
_GIT_HTTP_STATUS = "The requested URL returned error"
_GIT_AFTER_HANDSHAKE = re.compile(r"not valid: is this a git repository|repository '[^']*' "
                                  r"not found")

_java_lock = threading.Lock()


def java_classes() -> Path:
    """Compile HttpsGet.java once per source version into a cache directory and return it."""
    source = resources.files("trustwall.lab").joinpath("data/HttpsGet.java").read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:12]
    cache = _cache_root() / f"httpsget-{digest}"
    with _java_lock:
        if (cache / "HttpsGet.class").exists():
            return cache
        cache.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        build = Path(tempfile.mkdtemp(prefix=".build-", dir=cache.parent))
        try:
            (build / "HttpsGet.java").write_bytes(source)
            subprocess.run(["javac", "-d", str(build), str(build / "HttpsGet.java")],
                           check=True, capture_output=True, timeout=120,
                           env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": str(build)})
            (build / "HttpsGet.java").unlink()
            # Another process may win the race; its copy is identical.
            with contextlib.suppress(OSError):
                build.rename(cache)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return cache


def _cache_root() -> Path:
    """Where compiled lab helpers live: root's /var/cache (not a world-writable /tmp name that
    anyone could create first and fill with a class of their own), else the user's cache."""
    if os.geteuid() == 0:
        return Path("/var/cache/trustwall-lab")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trustwall-lab"


def _proxy_host_port(proxy: str) -> tuple[str, int]:
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not parts.hostname or not parts.port:
        raise BadInput(f"proxy {proxy!r}: expected http://host:port")
    return parts.hostname, parts.port


def client_argv(name: str, url: str, *, proxy: str | None = None,
                timeout: float = 15) -> list[str]:
    """The command line of client ``name`` fetching ``url`` (through ``proxy`` if it can)."""
    secs = str(int(max(1, timeout)))
    venv_python = [sys.executable, "-I", "-c"]
    if name == "curl":
        return ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}\\n", "--max-time", secs,
                *(["--proxy", proxy] if proxy else []), url]
    if name == "wget":
        proxy_opts = ["-e", "use_proxy=yes", "-e", f"https_proxy={proxy}"] if proxy else []
        return ["wget", "-nv", "-O", "/dev/null", "--tries=1", f"--timeout={secs}",
                *proxy_opts, url]
    if name == "python":
        return [*venv_python, _URLLIB_SCRIPT, url, proxy or "", secs]
    if name == "requests":
        return [*venv_python, _REQUESTS_SCRIPT, url, proxy or "", secs]
    if name == "node":
        return ["node", "-e", _NODE_SCRIPT, url, secs]
    if name == "java":
        props = []
        if proxy:
            host, port = _proxy_host_port(proxy)
            props = [f"-Dhttps.proxyHost={host}", f"-Dhttps.proxyPort={port}"]
        return ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", *props,
                "-cp", str(java_classes()), "HttpsGet", url, secs]
    if name == "git":
        proxy_opts = ["-c", f"http.proxy={proxy}"] if proxy else []
        return ["git", *proxy_opts, "-c", "http.lowSpeedLimit=1", "-c", f"http.lowSpeedTime={secs}",
                "ls-remote", url]
    raise BadInput(f"unknown client {name!r} (known: {', '.join(CLIENTS)})")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _error_text(name: str, exit_code: int, stdout: str, stderr: str) -> tuple[bool, str]:
    """(ok, the client's own error on one line) from how it exited and what it printed."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if name == "curl":
        if exit_code == 0:
            return True, ""
        first = next((ln for ln in lines if ln.startswith("curl:")),
                     lines[0] if lines else f"exit {exit_code}")
        return False, first.removeprefix("curl:").strip()
    if name == "wget":
        if exit_code in (0, 8):  # 8: the server answered with an HTTP error status
            return True, ""
        errors = [ln.removeprefix("ERROR:").strip() for ln in lines if ln.startswith("ERROR")]
        return False, _one_line(" ".join(errors) or (lines[-1] if lines else f"exit {exit_code}"))
    if name == "git":
        text = _one_line(" ".join(lines))
        if exit_code == 0 or _GIT_HTTP_STATUS in text or (
                "unable to access" not in text and _GIT_AFTER_HANDSHAKE.search(text)):
            return True, ""
        fatal = next((ln for ln in lines if ln.startswith("fatal:")), text or f"exit {exit_code}")
        return False, fatal.removeprefix("fatal:").strip()
    if exit_code == 0:
        return True, ""
    return False, _one_line(lines[-1] if lines else f"exit {exit_code}")


def _scrubbed_env(home: str, env: Mapping[str, str] | None) -> dict[str, str]:
    base = {"PATH": SYSTEM_PATH, "HOME": home, "LANG": "C.UTF-8"}
    base.update(env or {})
    return base


def run_client(
    name: str,
    url: str,
    *,
    sandbox: Sandbox | None = None,
    netns: Netns | None = None,
    env: Mapping[str, str] | None = None,
    proxy: str | None = None,
    timeout: float = 15,
) -> ClientResult:
    """Run one client against ``url`` inside ``sandbox`` (its own netns) or ``netns``.

    ``env`` adds to the scrubbed environment (e.g. ``REQUESTS_CA_BUNDLE``); nothing is
    inherited from this process. ``proxy`` is an explicit proxy URL (``http://host:port``)
    handed to each client in its own way (curl --proxy, wget -e https_proxy, urllib
    ProxyHandler, requests proxies=, java -Dhttps.proxyHost/Port, git -c http.proxy; node has
    none). Without it, an ``https_proxy`` in ``env`` reaches the clients that read it.
    """
    if sandbox is not None and sandbox.netns is not None and netns is not None \
            and netns.name != sandbox.netns.name:
        raise BadInput(f"the sandbox lives in {sandbox.netns.name}, not in {netns.name}")
    argv = client_argv(name, url, proxy=proxy, timeout=timeout)
    scratch_home = None
    if sandbox is not None:
        home = str(sandbox.home)
    else:
        scratch_home = tempfile.mkdtemp(prefix="trustwall-client-home-")
        home = scratch_home
    full_env = _scrubbed_env(home, env)
    if netns is not None and (sandbox is None or sandbox.netns is None):
        argv = netns.argv(argv)
    if sandbox is not None:
        argv = sandbox.argv(argv)
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=full_env,
                              timeout=timeout + 10, check=False, errors="replace")
        exit_code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        exit_code, stdout = -1, _decode(exc.stdout)
        stderr = _decode(exc.stderr) + f"\ntimed out after {timeout + 10:.0f}s"
    finally:
        if scratch_home is not None:
            shutil.rmtree(scratch_home, ignore_errors=True)
    seconds = time.monotonic() - started
    ok, error = _error_text(name, exit_code, stdout, stderr)
    return ClientResult(name, ok, error, exit_code, stdout, stderr, round(seconds, 3))


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def run_all(
    url: str,
    *,
    clients: Sequence[str] = CLIENTS,
    sandbox: Sandbox | None = None,
    netns: Netns | None = None,
    env: Mapping[str, str] | None = None,
    proxy: str | None = None,
    timeout: float = 15,
) -> dict[str, ClientResult]:
    """Run every client in parallel threads; results keyed by client name, in ``clients`` order."""
    if "java" in clients:
        java_classes()  # compile once before the threads race for it
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        futures = {name: pool.submit(run_client, name, url, sandbox=sandbox, netns=netns,
                                     env=env, proxy=proxy, timeout=timeout)
                   for name in clients}
        return {name: futures[name].result() for name in clients}


def login_env(sandbox: Sandbox) -> dict[str, str]:
    """The environment a new login shell sees inside the sandbox.

    pam_env reads /etc/environment (``KEY=VALUE`` lines, no shell syntax) before the shell
    starts; ``bash -l`` then reads /etc/profile, which sources /etc/profile.d/*.sh. Both come
    from the sandboxed copies.
    """
    initial = {"HOME": str(sandbox.home), "LANG": "C.UTF-8", "PATH": SYSTEM_PATH,
               "TERM": "dumb", "USER": "root", "LOGNAME": "root", "SHELL": "/bin/bash"}
    environment = sandbox.run(["cat", "/etc/environment"], env=initial, check=False).stdout
    initial.update(parse_pam_environment(environment))
    out = sandbox.run(["bash", "-lc", "env -0"], env=initial).stdout
    result = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    for noise in ("_", "SHLVL", "PWD", "OLDPWD"):
        result.pop(noise, None)
    return result


def parse_pam_environment(text: str) -> dict[str, str]:
    """Parse /etc/environment as pam_env does: ``KEY=VALUE``, optional quotes, ``#`` comments,
    an optional leading ``export``."""
    result = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        line = line.removeprefix("export ").strip()
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result[key.strip()] = value
    return result
