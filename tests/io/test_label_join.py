"""Labels keyed by case id (file name), by DICOM identifiers, and above the image level."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import numpy as np
import pytest

from medval._errors import DataError
from medval._types import Predictions
from medval.io import aggregate_scores, aggregate_units, case_name, load_cohort

WriteDicom = Callable[..., pathlib.Path]
CLASSES = ("normal", "abnormal")
STUDY_A, STUDY_B = "1.2.826.0.1.3680043.8.498.201", "1.2.826.0.1.3680043.8.498.202"


@pytest.fixture
def root(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> pathlib.Path:
    """Two patients, two studies; file names are case ids (one with a UID-like name)."""
    base = tmp_path / "dicom"
    uids = {"a": "1.2.3.41", "b": "1.2.3.42", "c": "1.2.3.43", "d": "1.2.3.44"}
    dicom_writer(base / "p1" / "case_0001.dcm", patient_id="MRN-P1", StudyInstanceUID=STUDY_A,
                 SOPInstanceUID=uids["a"])  # fmt: skip
    dicom_writer(base / "p1" / "case_0002.DCM", patient_id="MRN-P1", StudyInstanceUID=STUDY_A,
                 SOPInstanceUID=uids["b"])  # fmt: skip
    dicom_writer(base / "p2" / "1.2.840.99", patient_id="MRN-P2", StudyInstanceUID=STUDY_B,
                 SOPInstanceUID=uids["c"])  # fmt: skip
    dicom_writer(base / "p2" / "case_0004.dcm", patient_id="MRN-P2", StudyInstanceUID=STUDY_B,
                 SOPInstanceUID=uids["d"])  # fmt: skip
    return base


def _csv(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return path


def test_case_name_rules() -> None:
    assert case_name("p1/case_0001.dcm") == "case_0001"
    assert case_name("p1/case_0002.DCM") == "case_0002"
    assert case_name("p2/1.2.840.99") == "1.2.840.99"  # a UID-named file keeps its dots
    assert case_name("p1/case_0001.dcm", "path") == "p1/case_0001"


def test_labels_keyed_by_file_stem(tmp_path: pathlib.Path, root: pathlib.Path) -> None:
    text = "case_id,label\ncase_0001,normal\ncase_0002,abnormal\n1.2.840.99,1\nghost,0\n"
    data = load_cohort(root, _csv(tmp_path, text), class_names=CLASSES, salt="s")
    assert data.label_key == "case_id" and data.unit == "image"
    assert data.cohort.index.tolist() == ["case_0001", "case_0002", "1.2.840.99"]
    assert data.cohort["label"].tolist() == [0, 1, 1]
    assert data.paths["case_0002"] == (root / "p1" / "case_0002.DCM").resolve()
    assert [(e.file, e.reason) for e in data.exclusions] == [
        ("p2/case_0004.dcm", "no row in labels table")
    ]
    assert [(u.line, u.value) for u in data.unmatched_labels] == [(5, "ghost")]


def test_labels_keyed_by_relative_path(tmp_path: pathlib.Path, root: pathlib.Path) -> None:
    text = "case_id,label\np1/case_0001,0\np2/case_0004,1\n"
    data = load_cohort(
        root, _csv(tmp_path, text), class_names=CLASSES, salt="s", case_id_from="path"
    )
    assert data.cohort.index.tolist() == ["p1/case_0001", "p2/case_0004"]
    with pytest.raises(DataError, match=r"none of its 2 rows .* case_id_from = 'stem'"):
        load_cohort(root, _csv(tmp_path, text), class_names=CLASSES, salt="s")


def test_ambiguous_file_stem(
    tmp_path: pathlib.Path, root: pathlib.Path, dicom_writer: WriteDicom
) -> None:
    dicom_writer(root / "p3" / "case_0001.dcm", patient_id="MRN-P3")
    text = "case_id,label\ncase_0001,0\n"
    with pytest.raises(
        DataError,
        match=r"row 2's case_id matches 2 files \(p1/case_0001.dcm, p3/case_0001.dcm\).*"
        r'case_id_from = "path"',
    ):
        load_cohort(root, _csv(tmp_path, text), class_names=CLASSES, salt="s")


def test_labels_keyed_by_sop_instance_uid(tmp_path: pathlib.Path, root: pathlib.Path) -> None:
    text = "SOPInstanceUID,label\n1.2.3.42,1\n1.2.3.41,0\n9.9.9,0\n"
    data = load_cohort(root, _csv(tmp_path, text), class_names=CLASSES, salt="s")
    assert data.unit == "image" and data.label_key == "SOPInstanceUID"
    assert data.cohort.index.tolist() == ["image-0001", "image-0002"]
    assert data.paths["image-0001"].name == "case_0002.DCM"
    # The identifier of an unmatched row is never shown, only its line.
    assert [(u.line, u.value) for u in data.unmatched_labels] == [(4, None)]
    text_out = repr(data) + data.cohort.to_csv() + repr(data.unmatched_labels)
    assert "1.2.3.4" not in text_out and "9.9.9" not in text_out


def test_study_labels_and_aggregation(tmp_path: pathlib.Path, root: pathlib.Path) -> None:
    text = f"StudyInstanceUID,label,split\n{STUDY_B},abnormal,test\n{STUDY_A},normal,test\n"
    data = load_cohort(root, _csv(tmp_path, text), class_names=CLASSES, salt="s")
    assert data.unit == "study"
    # Images carry their study's label; ids name the study, numbered in path order.
    assert data.cohort.index.tolist() == ["study-0001/1", "study-0001/2", "study-0002/1",
                                          "study-0002/2"]  # fmt: skip
    assert data.paths["study-0001/1"].name == "1.2.840.99"
    assert data.cohort["label"].tolist() == [1, 1, 0, 0]
    assert STUDY_A not in data.cohort.to_csv() + repr(data)
    p_pos = np.array([0.2, 0.9, 0.1, 0.3])
    mc = np.stack([np.column_stack([1 - p_pos * f, p_pos * f]) for f in (0.5, 1.0)])
    preds = Predictions(
        case_ids=data.cohort.index.to_numpy()[::-1],  # any order
        probabilities=np.column_stack([1 - p_pos, p_pos])[::-1],
        mc_probabilities=mc[:, ::-1],
        class_names=CLASSES,
    )
    for rule, expect in {
        "mean": [0.55, 0.2],
        "max": [0.9, 0.3],
        "noisy_or": [1 - 0.8 * 0.1, 1 - 0.9 * 0.7],
        "top_k_mean": [0.9, 0.3],  # k = 1
    }.items():
        units, unit_data = aggregate_units(preds, data, rule=rule, top_k=1)
        assert units.case_ids.tolist() == ["study-0001", "study-0002"]
        # The preds were reversed: study-0001's images are positions 3, 2.
        got = units.probabilities[:, 1]
        want = {"study-0001": expect[0], "study-0002": expect[1]}
        np.testing.assert_allclose(got, [want["study-0001"], want["study-0002"]])
        assert units.mc_probabilities is not None and units.mc_probabilities.shape == (2, 2, 2)
        assert unit_data.cohort.index.tolist() == ["study-0001", "study-0002"]
        assert unit_data.cohort["label"].tolist() == [1, 0]
        assert unit_data.n_images == 4 and unit_data.unit == "study"
    np.testing.assert_allclose(
        aggregate_units(preds, data)[0].mc_probabilities[0, :, 1], [0.275, 0.1]
    )


def test_patient_labels_split_must_agree(tmp_path: pathlib.Path, root: pathlib.Path) -> None:
    text = "PatientID,case_id,label\nMRN-P1,pat-a,0\nMRN-P2,pat-b,1\n"
    data = load_cohort(root, _csv(tmp_path, text), class_names=CLASSES, salt="s")
    assert data.unit == "patient"
    assert sorted(set(data.unit_of.values())) == ["pat-a", "pat-b"]
    assert "MRN" not in data.cohort.to_csv()
    cohort = data.cohort.copy()
    cohort.loc[cohort.index[0], "split"] = "other"
    import dataclasses

    broken = dataclasses.replace(data, cohort=cohort)
    preds = Predictions(
        case_ids=cohort.index.to_numpy(), probabilities=np.full((4, 2), 0.5), class_names=CLASSES
    )
    with pytest.raises(DataError, match=r"unit\(s\) \['pat-a'\] fall in more than one split"):
        aggregate_units(preds, broken)


def test_aggregate_scores_against_numpy() -> None:
    rng = np.random.default_rng(0)
    v = rng.uniform(size=7)
    assert aggregate_scores(v, "mean") == pytest.approx(v.mean())
    assert aggregate_scores(v, "max") == pytest.approx(v.max())
    assert aggregate_scores(v, "noisy_or") == pytest.approx(1 - np.prod(1 - v))
    assert aggregate_scores(v, "top_k_mean", 3) == pytest.approx(np.sort(v)[-3:].mean())
    assert aggregate_scores(v, "top_k_mean", 30) == pytest.approx(v.mean())
