#!/usr/bin/python
# ruff: noqa: E402, E501  (Ansible: DOCUMENTATION/EXAMPLES/RETURN come before the imports)
"""Ansible module trustwall.core.trustwall_facts: what trustwall sees on the host."""

from __future__ import annotations

DOCUMENTATION = r"""
module: trustwall_facts
short_description: Trust stores, TLS interception seen for URLs, firewall backend and lint
description:
  - Sets C(ansible_facts.trustwall) with C(stores) (kind, path, certificate count, clients),
    C(interception) per URL in O(urls) (detected, product, evidence, diagnosis),
    C(firewall.backend), C(firewall.owner) (who owns the firewall - firewalld, ufw, nftables,
    iptables with boot files, or none; C(firewall.owner_evidence) says why) and
    C(firewall.findings) (trustwall's lint of the live ruleset).
options:
  urls: {description: URLs to probe for interception, type: list, elements: str, default: []}
  lint: {description: Lint the live IPv4 ruleset, type: bool, default: true}
  timeout: {description: Seconds per probe, type: float, default: 10}
"""

EXAMPLES = r"""
- trustwall.core.trustwall_facts:
    urls: [https://pypi.org/]
- debug: var=ansible_facts.trustwall.interception
"""

RETURN = r"""
ansible_facts: {description: C(trustwall) with stores, interception, firewall, type: dict, returned: always}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.trustwall.core.plugins.module_utils.trustwall_common import (
    fail,
    jsonable,
    require_trustwall,
)


def _interception(url, timeout):
    from trustwall.tls.probe import parse_target
    from trustwall.tls.report import probe_report

    report = probe_report(parse_target(url), timeout=timeout, java=False)
    doc = report.to_json()
    return dict(detected=report.interception.detected, product=report.interception.product,
                evidence=list(report.interception.evidence),
                confidence=report.interception.confidence, diagnosis=doc["diagnosis"],
                failure=report.connection.failure)


def run(module):
    from trustwall.firewall.analysis.lint import lint
    from trustwall.firewall.iptables.live import detect_backend, read_live
    from trustwall.firewall.owners.detect import detect
    from trustwall.stores.registry import store_infos

    p = module.params
    facts = dict(stores=jsonable(store_infos()),
                 interception={url: _interception(url, p["timeout"]) for url in p["urls"]})
    live = read_live(family=4) if p["lint"] else None
    ownership = detect(rulesets=[live] if live is not None else None)
    firewall = dict(backend=jsonable(detect_backend()), owner=ownership.host,
                    owner_evidence=list(ownership.evidence))
    if live is not None:
        firewall["rules"] = live.rule_count
        firewall["findings"] = jsonable(lint(live).findings)
    facts["firewall"] = firewall
    module.exit_json(changed=False, ansible_facts=dict(trustwall=facts))


def main():
    module = AnsibleModule(
        argument_spec=dict(urls=dict(type="list", elements="str", default=[]),
                           lint=dict(type="bool", default=True),
                           timeout=dict(type="float", default=10)),
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
