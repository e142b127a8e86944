from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from medval._errors import InputError
from medval.shift import leakage_report, pixel_duplicates


def test_overlap_counts_and_examples() -> None:
    ref = {"patient_key": [f"pt-{i:02d}" for i in range(20)], "study_key": ["st-1", "st-2"]}
    test = {"patient_key": [f"pt-{i:02d}" for i in range(12, 30)] + [None], "study_key": ["st-3"]}
    out = leakage_report(ref, test)
    assert out["patient_key"]["n_overlap"] == 8
    assert out["patient_key"]["examples"] == [f"pt-{i:02d}" for i in range(12, 17)]
    assert out["patient_key"]["n_test"] == 18
    assert out["study_key"] == {"n_reference": 2, "n_test": 1, "n_overlap": 0, "examples": []}
    assert out["leak"]


def test_demo_splits_do_not_leak(demo_cohort: Any) -> None:
    f = demo_cohort
    train, internal = f[f["split"] == "train"], f[f["split"] == "internal"]
    keys = ("patient_key", "study_key")
    out = leakage_report({k: train[k] for k in keys}, {k: internal[k] for k in keys})
    assert not out["leak"] and out["patient_key"]["n_overlap"] == 0
    leaked = leakage_report(
        {"patient_key": f["patient_key"]}, {"patient_key": train["patient_key"]}
    )
    assert leaked["leak"]


def test_leakage_errors() -> None:
    with pytest.raises(InputError, match="Unknown leakage keys \\['PatientID'\\]; valid"):
        leakage_report({"PatientID": ["a"]}, {"PatientID": ["a"]})
    with pytest.raises(InputError, match="only one split"):
        leakage_report({"patient_key": ["a"]}, {"study_key": ["a"]})
    with pytest.raises(InputError, match="at least one"):
        leakage_report({}, {})


def test_pixel_duplicates(demo_dir: Path, tmp_path: Path) -> None:
    files = sorted((demo_dir / "dicom" / "site-1").rglob("img-*.dcm"))[:6]
    files = [f for f in files if "trunc" not in f.name][:4]
    copy = tmp_path / "copy.dcm"
    shutil.copy(files[0], copy)
    (tmp_path / "junk.txt").write_text("not dicom")
    groups = pixel_duplicates([*files, copy, tmp_path / "junk.txt"])
    assert groups == [tuple(sorted((str(files[0]), str(copy))))]
    named = pixel_duplicates({"c1": files[0], "c2": files[1], "c9": copy})
    assert named == [("c1", "c9")]
    assert pixel_duplicates(files) == []
