"""``trustwall cert``: show, convert, lint and hash certificates in any format."""

from __future__ import annotations

from dataclasses import dataclass

import click

from trustwall.cli.lazy import JsonCheckedGroup
from trustwall.cli.output import console, emit, json_option, styled, visible

_password = click.option("--password", default=None, metavar="PW",
                         help="Password of a PKCS#12 file (tried empty when omitted).")


@click.group("cert", cls=JsonCheckedGroup)
def cert() -> None:
    """Read, convert and check certificates (PEM, DER, PKCS#7, PKCS#12), sniffed by content."""


@dataclass(frozen=True)
class _Shown:
    certificates: list


@cert.command("show")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@_password
@json_option
def show(files: tuple[str, ...], password: str | None, as_json: bool) -> None:
    """Subject, issuer, validity, fingerprints, CA flag, extensions of every certificate."""
    from trustwall.certs import load_certs

    certs = [c for f in files for c in load_certs(f, password=password)]
    emit(_Shown([c.to_json() for c in certs]), _render_show)


def _render_show(result: _Shown) -> None:
    out = console()
    for i, info in enumerate(result.certificates):
        if i:
            out.print()
        days = info["days_left"]
        when = f"expires in {days} days" if days >= 0 else f"expired {-days} days ago"
        ca = "yes" if info["is_ca"] else "no"
        if info["is_ca"] and info["path_length"] is not None:
            ca += f", path length {info['path_length']}"
        if info["is_ca"] and info["basic_constraints_critical"] is False:
            ca += " (basicConstraints not critical)"
        rows = [
            ("File", info["source"]),
            ("Subject", info["subject"] or "(empty)"),
            ("Issuer", info["issuer"] or "(empty)"),
            ("Serial", info["serial"]),
            ("Valid", f"{info['not_before']} .. {info['not_after']} ({when})"),
            ("SHA-256", info["sha256"]),
            ("SHA-1", info["sha1"]),
            ("Subject hash", f"{info['subject_hash']} (old {info['subject_hash_old']})"
             if info["openssl_problem"] is None
             else f"none: OpenSSL cannot load it ({info['openssl_problem']})"),
            ("CA", ca),
            ("Key usage", ", ".join(info["key_usage"]) if info["key_usage"] is not None
             else "(none)"),
            ("Extended key usage", ", ".join(info["extended_key_usage"])
             if info["extended_key_usage"] is not None else "(none)"),
            ("Name constraints", _constraints(info["name_constraints"])),
            ("SKI", info["ski"] or "(none)"),
            ("AKI", info["aki"] or "(none)"),
            ("Signature", info["signature_algorithm"]),
            ("Key", f"{info['key_type']} {info['key_size'] or ''}".strip()),
        ]
        for label, value in rows:
            # Every value is one escaped line: a subject cannot forge the SHA-256 line below.
            out.print(styled((f"{label + ':':<20}", "bold"), visible(str(value), one_line=True)),
                      soft_wrap=True)


def _constraints(nc: dict | None) -> str:
    if nc is None:
        return "(none)"
    parts = [f"permitted {', '.join(nc['permitted'])}" if nc["permitted"] else "",
             f"excluded {', '.join(nc['excluded'])}" if nc["excluded"] else ""]
    return "; ".join(p for p in parts if p) or "(empty)"


@cert.command("convert")
@click.argument("src", type=click.Path(dir_okay=True))
@click.argument("dst", type=click.Path(dir_okay=True))
@click.option("--to", "fmt", type=click.Choice(["pem", "der", "p7b"]), default=None,
              help="Output format (default: from DST's extension).")
@click.option("--force", is_flag=True, help="Overwrite DST if it exists.")
@_password
def convert(src: str, dst: str, fmt: str | None, force: bool, password: str | None) -> None:
    """Write the certificates of SRC to DST as PEM, DER or PKCS#7 (atomically)."""
    from trustwall.certs import load_certs
    from trustwall.certs.convert import encode, format_for
    from trustwall.errors import BadInput
    from trustwall.journal.atomic import atomic_write

    fmt = fmt or format_for(dst)
    if fmt is None:
        raise BadInput(f"{dst}: cannot tell the format from the name; give --to pem|der|p7b")
    certs = load_certs(src, password=password)
    data = encode(certs, fmt)
    atomic_write(dst, data, overwrite=force)
    click.echo(f"wrote {len(certs)} certificate(s) to {dst} as {fmt}", err=True)


@cert.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@_password
@json_option
def lint(files: tuple[str, ...], password: str | None,
         as_json: bool) -> None:
    """Is each certificate fit to be a trust anchor? Exit 1 when one is not."""
    from trustwall.certs import load_certs
    from trustwall.certs.lint import lint_anchor

    reports = [lint_anchor(c) for f in files for c in load_certs(f, password=password)]
    emit(_Linted(reports), _render_lint)
    unfit = sum(not r.fit for r in reports)
    if unfit:
        from trustwall.errors import ProblemFound

        raise ProblemFound(f"{unfit} of {len(reports)} certificate(s) not fit as a trust anchor")


@dataclass(frozen=True)
class _Linted:
    reports: list


def _render_lint(result: _Linted) -> None:
    out = console()
    marks = {"ok": ("ok  ", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red")}
    for report in result.reports:
        verdict = ("fit as a trust anchor", "green") if report.fit else ("NOT fit", "red")
        subject = visible(report.subject or "(empty subject)", one_line=True)
        out.print(styled((subject, "bold"), f" ({report.source}): ", verdict), soft_wrap=True)
        for f in report.findings:
            code = f" (OpenSSL code {f.openssl_code})" if f.openssl_code else ""
            out.print(styled("  ", marks[f.severity], f" {f.check}: {f.message}", (code, "dim")),
                      soft_wrap=True)
            for client in f.rejected_by:
                out.print(f"         rejected by: {client}", soft_wrap=True)


@cert.command("hash")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--old", is_flag=True, help="The pre-1.0 MD5 hash (openssl -subject_hash_old).")
@_password
def hash_(files: tuple[str, ...], old: bool, password: str | None) -> None:
    """One OpenSSL subject hash per certificate, one per line, in input order."""
    from trustwall.certs import load_certs, subject_hash
    from trustwall.errors import BadInput

    lines = []
    for f in files:
        for c in load_certs(f, password=password):
            try:
                lines.append(subject_hash(c, old=old))
            except BadInput as exc:
                raise BadInput(f"{f}: {exc}") from exc
    click.echo("\n".join(lines))
