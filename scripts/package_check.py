"""Checks of the release artefacts; scripts/package-check.sh runs this twice.

``package_check.py dist DIST_DIR`` (with the project's .venv, which has twine's and
trove-classifiers' dependencies) checks the sdist and the wheel as files: the metadata a package
index reads, that every module and every package-data file of ``src/`` is inside the wheel,
and that the sdist carries the licence, README and CHANGELOG.

``package_check.py installed`` (with the python of a fresh virtualenv that holds only the
wheel and its runtime dependencies, started outside the checkout) checks the installed package:
every module imports, no module imports anything but the standard library and declared runtime
dependencies (so never pytest, hypothesis or the test-only ``requests``), the command table and
the public API resolve, and the console script answers the smoke commands.

Each check prints one ``ok``/``FAIL`` line; the exit status is 1 when any check failed.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "trustwall"

# A small iptables-save ruleset for `fw trace --file`: SSH in, everything else rejected.
RULESET = """\
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
COMMIT
"""
CURL_60 = "curl: (60) SSL certificate problem: unable to get local issuer certificate"

failures: list[str] = []


def check(ok: bool, what: str, detail: str = "") -> bool:
    print(f"  {'ok  ' if ok else 'FAIL'}  {what}" + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(what)
    return ok


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --- the artefacts as files ------------------------------------------------------------------


def source_version() -> str:
    """The one version source: the ``__version__`` literal in the package's ``__init__``."""
    tree = ast.parse((REPO / "src" / PACKAGE / "__init__.py").read_text())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "__version__"
                and isinstance(node.value, ast.Constant)):
            return str(node.value.value)
    raise SystemExit("package_check: no __version__ literal in the package's __init__.py")


