"""``trustwall scan``: probe many endpoints concurrently (asyncio)."""

from __future__ import annotations

import sys
from typing import Any

import click

from trustwall.cli.output import console, json_option, json_wanted, print_command, print_table
from trustwall.cli.probe import mark, proxy_option
from trustwall.jsonable import to_jsonable


def render_scan(reports: Any, summary: Any) -> None:
    """One row per endpoint, then the first next command of each kind of problem."""
    first_next: dict[str, str] = {}
    rows = []
    for r in sorted(reports, key=lambda r: r.target):
        failing = [n for n, v in r.clients.items() if not v.trusted]
        code = r.diagnosis.code
        if code != "ok":
            first_next.setdefault(code, r.diagnosis.next_command)
        rows.append([r.target, mark(code == "ok", code), ", ".join(failing),
                     r.interception.product or ("yes" if r.interception.detected else "")])
    out = console()
    print_table(out, ["endpoint", "result", "clients failing", "interception"], rows,
                title=f"{summary.endpoints} endpoints in {summary.elapsed_s}s")
    for code, command in first_next.items():
        print_command(out, command, prefix=f"{code}: next, e.g.")
    out.print(f"ok {summary.all_clients_ok}, trust problems "
              f"{summary.trust_problems}, unreachable {summary.unreachable}, "
              f"intercepted {summary.intercepted}", soft_wrap=True)


@click.command("scan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--concurrency", type=click.IntRange(1, 2000), default=50, show_default=True)
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True)
@proxy_option
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

        with Progress(console=console(stderr=True), transient=True,
                      disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("probing", total=len(targets))
            reports, summary = run_scan(targets, on_report=lambda r: bar.advance(task),
                                        **kwargs)
        render_scan(reports, summary)
    from trustwall.errors import ProblemFound, Unreachable

    if summary.trust_problems:
        raise ProblemFound(f"{summary.trust_problems} of {summary.endpoints} endpoints have "
                           "a trust problem")
    if summary.unreachable:
        raise Unreachable(f"{summary.unreachable} of {summary.endpoints} endpoints unreachable")
