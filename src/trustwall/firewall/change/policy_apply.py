"""Apply a policy file: compile it, keep unmanaged chains as they run, apply safely."""

from __future__ import annotations

from pathlib import Path

from trustwall.firewall.change.apply import ApplyResult, Options, apply_rulesets
from trustwall.firewall.change.policy import compile_policy, load_policy, merge_unmanaged
from trustwall.firewall.iptables.live import read_live


def apply_policy(path: str | Path, *, options: Options | None = None) -> ApplyResult:
    """Make the running firewall match the policy file. On a host whose firewall firewalld or
    ufw manages this is refused (unless ``options.force``): a whole-table restore fights the
    manager, which rebuilds its chains at the next reload or boot."""
    policy = load_policy(path)
    compiled = compile_policy(policy)
    live = {family: read_live(family=family) for family in compiled}
    if not (options and options.force):
        refuse_if_managed(list(live.values()))
    targets = {family: merge_unmanaged(ruleset, live[family], policy)
               for family, ruleset in compiled.items()}
    return apply_rulesets(targets, description=f"apply policy {path}", options=options,
                          live=live)


#: How each manager is changed its own way, for the refusal.
NATIVE_WAY = {
    "firewalld": "change it with firewall-cmd (zones, services, ports, rich rules; --permanent "
                 "and --reload), or one rule at a time with `trustwall fw allow|deny … --apply`, "
                 "which goes through firewalld",
    "ufw": "change it with ufw (`ufw allow|deny …`, /etc/ufw/*.rules for the rest), or one rule "
           "at a time with `trustwall fw allow|deny … --apply`, which goes through ufw",
}


def refuse_if_managed(rulesets: list[object]) -> None:
    """Raise when firewalld or ufw owns this host's firewall (see :func:`apply_policy`)."""
    from trustwall.errors import ProblemFound
    from trustwall.firewall.owners.detect import detect

    ownership = detect(rulesets=rulesets)
    if ownership.host in NATIVE_WAY:
        raise ProblemFound(
            f"refusing: {ownership.host} manages this firewall ("
            + "; ".join(ownership.evidence) + f"): a policy apply would fight it and "
            f"{ownership.host} would overwrite it at its next reload",
            hint=NATIVE_WAY[ownership.host] + "; --force applies anyway")
