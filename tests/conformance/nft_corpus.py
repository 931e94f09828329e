"""nftables' own test data (corpora/nftables-tests, see its FORMAT.md) against trustwall's nft
frontend and this machine's kernel: shared by test_nft_corpus.py and nft_figures.py.

- ``tests/py/**/*.t.json``: every rule is loaded (as JSON, the way nft's py harness does) into
  a table and chain the ``.t`` file declares, in a scratch namespace; what the kernel loads is
  listed back with ``nft -j list ruleset`` and read by trustwall: no crash, and every
  statement either understood (compiled to IR conditions and actions) or opaque.
- ``tests/shell/**/dumps/*.nft``: each dump the kernel loads is listed as JSON, read, rendered
  in nft syntax by ``nftables.render``, loaded again into an empty ruleset and listed: the two
  listings must be the same JSON (handles aside).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustwall.firewall.nftables import compile as nft_compile
from trustwall.firewall.nftables import parse, render
from trustwall.firewall.nftables.model import Table
from trustwall.lab.corpora import CORPORA

NFT_TESTS = CORPORA / "nftables-tests" / "tests"
PY_DIR = NFT_TESTS / "py"
SHELL_DIR = NFT_TESTS / "shell" / "testcases"

Run = Callable[..., subprocess.CompletedProcess]


def available() -> bool:
    return PY_DIR.is_dir() and SHELL_DIR.is_dir()


# --- tests/py ----------------------------------------------------------------------------------


@dataclass
class PyFile:
    path: Path  # the .t.json
    chains: dict[str, str]  # name -> "type filter hook input priority 0"
    tables: list[tuple[str, str, tuple[str, ...]]]  # (family, table, chains)
    objects: list[str]  # nft commands (sets, elements, named objects), {f} {t} placeholders
    rules: list[tuple[str, list[Any]]]  # (rule text, statements)


def _t_header(t_file: Path) -> tuple[dict[str, str], list[tuple[str, str, tuple[str, ...]]],
                                     list[str]]:
    chains, tables, objects = {}, [], []
    for line in t_file.read_text(errors="replace").splitlines():
        if line.startswith(":"):
            name, _, spec = line[1:].partition(";")
            chains[name] = spec
        elif line.startswith("*"):
            family, table, names = ([*line[1:].split(";"), "", ""])[:3]
            tables.append((family, table, tuple(n for n in names.split(",") if n)))
        elif line[:1] in "!%?" and line.rstrip().endswith(";ok"):
            body = line[1:].rsplit(";", 1)[0]
            name, _, rest = body.partition(" ")
            if line[0] == "?":
                objects.append(f"add element {{f}} {{t}} {name} {{{{ {rest} }}}}")
            elif line[0] == "!":
                spec = rest.removeprefix("type ").strip()
                m = re.match(r"(.*?)( timeout .*| flags .*)?$", spec)
                kind, tail = (m.group(1), m.group(2) or "") if m else (spec, "")
                extra = "".join(f"; {part.strip()}" for part in re.split(r"(?= timeout | flags )",
                                                                           tail) if part.strip())
                objects.append(f"add set {{f}} {{t}} {name} {{{{ type {kind}{extra}; }}}}")
            else:
                spec = rest.removeprefix("type ").strip()
                words = spec.split(" ", 2)
                kind_words = 2 if words[0] == "ct" else 1
                kind = " ".join(words[:kind_words])
                tail = spec[len(kind):].strip().replace("{", "{{").replace("}", "}}")
                objects.append(f"add {kind} {{f}} {{t}} {name} {tail}".rstrip())
    return chains, tables, objects


def _t_json_rules(path: Path) -> list[tuple[str, list[Any]]]:
    text = path.read_text(errors="replace")
    out = []
    for m in re.finditer(r"^# ([^\n]*)\n(\[.*?^\])", text, re.S | re.M):
        try:
            out.append((m.group(1), json.loads(m.group(2))))
        except ValueError:
            continue
    return out


def py_files() -> list[PyFile]:
    files = []
    for path in sorted(PY_DIR.glob("*/*.t.json")):
        t_file = path.with_suffix("")
        if not t_file.exists():
            continue
        chains, tables, objects = _t_header(t_file)
        if tables:
            files.append(PyFile(path, chains, tables, objects, _t_json_rules(path)))
    return files


@dataclass
class PyFigures:
    rules: int = 0  # JSON rules in the corpus
    loaded: int = 0  # the kernel loaded them
    read: int = 0  # listed back and read by trustwall without a crash
    statements: int = 0
    understood: int = 0  # compiled without an opaque condition
    traced_statements: int = 0  # those of ip, ip6 and inet tables (the families traced)
    traced_understood: int = 0
    crashes: list[str] = field(default_factory=list)
    opaque: Counter = field(default_factory=Counter)  # statement kind -> count


def _stmt_kind(stmt: Any) -> str:
    if isinstance(stmt, dict) and len(stmt) == 1:
        (kind, body), = stmt.items()
        if kind == "match" and isinstance(body, dict):
            left = body.get("left")
            if isinstance(left, dict) and len(left) == 1:
                (lk, lb), = left.items()
                detail = lb.get("protocol") or lb.get("key") or lb.get("name") \
                    if isinstance(lb, dict) else None
                return f"match {lk} {detail or ''}".strip()
        return kind
    return "?"


def py_setup(pf: PyFile, family: str, table: str, chain_names: tuple[str, ...]) -> str:
    lines = [f"add table {family} {table}"]
    for name in chain_names:
        spec = pf.chains.get(name, "")
        lines.append(f"add chain {family} {table} {name} {{ {spec}; }}" if spec
                     else f"add chain {family} {table} {name}")
    lines += [o.format(f=family, t=table) for o in pf.objects]
    return "\n".join(lines) + "\n"


def run_py(run: Run, files: list[PyFile] | None = None) -> PyFigures:
    """Load every .t.json rule into the kernel (first table of its file), list, read."""
    figures = PyFigures()
    for pf in files if files is not None else py_files():
        family, table, chain_names = pf.tables[0]
        if not chain_names:
            continue
        run(["nft", "flush", "ruleset"])
        setup = run(["nft", "-f", "-"], input=py_setup(pf, family, table, chain_names))
        if setup.returncode != 0:  # objects this kernel lacks: load the chains alone
            run(["nft", "flush", "ruleset"])
            run(["nft", "-f", "-"], input=py_setup(PyFile(pf.path, pf.chains, pf.tables, [],
                                                          []), family, table, chain_names))
        adds = [{"add": {"rule": {"family": family, "table": table, "chain": chain_names[0],
                                  "expr": stmts}}} for _text, stmts in pf.rules]
        figures.rules += len(adds)
        # One batch per file (atomic: any refusal loads nothing), one rule at a time after
        # that: ~10x fewer nft runs on the files the kernel takes whole.
        if run(["nft", "-j", "-f", "-"], input=json.dumps({"nftables": adds})).returncode == 0:
            figures.loaded += len(adds)
        else:
            for add in adds:
                ok = run(["nft", "-j", "-f", "-"], input=json.dumps({"nftables": [add]}))
                figures.loaded += ok.returncode == 0
        listing = run(["nft", "-j", "list", "ruleset"])
        try:
            ruleset = parse.loads(listing.stdout, source=str(pf.path))
        except Exception as exc:
            figures.crashes.append(f"{pf.path.name}: {exc!r}")
            continue
        for t in ruleset.tables:
            for chain in t.chains:
                for rule in chain.rules:
                    try:
                        nft_compile.compile_rule(rule, t)
                        render.render_rule(rule)
                        figures.read += 1
                    except Exception as exc:
                        figures.crashes.append(f"{pf.path.name} handle {rule.handle}: {exc!r}")
                        continue
                    for stmt in rule.expr:
                        figures.statements += 1
                        figures.traced_statements += t.family in ("ip", "ip6", "inet")
                        if _understood(stmt, t):
                            figures.understood += 1
                            figures.traced_understood += t.family in ("ip", "ip6", "inet")
                        else:
                            figures.opaque[_stmt_kind(stmt)] += 1
    run(["nft", "flush", "ruleset"])
    return figures


def _understood(stmt: Any, table: Table) -> bool:
    return nft_compile.understood(stmt, table)


# --- tests/shell dumps -------------------------------------------------------------------------


def dumps() -> list[Path]:
    return sorted(SHELL_DIR.glob("*/dumps/*.nft"))


def _normal(listing: str) -> list[Any]:
    out = []
    for obj in json.loads(listing)["nftables"]:
        (kind, body), = obj.items()
        if kind == "metainfo":
            continue
        body = {k: v for k, v in body.items() if k != "handle"}
        if isinstance(body.get("elem"), list):  # a set's elements have no order
            body["elem"] = sorted(body["elem"], key=json.dumps)
        out.append({kind: body})
    return out


@dataclass
class DumpResult:
    path: Path
    outcome: str  # "same", "differs", "reload-refused", "refused" (the kernel refused the dump)
    detail: str = ""


def round_trip(run: Run, path: Path) -> DumpResult:
    run(["nft", "flush", "ruleset"])
    if run(["nft", "-f", str(path)]).returncode != 0:
        return DumpResult(path, "refused")
    first = run(["nft", "-j", "list", "ruleset"]).stdout
    ruleset = parse.loads(first, source=str(path))  # a crash here fails the caller
    for t in ruleset.tables:
        for chain in t.chains:
            for rule in chain.rules:
                nft_compile.compile_rule(rule, t)
    text = render.render_ruleset(ruleset)
    run(["nft", "flush", "ruleset"])
    again = run(["nft", "-f", "-"], input=text)
    if again.returncode != 0:
        err = next((ln for ln in again.stderr.splitlines() if "Error" in ln), again.stderr)
        return DumpResult(path, "reload-refused", err.strip()[:160])
    second = run(["nft", "-j", "list", "ruleset"]).stdout
    a, b = _normal(first), _normal(second)
    if a == b:
        return DumpResult(path, "same")
    pairs = zip(a, b, strict=False)
    diff = next((f"{json.dumps(x)[:120]} != {json.dumps(y)[:120]}" for x, y in pairs
                 if x != y), f"{len(a)} vs {len(b)} objects")
    return DumpResult(path, "differs", diff)


def run_dumps(run: Run, paths: list[Path] | None = None) -> Iterator[DumpResult]:
    for path in paths if paths is not None else dumps():
        yield round_trip(run, path)
    run(["nft", "flush", "ruleset"])
