"""``trustwall ca``: install, remove and list the CAs trusted across every store.

``ca fetch`` (getting the CA from an endpoint) lives in ca_fetch.py and is attached here
lazily.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from trustwall.cli.lazy import LazyGroup
from trustwall.cli.options import state_dir_option
from trustwall.cli.output import (
    ask,
    console,
    emit,
    json_option,
    json_wanted,
    print_command,
    print_table,
    styled,
    visible,
    yes_option,
)
from trustwall.cli.stores import make_scope, root_option, scope_options, store_option

SUBCOMMANDS = {
    "fetch": ("trustwall.cli.ca_fetch:fetch", "Write the CA(s) to trust for an endpoint."),
}



@click.group("ca", cls=LazyGroup, lazy=SUBCOMMANDS)
def ca() -> None:
    """Trust a CA everywhere, take it back, see what is trusted."""


def _colon(fp: str) -> str:
    return ":".join(fp[i:i + 2] for i in range(0, len(fp), 2)).upper()


def _render_change(result: Any) -> None:
    out = console()
    verb, past = {"install": ("add", "added"), "remove": ("remove", "removed")}[result.action]
    for s in result.stores:
        done = s.added or s.removed
        if done:
            word = f"would {verb}" if result.dry_run else past
            out.print(styled((s.kind, "green"), f" {s.path}: {word} {len(done)}"),
                      soft_wrap=True)
        if s.already:
            out.print(f"{s.kind} {s.path}: already trusted ({len(s.already)})", style="dim",
                      soft_wrap=True)
        if s.absent and result.action == "remove":
            out.print(f"{s.kind} {s.path}: not there ({len(s.absent)})", style="dim",
                      soft_wrap=True)
        for note in s.notes:
            out.print(styled(("note", "yellow"), f" ({s.kind}): {note}"), soft_wrap=True)
    if result.txn:
        print_command(out, f"trustwall undo {result.txn}",
                      prefix=f"transaction #{result.txn}; undo with:")
    elif not result.dry_run:
        out.print("nothing to change")


def show_certs(certs: list[Any]) -> None:
    """Subject, fingerprint and the anchor lint (on stderr) before anything is trusted."""
    from trustwall.certs.lint import lint_anchor

    out = console(stderr=True)
    for cert in certs:
        ca_word = ("CA", "") if cert.is_ca else ("not a CA", "red")
        # The subject comes from the network: one escaped line, so it cannot forge or hide
        # the fingerprint line the user is told to check.
        out.print(styled((visible(cert.subject_str, one_line=True), "bold"), "  (", ca_word,
                         f", valid until {cert.not_after:%Y-%m-%d})"), soft_wrap=True)
        out.print(f"  SHA-256 {cert.sha256}", soft_wrap=True)
        for finding in lint_anchor(cert).findings:
            if finding.severity != "ok":
                colour = "red" if finding.severity == "fail" else "yellow"
                who = f" (rejected by {', '.join(finding.rejected_by)})" \
                    if finding.rejected_by else ""
                out.print(styled("  ", (finding.severity, colour), f" {finding.message}{who}"),
                          soft_wrap=True)


@ca.command("install")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@store_option
@scope_options
@root_option
@state_dir_option
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@yes_option
@click.option("--force", is_flag=True, help="Also trust a non-CA or expired certificate.")
@click.option("--all-purposes", is_flag=True,
              help="p11-kit stores: trust for every purpose, not TLS servers only.")
@json_option
def install(files: tuple[str, ...], kinds: tuple[str, ...], venv_roots: tuple[str, ...],
            registries: tuple[str, ...], root: str | None, state_dir: str | None,
            dry_run: bool, yes: bool, force: bool, all_purposes: bool, as_json: bool) -> None:
    """Trust the CA certificate(s) in FILES in every store (idempotent)."""
    from trustwall.stores.registry import install as do_install
    from trustwall.stores.registry import load_for_install

    certs = load_for_install(files, force=force)
    scope = make_scope(venv_roots, registries)
    plan = do_install(certs, root=root, kinds=kinds or None, dry_run=True, force=force,
                      scope=scope)
    if dry_run:
        emit(plan, _render_change)
        return
    if not json_wanted():
        show_certs(certs)
    if not plan.changed:
        emit(dataclasses.replace(plan, dry_run=False), _render_change)
        return
    stores = ", ".join(sorted({s.kind for s in plan.stores if s.added}))
    ask(f"Trust {len(certs)} certificate(s) in: {stores}?", yes=yes, action="trust a CA",
        first="check the fingerprint above, then ")
    emit(do_install(certs, root=root, kinds=kinds or None, force=force,
                    all_purposes=all_purposes, state_dir=state_dir, scope=scope),
         _render_change)


@ca.command("remove")
@click.argument("items", nargs=-1, required=True, metavar="FILE|SHA256...")
@store_option
@scope_options
@root_option
@state_dir_option
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@json_option
def remove(items: tuple[str, ...], kinds: tuple[str, ...], venv_roots: tuple[str, ...],
           registries: tuple[str, ...], root: str | None, state_dir: str | None,
           dry_run: bool, as_json: bool) -> None:
    """Stop trusting CAs (given as certificate files or SHA-256 fingerprints)."""
    from trustwall.stores.registry import fingerprints_for
    from trustwall.stores.registry import remove as do_remove

    emit(do_remove(fingerprints_for(items), root=root, kinds=kinds or None, dry_run=dry_run,
                   state_dir=state_dir, scope=make_scope(venv_roots, registries)),
         _render_change)


def _render_list(rows: list[Any]) -> None:
    print_table(console(), ["store", "sha256", "until", "subject"],
                [[row.kind, row.sha256[:16] + "…", row.not_after[:10],
                  visible(row.subject, one_line=True)] for row in rows], keep=3)


@ca.command("list")
@store_option
@scope_options
@root_option
@click.option("--added", is_flag=True, help="Only CAs added locally, not shipped ones.")
@json_option
def list_cmd(kinds: tuple[str, ...], venv_roots: tuple[str, ...], registries: tuple[str, ...],
             root: str | None, added: bool, as_json: bool) -> None:
    """List the CAs each store trusts."""
    from trustwall.stores.registry import list_certs

    emit(list_certs(root, kinds or None, added=added,
                    scope=make_scope(venv_roots, registries)), _render_list)
