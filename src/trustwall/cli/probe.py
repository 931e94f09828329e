"""``trustwall probe``, ``explain`` and ``scan``: parse arguments, call trustwall.tls, render."""

from __future__ import annotations

import sys
from typing import Any

import click

from trustwall.cli.output import console, emit, json_option, json_wanted, to_jsonable

_OK = "[green]ok[/]"


def _proxy_option(func: Any) -> Any:
    return click.option("--proxy", metavar="URL",
                        help="HTTP CONNECT proxy (http://[user:pass@]host:port); default: "
                             "https_proxy/HTTPS_PROXY unless no_proxy matches.")(func)


def _mark(ok: bool, error: str | None) -> str:
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
            table.add_row(name, _mark(v.trusted, v.error), v.store, v.because or "")
        out.print(table)
        stores = Table(title="trust stores", title_justify="left")
        for col in ("store", "verdict", "detail"):
            stores.add_column(col)
        for name, v in report.stores.items():
            stores.add_row(name, _mark(v.trusted, v.error), v.detail or "")
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
@_proxy_option
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


def _render_explanation(explanation: Any) -> None:
    out = console()
    if not explanation.findings:
        out.print("[yellow]Not recognised.[/] Paste the client's full error line, or run "
                  "[bold]trustwall probe URL[/] to see what the endpoint presents.")
        return
    for f in explanation.findings:
        code = f"{f.code}" + (f" (code {f.verify_code})" if f.verify_code is not None else "")
        who = f" [dim]from {f.client}[/]" if f.client else ""
        out.print(f"[bold]{code}[/]{who}\n  {f.summary}\n  why: {f.cause}\n"
                  f"  next: [bold]{f.next_command}[/]")


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


@click.command("scan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--concurrency", type=click.IntRange(1, 2000), default=50, show_default=True)
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True)
@_proxy_option
@click.option("--no-java", is_flag=True, help="Skip the Java cacerts store (no keytool run).")
@json_option
def scan(file: str, concurrency: int, timeout: float, proxy: str | None,
         no_java: bool, as_json: bool) -> None:
    """Probe every URL/HOST[:PORT] in FILE (one per line) concurrently.

    --json prints one JSON object per endpoint (JSON lines), then a summary line.
    Exit 0 all fine, 1 any trust problem, 3 any endpoint unreachable (and none untrusted).
    """
    import json

    from trustwall.tls.probe import parse_proxy
    from trustwall.tls.scan import read_targets
    from trustwall.tls.scan import scan as run_scan

    targets = read_targets(file)
    kwargs = {"concurrency": concurrency, "timeout": timeout, "java": not no_java,
              "proxy": parse_proxy(proxy) if proxy else None}
    if json_wanted():
        def line(report: Any) -> None:
            sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")

        _, summary = run_scan(targets, on_report=line, **kwargs)
        sys.stdout.write(json.dumps({"summary": to_jsonable(summary)}) + "\n")
    else:
        from rich.progress import Progress
        from rich.table import Table

        with Progress(console=console(stderr=True), transient=True,
                      disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("probing", total=len(targets))
            reports, summary = run_scan(targets, on_report=lambda r: bar.advance(task),
                                        **kwargs)
        table = Table(title=f"{summary.endpoints} endpoints in {summary.elapsed_s}s")
        table.add_column("endpoint", no_wrap=True)
        table.add_column("result", no_wrap=True)
        table.add_column("clients failing")
        table.add_column("interception")
        first_next: dict[str, str] = {}
        for r in sorted(reports, key=lambda r: r.target):
            failing = [n for n, v in r.clients.items() if not v.trusted]
            code = r.diagnosis.code
            if code != "ok":
                first_next.setdefault(code, r.diagnosis.next_command)
            table.add_row(r.target, _mark(code == "ok", code), ", ".join(failing),
                          r.interception.product or ("yes" if r.interception.detected else ""))
        console().print(table)
        for code, command in first_next.items():
            console().print(f"{code}: next, e.g. [bold]{command}[/]")
        console().print(f"ok {summary.all_clients_ok}, trust problems "
                        f"{summary.trust_problems}, unreachable {summary.unreachable}, "
                        f"intercepted {summary.intercepted}")
    from trustwall.errors import ProblemFound, Unreachable

    if summary.trust_problems:
        raise ProblemFound(f"{summary.trust_problems} of {summary.endpoints} endpoints have "
                           "a trust problem")
    if summary.unreachable:
        raise Unreachable(f"{summary.unreachable} of {summary.endpoints} endpoints unreachable")

