"""``trustwall fw lint``: shadowed, redundant and unreachable rules; exit 1 when any is found."""

from __future__ import annotations

import click

from trustwall.cli.fw import _load, _source_options, owners_of
from trustwall.cli.output import console, emit, json_option
from trustwall.errors import ProblemFound


def _human(report) -> None:  # type: ignore[no-untyped-def]
    out = console()
    if not report.findings:
        out.print(f"no findings in {report.rules} rules", markup=False, soft_wrap=True)
    for owned in report.findings:
        f = owned.finding
        table = f"{f.family} {f.table}" if f.backend == "nft" else f.table
        where = f"{table} {f.chain}" + (f" {f.rule}" if f.rule is not None else "") + (
            f" (handle {f.handle})" if f.handle is not None else "")
        mine = "" if owned.owner in ("none", "iptables") else f" [{owned.owner}]"
        out.print(f"{where}: {f.kind}: {f.text}{mine}", markup=False, soft_wrap=True)
        out.print(f"    {f.explanation}", markup=False, soft_wrap=True)
        if f.depends_on:
            out.print(f"    depends on unmodelled: {', '.join(f.depends_on)}", markup=False,
                      soft_wrap=True)
        if owned.next:
            out.print(f"    next: {owned.next}", markup=False, soft_wrap=True)
    for note in report.partial:
        out.print(f"partial: {note}", markup=False, soft_wrap=True)
    if report.findings:
        kinds: dict[str, int] = {}
        for owned in report.findings:
            kinds[owned.finding.kind] = kinds.get(owned.finding.kind, 0) + 1
        out.print(f"{len(report.findings)} findings in {report.rules} rules: "
                  + ", ".join(f"{n} {k}" for k, n in kinds.items()), markup=False, soft_wrap=True)
    if report.hidden:
        owners = sorted({h.owner for h in report.hidden})
        out.print(f"({len(report.hidden)} more about structure {', '.join(owners)} keeps on "
                  "purpose; --all shows them)", markup=False, soft_wrap=True)


def _with_native_tables(report):  # type: ignore[no-untyped-def]
    """The live iptables report plus the native nft tables of the whole picture (every IP
    version) and the findings between tables of one hook (equal priorities, an accept a
    later base chain drops)."""
    from dataclasses import replace

    from trustwall.errors import EnvironmentMissing
    from trustwall.firewall.analysis.lint import lint_all
    from trustwall.firewall.nftables.live import whole_picture

    try:
        picture = whole_picture()
    except EnvironmentMissing as exc:
        click.echo(f"trustwall: warning: native nftables tables not linted: {exc}", err=True)
        return report
    if not any(t.backend == "nft" for t in picture.ruleset.tables):
        return report
    native = lint_all(picture.ruleset, backends=("nft",))
    return replace(report, findings=report.findings + native.findings,
                   rules=report.rules + native.rules, partial=report.partial + native.partial)


def _nft_file_lint(file: str, show_all: bool):  # type: ignore[no-untyped-def]
    """A saved nft ruleset (``nft -j list ruleset`` JSON, or nft text read as root)."""
    from trustwall.firewall.analysis.lint import lint_all
    from trustwall.firewall.nftables import compile as nft_compile
    from trustwall.firewall.nftables.live import read_file
    from trustwall.firewall.owners.lint import OwnedFinding, OwnedLintReport

    ruleset = nft_compile.compile_ruleset(read_file(file), include_iptables_nft=True)
    linted = lint_all(ruleset)
    return OwnedLintReport(tuple(OwnedFinding(f, "none") for f in linted.findings),
                           linted.rules, (), linted.partial, "none")


@click.command()
@_source_options
@click.option("--all", "show_all", is_flag=True,
              help="Also findings about structure a manager (ufw, firewalld, Docker …) keeps "
                   "on purpose, such as ufw's empty logging chains.")
@json_option
def lint(file: str | None, live: bool, ipv6: bool, show_all: bool, as_json: bool) -> None:
    """Find rules that can never take effect and chains the kernel would refuse.

    Kinds: shadowed (earlier rules together decide all its packets), redundant, after_terminal,
    unreachable_chain, missing_chain, empty_chain, invalid, bypass (DNAT'ed ports INPUT never
    sees), expired, hand_added (a rule inside ufw's chains in none of its files: lost at the
    next reload or boot). Live, native nft tables are linted too (nft -j list ruleset, every
    IP version), with two findings between base chains of one hook: equal_priority (their
    order is undefined) and dropped_later (an accept whose packets a later base chain drops:
    it does not let them in). --file also takes nft JSON or text. Every finding names its
    owner and backend (nft ones their family and handle). Exit 1 when there are findings.
    """
    from trustwall.firewall.analysis.lint import lint as run_lint
    from trustwall.firewall.nftables import show as nft_show
    from trustwall.firewall.owners.lint import owner_lint, ufw_rules

    if file is not None and not live and nft_show.is_nft_file(file):
        report = _nft_file_lint(file, show_all)
    else:
        ruleset = _load(file, live, ipv6, counters=False)
        ownership = owners_of(ruleset, file)
        manager = ufw_rules(ruleset.family) if file is None and ownership.host == "ufw" \
            else None
        linted = run_lint(ruleset)
        if file is None:
            linted = _with_native_tables(linted)
        report = owner_lint(linted, ruleset, ownership, show_all=show_all,
                            manager_rules=manager)
    emit(report, _human)
    if report.findings:
        raise ProblemFound(f"{len(report.findings)} lint finding(s)")
