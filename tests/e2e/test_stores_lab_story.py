"""The seed story with trustwall doing the work, on real clients in the lab sandbox: through
the intercepting proxy every client fails; `trustwall fix URL --yes` fetches the proxy's CA,
puts it in every store of the sandbox (and points requests/node at the system bundle for new
logins); every client gets through; `trustwall undo` makes every store byte-identical to
before and every client fails again. The host's stores are untouched throughout."""

from __future__ import annotations

import json
import os
import sys

import certifi
import pytest
from stores_tree import diff, snapshot

from trustwall.lab.sandbox import Sandbox, store_fingerprint

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")]

URL = "https://good.lab.test/"
STORES = ("/etc/ssl/certs", "/usr/local/share/ca-certificates", "/etc/environment",
          "/etc/profile.d")


def _stores(sandbox: Sandbox) -> dict[str, dict]:
    out = {}
    for path in (*STORES, str(sandbox.home / ".pki/nssdb"), certifi.where()):
        host = sandbox.path(path)
        out[path] = snapshot(host) if host.is_dir() else {"": host.read_bytes()}
    return out


def test_fix_fetches_the_proxy_ca_trusts_it_and_proves_every_client_then_undo(
        lab: object) -> None:
    """`trustwall fix URL --yes`: before (all fail) -> CA fetched from what the proxy sends ->
    installed everywhere -> after (all ok); `trustwall undo` -> `verify` fails again."""
    from trustwall.lab.proxy import ChainMode

    host_before = store_fingerprint()
    tw = [sys.executable, "-m", "trustwall"]
    proxy = lab.proxy(chain=ChainMode.LEAF_ROOT, ca="root")  # type: ignore[attr-defined]
    with lab.intercepting(proxy), Sandbox(lab.client) as sandbox:  # type: ignore[attr-defined]
        before = _stores(sandbox)
        done = sandbox.run([*tw, "fix", URL, "--yes", "--json"], timeout=300)
        result = json.loads(done.stdout)
        assert not any(c["ok"] for c in result["before"]["clients"]), done.stdout
        assert all(c["ok"] for c in result["after"]["clients"]), done.stdout
        assert result["anchors"] and result["install"]["txn"]
        changed = {s["kind"] for s in result["install"]["stores"] if s["added"]}
        # certifi: the sandbox's copy of the running interpreter's certifi
        assert changed == {"debian", "java", "nss", "certifi", "env"}, done.stdout
        listing = sandbox.run(["keytool", "-list", "-cacerts", "-storepass", "changeit"]).stdout
        assert "trustwall-" in listing
        again_fix = json.loads(sandbox.run([*tw, "fix", URL, "--yes", "--json"]).stdout)
        assert again_fix["install"] is None  # every client connects: nothing to do

        undone = json.loads(sandbox.run([*tw, "undo", "--json"]).stdout)
        assert undone["undone"] == result["install"]["txn"]
        changed_paths = {k: diff(v, _stores(sandbox)[k]) for k, v in before.items()}
        assert not any(changed_paths.values()), changed_paths
        again = sandbox.run([*tw, "verify", URL, "--json"], check=False)
        assert again.returncode == 1
        assert not any(c["ok"] for c in json.loads(again.stdout)["clients"])
        log = sandbox.run([*tw, "log", "--verify", "--json"])
        assert json.loads(log.stdout)["verified"] is True
    assert store_fingerprint() == host_before
