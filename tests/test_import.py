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
