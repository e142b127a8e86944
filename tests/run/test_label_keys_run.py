"""A spec run with labels keyed by case id or by StudyInstanceUID, against hand joins."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from sklearn.metrics import roc_auc_score

from medval.run import run_spec

from .conftest import write_spec

MODEL = 'file = "model.pt"\nfactory = "medval.demo:make_model"'


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medval.demo import shipped_weights, write_cohort

    root = tmp_path_factory.mktemp("label-keys")
    # Enough patients for both classes in every split at the study level.
    write_cohort(root / "cohort", seed=3, n_patients=(20, 20, 20))
    shutil.copy(shipped_weights(), root / "model.pt")
    return root


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def test_case_id_labels_give_the_file_keyed_result(folder: Path) -> None:
    by_file = run_spec(write_spec(folder, "by-file", MODEL), out_dir=folder / "by-file", quiet=True)
    rows = _rows(folder / "cohort" / "labels.csv")
    # No file column, no case_id chosen by hand: the id is the path without .dcm.
    labels = folder / "by-path.csv"
    _write(labels, ["case_id", "label", "split"],
           [[r["file"][: -len(".dcm")], r["label"], r["split"]] for r in rows])  # fmt: skip
    spec = write_spec(folder, "by-path", MODEL, data='case_id_from = "path"')
    spec.write_text(spec.read_text().replace("cohort/labels.csv", labels.name))
    by_path = run_spec(spec, out_dir=folder / "by-path", quiet=True)
    assert by_path.result.values["cohort.label_key"] == "case_id"
    assert by_path.result.values["cohort.n_unmatched_labels"] == 0
    assert set(by_path.result.estimates) == set(by_file.result.estimates)
    for key, est in by_file.result.estimates.items():
        other = by_path.result.estimates[key]
        assert (other.value, other.low, other.high) == (est.value, est.low, est.high), key


def test_study_labels_aggregate_image_predictions(folder: Path) -> None:
    image_run = run_spec(write_spec(folder, "images", MODEL), out_dir=folder / "images", quiet=True)
    rows = _rows(folder / "cohort" / "labels.csv")
    study_of: dict[str, str] = {}
    for r in rows:
        ds = pydicom.dcmread(folder / "cohort" / "dicom" / r["file"], stop_before_pixels=True)
        study_of[r["case_id"]] = str(ds.StudyInstanceUID)
    studies: dict[str, tuple[str, str]] = {}
    for r in rows:  # every image of a demo study shares its label and split
        studies.setdefault(study_of[r["case_id"]], (r["label"], r["split"]))
    labels = folder / "studies.csv"
    _write(labels, ["StudyInstanceUID", "label", "split"],
           [[uid, lab, split] for uid, (lab, split) in studies.items()])  # fmt: skip
    spec = write_spec(folder, "studies", MODEL, data='aggregate = "max"')
    spec.write_text(spec.read_text().replace("cohort/labels.csv", labels.name))
    out = run_spec(spec, out_dir=folder / "studies", quiet=True)
    values = out.result.values
    assert values["cohort.unit"] == "study" and values["cohort.aggregation"] == "max"
    # The hand join: the image run's probabilities, max per study, on the test split.
    image_rows = _rows(folder / "images" / "predictions.csv")
    image_p = {r["case_id"]: float(r["probability"]) for r in image_rows}
    per_study: dict[str, list[float]] = {}
    for cid, p in image_p.items():
        per_study.setdefault(study_of[cid], []).append(p)
    for split, key in (("internal", "discrimination.auroc"),
                       ("external", "split.external.discrimination.auroc")):  # fmt: skip
        test = [uid for uid, (_, sp) in studies.items() if sp == split and uid in per_study]
        y = [int(studies[uid][0]) for uid in test]
        s = [max(per_study[uid]) for uid in test]
        got = out.result.estimates[key].value
        assert got == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert len(out.predictions.case_ids) == len(per_study)
    n_images = sum(len(v) for v in per_study.values())
    assert values["cohort.n_images"] == n_images > len(per_study)
    assert image_run.result.values["cohort.unit"] == "image"
    report = (folder / "studies" / "report.html").read_text(encoding="utf-8")
    assert "Unit of analysis: <strong>study</strong>" in report
    for uid in studies:  # identifiers never reach an output
        for path in (folder / "studies").iterdir():
            assert uid not in path.read_text(encoding="utf-8", errors="replace"), path.name
    assert not np.isnan(got)
