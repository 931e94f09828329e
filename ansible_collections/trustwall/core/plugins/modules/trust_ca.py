#!/usr/bin/python
# ruff: noqa: E402, E501  (Ansible: DOCUMENTATION/EXAMPLES/RETURN come before the imports)
"""Ansible module trustwall.core.trust_ca: trust (or stop trusting) CA certificates in every
trust store of the host."""

from __future__ import annotations

DOCUMENTATION = r"""
module: trust_ca
short_description: Install or remove CA certificates in every trust store, then verify
description:
  - One journaled transaction over every store trustwall finds (Debian/p11-kit system store,
    OpenSSL hash dirs, PEM bundles, Java cacerts, NSS dbs, the login environment for
    requests/node), idempotent by SHA-256 fingerprint. Undo with C(trustwall undo TXN).
  - Check mode lists what would change per store; diff mode shows it.
options:
  src: {description: CA files on the managed host (PEM, DER, PKCS#7 ...), type: list, elements: path, default: []}
  content: {description: PEM text of the CA(s), e.g. from a controller file lookup, type: str}
  fingerprints: {description: SHA-256 fingerprints to remove (state=absent), type: list, elements: str, default: []}
  state: {description: present or absent, type: str, choices: [present, absent], default: present}
  stores: {description: Store kinds (or KIND:PATH) to act on; default every kind found, type: list, elements: str}
  exclude_stores: {description: Store kinds to leave alone, type: list, elements: str, default: []}
  verify_url: {description: A URL every client in verify_clients must reach afterwards, type: str}
  verify_clients: {description: Real clients to run against verify_url, type: list, elements: str, default: [curl, python]}
  force: {description: Install a certificate trustwall would refuse (not a CA, expired), type: bool, default: false}
  all_purposes: {description: Trust for every purpose where stores distinguish, type: bool, default: false}
  state_dir: {description: trustwall journal directory, type: path}
"""

EXAMPLES = r"""
- trustwall.core.trust_ca:
    content: "{{ lookup('file', 'corp-root.pem') }}"
    exclude_stores: [java]
    verify_url: https://repo.corp.example/
"""

RETURN = r"""
stores: {description: Per store kind and path, the fingerprints added/removed/already there, type: list, returned: always}
txn: {description: Journal transaction id (trustwall undo), type: str, returned: changed}
verify: {description: Client verdicts for verify_url, type: list, returned: when verify_url is set}
"""

import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.trustwall.core.plugins.module_utils.trustwall_common import (
    fail,
    jsonable,
    require_trustwall,
)
from ansible_collections.trustwall.core.plugins.module_utils.trustwall_stores import (
    change_diff,
    kinds_from,
    store_changes,
    verdicts,
)


def run(module, files):
    from trustwall.errors import ProblemFound
    from trustwall.getout import verify
    from trustwall.stores.registry import fingerprints_for, install, load_for_install, remove

    p = module.params
    kinds = kinds_from(p["stores"], p["exclude_stores"])
    if p["state"] == "present":
        if not files:
            module.fail_json(msg="state=present needs src or content")
        certs = load_for_install(files, force=p["force"])
        result = install(certs, kinds=kinds, dry_run=module.check_mode, force=p["force"],
                         all_purposes=p["all_purposes"], state_dir=p["state_dir"])
    else:
        wanted = fingerprints_for([*files, *p["fingerprints"]])
        result = remove(wanted, kinds=kinds, dry_run=module.check_mode,
                        state_dir=p["state_dir"])
    out = dict(changed=result.changed, txn=result.txn, stores=store_changes(result),
               certs=jsonable(result.certs))
    if module._diff and result.changed:
        out["diff"] = change_diff(result)
    if p["verify_url"] and not module.check_mode:
        checked = verify(p["verify_url"], clients=p["verify_clients"])
        out["verify"] = verdicts(checked)
        if not checked.ok:
            failed = ", ".join(c.name for c in checked.clients if not c.ok)
            raise ProblemFound(f"{p['verify_url']}: still failing for {failed}")
    module.exit_json(**out)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="list", elements="path", default=[]), content=dict(type="str"),
            fingerprints=dict(type="list", elements="str", default=[]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            stores=dict(type="list", elements="str"),
            exclude_stores=dict(type="list", elements="str", default=[]),
            verify_url=dict(type="str"),
            verify_clients=dict(type="list", elements="str", default=["curl", "python"]),
            force=dict(type="bool", default=False),
            all_purposes=dict(type="bool", default=False), state_dir=dict(type="path")),
        supports_check_mode=True,
    )
    require_trustwall(module)
    from trustwall.errors import TrustwallError

    try:
        with tempfile.NamedTemporaryFile("w", suffix=".pem", prefix="tw-ca-") as f:
            files = list(module.params["src"])
            if module.params["content"]:
                f.write(module.params["content"])
                f.flush()
                files.append(f.name)
            run(module, files)
    except TrustwallError as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
