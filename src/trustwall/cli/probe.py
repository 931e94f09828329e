"""``trustwall probe``: show the chain an endpoint presents and which clients would trust it."""

from __future__ import annotations

from typing import Any

import click

from trustwall.cli.output import console, emit, json_option

_OK = "[green]ok[/]"


def proxy_option(func: Any) -> Any:
    return click.option("--proxy", metavar="URL",
                        help="HTTP CONNECT proxy (http://[user:pass@]host:port); default: "
                             "https_proxy/HTTPS_PROXY unless no_proxy matches.")(func)


def mark(ok: bool, error: str | None) -> str:
    if ok:
        return _OK
    return f"[red]{(error or 'untrusted').removeprefix('X509_V_ERR_')}[/]"


def _render_report(report: Any) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.tree import Tree

    out = console()
    c = report.connection
    head = f"[bold]{report.target}[/]"
    if c.address:
        head += f"  {c.address}"
    if c.proxy:
        head += f"  via {c.proxy}"
    if c.protocol:
        head += f"  {c.protocol} {c.cipher}" + (f" alpn={c.alpn}" if c.alpn else "")
    out.print(head)
    if report.chain:
        tree = Tree("[bold]chain as presented[/]")
        node = tree
        for i, cert in enumerate(report.chain):
            kind = "CA" if cert.is_ca else "leaf" if i == 0 else "end-entity"
            node = node.add(f"[{i}] {cert.subject}  [dim]({kind}; issuer {cert.issuer}; "
                            f"until {cert.not_after[:10]}; sha256 {cert.sha256[:23]}…)[/]")
        out.print(tree)
        table = Table(title="would each client connect?", title_justify="left")
        for col in ("client", "verdict", "store", "because"):
            table.add_column(col)
        for name, v in report.clients.items():
            table.add_row(name, mark(v.trusted, v.error), v.store, v.because or "")
        out.print(table)
        stores = Table(title="trust stores", title_justify="left")
        for col in ("store", "verdict", "detail"):
            stores.add_column(col)
        for name, v in report.stores.items():
            stores.add_row(name, mark(v.trusted, v.error), v.detail or "")
        out.print(stores)
        i = report.interception
        if i.detected or i.confidence != "none":
            title = "TLS interception " + ("detected" if i.detected else "suspected")
            body = (f"product: {i.product or 'unknown'}   confidence: {i.confidence}\n"
                    + "\n".join(f"- {e}" for e in i.evidence))
            out.print(Panel(body, title=title, border_style="yellow" if i.detected else "dim"))
    d = report.diagnosis
    colour = "green" if d.code == "ok" else "red"
    lines = [f"[{colour}]{d.summary}[/]"]
    if d.cause:
        lines.append(f"why: {d.cause}")
    lines.extend(f"note: {n}" for n in d.notes)
    lines.append(f"next: [bold]{d.next_command}[/]")
    out.print(Panel("\n".join(lines), title=f"diagnosis: {d.code}", border_style=colour))


@click.command("probe")
@click.argument("target")
@proxy_option
@click.option("--servername", metavar="NAME", help="SNI and the name the certificate must match.")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True,
              help="Seconds for the whole connection (DNS, TCP, proxy, TLS).")
@click.option("--no-java", is_flag=True, help="Skip the Java cacerts store (no keytool run).")
@click.option("--root", default="/", show_default=True, type=click.Path(file_okay=False),
              help="Read the system trust stores under this directory (an image, a chroot).")
@json_option
def probe(target: str, proxy: str | None, servername: str | None,
          timeout: float, no_java: bool, root: str, as_json: bool) -> None:
    """Show the chain an endpoint presents and which clients here would trust it.

    TARGET is a URL or HOST[:PORT]. Exit 0 when every client would connect, 1 when a trust
    problem was found, 3 when the endpoint could not be reached, 2 for bad input.
    """
    from trustwall.tls.probe import parse_proxy, parse_target
    from trustwall.tls.report import probe_report

    parsed = parse_target(target)
    report = probe_report(parsed, proxy=parse_proxy(proxy) if proxy else None,
                          servername=servername, timeout=timeout, java=not no_java, root=root)
    emit(report, _render_report)
    _exit_with(report)


def _exit_with(report: Any) -> None:
    """Exit 1/3 through the error hierarchy (a one-line reason on stderr)."""
    from trustwall.errors import EXIT_UNREACHABLE, ProblemFound, Unreachable

    if report.exit_code == EXIT_UNREACHABLE:
        raise Unreachable(f"{report.target}: {report.connection.failure_detail}")
    if report.exit_code:
        failing = [n for n, v in report.clients.items() if not v.trusted]
        what = (f"{len(failing)} of {len(report.clients)} clients would not connect "
                f"({', '.join(failing)})") if failing else report.connection.failure_detail
        raise ProblemFound(f"{report.target}: {what}")
