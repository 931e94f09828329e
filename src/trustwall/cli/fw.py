"""``trustwall fw``: read, explain and change the iptables firewall.

``show`` and ``save`` live here; the other subcommands are declared lazily and live in their
own modules (fw_trace, fw_lint, fw_plan) so each loads only what it needs.
"""

from __future__ import annotations

from importlib import import_module

import click

from trustwall.cli.lazy import LazyGroup
from trustwall.cli.output import emit, json_option, visible
from trustwall.jsonable import to_jsonable

FW_COMMANDS: dict[str, tuple[str, str]] = {
    "trace": ("trustwall.cli.fw_trace:trace",
              "Trace a packet through the ruleset to the rule that decides it."),
    "lint": ("trustwall.cli.fw_lint:lint", "Find shadowed, redundant and unreachable rules."),
    "allow": ("trustwall.cli.fw_plan:allow",
              "Plan (or apply) a rule that lets the described traffic in."),
    "deny": ("trustwall.cli.fw_plan:deny",
             "Plan (or apply) a rule that drops the described traffic."),
    "reject": ("trustwall.cli.fw_plan:reject",
               "Plan (or apply) a rule that rejects the described traffic."),
    "delete": ("trustwall.cli.fw_plan:delete", "Plan (or apply) the removal of a rule."),
    "diff": ("trustwall.cli.fw_plan:diff", "Semantic difference between two rulesets."),
    "import": ("trustwall.cli.fw_policy:import_", "Write a policy file from the running rules."),
    "compile": ("trustwall.cli.fw_policy:compile_", "Print the restore text a policy gives."),
    "apply": ("trustwall.cli.fw_policy:apply", "Apply a policy: checked, atomic, undoable."),
    "confirm": ("trustwall.cli.fw_policy:confirm", "Keep a change waiting for confirmation."),
    "expire": ("trustwall.cli.fw_policy:expire", "Remove temporary rules whose time is up."),
}


@click.group(cls=LazyGroup, lazy=FW_COMMANDS)
def fw() -> None:
    """Read, explain and change the iptables firewall (IPv4 and IPv6)."""


def _source_options(func):  # type: ignore[no-untyped-def]
    func = click.option("-6", "--ipv6", "ipv6", is_flag=True,
                        help="ip6tables (live), or the IPv6 dump of a file holding both.")(func)
    func = click.option("--live", is_flag=True,
                        help="Read the running firewall (needs root; the default).")(func)
    func = click.option("--file", "-f", "file", type=click.Path(dir_okay=False),
                        help="Read an iptables-save or ip6tables-save file.")(func)
    return func


def _load(file: str | None, live: bool, ipv6: bool, counters: bool):  # type: ignore[no-untyped-def]
    api = import_module("trustwall.firewall.iptables.live")
    if file is not None and live:
        raise click.UsageError("give either --file or --live, not both")
    if file is not None:
        policy = import_module("trustwall.firewall.change.policy")
        if policy.is_policy_file(file):  # every --file command also reads a policy
            return policy.policy_ruleset(file, family=6 if ipv6 else None)
        return api.read_file(file, family=6 if ipv6 else None)
    ruleset = api.read_live(family=6 if ipv6 else 4, counters=counters)
    backend = api.detect_backend()
    if backend.both_hold_rules:
        other = "legacy" if backend.default == "nft" else "nft"
        click.echo(f"trustwall: warning: the {other} backend holds rules too; this shows only "
                   f"the {backend.default} ones (iptables-{other}-save shows the rest)", err=True)
    return ruleset


