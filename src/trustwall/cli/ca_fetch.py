"""``trustwall ca fetch URL -o FILE``: write the certificate(s) to trust for an endpoint."""

from __future__ import annotations

from typing import Any

import click

from trustwall.cli.output import console, emit, json_option, print_command, styled, visible


def _render(result: Any) -> None:
    out = console()
    fetched = result["fetched"]
    for cert, source in zip(fetched.certs, fetched.sources, strict=True):
        out.print(styled((visible(cert.subject_str, one_line=True), "bold"),
                         (f"  ({source}; sha256 {cert.sha256})", "dim")), soft_wrap=True)
    out.print(fetched.message, style="green" if fetched.root_found else "yellow", soft_wrap=True)
    if not fetched.certs:
        out.print("nothing written: a certificate that is not a CA is never saved as one to trust",
                  soft_wrap=True)
    elif fetched.root_found:
        print_command(out, f"sudo trustwall ca install {result['output']}",
                      prefix=f"wrote {len(fetched.certs)} certificate(s) to {result['output']}; "
                             "next:")
    else:
        out.print(f"wrote {len(fetched.certs)} CA certificate(s) to {result['output']} "
                  "(no root among them)", soft_wrap=True)


@click.command("fetch")
@click.argument("url")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="PEM file to write (atomically).")
@click.option("--proxy", metavar="URL", help="HTTP CONNECT proxy; default: https_proxy.")
@click.option("--servername", metavar="NAME", help="SNI name to send.")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True)
@json_option
def fetch(url: str, output: str, proxy: str | None, servername: str | None,
          timeout: float, as_json: bool) -> None:
    """Write the root the endpoint presents, or its top intermediate plus the root fetched
    from the AIA caIssuers URL (through the same proxy). Exit 1 when no root was found; when
    only a leaf is presented and no AIA works, nothing is written (a leaf is not a CA)."""
    import os

    from trustwall.journal.atomic import atomic_write
    from trustwall.tls.fetch import fetch as fetch_anchors
    from trustwall.tls.probe import parse_proxy, parse_target, proxy_from_env

    target = parse_target(url)
    via = parse_proxy(proxy) if proxy else proxy_from_env(target, os.environ)
    fetched = fetch_anchors(target, proxy=via, servername=servername, timeout=timeout)
    if fetched.certs:  # never a leaf: fetch keeps only CAs, and says so when none is left
        atomic_write(output, "".join(c.pem for c in fetched.certs).encode())
    emit({"output": output if fetched.certs else None, "fetched": fetched,
          "root_found": fetched.root_found}, _render)
    if not fetched.certs:
        from trustwall.errors import ProblemFound

        raise ProblemFound("no CA certificate to trust was presented or fetchable",
                           hint=f"sudo trustwall fix {target.url} --ca FILE  # the CA from IT "
                                "or a browser export")
    if not fetched.root_found:
        from trustwall.errors import ProblemFound

        raise ProblemFound("no root certificate: the file holds the top CA of the chain")
