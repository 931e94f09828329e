"""``trustwall rehash``: the hash links of a CApath directory, as ``openssl rehash`` makes them.

Kept lean on purpose (no rich unless asked): it is benchmarked against the C tool as a whole
process.
"""

from __future__ import annotations

from dataclasses import dataclass

import click


@dataclass(frozen=True)
class _Rehashed:
    directories: list


@click.command("rehash")
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--old", is_flag=True, help="Old-style (MD5, OpenSSL < 1.0) hashes only.")
@click.option("--compat", is_flag=True, help="Both old and new hashes.")
@click.option("-n", "no_remove", is_flag=True, help="Do not remove existing links.")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@click.option("-v", "--verbose", is_flag=True, help="List every link made or removed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def rehash(ctx: click.Context, dirs: tuple[str, ...], old: bool, compat: bool,
           no_remove: bool, dry_run: bool, verbose: bool, as_json: bool) -> None:
    """Make HHHHHHHH.N links for certificates and CRLs in DIRS (default: SSL_CERT_DIR, else
    OpenSSL's certificate directory). Exit 1 when a file could not be handled."""
    from trustwall.certs.rehash import default_dirs, rehash_dir

    results = [rehash_dir(d, old=old, compat=compat, remove_links=not no_remove,
                          dry_run=dry_run) for d in (dirs or default_dirs())]
    if as_json or (ctx.find_root().obj or {}).get("json"):
        from trustwall.cli.output import dumps  # not at the top: rehash start-up is measured

        click.echo(dumps(_Rehashed(results)))
    else:
        from trustwall.cli.output import visible  # file names are untrusted text

        for result in results:
            for warning in result.warnings:
                click.echo(visible(f"trustwall rehash: warning: {result.directory}: {warning}",
                                   one_line=True), err=True)
            for error in result.errors:
                click.echo(visible(f"trustwall rehash: error: {result.directory}: {error}",
                                   one_line=True), err=True)
            if verbose or dry_run:
                prefix = "would " if dry_run else ""
                for change in result.changes:
                    if change.action == "created":
                        click.echo(visible(f"{prefix}link {change.target} -> {change.link}",
                                           one_line=True))
                    elif change.action == "removed":
                        click.echo(visible(f"{prefix}unlink {change.link}", one_line=True))
    failed = sum(len(r.errors) for r in results)
    if failed:
        from trustwall.errors import ProblemFound

        raise ProblemFound(f"rehash: {failed} file(s) could not be handled (see above)")
