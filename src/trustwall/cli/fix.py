"""``trustwall fix``: fetch the CA in the way, trust it in every store, verify each client."""

from __future__ import annotations

from typing import Any

import click

from trustwall.cli.options import state_dir_option
from trustwall.cli.output import (
    ask,
    console,
    emit,
    json_option,
    json_wanted,
    print_command,
    styled,
    yes_option,
)
from trustwall.cli.stores import make_scope, root_option, scope_options, store_option
from trustwall.cli.verify import clients_option, render_matrix


def _render_fix(result: Any) -> None:
    out = console()
    if result.install is None:
        render_matrix("clients", result.before)
        out.print("every client already connects: nothing to fix")
        return
    if result.install.dry_run:
        for s in result.install.stores:
            if s.added:
                out.print(f"  would trust in {s.kind} {s.path}", soft_wrap=True)
        out.print("dry run: nothing changed, no client run")
        return
    for s in result.install.stores:
        if s.added:
            out.print(styled(("  trusted", "green"), f" in {s.kind} {s.path}"),
                      soft_wrap=True)
    if result.root is not None:
        out.print("not verified: the clients run on this host, the stores changed are under "
                  f"{result.root}", soft_wrap=True)
    if result.after is not None:
        render_matrix("after", result.after)
    if result.install is not None and result.install.txn:
        print_command(out, f"trustwall undo {result.install.txn}", prefix="undo with:")
    if any(s.kind == "env" and s.added for s in (result.install.stores
                                                  if result.install else ())):
        out.print("running programs keep their old environment: restart them "
                  "(services: systemctl daemon-reexec, then restart)", style="yellow",
                  soft_wrap=True)


@click.command("fix")
@click.argument("url")
@clients_option
@store_option
@scope_options
@state_dir_option
@yes_option
@click.option("--ca", "ca_files", multiple=True, metavar="FILE",
              type=click.Path(dir_okay=False, exists=True),
              help="Trust this CA (exported from a browser, handed out by IT) instead of "
                   "fetching one from URL. Repeatable.")
@click.option("--dry-run", is_flag=True,
              help="Show the CA and the stores it would go into; change nothing.")
@root_option
@click.option("--timeout", type=click.FloatRange(1, 120), default=15.0, show_default=True)
@json_option
def fix(url: str, clients: tuple[str, ...], kinds: tuple[str, ...],
        venv_roots: tuple[str, ...], registries: tuple[str, ...], state_dir: str | None,
        yes: bool, ca_files: tuple[str, ...], dry_run: bool, root: str | None,
        timeout: float, as_json: bool) -> None:
    """Make every client reach URL: fetch the CA in the way (or take --ca FILE), trust it
    everywhere, verify."""
    from trustwall.errors import ProblemFound
    from trustwall.getout import FixResult, anchors_from_files, fetch_anchors
    from trustwall.getout import fix as run_fix
    from trustwall.getout import verify as run_verify

    # Under --root the clients of this host say nothing about the tree: no before/after run.
    before = None if root else run_verify(url, clients=clients or None, timeout=timeout)
    if before is not None and before.ok:
        emit(FixResult(url, (), before, None, None), _render_fix)
        return
    certs, message = anchors_from_files(ca_files) if ca_files else \
        fetch_anchors(url, timeout=timeout)
    err = console(stderr=True)
    if not json_wanted():
        if before is not None:
            render_matrix("before", before)
        err.print(message, soft_wrap=True)
    if not json_wanted():
        from trustwall.cli.ca import show_certs

        show_certs(certs)
    if not dry_run:
        ask(f"Trust {len(certs)} certificate(s) in every store?", yes=yes,
            action="trust a CA", first="check the fingerprint above, then ")
    result = run_fix(url, certs, before=before, clients=clients or None,
                     kinds=kinds or None, timeout=timeout, state_dir=state_dir,
                     scope=make_scope(venv_roots, registries), root=root, dry_run=dry_run)
    emit(result, _render_fix)
    if result.after is not None and not result.after.ok:
        failed = ", ".join(c.name for c in result.after.clients if not c.ok)
        raise ProblemFound(f"{failed} still cannot connect")
