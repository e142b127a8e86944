"""A regression spec on data laid out unlike the demo: a metadata table with a predictions
CSV, and a quantile-head model of the user's own on DICOM files in nested folders."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from medval import demo
from medval.cli import main

TABLE_SPEC = """
[task]
type = "regression"
name = "left-ventricular ejection fraction"
unit = "%"
range = [5, 85]

[data]
table = "meta.csv"

[model]
predictions = "preds.csv"

[analysis]
n_resamples = 200
calibration_split = "tune"
test_splits = ["siteA", "siteB"]

[regression]
mondrian = "manufacturer"

[[criteria]]
name = "mae"
key = "regression.mae"
bound = "high"
op = "<="
threshold = 8.0

[[criteria]]
name = "coverage-every-scanner"
key = "regression.interval.by_group"
column = "manufacturer"
field = "coverage"
bound = "low"
op = ">="
threshold = 0.7
"""


def _table_run(root: pathlib.Path, *, bad_label: bool = False) -> pathlib.Path:
    rng = np.random.default_rng(7)
    n = 400
    y = rng.uniform(20, 75, n)
    scanner = rng.choice(["Vendor1", "Vendor2"], n)
    sd = np.where(scanner == "Vendor2", 6.0, 3.0)
    pred = y + rng.normal(0, sd)
    split = rng.choice(["tune", "siteA", "siteB"], n)
    rows = ["case_id,label,split,manufacturer,sex,age,patient_id"]
    for i in range(n):
        label = "120" if bad_label and i == 17 else f"{y[i]:.1f}"
        rows.append(f"e{i},{label},{split[i]},{scanner[i]},{'FM'[i % 2]},{40 + i % 40},P{i // 2}")
    (root / "meta.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    preds = ["case_id,prediction,sigma"] + [f"e{i},{pred[i]:.3f},{sd[i]:.2f}" for i in range(n)]
    (root / "preds.csv").write_text("\n".join(preds) + "\n", encoding="utf-8")
    spec = root / "medval.toml"
    spec.write_text(TABLE_SPEC, encoding="utf-8")
    return spec


def test_a_metadata_table_with_predictions_validates_and_gates_per_scanner(
    tmp_path: pathlib.Path,
) -> None:
    spec = _table_run(tmp_path)
    assert main(["validate", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))
    est, values = result["estimates"], result["values"]
    assert values["task.unit"] == "%" and values["regression.interval.score"] == "normalized"
    assert set(values["regression.interval.quantiles"]) == {"Vendor1", "Vendor2"}
    assert 1.5 < est["regression.mae"]["value"] < 5.0  # noise SD 3 and 6
    groups = {r["group"]: r for r in result["tables"]["gate.groups"]
              if r["criterion"] == "coverage-every-scanner"} if "gate.groups" in result[
        "tables"] else {}  # fmt: skip
    verdicts = {r["name"]: r for r in result["tables"]["gate.verdicts"]}
    assert verdicts["coverage-every-scanner"]["status"] == "pass", groups
    assert "age_band" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def test_a_label_outside_the_declared_range_stops_the_run_naming_the_row(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _table_run(tmp_path, bad_label=True)
    assert main(["validate", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "row 19: '120'" in err and "task.range [5, 85]" in err


MODEL_DEF = '''
import torch
from torch import nn


class Quantiles(nn.Module):
    """Bone age from the mean intensity: three quantile columns, with dropout."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.2)
        self.scale = nn.Parameter(torch.tensor([150.0, 200.0, 250.0]))

    def forward(self, x):
        m = self.drop(x.mean(dim=(1, 2, 3))[:, None].repeat(1, 3))
        return m * self.scale


def build():
    return Quantiles()
'''


def test_a_users_quantile_head_on_nested_dicom_runs_cqr(tmp_path: pathlib.Path) -> None:
    cohort = tmp_path / "hospital"
    demo.write_regression_cohort(cohort, seed=3, n_patients=(40, 40, 20))
    import torch

    (tmp_path / "model_def.py").write_text(MODEL_DEF, encoding="utf-8")
    torch.save({"scale": torch.tensor([150.0, 200.0, 250.0])}, tmp_path / "q.pt")
    spec = tmp_path / "medval.toml"
    spec.write_text(
        """
[task]
type = "regression"
unit = "months"

[data]
dicom_dir = "hospital/dicom"
labels = "hospital/labels.csv"

[preprocess]
steps = [{ op = "resize", size = [32, 32] }, { op = "normalize", method = "minmax" }]

[model]
file = "q.pt"
factory = "model_def.py:build"
output = "quantiles"
quantile_levels = [0.05, 0.5, 0.95]
mc_samples = 4

[analysis]
n_resamples = 200
""",
        encoding="utf-8",
    )
    code = main(["validate", str(spec), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))
    values = result["values"]
    assert values["regression.interval.score"] == "cqr"
    assert values["regression.outputs"]["quantile_levels"] == [0.05, 0.5, 0.95]
    assert values["regression.uncertainty.sigma_from"] == "MC dropout"
    assert "regression.mae" in result["estimates"]
