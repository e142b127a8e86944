"""On the demo, the headline numbers with 20 MC-dropout samples equal those with none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medval import ValidationResult
from medval.cli import main

_HEADLINE = ("discrimination.", "operating_point.", "calibration.", "conformal.", "triage.")


def test_headline_metrics_come_from_the_deterministic_pass(
    demo_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for part in ("cohort", "model.pt", "medval.toml"):
        src = demo_run / part
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, tmp_path / part)
    spec = tmp_path / "medval.toml"
    text = spec.read_text(encoding="utf-8")
    assert "mc_samples = 20" in text
    spec.write_text(text.replace("mc_samples = 20", "mc_samples = 0"), encoding="utf-8")
    assert main(["validate", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) in (0, 1)
    with_mc = ValidationResult.read_json(demo_run / "result.json")
    without = ValidationResult.read_json(tmp_path / "out" / "result.json")
    compared = 0
    for key, estimate in with_mc.estimates.items():
        bare = key.split("split.external.", 1)[-1]
        if bare.startswith(_HEADLINE):
            assert without.estimates[key] == estimate, key
            compared += 1
    assert compared >= 20
    # The samples still drive the uncertainty analyses.
    assert with_mc.values["uncertainty.mc_samples"] == 20
    assert "uncertainty.mc_samples" not in without.values