@fw.command()
@_source_options
@click.option("-t", "--table", default="filter", show_default=True, help="Table to show.")
@click.option("-v", "--verbose", is_flag=True, help="Show counters, interfaces and options.")
@click.option("-x", "--exact", is_flag=True, help="Exact counter values (no K/M/G).")
@click.argument("chain", required=False)
@json_option
def show(file: str | None, live: bool, ipv6: bool, table: str, verbose: bool, exact: bool,
         chain: str | None, as_json: bool) -> None:
    """Show a table like `iptables -L [CHAIN] -n [-v] [-x] --line-numbers`.

    On a host a manager owns (ufw, firewalld, nftables.conf, Docker …) it ends with `# owner`
    lines naming each chain's owner; --json always carries "owner" per chain. Live, when
    native nftables tables exist too, it also lists them in nft syntax with their handles, and
    warns about base chains whose order is undefined."""
    nft_show = import_module("trustwall.firewall.nftables.show")
    if file is not None and not live and nft_show.is_nft_file(file):
        saved = nft_show.file_view(file)  # nft -j JSON, or nft text (read as root)
        emit(saved, lambda v: click.echo(visible(v.text), nl=False))
        return
    render = import_module("trustwall.firewall.iptables.render")
    ruleset = _load(file, live, ipv6, counters=True)
    if file is None and ruleset.table(table) is None:
        # a plain nftables host: no iptables table at all, the nft tables are the listing
        only_nft = _nft_view(nft_show, 6 if ipv6 else 4)
        if only_nft is not None:
            for line in only_nft.warnings:
                click.echo(visible(f"trustwall: warning: {line}"), err=True)
            emit({"iptables": None, "nft": only_nft.tables,
                  "other_iptables": only_nft.iptables, "warnings": list(only_nft.warnings)},
                 lambda _: click.echo(visible(only_nft.text), nl=False))
            return
    view = render.listing_view(ruleset, table, chain)
    data, owner_lines = owned_view(view, ruleset, file, table)
    nft_view = _nft_view(nft_show, 6 if ipv6 else 4) if file is None else None

    def human(_: object) -> None:
        # A comment or interface name read from the kernel is shown, never obeyed (ESC, CR).
        click.echo(visible(render.render_listing(ruleset, table, chain, verbose=verbose,
                                                 exact=exact)), nl=False)
        if nft_view is not None:
            click.echo(visible("\n" + nft_view.text), nl=False)
            for dump in nft_view.iptables:
                tool = f"{'ip6' if dump.family == 6 else 'ip'}tables-{dump.backend}-save"
                click.echo(visible(f"\n# {tool}\n{dump.text}"), nl=False)
            for line in nft_view.warnings:
                click.echo(visible(f"trustwall: warning: {line}"), err=True)
        for line in owner_lines:
            click.echo(visible(line))

    if nft_view is None:
        emit(data, human)
    else:
        emit({"iptables": data, "nft": nft_view.tables, "other_iptables": nft_view.iptables,
              "warnings": list(nft_view.warnings)}, human)


def owned_view(view, ruleset, file: str | None,  # type: ignore[no-untyped-def]
               table: str) -> tuple[dict, list[str]]:
    """``fw show``'s listing as JSON with its owners (``"owner"`` per chain, the host's
    writer and why, the nft tables' owners), and the ``# owner`` lines for the text — none on
    a host without a manager, whose text stays exactly `iptables -L` (scripts compare it)."""
    ownership = owners_of(ruleset, file)
    data = to_jsonable(view)
    data["owner"] = ownership.host
    data["owner_evidence"] = list(ownership.evidence)
    data["nft_tables"] = ownership.to_json()["nft_tables"]
    by_owner: dict[str, list[str]] = {}
    for listed in data["chains"]:
        listed["owner"] = ownership.owner_of(table, listed["name"], ruleset.family)
        by_owner.setdefault(listed["owner"], []).append(listed["name"])
    lines: list[str] = []
    if {ownership.host, *by_owner} - {"none", "iptables"}:
        lines.append(f"# owner: {ownership.host} (" + "; ".join(ownership.evidence) + ")")
        lines += [f"#   {owner}: {' '.join(names)}" for owner, names in by_owner.items()]
    return data, lines


def owners_of(ruleset, file: str | None):  # type: ignore[no-untyped-def]
    """Who owns the firewall: the live host's owners (firewalld running, ufw enabled,
    nftables.conf, boot files, Docker …), or for --file what the dump's chain names say."""
    detect = import_module("trustwall.firewall.owners.detect")
    if file is not None:
        return detect.classify(detect.HostFacts(chains=detect.chains_of([ruleset])))
    return detect.detect(rulesets=[ruleset])


def _nft_view(nft_show, family: int):  # type: ignore[no-untyped-def]
    """The native nft tables of the whole picture (None when there are none: then ``show``
    prints exactly what it printed before nftables support)."""
    errors = import_module("trustwall.errors")
    api = import_module("trustwall.firewall.iptables.live")
    try:
        backend = api.chosen_backend() or api.detect_backend().default
        return nft_show.native_view(shown=(backend, family))
    except errors.EnvironmentMissing as exc:  # no nft program: iptables is all we can show
        click.echo(f"trustwall: warning: native nftables tables not shown: {exc}", err=True)
        return None


@fw.command()
@_source_options
@click.option("-t", "--table", default=None, help="Only this table (default: all).")
@click.option("-c", "--counters", is_flag=True, help="Include packet and byte counters.")
def save(file: str | None, live: bool, ipv6: bool, table: str | None, counters: bool) -> None:
    """Print the ruleset as canonical iptables-save text."""
    render = import_module("trustwall.firewall.iptables.render")
    ruleset = _load(file, live, ipv6, counters=counters)
    click.echo(render.render_save(ruleset, table=table, counters=counters), nl=False)
