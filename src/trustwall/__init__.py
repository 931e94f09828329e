"""trustwall: get out through TLS interception, let in through iptables — safely and undoably.

The public API is the small set of names below; each is loaded on first use so that
``import trustwall`` (and the CLI's start-up) stays cheap.
"""

from __future__ import annotations

from importlib import import_module

from trustwall.errors import (
    BadInput,
    EnvironmentMissing,
    LockoutRisk,
    ParseError,
    ProblemFound,
    StoreError,
    TrustwallError,
    Unreachable,
)

__version__ = "0.1.0"

# Public name -> "module:attribute"; resolved on first use by __getattr__ below. Every CLI
# command is a thin layer over one of these.
_LAZY: dict[str, str] = {
    # certificates
    "Cert": "trustwall.certs:Cert",
    "load_certs": "trustwall.certs:load_certs",
    "subject_hash": "trustwall.certs:subject_hash",
    "lint_anchor": "trustwall.certs.lint:lint_anchor",
    "rehash_dir": "trustwall.certs.rehash:rehash_dir",
    # getting out: probe, explain, fetch, stores, fix
    "parse_target": "trustwall.tls.probe:parse_target",
    "probe_report": "trustwall.tls.report:probe_report",
    "explain": "trustwall.tls.explain:explain",
    "scan": "trustwall.tls.scan:scan",
    "fetch_ca": "trustwall.tls.fetch:fetch",
    "detect_stores": "trustwall.stores.registry:detect_stores",
    "install_ca": "trustwall.stores.registry:install",
    "remove_ca": "trustwall.stores.registry:remove",
    "list_cas": "trustwall.stores.registry:list_certs",
    "verify_clients": "trustwall.stores.fix:verify",
    "fetch_anchors": "trustwall.stores.fix:fetch_anchors",
    "fix": "trustwall.stores.fix:fix",
    # every change: journal
    "Transaction": "trustwall.journal.transaction:Transaction",
    "undo": "trustwall.journal.transaction:undo",
    "AuditLog": "trustwall.journal.audit:AuditLog",
    "recover": "trustwall.journal.transaction:recover_interrupted",
    "interrupted": "trustwall.journal.statedir:interrupted",
    # letting in: firewall
    "Ruleset": "trustwall.firewall.model:Ruleset",
    "parse_save": "trustwall.firewall.parse:parse_save",
    "parse_command": "trustwall.firewall.parse:parse_command",
    "render_save": "trustwall.firewall.render:render_save",
    "render_listing": "trustwall.firewall.render:render_listing",
    "read_live": "trustwall.firewall.live:read_live",
    "Packet": "trustwall.firewall.trace:Packet",
    "Tracer": "trustwall.firewall.trace:Tracer",
    "trace": "trustwall.firewall.trace:trace",
    "lint_ruleset": "trustwall.firewall.analyze:lint",
    "plan_insert": "trustwall.firewall.plan:plan_insert",
    "plan_delete": "trustwall.firewall.plan:plan_delete",
    "diff_rulesets": "trustwall.firewall.plan:diff",
    "load_policy": "trustwall.firewall.policy:load_policy",
    "compile_policy": "trustwall.firewall.policy:compile_policy",
    "import_policy": "trustwall.firewall.policy:import_policy",
    "apply_policy": "trustwall.firewall.policy_apply:apply_policy",
    "apply_rulesets": "trustwall.firewall.apply:apply_rulesets",
    "ApplyOptions": "trustwall.firewall.apply:Options",
    "Flow": "trustwall.firewall.apply:Flow",
    "confirm_change": "trustwall.firewall.apply:confirm",
    "expire_rules": "trustwall.firewall.expire:expire",
    # the doctor
    "why": "trustwall.doctor.outbound:why",
    "why_in": "trustwall.doctor.inbound:why_in",
    # the lab
    "Lab": "trustwall.lab.topology:Lab",
    "Sandbox": "trustwall.lab.sandbox:Sandbox",
    "KernelOracle": "trustwall.lab.oracle:KernelOracle",
    "run_client": "trustwall.lab.clients:run_client",
}

__all__ = [
    "BadInput",
    "EnvironmentMissing",
    "LockoutRisk",
    "ParseError",
    "ProblemFound",
    "StoreError",
    "TrustwallError",
    "Unreachable",
    "__version__",
]


def __getattr__(name: str) -> object:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'trustwall' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, *_LAZY])
