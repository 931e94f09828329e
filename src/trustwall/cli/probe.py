"""``trustwall probe``: show the chain an endpoint presents and which clients would trust it."""

from __future__ import annotations

from typing import Any

import click

from trustwall.cli.output import (
    console,
    emit,
    json_option,
    print_command,
    print_table,
    styled,
    visible,
)


def proxy_option(func: Any) -> Any:
    return click.option("--proxy", metavar="URL",
                        help="HTTP CONNECT proxy (http://[user:pass@]host:port); default: "
                             "https_proxy/HTTPS_PROXY unless no_proxy matches.")(func)


def mark(ok: bool, error: str | None) -> Any:
    """The verdict cell: ok, or the error's full name (never cut, see print_table)."""
    if ok:
        return styled(("ok", "green"))
    return styled(((error or "untrusted").removeprefix("X509_V_ERR_"), "red"))


def _render_report(report: Any) -> None:
    out = console()
    c = report.connection
    head: list[str | tuple[str, str]] = [(report.target, "bold")]
    if c.address:
        head.append(f"  {c.address}")
    if c.proxy:
        head.append(f"  via {c.proxy}")
    if c.protocol:
        head.append(f"  {c.protocol} {c.cipher}" + (f" alpn={c.alpn}" if c.alpn else ""))
    out.print(styled(*head), soft_wrap=True)
    if report.chain:
        out.print("chain as presented", style="bold")
        for i, cert in enumerate(report.chain):
            kind = "CA" if cert.is_ca else "leaf" if i == 0 else "end-entity"
            out.print(styled(f"  [{i}] ", visible(cert.subject, one_line=True)), soft_wrap=True)
            out.print(styled((f"      {kind}; issuer {visible(cert.issuer, one_line=True)}; "
                              f"until {cert.not_after[:10]}; sha256 {cert.sha256}", "dim")),
                      soft_wrap=True)
        print_table(out, ["client", "verdict", "store", "because"],
                    [[name, mark(v.trusted, v.error), v.store, v.because or ""]
                     for name, v in report.clients.items()],
                    title="would each client connect?")
        print_table(out, ["store", "verdict", "detail"],
                    [[name, mark(v.trusted, v.error), v.detail or ""]
                     for name, v in report.stores.items()], title="trust stores")
        i = report.interception
        if i.detected or i.confidence != "none":
            style = "yellow" if i.detected else "dim"
            out.print(styled(("TLS interception " + ("detected" if i.detected else "suspected"),
                              f"bold {style}")))
            out.print(f"  product: {i.product or 'unknown'}   confidence: {i.confidence}",
                      soft_wrap=True)
            for e in i.evidence:
                out.print(f"  - {e}", soft_wrap=True)
    d = report.diagnosis
    colour = "green" if d.code == "ok" else "red"
    out.print(styled(("diagnosis: ", "bold"), (d.code, f"bold {colour}")), soft_wrap=True)
    out.print(styled(("  " + d.summary, colour)), soft_wrap=True)
    if d.cause:
        out.print(f"  why: {d.cause}", soft_wrap=True)
    for n in d.notes:
        out.print(f"  note: {n}", soft_wrap=True)
    print_command(out, d.next_command, prefix="next:")


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
