"""``medval register`` end to end: a small DICOM cohort, a metadata table, a segmentation set."""

from __future__ import annotations

import csv
import datetime
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medval.cli import main
from medval.gate import read_spec
from medval.integrity import REGISTRATION_FILE, read_registration
from medval.run import check_registration, read_data, register_spec, spec_manifests

from ..integrity._specs import BASE
from ..io._series import write_series

SPEC = (
    BASE
    + """[[criteria]]
name = "external-auroc"
key = "split.external.discrimination.auroc"
op = ">="
threshold = {threshold}
"""
)
NOW = datetime.datetime(2026, 1, 31, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medval.demo import write_cohort

    root = tmp_path_factory.mktemp("register") / "cohort"
    write_cohort(root, seed=0, n_patients=(4, 4, 4))
    return root


@pytest.fixture
def folder(tmp_path: Path, cohort: Path) -> Path:
    """A spec folder holding its own copy of the cohort (registrations are written into it)."""
    shutil.copytree(cohort, tmp_path / "cohort")
    _spec(tmp_path)
    return tmp_path


def _spec(folder: Path, threshold: float = 0.85, extra: str = "", name: str = "medval") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(SPEC.format(threshold=threshold, extra=extra), encoding="utf-8")
    return path


def test_register_records_protocol_and_splits_without_ids_or_paths(folder: Path) -> None:
    spec = read_spec(folder / "medval.toml")
    reg, path = register_spec(spec, now=NOW)
    assert path == (folder / "cohort" / REGISTRATION_FILE).resolve()
    assert reg.registered_at == "2026-01-31T12:00:00Z"
    assert (reg.strict, reg.usage_budget, reg.supersedes) == (False, 20, ())
    counts = read_data(spec, salt=None, progress=False).cohort["split"].value_counts()
    assert {k: v["n_cases"] for k, v in reg.splits.items()} == {
        "internal": counts["internal"],
        "external": counts["external"],
    }
    text = path.read_text(encoding="utf-8")
    assert str(folder) not in text and str(folder.resolve()) not in text
    with (folder / "cohort" / "labels.csv").open(encoding="utf-8") as f:
        ids = [row["case_id"] for row in csv.DictReader(f)]
    assert not any(i in text for i in ids)
    assert read_registration(path, signing_key=None) == reg
    check = check_registration(spec)
    assert (check.found, check.deviations, check.strict, check.refuses) == (True, (), False, False)
    assert check.shown == "cohort/medval-registration.json"


def test_a_relabelled_case_and_a_loosened_criterion_are_deviations(folder: Path) -> None:
    register_spec(read_spec(folder / "medval.toml"), strict=True)
    labels = folder / "cohort" / "labels.csv"
    rows = labels.read_text(encoding="utf-8").splitlines()
    k = next(i for i, r in enumerate(rows) if r.endswith(",external"))
    cells = rows[k].split(",")
    cells[2] = "1" if cells[2] == "0" else "0"
    rows[k] = ",".join(cells)
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    loosened = read_spec(_spec(folder, threshold=0.8, name="later"))
    data = read_data(loosened, salt=None, progress=False)
    check = check_registration(loosened, data)
    assert [d.text for d in check.deviations] == [
        "threshold for external-auroc lowered from 0.85 to 0.8 after registration",
        "test split 'external' changed after registration: 6 cases then, 6 now "
        "(the same count: other cases, labels or image bytes)",
    ]
    assert [d.kind for d in check.loosened] == ["criterion-threshold"]
    assert check.strict and check.refuses


def test_changed_image_bytes_change_the_split(folder: Path) -> None:
    spec = read_spec(folder / "medval.toml")
    before = spec_manifests(spec)
    with (folder / "cohort" / "labels.csv").open(encoding="utf-8") as f:
        rel = next(r["file"] for r in csv.DictReader(f) if r["split"] == "external")
    image = folder / "cohort" / "dicom" / rel
    data = bytearray(image.read_bytes())
    data[-1] ^= 0xFF  # the last pixel byte: the file stays readable
    image.write_bytes(bytes(data))
    after = spec_manifests(spec)
    assert after["external"].n_cases == before["external"].n_cases
    assert after["external"].manifest_sha256 != before["external"].manifest_sha256
    split = "external"
    assert {s: m for s, m in after.items() if s != split} == {
        s: m for s, m in before.items() if s != split
    }


def test_strict_spec_without_registration_refuses(folder: Path) -> None:
    spec = read_spec(_spec(folder, extra="[gate]\nstrict_registration = true", name="strict"))
    check = check_registration(spec, splits={})
    assert (check.found, check.registration, check.strict, check.refuses) == (
        False, None, True, True,
    )  # fmt: skip


def test_cli_register_supersede_and_errors(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = str(folder / "medval.toml")
    monkeypatch.setenv("MEDVAL_SIGNING_KEY", "k1")
    assert main(["register", spec, "--strict", "--usage-budget", "7"]) == 0
    out = capsys.readouterr().out
    reg = read_registration(folder / "cohort" / REGISTRATION_FILE, signing_key=b"k1")
    assert f"protocol sha256: {reg.protocol_sha256}" in out
    assert "criteria: 1" in out and "split 'external': 6 cases" in out
    assert "signed with MEDVAL_SIGNING_KEY" in out and "strict" in out
    assert "medval-registration.json" in out and "Commit it" in out
    assert str(folder) not in out
    assert (reg.strict, reg.usage_budget) == (True, 7)
    assert main(["register", spec]) == 3
    assert "already exists" in capsys.readouterr().err
    assert main(["register", spec, "--supersede"]) == 0
    assert "supersedes the registration of" in capsys.readouterr().out
    new = read_registration(folder / "cohort" / REGISTRATION_FILE, signing_key=b"k1")
    assert new.supersedes[0]["registered_at"] == reg.registered_at
    assert main(["register", spec, "--supersede", "--usage-budget", "0"]) == 2
    assert "--usage-budget must be an integer >= 1" in capsys.readouterr().err
    monkeypatch.setenv("MEDVAL_SIGNING_KEY", "k2")
    with pytest.raises(Exception, match="signature does not match"):
        check_registration(read_spec(spec), signing_key=b"k2")
    assert main(["register", str(folder / "missing.toml")]) == 2


def test_register_a_metadata_table(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    rows = ["case_id,label,split,manufacturer,patient_id"] + [
        f"c{i},{i % 2},{('internal', 'external', 'calibration')[i % 3]},GE,MRN{i}"
        for i in range(12)
    ]
    table = tmp_path / "data" / "cases.csv"
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")
    text = SPEC.format(threshold=0.85, extra="").replace(
        'dicom_dir = "cohort/dicom"\nlabels = "cohort/labels.csv"', 'table = "data/cases.csv"'
    )
    (tmp_path / "medval.toml").write_text(text, encoding="utf-8")
    spec = read_spec(tmp_path / "medval.toml")
    reg, path = register_spec(spec)
    assert path.parent == table.parent.resolve()
    assert {k: v["n_cases"] for k, v in reg.splits.items()} == {
        "internal": 4, "external": 4, "calibration": 4,
    }  # fmt: skip
    assert "MRN" not in path.read_text() and "c11" not in path.read_text()
    assert check_registration(spec).deviations == ()  # salted keys differ run to run
    table.write_text("\n".join([*rows[:-1], "c11,1,calibration,Siemens,MRN11"]) + "\n")
    (dev,) = check_registration(spec).deviations
    assert dev.text.startswith("calibration split 'calibration' changed after registration")


def test_register_a_segmentation_set(tmp_path: Path) -> None:
    cases = [f"site/p{i}" for i in range(4)]
    for i, case in enumerate(cases):
        write_series(tmp_path / "data" / "dicom" / case, n=2, rows=4, cols=4, seed=i)
        (tmp_path / "data" / "masks" / "site").mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "data" / "masks" / f"{case}.npy", np.zeros((2, 4, 4), np.uint8))
    lines = ["case_id,split", *(f"{c},{'cal' if i < 2 else 'test'}" for i, c in enumerate(cases))]
    (tmp_path / "data" / "cases.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "medval.toml").write_text(
        '[task]\ntype = "segmentation"\nstructures = { tumour = 1 }\n'
        '[data]\ndicom_dir = "data/dicom"\nmasks = "data/masks"\ncases = "data/cases.csv"\n'
        '[model]\npredictions = "data/maps"\n'
        '[analysis]\ncalibration_split = "cal"\ntest_splits = ["test"]\n',
        encoding="utf-8",
    )
    spec = read_spec(tmp_path / "medval.toml")
    reg, path = register_spec(spec)
    assert {k: v["n_cases"] for k, v in reg.splits.items()} == {"test": 2, "cal": 2}
    assert "site/p" not in path.read_text()
    np.save(tmp_path / "data" / "masks" / "site" / "p3.npy", np.ones((2, 4, 4), np.uint8))
    (dev,) = check_registration(spec).deviations
    assert dev.text == (
        "test split 'test' changed after registration: 2 cases then, 2 now "
        "(the same count: other cases, labels or image bytes)"
    )
    assert json.loads(path.read_text())["format"] == "medval-registration/1"
