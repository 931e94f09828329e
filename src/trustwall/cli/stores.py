"""``trustwall stores``: which trust stores this host (or --root tree) has, who reads each."""

from __future__ import annotations

from typing import Any

import click

from trustwall.cli.output import console, emit, json_option, print_table, styled

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
    out = console()
    # The path is kept whole (a path broken inside a word cannot be copied); at 60 columns
    # the table becomes a list.
    print_table(out, ["kind", "path", "CAs", "written with", "read by"],
                [[info.kind, info.path, str(info.count), info.writer, ", ".join(info.clients)]
                 for info in infos])
    for info in infos:
        for note in info.notes:
            out.print(styled(("note", "yellow"), f" ({info.kind}): {note}"), soft_wrap=True)
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
