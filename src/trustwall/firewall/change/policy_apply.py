"""Apply a policy file: compile it, keep unmanaged chains as they run, apply safely."""

from __future__ import annotations

from pathlib import Path

from trustwall.firewall.change.apply import ApplyResult, Options, apply_rulesets
from trustwall.firewall.change.policy import compile_policy, load_policy, merge_unmanaged
from trustwall.firewall.iptables.live import read_live


def apply_policy(path: str | Path, *, options: Options | None = None) -> ApplyResult:
    policy = load_policy(path)
    compiled = compile_policy(policy)
    live = {family: read_live(family=family) for family in compiled}
    targets = {family: merge_unmanaged(ruleset, live[family], policy)
               for family, ruleset in compiled.items()}
    return apply_rulesets(targets, description=f"apply policy {path}", options=options,
                          live=live)
