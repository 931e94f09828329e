"""``trustwall fw lint``: shadowed, redundant and unreachable rules; exit 1 when any is found."""

from __future__ import annotations

import click

from trustwall.cli.fw import _load, _source_options
from trustwall.cli.output import console, emit, json_option
from trustwall.errors import ProblemFound


def _human(report) -> None:  # type: ignore[no-untyped-def]
    out = console()
    if not report.findings:
        out.print(f"no findings in {report.rules} rules", markup=False, soft_wrap=True)
    for f in report.findings:
        where = f"{f.table} {f.chain}" + (f" {f.rule}" if f.rule is not None else "")
        out.print(f"{where}: {f.kind}: {f.text}", markup=False, soft_wrap=True)
        out.print(f"    {f.explanation}", markup=False, soft_wrap=True)
        if f.depends_on:
            out.print(f"    depends on unmodelled: {', '.join(f.depends_on)}", markup=False,
                      soft_wrap=True)
    for note in report.partial:
        out.print(f"partial: {note}", markup=False, soft_wrap=True)
    if report.findings:
        kinds: dict[str, int] = {}
        for f in report.findings:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        out.print(f"{len(report.findings)} findings in {report.rules} rules: "
                  + ", ".join(f"{n} {k}" for k, n in kinds.items()), markup=False, soft_wrap=True)


@click.command()
@_source_options
@json_option
def lint(file: str | None, live: bool, ipv6: bool, as_json: bool) -> None:
    """Find rules that can never take effect and chains the kernel would refuse.

    Kinds: shadowed (earlier rules together decide all its packets), redundant, after_terminal,
    unreachable_chain, missing_chain, empty_chain, invalid, bypass (DNAT'ed ports INPUT never
    sees), expired. Exit 1 when there are findings.
    """
    from trustwall.firewall.analysis.lint import lint as run_lint

    report = run_lint(_load(file, live, ipv6, counters=False))
    emit(report, _human)
    if report.findings:
        raise ProblemFound(f"{len(report.findings)} lint finding(s)")
