"""The product never imports the lab: the lab (namespaces, CA factory, proxy, sandbox) is built
on the product for tests and demos. Any import of ``trustwall.lab`` -- at module level or inside
a function, ``import`` or ``from``, or a dotted string handed to importlib -- outside the lab,
its CLI command and the tests fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT = (REPO / "src" / "trustwall", REPO / "ansible_collections")
ALLOWED = (REPO / "src" / "trustwall" / "lab", REPO / "src" / "trustwall" / "cli" / "lab.py")


def _is_lab(name: str) -> bool:
    return name == "trustwall.lab" or name.startswith("trustwall.lab.")


def lab_imports(source: str, filename: str = "<text>") -> list[tuple[int, str]]:
    """(line, module) of every reference to trustwall.lab in Python ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _is_lab(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _is_lab(node.module):
                found.append((node.lineno, node.module))
            elif node.module == "trustwall":
                found += [(node.lineno, f"trustwall.{a.name}") for a in node.names
                          if a.name == "lab"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                _is_lab(node.value.split(":", 1)[0]):
            found.append((node.lineno, node.value))  # import_module("trustwall.lab.x")
    return found


def _product_files() -> list[Path]:
    files = [p for base in PRODUCT for p in base.rglob("*.py")]
    return [p for p in files if not any(p == a or a in p.parents for a in ALLOWED)]


def test_product_code_never_imports_the_lab() -> None:
    files = _product_files()
    assert len(files) > 50  # the walk found the product, not an empty directory
    offenders = [f"{p.relative_to(REPO)}:{line}: {name}" for p in files
                 for line, name in lab_imports(p.read_text(), str(p))]
    assert offenders == []


@pytest.mark.parametrize("source", [
    "import trustwall.lab.sandbox",
    "from trustwall.lab.clients import run_all",
    "from trustwall import lab",
    "def f():\n    from trustwall.lab import demo\n",
    "_LAZY = {'Lab': 'trustwall.lab.topology:Lab'}",
])
def test_the_boundary_check_sees_every_way_to_import_the_lab(source: str) -> None:
    assert lab_imports(source) != []


def test_the_boundary_check_lets_other_modules_through() -> None:
    assert lab_imports("import trustwall.labels\nfrom trustwall.clients import run_all\n"
                       "x = 'trustwall.laboratory'") == []


def test_no_docstring_cites_a_quirks_file_outside_the_repository() -> None:
    """The machines' QUIRKS.md is not in the repository: cite docs/quirks-found.md."""
    assert (REPO / "docs" / "quirks-found.md").is_file()
    offenders = [str(p.relative_to(REPO)) for base in PRODUCT for p in base.rglob("*.py")
                 if "QUIRKS.md" in p.read_text()]
    assert offenders == []


def test_every_lazy_public_name_is_declared_for_type_checkers() -> None:
    """trustwall/__init__.py loads its public names on first use; its TYPE_CHECKING block must
    import each one from the same place, so editors and mypy see what they are."""
    import trustwall

    tree = ast.parse((REPO / "src" / "trustwall" / "__init__.py").read_text())
    guarded = next(n for n in tree.body if isinstance(n, ast.If)
                   and getattr(n.test, "id", None) == "TYPE_CHECKING")
    declared = {alias.asname or alias.name: f"{node.module}:{alias.name}"
                for node in guarded.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert declared == trustwall._LAZY
    assert set(trustwall.__all__) >= set(trustwall._LAZY)
