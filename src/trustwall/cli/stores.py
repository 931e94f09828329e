"""``trustwall stores``: which trust stores this host (or --root tree) has, who reads each."""

from __future__ import annotations

from typing import Any

import click

from trustwall.cli.output import console, emit, json_option, json_wanted
from trustwall.clients import CLIENTS

root_option = click.option("--root", type=click.Path(file_okay=False, exists=True), default=None,
                           help="Operate on the tree under DIR (an image or chroot).")
store_option = click.option("--store", "kinds", multiple=True, metavar="KIND[:PATH]",
                            help="Only these stores (debian, hashdir, bundle, java, nss, p11kit, "
                                 "certifi, docker, git, npm, conda, env); "
                                 "KIND:PATH names one explicitly. Repeatable.")


def scope_options(func: Any) -> Any:
    """``--venv-root DIR`` and ``--registry HOST:PORT`` (both repeatable): more places to look."""
    func = click.option("--registry", "registries", multiple=True, metavar="HOST[:PORT]",
                        help="Docker registry whose certs.d directory gets the CA. "
                             "Repeatable.")(func)
    return click.option("--venv-root", "venv_roots", multiple=True, metavar="DIR",
                        type=click.Path(file_okay=False),
                        help="Also the certifi of every virtualenv under DIR (3 levels). "
                             "Repeatable.")(func)


def make_scope(venv_roots: tuple[str, ...], registries: tuple[str, ...]) -> Any:
    from trustwall.stores.base import Scope

    return Scope(tuple(venv_roots), tuple(registries))


def _render(infos: list[Any]) -> None:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("kind", "path", "CAs", "written with", "read by"):
        table.add_column(col, overflow="fold")
    for info in infos:
        table.add_row(info.kind, info.path, str(info.count), info.writer,
                      "\n".join(info.clients))
    out = console()
    out.print(table)
    for info in infos:
        for note in info.notes:
            out.print(f"[yellow]note[/] ({info.kind}): {note}")
    if not infos:
        out.print("no trust store found")


@click.command("stores")
@root_option
@store_option
@scope_options
@json_option
def stores(root: str | None, kinds: tuple[str, ...], venv_roots: tuple[str, ...],
           registries: tuple[str, ...], as_json: bool) -> None:
    """List the trust stores found and which programs read each."""
    from trustwall.stores.registry import store_infos

    emit(store_infos(root, kinds or None, make_scope(venv_roots, registries)), _render)


clients_option = click.option("--clients", "clients", multiple=True, metavar="NAME",
                              help=f"Only these clients ({', '.join(CLIENTS)}). Repeatable.")


def _render_matrix(title: str, result: Any) -> None:
    out = console()
    out.print(f"[bold]{title}[/] {result.url}")
    for c in result.clients:
        mark = "[green]ok  [/]" if c.ok else "[red]FAIL[/]"
        out.print(f"  {mark} {c.name:<9} {c.error}")


@click.command("verify")
@click.argument("url")
@clients_option
@click.option("--timeout", type=click.FloatRange(1, 120), default=15.0, show_default=True)
@json_option
def verify(url: str, clients: tuple[str, ...], timeout: float, as_json: bool) -> None:
    """Run the real clients against URL as a new login session would; exit 1 if any fails."""
    from trustwall.errors import ProblemFound
    from trustwall.getout import verify as run_verify

    result = run_verify(url, clients=clients or None, timeout=timeout)
    emit(result, lambda r: _render_matrix("clients", r))
    if not result.ok:
        failed = ", ".join(c.name for c in result.clients if not c.ok)
        raise ProblemFound(f"{failed} cannot connect", hint=f"trustwall fix {url}")


def _render_fix(result: Any) -> None:
    out = console()
    if result.install is None:
        _render_matrix("clients", result.before)
        out.print("every client already connects: nothing to fix")
        return
    if result.install.dry_run:
        for s in result.install.stores:
            if s.added:
                out.print(f"  would trust in {s.kind} {s.path}")
        out.print("dry run: nothing changed, no client run")
        return
    if result.install is not None:
        for s in result.install.stores:
            if s.added:
                out.print(f"  [green]trusted[/] in {s.kind} {s.path}")
    if result.root is not None:
        out.print(f"not verified: the clients run on this host, the stores changed are under "
                  f"{result.root}")
    if result.after is not None:
        _render_matrix("after", result.after)
    if result.install is not None and result.install.txn:
        out.print(f"undo with: [bold]trustwall undo {result.install.txn}[/]")
    if any(s.kind == "env" and s.added for s in (result.install.stores
                                                  if result.install else ())):
        out.print("[yellow]running programs keep their old environment: restart them "
                  "(services: systemctl daemon-reexec, then restart)[/]")


@click.command("fix")
@click.argument("url")
@clients_option
@store_option
@scope_options
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              envvar="TRUSTWALL_STATE_DIR", help="Journal directory.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before trusting the CA.")
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
    import sys

    from trustwall.errors import BadInput, ProblemFound
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
            _render_matrix("before", before)
        err.print(message)
    if not json_wanted():
        from trustwall.cli.ca import show_certs

        show_certs(certs)
    if not yes and not dry_run:
        if not sys.stdin.isatty():
            raise BadInput("refusing to trust a CA without confirmation",
                           hint="check the fingerprint above, then rerun with --yes")
        click.confirm(f"Trust {len(certs)} certificate(s) in every store?", abort=True,
                      err=True)
    result = run_fix(url, certs, before=before, clients=clients or None,
                     kinds=kinds or None, timeout=timeout, state_dir=state_dir,
                     scope=make_scope(venv_roots, registries), root=root, dry_run=dry_run)
    emit(result, _render_fix)
    if result.after is not None and not result.after.ok:
        failed = ", ".join(c.name for c in result.after.clients if not c.ok)
        raise ProblemFound(f"{failed} still cannot connect")
