"""``trustwall explain``: explain a pasted TLS or connection error; cause and next command."""

from __future__ import annotations

import sys
from typing import Any

import click

from trustwall.cli.output import console, emit, json_option, print_command, styled


def _render_explanation(explanation: Any) -> None:
    out = console()
    if not explanation.findings:
        out.print(styled(("Not recognised.", "yellow"), " Paste the client's full error line, "
                         "or run trustwall probe URL to see what the endpoint presents."),
                  soft_wrap=True)
        return
    for f in explanation.findings:
        code = f"{f.code}" + (f" (code {f.verify_code})" if f.verify_code is not None else "")
        out.print(styled((code, "bold"), (f" from {f.client}" if f.client else "", "dim")),
                  soft_wrap=True)
        out.print(f"  {f.summary}\n  why: {f.cause}", soft_wrap=True)
        print_command(out, f.next_command, prefix="  next:")


@click.command("explain")
@click.argument("text", nargs=-1, required=True)
@json_option
def explain(text: tuple[str, ...], as_json: bool) -> None:
    """Explain a TLS or connection error a client printed: cause and the next command.

    TEXT is the error as pasted (curl, wget, Python, pip, Java, Node, git, openssl verify
    codes or names). Use "-" to read it from standard input. Exit 1 when not recognised.
    """
    from trustwall.tls.explain import explain as explain_text

    joined = sys.stdin.read() if text == ("-",) else " ".join(text)
    result = explain_text(joined)
    emit(result, _render_explanation)
    if not result.recognised:
        from trustwall.errors import ProblemFound

        raise ProblemFound("the text was not recognised")
