#!/usr/bin/python
# ruff: noqa: E402, E501  (Ansible: DOCUMENTATION/EXAMPLES/RETURN come before the imports)
"""Ansible module trustwall.core.firewall_policy: apply a trustwall policy file."""

from __future__ import annotations

DOCUMENTATION = r"""
module: firewall_policy
short_description: Apply a trustwall firewall policy, safely (lockout check, confirm-or-rollback)
description:
  - Compiles a version-controlled trustwall policy (YAML) and makes the kernel hold it with one
    atomic iptables-restore per family, keeping chains the policy does not manage as they run.
  - Refuses a policy that would cut Ansible's own SSH connection (found in the kernel from the
    module's process tree; C(become) strips C(SSH_CONNECTION)) or any O(keep) flow, unless
    O(force).
  - Check mode is trustwall's dry run; diff mode shows iptables-save text before and after and
    the semantic diff (packets whose verdict changes) in C(prepared).
  - "Confirm-or-rollback across Ansible's connection: apply with O(confirm_within=N), then a
    second task with O(confirm=true). Ansible opens a new SSH connection for it (disable
    ControlPersist and pipelining), so it only gets in if the new ruleset lets new connections
    in; otherwise the change rolls back by itself after N seconds."
options:
  content:
    description:
      - The policy text (e.g. C(lookup('file', 'policy.yaml')) on the controller).
      - It is compiled from a temporary file, so C(include:) has nothing to be relative to; for
        a policy in several files, copy them to the host and use O(path).
    type: str
  path:
    description: A policy file already on the managed host.
    type: path
  confirm:
    description: Only confirm the pending change applied with O(confirm_within).
    type: bool
    default: false
  confirm_within:
    description:
      - Seconds after which the change rolls back unless confirmed; 0 disables it.
      - "Unset, trustwall's default applies: 60 s when the module runs over SSH (Ansible's
        connection is found from the process tree, even under C(become)), else off. So a
        play that applies without a confirm task must say C(confirm_within=0)."
    type: int
  force:
    description: Apply even when the lockout check fails (use with O(confirm_within)).
    type: bool
    default: false
  keep:
    description: More flows that must survive, C([tcp:]SRC[:PORT]->DST:PORT).
    type: list
    elements: str
    default: []
  persist:
    description: Also write the distro's boot file (rules.v4 / sysconfig) if it has one.
    type: bool
    default: true
  persist_file:
    description: The IPv4 boot file to write instead of the detected one.
    type: path
  state_dir:
    description: trustwall's journal directory (default /var/lib/trustwall).
    type: path
"""

EXAMPLES = r"""
- name: Apply the policy, roll back in 60 s unless confirmed
  trustwall.core.firewall_policy:
    content: "{{ lookup('file', 'policies/app.yaml') }}"
    confirm_within: 60
- name: Confirm over a new connection
  trustwall.core.firewall_policy:
    confirm: true
"""

RETURN = r"""
changed: {description: Whether the kernel ruleset changed, type: bool, returned: always}
effect: {description: Semantic diff lines, type: list, returned: always}
changes: {description: Per family, the tables changed and the effect, type: list, returned: always}
txn_id: {description: Journal transaction (undo with trustwall undo), type: str, returned: changed}
confirm_deadline: {description: When the change rolls back unless confirmed, type: str, returned: always}
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.trustwall.core.plugins.module_utils.trustwall_common import (
    fail,
    require_trustwall,
)
from ansible_collections.trustwall.core.plugins.module_utils.trustwall_firewall import (
    FIREWALL_ARGS,
    apply_targets,
)


def _confirm(module):
    from trustwall.firewall.change.apply import confirm

    if module.check_mode:
        module.exit_json(changed=True, msg="would confirm the pending change")
    done = confirm(state_dir=module.params["state_dir"], environ=dict(os.environ))
    module.exit_json(changed=True, txn_id=done.txn_id, persisted=list(done.persisted))


def _apply(module, path, source):
    from trustwall.firewall.change.policy import compile_policy, load_policy, merge_unmanaged
    from trustwall.firewall.iptables.live import read_live

    policy = load_policy(path)
    compiled = compile_policy(policy)
    live = {family: read_live(family=family) for family in compiled}
    targets = {family: merge_unmanaged(ruleset, live[family], policy)
               for family, ruleset in compiled.items()}
    out, diff = apply_targets(module, targets, live, f"ansible: apply policy {source}",
                              "fw-apply")
    if module._diff and out["changed"]:
        out["diff"] = diff
    module.exit_json(**out)


def main():
    module = AnsibleModule(
        argument_spec=dict(content=dict(type="str"), path=dict(type="path"),
                           confirm=dict(type="bool", default=False), **FIREWALL_ARGS),
        mutually_exclusive=[("content", "path"), ("content", "confirm"), ("path", "confirm")],
        required_one_of=[("content", "path", "confirm")],
        supports_check_mode=True,
    )
    require_trustwall(module)
    from trustwall.errors import TrustwallError

    try:
        if module.params["confirm"]:
            _confirm(module)
        if module.params["path"]:
            _apply(module, module.params["path"], module.params["path"])
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="tw-policy-") as f:
            f.write(module.params["content"])
            f.flush()
            _apply(module, f.name, "(content from the controller)")
    except TrustwallError as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
