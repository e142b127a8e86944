"""Automatic splits: patient-level, label-stratified, seeded, external by a column."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medval import DataError, SpecError, ValidationResult
from medval.cli import main
from medval.io import CohortData, assign_splits, has_splits


def _data(seed: int = 0, n_patients: int = 200, salt: str = "a") -> CohortData:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        label = int(rng.uniform() < 0.3)
        vendor = rng.choice(["GE", "Siemens", "Philips"])
        for i in range(int(rng.integers(1, 4))):
            rows.append({"case_id": f"c{p:03d}-{i}", "patient_key": f"{salt}{p:03d}",
                         "label": label, "manufacturer": vendor, "split": "all"})  # fmt: skip
    cohort = pd.DataFrame(rows).set_index("case_id")
    return CohortData(cohort, {}, (), len(cohort), "0" * 64, {})


def test_patients_never_straddle_and_strata_keep_the_fraction() -> None:
    data = assign_splits(_data(), calibration_fraction=0.3, seed=4)
    c = data.cohort
    assert c.groupby("patient_key")["split"].nunique().max() == 1
    patients = c.groupby("patient_key").agg(split=("split", "first"), label=("label", "max"))
    for label in (0, 1):
        stratum = patients[patients["label"] == label]
        share = (stratum["split"] == "calibration").mean()
        assert abs(share - 0.3) <= 1.0 / len(stratum) + 1e-12
    assert set(c["split"]) == {"calibration", "internal"}
    assert "30% of the patients to 'calibration'" in (data.split_rule or "")
    assert "seed 4" in (data.split_rule or "")


def test_the_draw_is_seeded_and_does_not_depend_on_the_salt() -> None:
    a = assign_splits(_data(salt="a"), seed=1).cohort["split"].tolist()
    b = assign_splits(_data(salt="zz"), seed=1).cohort["split"].tolist()
    c = assign_splits(_data(salt="a"), seed=2).cohort["split"].tolist()
    assert a == b and a != c


def test_external_by_column_takes_whole_patients() -> None:
    data = _data()
    # One patient scanned on two vendors: all of them goes external.
    first = data.cohort.index[data.cohort["patient_key"] == "a000"]
    cohort = data.cohort.copy()
    cohort.loc[first[0], "manufacturer"] = "Philips"
    if len(first) > 1:
        cohort.loc[first[1:], "manufacturer"] = "GE"
    out = assign_splits(dataclasses.replace(data, cohort=cohort),
                        external={"manufacturer": ["Philips"]}).cohort  # fmt: skip
    assert (out.loc[cohort["manufacturer"] == "Philips", "split"] == "external").all()
    assert (out.loc[first, "split"] == "external").all()
    assert set(out.loc[out["split"] != "external", "manufacturer"]) <= {"GE", "Siemens"}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"calibration_fraction": 1.2}, SpecError, r"calibration_fraction must be in \(0, 1\)"),
        ({"external": {"vendor": ["GE"]}}, SpecError, "names column 'vendor'"),
        ({"external": {"manufacturer": ["Phillips"]}}, SpecError, "lists \\['Phillips'\\]"),
        (
            {"external": {"manufacturer": ["GE", "Siemens", "Philips"]}},
            DataError,
            "left 'calibration' empty",
        ),
    ],
)
def test_bad_rules_are_refused(kwargs: dict[str, object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        assign_splits(_data(), **kwargs)  # type: ignore[arg-type]


def test_given_splits_are_never_overwritten() -> None:
    data = assign_splits(_data())
    assert has_splits(data.cohort)
    with pytest.raises(SpecError, match="already assign splits"):
        assign_splits(data)


def test_validate_without_a_split_column(demo_run: Path, tmp_path: Path) -> None:
    """Labels keyed by case with no split column: medval splits, records the rule, runs."""
    for part in ("cohort", "model.pt", "medval.toml"):
        src = demo_run / part
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, tmp_path / part)
    labels = pd.read_csv(tmp_path / "cohort" / "labels.csv")
    labels.drop(columns="split").to_csv(tmp_path / "cohort" / "labels.csv", index=False)
    spec = tmp_path / "medval.toml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace(
            "[output]", '[splits]\nexternal = { manufacturer = ["Cygnus Systems"] }\n\n[output]'
        ),
        encoding="utf-8",
    )
    code = main(["validate", str(spec), "--out", str(tmp_path / "out"), "--quiet"])
    assert code in (0, 1)
    r = ValidationResult.read_json(tmp_path / "out" / "result.json")
    assert r.values["evaluation.splits"] == ["internal", "external"]
    assert r.values["cohort.split_rule"].startswith("automatic: patient-level")
    assert "manufacturer in ['Cygnus Systems']" in r.values["cohort.split_rule"]
    assert r.values["split.external.cohort.n_cases"] == 181
    log = (tmp_path / "out" / "run.log").read_text(encoding="utf-8")
    assert "splits assigned by medval" in log
