"""``trustwall verify``: run the real clients against a URL as a new login session would."""

from __future__ import annotations

from typing import Any

import click

from trustwall.cli.output import console, emit, json_option, styled

clients_option = click.option("--clients", "clients", multiple=True, metavar="NAME",
                              help="Only these clients (curl, wget, python, requests, node, "
                                   "java, git). Repeatable.")


def render_matrix(title: str, result: Any) -> None:
    out = console()
    out.print(styled((title, "bold"), " ", result.url), soft_wrap=True)
    for c in result.clients:
        mark = ("ok  ", "green") if c.ok else ("FAIL", "red")
        out.print(styled("  ", mark, f" {c.name:<9} {c.error}"), soft_wrap=True)


@click.command("verify")
@click.argument("url")
@clients_option
@click.option("--timeout", type=click.FloatRange(1, 120), default=15.0, show_default=True)
@json_option
def verify(url: str, clients: tuple[str, ...], timeout: float, as_json: bool) -> None:
    """Run the real clients against URL as a new login session would; exit 1 if any fails."""
    from trustwall.errors import ProblemFound
    from trustwall.stores.fix import verify as run_verify

    result = run_verify(url, clients=clients or None, timeout=timeout)
    emit(result, lambda r: render_matrix("clients", r))
    if not result.ok:
        failed = ", ".join(c.name for c in result.clients if not c.ok)
        raise ProblemFound(f"{failed} cannot connect", hint=f"trustwall fix {url}")
