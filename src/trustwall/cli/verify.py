"""``trustwall verify``: run the real clients against a URL as a new login session would."""

from __future__ import annotations

from typing import Any

import click

from trustwall.cli.output import console, emit, json_option, styled
from trustwall.cli.probe import proxy_option
from trustwall.clients import CLIENTS

clients_option = click.option("--clients", "clients", multiple=True, metavar="NAME",
                              help=f"Only these clients ({', '.join(CLIENTS)}). Repeatable.")


def render_matrix(title: str, result: Any) -> None:
    out = console()
    out.print(styled((title, "bold"), " ", result.url), soft_wrap=True)
    for c in result.clients:
        mark = ("ok  ", "green") if c.ok else ("FAIL", "red")
        # A client's error is one line here, however the client spread it out.
        out.print(styled("  ", mark, f" {c.name:<9} {' '.join(c.error.split())}"),
                  soft_wrap=True)


@click.command("verify")
@click.argument("url")
@clients_option
@click.option("--timeout", type=click.FloatRange(1, 120), default=15.0, show_default=True)
@proxy_option
@json_option
def verify(url: str, clients: tuple[str, ...], timeout: float, proxy: str | None,
           as_json: bool) -> None:
    """Run the real clients against URL as a new login session would; exit 1 if any fails.

    With --proxy the clients go through that proxy (as https_proxy/http_proxy), unless the
    login environment (/etc/environment, /etc/profile.d) names one of its own.
    """
    import os

    from trustwall.errors import ProblemFound
    from trustwall.getout import verify as run_verify

    if proxy:
        from trustwall.tls.probe import parse_proxy

        parse_proxy(proxy)  # a malformed URL is refused here, not by eight clients
        os.environ.update(dict.fromkeys(("https_proxy", "HTTPS_PROXY", "http_proxy",
                                         "HTTP_PROXY"), proxy))
        for bypass in ("no_proxy", "NO_PROXY"):
            os.environ.pop(bypass, None)
    result = run_verify(url, clients=clients or None, timeout=timeout)
    emit(result, lambda r: render_matrix("clients", r))
    if not result.ok:
        failed = ", ".join(c.name for c in result.clients if not c.ok)
        raise ProblemFound(f"{failed} cannot connect", hint=f"trustwall fix {url}")
