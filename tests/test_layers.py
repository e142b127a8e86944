"""The rooms keep to their layers: import-linter's contracts and a private-import scan.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``); the scan
below repeats the private-module rule without import-linter, naming
``file:line``, so it also runs where the ``lint`` extra is not installed.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "medval"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_private(component: str) -> bool:
    dunder = component.startswith("__") and component.endswith("__")
    return component.startswith("_") and not dunder


def _owner(name: str) -> str | None:
    """The package a private module is private to: the parent of its innermost private part."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        if _is_private(parts[i]):
            return ".".join(parts[:i])
    return None


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imported_names(
    tree: ast.AST, module: str, *, is_package: bool
) -> Iterator[tuple[int, list[str]]]:
    """The modules each import statement names: top level, inside functions, under TYPE_CHECKING.

    ``from X import a`` names ``X`` and, when ``a`` is a submodule, ``X.a`` (a private
    function shared between sibling modules is not a module); a literal
    ``importlib.import_module("...")`` counts too.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield node.lineno, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            submodules = [f"{source}.{alias.name}" for alias in node.names]
            yield node.lineno, [source, *(m for m in submodules if _is_module(m))]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, [node.args[0].value]


def private_imports(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, imported name) for each import of another package's private module."""
    found = []
    for line, names in _imported_names(ast.parse(source), module, is_package=is_package):
        for name in names:
            owner = _owner(name)
            if (
                name.split(".")[0] == "medval"
                and owner is not None
                and module != owner
                and not module.startswith(owner + ".")
            ):
                found.append((line, name))
                break
    return found


def test_no_module_imports_another_packages_private_module() -> None:
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for line, name in private_imports(
            path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"
        ):
            rel = path.relative_to(ROOT).as_posix()
            offences.append(f"{rel}:{line} imports {name} (private to {_owner(name)})")
    assert not offences, (
        "Private modules are imported from outside their package; re-export the name "
        "from the package's __init__ and import it from there:\n  " + "\n  ".join(offences)
    )


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("from medval.stats._validate import check_clusters", "medval.evaluation._curves", 1),
        ("from medval.stats import _validate", "medval.shift._drift", 1),
        ("import medval.conformal._checks as c", "medval.evaluation._conformal", 1),
        ("def f():\n    from medval.report._render import X\n", "medval.run", 2),
        (
            "import typing\nif typing.TYPE_CHECKING:\n    from medval.io._phi import P\n",
            "medval.report._render",
            3,
        ),
        ("import importlib\nimportlib.import_module('medval.io._model')", "medval.run", 2),
        ("from ..stats._validate import x", "medval.shift._drift", 1),
    ],
)
def test_private_import_scan_finds_lazy_and_relative_imports(
    source: str, module: str, expected: int
) -> None:
    assert [line for line, _ in private_imports(source, module)] == [expected]


@pytest.mark.parametrize(
    ("source", "module"),
    [
        # The package's own internals: private to medval, usable anywhere inside it.
        ("from medval._types import Estimate\nfrom medval._result import f", "medval.run"),
        # Inside the owning package, also through relative imports.
        ("from medval.stats._validate import check_clusters", "medval.stats._subgroups"),
        ("from ._validate import x\nfrom . import _core", "medval.stats._bootstrap"),
        ("from ._validate import x", "medval.stats"),
        # Public names and dunder modules.
        ("from medval.stats import check_clusters\nimport medval.__main__", "medval.shift._drift"),
    ],
)
def test_private_import_scan_allows_own_internals(source: str, module: str) -> None:
    is_package = module == "medval.stats"
    assert private_imports(source, module, is_package=is_package) == []


def _lint_imports() -> str | None:
    # The venv's scripts folder first: pytest may run without the venv on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which("lint-imports", path=path)


def test_import_linter_contracts_are_kept() -> None:
    exe = _lint_imports()
    assert exe is not None, "lint-imports not installed: pip install -e '.[test]'"
    out = subprocess.run(
        [exe, "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
