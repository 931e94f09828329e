"""trustwall: get out through TLS interception, let in through iptables — safely and undoably.

The public API is the small set of names below; each is loaded on first use so that
``import trustwall`` (and the CLI's start-up) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # what each lazily loaded name is, for type checkers and editors
    from trustwall.certs import Cert, load_certs, subject_hash
    from trustwall.certs.lint import lint_anchor
    from trustwall.certs.rehash import rehash_dir
    from trustwall.clients import run_all as run_clients
    from trustwall.clients import run_client
    from trustwall.doctor.inbound import why_in
    from trustwall.doctor.outbound import why
    from trustwall.firewall.analysis.lint import lint as lint_ruleset
    from trustwall.firewall.analysis.plan import diff as diff_rulesets
    from trustwall.firewall.analysis.plan import plan_delete, plan_insert
    from trustwall.firewall.change.apply import Flow, apply_rulesets
    from trustwall.firewall.change.apply import Options as ApplyOptions
    from trustwall.firewall.change.apply import confirm as confirm_change
    from trustwall.firewall.change.expire import expire as expire_rules
    from trustwall.firewall.change.policy import compile_policy, import_policy, load_policy
    from trustwall.firewall.change.policy_apply import apply_policy
    from trustwall.firewall.iptables.live import read_live
    from trustwall.firewall.iptables.model import Ruleset
    from trustwall.firewall.iptables.parse import parse_command, parse_save
    from trustwall.firewall.iptables.render import render_listing, render_save
    from trustwall.firewall.nftables.live import whole_picture
    from trustwall.firewall.semantics.trace import Packet, Tracer, trace
    from trustwall.getout import anchors_from_files, fetch_anchors, fix
    from trustwall.getout import verify as verify_clients
    from trustwall.journal.audit import AuditLog
    from trustwall.journal.statedir import interrupted
    from trustwall.journal.transaction import Transaction, undo
    from trustwall.journal.transaction import recover_interrupted as recover
    from trustwall.stores.registry import detect_stores
    from trustwall.stores.registry import install as install_ca
    from trustwall.stores.registry import list_certs as list_cas
    from trustwall.stores.registry import remove as remove_ca
    from trustwall.tls.explain import explain
    from trustwall.tls.fetch import fetch as fetch_ca
    from trustwall.tls.probe import parse_target
    from trustwall.tls.report import probe_report
    from trustwall.tls.scan import scan

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
    "verify_clients": "trustwall.getout:verify",
    "fetch_anchors": "trustwall.getout:fetch_anchors",
    "anchors_from_files": "trustwall.getout:anchors_from_files",
    "fix": "trustwall.getout:fix",
    # every change: journal
    "Transaction": "trustwall.journal.transaction:Transaction",
    "undo": "trustwall.journal.transaction:undo",
    "AuditLog": "trustwall.journal.audit:AuditLog",
    "recover": "trustwall.journal.transaction:recover_interrupted",
    "interrupted": "trustwall.journal.statedir:interrupted",
    # letting in: firewall
    "Ruleset": "trustwall.firewall.iptables.model:Ruleset",
    "parse_save": "trustwall.firewall.iptables.parse:parse_save",
    "parse_command": "trustwall.firewall.iptables.parse:parse_command",
    "render_save": "trustwall.firewall.iptables.render:render_save",
    "render_listing": "trustwall.firewall.iptables.render:render_listing",
    "read_live": "trustwall.firewall.iptables.live:read_live",
    "Packet": "trustwall.firewall.semantics.trace:Packet",
    "Tracer": "trustwall.firewall.semantics.trace:Tracer",
    "trace": "trustwall.firewall.semantics.trace:trace",
    # everything the kernel evaluates (native nft, iptables-nft, legacy): .ruleset to trace
    "whole_picture": "trustwall.firewall.nftables.live:whole_picture",
    "lint_ruleset": "trustwall.firewall.analysis.lint:lint",
    "plan_insert": "trustwall.firewall.analysis.plan:plan_insert",
    "plan_delete": "trustwall.firewall.analysis.plan:plan_delete",
    "diff_rulesets": "trustwall.firewall.analysis.plan:diff",
    "load_policy": "trustwall.firewall.change.policy:load_policy",
    "compile_policy": "trustwall.firewall.change.policy:compile_policy",
    "import_policy": "trustwall.firewall.change.policy:import_policy",
    "apply_policy": "trustwall.firewall.change.policy_apply:apply_policy",
    "apply_rulesets": "trustwall.firewall.change.apply:apply_rulesets",
    "ApplyOptions": "trustwall.firewall.change.apply:Options",
    "Flow": "trustwall.firewall.change.apply:Flow",
    "confirm_change": "trustwall.firewall.change.apply:confirm",
    "expire_rules": "trustwall.firewall.change.expire:expire",
    # the doctor
    "why": "trustwall.doctor.outbound:why",
    "why_in": "trustwall.doctor.inbound:why_in",
    # the real clients
    "run_client": "trustwall.clients:run_client",
    "run_clients": "trustwall.clients:run_all",
}

__all__ = [  # the lazily loaded names too: `from trustwall import *` loads them all
    "ApplyOptions",
    "AuditLog",
    "BadInput",
    "Cert",
    "EnvironmentMissing",
    "Flow",
    "LockoutRisk",
    "Packet",
    "ParseError",
    "ProblemFound",
    "Ruleset",
    "StoreError",
    "Tracer",
    "Transaction",
    "TrustwallError",
    "Unreachable",
    "__version__",
    "anchors_from_files",
    "apply_policy",
    "apply_rulesets",
    "compile_policy",
    "confirm_change",
    "detect_stores",
    "diff_rulesets",
    "expire_rules",
    "explain",
    "fetch_anchors",
    "fetch_ca",
    "fix",
    "import_policy",
    "install_ca",
    "interrupted",
    "lint_anchor",
    "lint_ruleset",
    "list_cas",
    "load_certs",
    "load_policy",
    "parse_command",
    "parse_save",
    "parse_target",
    "plan_delete",
    "plan_insert",
    "probe_report",
    "read_live",
    "recover",
    "rehash_dir",
    "remove_ca",
    "render_listing",
    "render_save",
    "run_client",
    "run_clients",
    "scan",
    "subject_hash",
    "trace",
    "undo",
    "verify_clients",
    "whole_picture",
    "why",
    "why_in",
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
    return sorted(__all__)
