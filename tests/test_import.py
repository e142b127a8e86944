"""`import medval` stays light: no torch, pydicom, evidently or matplotlib."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "pydicom", "evidently", "matplotlib")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(','.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.strip().split(","))


def test_import_medval_is_light() -> None:
    mods = _loaded_after("import medval")
    assert not {m for m in mods if m.split(".")[0] in HEAVY}


def test_cli_and_plugin_modules_are_light() -> None:
    mods = _loaded_after("import medval.cli, medval.pytest_plugin, medval.gate")
    assert not {m for m in mods if m.split(".")[0] in HEAVY}


def test_lazy_names_resolve() -> None:
    mods = _loaded_after("import medval; medval.predict")
    assert "torch" in mods


def test_subpackages_resolve_lazily() -> None:
    mods = _loaded_after("import medval; medval.stats; medval.uncertainty; medval.calibration")
    assert "medval.stats" in mods
    assert not {m for m in mods if m.split(".")[0] in HEAVY}


def test_evaluate_stays_the_function_after_importing_every_module() -> None:
    # A submodule named like an exported function would shadow it once imported.
    code = (
        "import importlib, pkgutil, medval\n"
        "for m in pkgutil.walk_packages(medval.__path__, 'medval.'):\n"
        "    if m.name != 'medval.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "assert callable(medval.evaluate), medval.evaluate\n"
        "p = medval.Predictions(['a', 'b', 'c', 'd'], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4],"
        " [0.3, 0.7]], labels=[0, 1, 0, 1])\n"
        "r = medval.evaluate(p, n_resamples=200, conformal=False)\n"
        "print(r['discrimination.auroc'].value)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == 1.0
