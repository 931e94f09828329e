#!/usr/bin/python
# ruff: noqa: E402, E501  (Ansible: DOCUMENTATION/EXAMPLES/RETURN come before the imports)
"""Ansible module trustwall.core.trust_fix: the ``trustwall fix URL`` flow on each host."""

from __future__ import annotations

DOCUMENTATION = r"""
module: trust_fix
short_description: Fix TLS interception for a URL (fetch the CA in the way, install, verify)
description:
  - Runs the real clients against O(url) as a new login session would; if any fails, fetches
    the CA the endpoint (or the intercepting proxy in front of it) presents, installs it into
    every trust store in one journaled transaction, and runs the clients again. Fails unless
    every client then connects.
  - Nothing to do (C(ok)) when every client already connects. Check mode fetches the CA and
    reports what the install would change; diff mode shows it per store.
options:
  url: {description: The URL the clients must reach, type: str, required: true}
  clients: {description: Real clients to verify with, type: list, elements: str, default: [curl, python]}
  stores: {description: Store kinds to install into; default every kind found, type: list, elements: str}
  exclude_stores: {description: Store kinds to leave alone, type: list, elements: str, default: []}
  timeout: {description: Seconds per client and for the fetch, type: float, default: 15}
  state_dir: {description: trustwall journal directory, type: path}
"""

EXAMPLES = r"""
- trustwall.core.trust_fix:
    url: https://pypi.org/
    clients: [curl, python, requests, java]
"""

RETURN = r"""
before: {description: Client verdicts before, type: list, returned: always}
after: {description: Client verdicts after the install, type: list, returned: changed}
anchors: {description: The certificates installed, type: list, returned: when fetched}
stores: {description: Per store, the fingerprints added or already there, type: list, returned: when fetched}
txn: {description: Journal transaction (trustwall undo), type: str, returned: changed}
"""

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


def run(module):
    from trustwall.errors import ProblemFound
    from trustwall.getout import fetch_anchors, fix, verify
    from trustwall.stores.registry import CertSummary, install

    p = module.params
    before = verify(p["url"], clients=p["clients"], timeout=p["timeout"])
    if before.ok:
        module.exit_json(changed=False, before=verdicts(before),
                         msg="every client already connects")
    certs, message = fetch_anchors(p["url"], timeout=p["timeout"])
    kinds = kinds_from(p["stores"], p["exclude_stores"])
    out = dict(before=verdicts(before), fetched=message,
               anchors=jsonable([CertSummary.of(c) for c in certs]))
    if module.check_mode:
        change = install(certs, kinds=kinds, dry_run=True)
    else:
        result = fix(p["url"], certs, before=before, clients=p["clients"], kinds=kinds,
                     timeout=p["timeout"], state_dir=p["state_dir"])
        change = result.install
        out["after"] = verdicts(result.after)
        if not result.after.ok:
            failed = ", ".join(c.name for c in result.after.clients if not c.ok)
            raise ProblemFound(f"installed, but {failed} still cannot reach {p['url']}"
                               + (f" (undo: trustwall undo {change.txn})" if change.txn
                                  else ""))
    out.update(changed=change.changed, txn=change.txn, stores=store_changes(change))
    if module._diff and change.changed:
        out["diff"] = change_diff(change)
    module.exit_json(**out)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            clients=dict(type="list", elements="str", default=["curl", "python"]),
            stores=dict(type="list", elements="str"),
            exclude_stores=dict(type="list", elements="str", default=[]),
            timeout=dict(type="float", default=15), state_dir=dict(type="path")),
        supports_check_mode=True,
    )
    require_trustwall(module)
    from trustwall.errors import TrustwallError

    try:
        run(module)
    except TrustwallError as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
