"""`medval validate` without DICOM or a model: a metadata table and precomputed predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medval.cli import main

SPEC = """\
[task]
class_names = ["benign", "malignant"]

[data]
{data}

[model]
{model}

[analysis]
n_resamples = 200

[shift]
reference_split = "calibration"

[output]
dir = "out"

[[criteria]]
name = "auroc"
key = "discrimination.auroc"
bound = "low"
op = ">="
threshold = 0.6
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(8)
    meta = ["case_id,label,split,patient_id,manufacturer,kvp,sex,age"]
    preds = ["case_id,probability"]
    for i in range(600):
        patient = i // 2
        split = ("calibration", "internal", "external")[patient % 3]
        y = int(rng.random() < 0.4)
        maker = "Vendor C" if split == "external" else ("Vendor A", "Vendor B")[patient % 2]
        signal = 0.8 if split == "external" else 2.5
        p = 1 / (1 + np.exp(-(rng.normal() + signal * y - signal / 2)))
        meta.append(f"c{i},{y},{split},MRN-{patient},{maker},{120 + 20 * (split == 'external')},"
                    f"{'FM'[patient % 2]},{30 + patient % 60}")  # fmt: skip
        preds.append(f"c{i},{float(p)!r}")
    (tmp_path / "meta.csv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    (tmp_path / "preds.csv").write_text("\n".join(preds) + "\n", encoding="utf-8")
    return tmp_path


def _spec(folder: Path, data: str, model: str) -> str:
    path = folder / "medval.toml"
    path.write_text(SPEC.format(data=data, model=model), encoding="utf-8")
    return str(path)


def test_table_and_predictions_run_the_whole_validation(folder: Path) -> None:
    spec = _spec(folder, 'table = "meta.csv"', 'predictions = "preds.csv"')
    assert main(["validate", spec, "--quiet"]) == 0
    result = json.loads((folder / "out" / "result.json").read_text(encoding="utf-8"))
    values, est = result["values"], result["estimates"]
    assert result["provenance"]["model_kind"] == "precomputed predictions"
    assert values["subgroup.manufacturer.worst_auroc"] == "Vendor C"
    assert values["shift.reference_split"] == "calibration"
    assert values["split.external.shift.drifted"] and "split.internal.shift.drift_share" in values
    external = est["split.external.discrimination.auroc"]["value"]
    assert est["discrimination.auroc"]["value"] > external
    blob = (folder / "out" / "report.html").read_text(encoding="utf-8")
    assert "MRN-" not in blob and "MRN-" not in json.dumps(result)


@pytest.mark.parametrize(
    ("data", "model", "match"),
    [
        ('table = "meta.csv"\ndicom_dir = "d"', 'predictions = "preds.csv"', "either dicom_dir"),
        ('dicom_dir = "d"', 'predictions = "preds.csv"', "missing required key data.labels"),
        ('table = "meta.csv"', 'file = "m.pt"', "no images to run model.file"),
        ('table = "meta.csv"', 'file = "m.pt"\npredictions = "p.csv"', "either file"),
    ],
)
def test_sources_are_checked(
    folder: Path, data: str, model: str, match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", _spec(folder, data, model)]) == 2
    assert match in capsys.readouterr().err


def test_predictions_missing_cases_is_a_data_error(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (folder / "preds.csv").read_text(encoding="utf-8").splitlines()
    (folder / "preds.csv").write_text("\n".join(lines[:-5]) + "\n", encoding="utf-8")
    spec = _spec(folder, 'table = "meta.csv"', 'predictions = "preds.csv"')
    assert main(["validate", spec]) == 3
    assert "model predictions preds.csv lack 5" in capsys.readouterr().err


def test_precomputed_predictions_need_a_binary_task(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(folder, 'table = "meta.csv"', 'predictions = "preds.csv"')
    text = (
        Path(spec)
        .read_text(encoding="utf-8")
        .replace('["benign", "malignant"]', '["normal", "benign", "malignant"]')
    )
    Path(spec).write_text(text, encoding="utf-8")
    assert main(["validate", spec]) == 2
    assert "need a binary task" in capsys.readouterr().err


@pytest.mark.parametrize("study_ids", [False, True])
def test_a_table_without_patient_ids_runs_unclustered(folder: Path, study_ids: bool) -> None:
    lines = (folder / "meta.csv").read_text(encoding="utf-8").splitlines()
    if study_ids:  # studies are known, patients are not
        text = "\n".join([lines[0].replace("patient_id", "study_id"), *lines[1:]]) + "\n"
    else:
        cells = [line.split(",") for line in lines]
        col = cells[0].index("patient_id")
        text = "\n".join(",".join(c[:col] + c[col + 1 :]) for c in cells) + "\n"
    (folder / "meta.csv").write_text(text, encoding="utf-8")
    spec = _spec(folder, 'table = "meta.csv"', 'predictions = "preds.csv"')
    assert main(["validate", spec, "--quiet"]) == 0
    result = json.loads((folder / "out" / "result.json").read_text(encoding="utf-8"))
    values = result["values"]
    assert values["evaluation.clustered_by"] == "case"
    assert values["leakage.checked"] is study_ids
    assert "leakage.patient_key.n_overlap" not in values
    assert "cohort.n_patients" not in values
    assert all("n_patients" not in row for row in result["tables"]["cohort.by_split_site"])
    assert "clustered" not in result["estimates"]["discrimination.auprc"]["method"]
    if study_ids:
        blob = (folder / "out" / "report.html").read_text(encoding="utf-8")
        assert "Patients are unknown (the cohort has no patient key)" in blob
        assert "patients unknown (no patient key): not checked" in blob
        assert "disjoint at patient level" not in blob