def check_dist(dist: Path) -> None:
    import tomllib
    import trove_classifiers

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    version = source_version()
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if not check(len(wheels) == 1 and len(sdists) == 1, "one wheel and one sdist",
                 ", ".join(p.name for p in dist.iterdir())):
        return
    wheel, sdist = wheels[0], sdists[0]
    check(wheel.name == f"{PACKAGE}-{version}-py3-none-any.whl", "wheel name and version",
          f"{wheel.name}, __version__ {version}")
    check(sdist.name == f"{PACKAGE}-{version}.tar.gz", "sdist name and version", sdist.name)

    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = f"{PACKAGE}-{version}.dist-info"
        meta = HeaderParser().parsestr(zf.read(f"{info}/METADATA").decode())
    license_expr = project["project"]["license"]
    check(tuple(map(int, meta["Metadata-Version"].split("."))) >= (2, 4),
          "Metadata-Version >= 2.4 (licence expression)", meta["Metadata-Version"])
    check(meta["License-Expression"] == license_expr, f"License-Expression {license_expr}",
          str(meta["License-Expression"]))
    check(meta.get_all("License-File") == ["LICENSE"] and f"{info}/licenses/LICENSE" in names,
          "LICENSE named in the metadata and inside the wheel")
    classifiers = meta.get_all("Classifier") or []
    unknown = [c for c in classifiers if c not in trove_classifiers.classifiers
               or c in trove_classifiers.deprecated_classifiers]
    check(bool(classifiers) and not unknown, f"{len(classifiers)} classifiers known to PyPI",
          ", ".join(unknown) or "none")
    check(not any(c.startswith("License ::") for c in classifiers),
          "no licence classifier beside the expression")
    for field in ("Requires-Python", "Keywords", "Project-URL", "Summary"):
        check(bool(meta.get(field)), f"metadata has {field}")

    # Every file of the package's source tree is in the wheel (a data file the package-data
    # globs miss would only show after a release), every glob still matches something, and
    # nothing else (no tests, no conftest) sits outside the package and its dist-info.
    src = REPO / "src"
    wanted = {p.relative_to(src).as_posix() for p in (src / PACKAGE).rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    for package, globs in project["tool"]["setuptools"]["package-data"].items():
        base = src / package.replace(".", "/")
        for pattern in globs:
            found = [p for p in base.glob(pattern) if p.is_file()]
            check(bool(found), f"package data {package}:{pattern} matches files in src")
    missing = sorted(wanted - names)
    check(not missing, f"all {len(wanted)} files of src/{PACKAGE} inside the wheel",
          ", ".join(missing[:10]))
    stray = sorted(n for n in names if not n.startswith((f"{PACKAGE}/", f"{info}/")))
    check(not stray, "nothing outside the package and its dist-info", ", ".join(stray[:10]))
    compiled = sorted(n for n in names if "__pycache__" in n or n.endswith(".pyc"))
    check(not compiled, "no byte-code in the wheel", ", ".join(compiled[:5]))

    with tarfile.open(sdist) as tf:
        members = {m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name}
    needed = {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "PKG-INFO"}
    check(needed <= members, "sdist has " + ", ".join(sorted(needed)),
          ", ".join(sorted(needed - members)))
    print(f"  wheel {wheel.name}: {wheel.stat().st_size:,} bytes, {len(names)} files;"
          f" sdist {sdist.stat().st_size:,} bytes")


# --- the installed wheel -----------------------------------------------------------------------


def runtime_closure() -> set[str]:
    """Canonical names of trustwall and every distribution it needs at run time (no extras)."""
    from importlib import metadata

    seen: set[str] = set()
    todo = [PACKAGE]
    while todo:
        name = canonical(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # an environment marker excluded it here
        for req in requires:
            if re.search(r"\bextra\s*==", req):
                continue  # an optional extra (e.g. test), not needed to run
            todo.append(re.match(r"[A-Za-z0-9._-]+", req).group(0))
    return seen


def imported_top_levels(root: Path) -> dict[str, list[str]]:
    """Top-level module name -> "file:line" of every absolute import in the package's sources."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                found.setdefault(top, []).append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs)


def help_paths(group: object, prefix: list[str]) -> list[list[str]]:
    """Every subcommand path under a click group, depth first."""
    import click

    paths = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        paths.append([*prefix, name])
        if isinstance(sub, click.Group):
            paths.extend(help_paths(sub, [*prefix, name]))
    return paths


def check_installed() -> None:
    import importlib
    import pkgutil
    from importlib import metadata

    import trustwall

    root = Path(trustwall.__file__).parent
    check(root.is_relative_to(sys.prefix), "trustwall imported from the virtualenv", str(root))
    check(not root.is_relative_to(REPO), "... not from the checkout", str(root))
    version = metadata.version(PACKAGE)
    check(version == trustwall.__version__, f"metadata version {version} == __version__",
          trustwall.__version__)

    # Every module imports with only the runtime dependencies installed.
    modules = [m.name for m in pkgutil.walk_packages(trustwall.__path__, f"{PACKAGE}.")
               if not m.name.endswith(".__main__")]  # __main__ runs the CLI on import
    broken = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            broken.append(f"{name}: {type(exc).__name__}: {exc}")
    check(not broken, f"all {len(modules) + 1} modules import", "; ".join(broken[:5]))

    # Statically, also imports inside functions: only stdlib and declared runtime dependencies.
    closure = runtime_closure()
    provided = {top for top, dists in metadata.packages_distributions().items()
                if any(canonical(d) in closure for d in dists)}
    allowed = set(sys.stdlib_module_names) | provided | {PACKAGE}
    foreign = {top: where for top, where in imported_top_levels(root).items()
               if top not in allowed}
    check(not foreign, "imports only the stdlib and runtime dependencies "
          f"({', '.join(sorted(provided - {PACKAGE}))})",
          "; ".join(f"{top} at {', '.join(where[:3])}" for top, where in sorted(foreign.items())))
    loaded = sorted(m for m in ("pytest", "_pytest", "hypothesis", "requests", "tests", "conftest")
                    if m in sys.modules)
    check(not loaded, "no test-only module loaded", ", ".join(loaded))

    # The command table and the lazily resolved public API point at real objects.
    from trustwall.cli.main import COMMANDS

    unresolved = []
    for name, (target, _) in COMMANDS.items():
        module, attr = target.split(":")
        if not hasattr(importlib.import_module(module), attr):
            unresolved.append(f"{name} -> {target}")
    check(not unresolved, f"{len(COMMANDS)} commands of the table resolve", ", ".join(unresolved))
    public = dir(trustwall)  # __all__ and the lazily resolved names
    missing = [n for n in public if not hasattr(trustwall, n)]
    check(not missing, f"{len(public)} public API names resolve", ", ".join(missing))

    smoke(Path(sys.prefix) / "bin" / PACKAGE, version, COMMANDS)


def smoke(exe: Path, version: str, commands: dict[str, tuple[str, str]]) -> None:
    """The console script of the fresh virtualenv, run as a user would."""
    with tempfile.TemporaryDirectory(prefix="trustwall-smoke-") as tmp:
        work = Path(tmp)
        r = run([str(exe), "--version"])
        check(r.returncode == 0 and r.stdout == f"trustwall, version {version}\n",
              f"trustwall --version -> {r.stdout.strip()}", r.stdout + r.stderr)

        # cert show of a CA made here by openssl; openssl's fingerprint is the oracle.
        ca, key = work / "ca.pem", work / "ca.key"
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", str(key), "-out", str(ca), "-days", "2",
             "-subj", "/CN=trustwall package-check CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"], check=True)
        want = run(["openssl", "x509", "-in", str(ca), "-noout", "-fingerprint", "-sha256"],
                   check=True).stdout.strip().split("=", 1)[1]
        r = run([str(exe), "cert", "show", "--json", str(ca)])
        certs = json.loads(r.stdout)["certificates"] if r.returncode == 0 else []
        got = certs[0] if len(certs) == 1 else {}
        check(got.get("sha256") == want and got.get("is_ca") is True
              and got.get("subject") == "CN=trustwall package-check CA",
              "trustwall cert show of an openssl CA: subject, CA flag, SHA-256 as openssl",
              r.stdout[:300] + r.stderr)
        r = run([str(exe), "cert", "show", str(ca)])
        check(r.returncode == 0 and "trustwall package-check CA" in r.stdout,
              "trustwall cert show (table)", r.stderr)

        r = run([str(exe), "--json", "explain", CURL_60])
        codes = [f["code"] for f in json.loads(r.stdout)["findings"]] if r.returncode == 0 else []
        check(codes == ["X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY"],
              "trustwall explain 'curl: (60) ...' -> X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
              r.stdout[:300] + r.stderr)
        r = run([str(exe), "explain", CURL_60])
        # The next command stands on a line of its own (copyable), after "next:".
        check(r.returncode == 0 and "next:" in r.stdout and any(
            line.strip().startswith(("trustwall ", "sudo trustwall "))
            for line in r.stdout.splitlines()),
              "trustwall explain (text) names the next command", r.stdout + r.stderr)

        rules = work / "rules.v4"
        rules.write_text(RULESET)
        for dport, verdict, rule in ((22, "ACCEPT", 3), (18745, "REJECT", 4)):
            r = run([str(exe), "fw", "trace", "--file", str(rules), "--local-addr", "192.0.2.10",
                     "-s", "198.51.100.7", "-d", "192.0.2.10", "--dport", str(dport),
                     "--in", "eth0", "--json"])
            out = json.loads(r.stdout) if r.returncode == 0 else {}
            decided = out.get("decided_by") or {}
            check(out.get("verdict") == verdict and decided.get("chain") == "INPUT"
                  and decided.get("rule") == rule,
                  f"trustwall fw trace --file: tcp/{dport} -> {verdict} by INPUT rule {rule}",
                  r.stdout[:300] + r.stderr)

        # --help of the top level and of every command in the table, through the console script.
        for argv in ([], *([name] for name in sorted(commands))):
            r = run([str(exe), *argv, "--help"])
            usage = " ".join(["Usage: trustwall", *argv])
            check(r.returncode == 0 and r.stdout.startswith(usage),
                  f"trustwall {' '.join(argv)} --help".replace("  ", " "), r.stderr[-300:])

    # ... and of every subcommand of every group, in this process (one console script each
    # would take ~0.3 s apiece).
    import importlib

    import click

    from trustwall.cli.main import main

    bad, paths = [], []
    for name in sorted(commands):
        module, attr = commands[name][0].split(":")
        cmd = getattr(importlib.import_module(module), attr)
        if isinstance(cmd, click.Group):
            paths.extend(help_paths(cmd, [name]))
    for path in paths:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            rc = main([*path, "--help"])
        if rc != 0 or not out.getvalue().startswith("Usage: trustwall " + " ".join(path)):
            bad.append(f"{' '.join(path)} (exit {rc})")
    check(bool(paths) and not bad, f"--help of all {len(paths)} subcommands of the groups",
          ", ".join(bad))


def main() -> int:
    if sys.argv[1:2] == ["dist"] and len(sys.argv) == 3:
        check_dist(Path(sys.argv[2]))
    elif sys.argv[1:] == ["installed"]:
        check_installed()
    else:
        print("usage: package_check.py dist DIST_DIR | installed", file=sys.stderr)
        return 2
    if failures:
        print(f"package_check: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
