"""Labels tables and the scan-to-Cohort join."""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Callable

import pytest

from medval._errors import DataError
from medval._types import check_cohort
from medval.io import build_cohort, load_cohort, read_dicom_cohort, read_labels

WriteDicom = Callable[..., pathlib.Path]
CLASSES = ("normal", "abnormal")


@pytest.fixture
def root(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> pathlib.Path:
    base = tmp_path / "dicom"
    dicom_writer(base / "s1" / "a.dcm", patient_id="P1")
    dicom_writer(base / "s1" / "b.dcm", patient_id="P1")
    dicom_writer(base / "s2" / "c.dcm", patient_id="P2")
    dicom_writer(base / "s2" / "unlabelled.dcm", patient_id="P3")
    dicom_writer(base / "s2" / "nopid.dcm", patient_id=None)
    (base / "readme.txt").write_text("hello")
    return base


def _csv(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return path


GOOD = (
    "case_id,file,label,split,notes\n"
    "case-1,s1/a.dcm,normal,train,anything\n"
    "case-2,./s1/b.dcm,1,external,\n"
    "\n"
    "case-3,s2\\c.dcm,abnormal,,\n"
    "case-4,s2/nopid.dcm,0,train,\n"
)


def test_read_labels(tmp_path: pathlib.Path) -> None:
    path = _csv(tmp_path, GOOD)
    frame = read_labels(path, class_names=CLASSES)
    assert frame["case_id"].tolist() == ["case-1", "case-2", "case-3", "case-4"]
    assert frame["file"].tolist() == ["s1/a.dcm", "s1/b.dcm", "s2/c.dcm", "s2/nopid.dcm"]
    assert frame["label"].tolist() == [0, 1, 1, 0]
    assert frame["split"].tolist() == ["train", "external", "all", "train"]
    assert frame["line"].tolist() == [2, 3, 5, 6]
    assert "notes" not in frame.columns
    assert frame.attrs["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_cohort(tmp_path: pathlib.Path, root: pathlib.Path) -> None:
    labels_path = _csv(tmp_path, GOOD)
    data = load_cohort(root, labels_path, class_names=CLASSES, salt="s")
    cohort = data.cohort
    check_cohort(cohort)
    assert cohort.index.name == "case_id"
    assert cohort.index.tolist() == ["case-1", "case-2", "case-3"]
    assert cohort["label"].tolist() == [0, 1, 1]
    assert cohort["split"].tolist() == ["train", "external", "all"]
    assert cohort.loc["case-1", "patient_key"] == cohort.loc["case-2", "patient_key"]
    assert cohort.loc["case-1", "patient_key"] != cohort.loc["case-3", "patient_key"]
    assert "file" not in cohort.columns
    assert str(root) not in cohort.to_csv()
    assert data.paths == {
        "case-1": (root / "s1" / "a.dcm").resolve(),
        "case-2": (root / "s1" / "b.dcm").resolve(),
        "case-3": (root / "s2" / "c.dcm").resolve(),
    }
    reasons = {e.file: (e.reason, e.case_id) for e in data.exclusions}
    assert reasons == {
        "readme.txt": ("not a DICOM file", None),
        "s2/nopid.dcm": ("missing required tag PatientID", "case-4"),
        "s2/unlabelled.dcm": ("no row in labels table", None),
    }
    assert data.n_files == 6 == len(cohort) + len(data.exclusions)
    assert data.deid_summary["DeidentificationMethod"] == {"absent": 3}


def test_manifest_includes_labels(tmp_path: pathlib.Path, root: pathlib.Path) -> None:
    scan = read_dicom_cohort(root, salt="s")
    labels_path = _csv(tmp_path, GOOD)
    first = build_cohort(scan, read_labels(labels_path, class_names=CLASSES))
    assert first.manifest_sha256 != scan.manifest_sha256
    labels_path.write_text(GOOD.replace("train,anything", "train,changed"))
    second = build_cohort(scan, read_labels(labels_path, class_names=CLASSES))
    assert second.manifest_sha256 != first.manifest_sha256
    assert second.cohort.equals(first.cohort)


def test_labels_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataError, match=r"labels table .*nope\.csv' does not exist"):
        read_labels(tmp_path / "nope.csv", class_names=CLASSES)
    with pytest.raises(DataError, match="is a folder"):
        read_labels(tmp_path, class_names=CLASSES)


def test_labels_missing_columns(tmp_path: pathlib.Path) -> None:
    path = _csv(tmp_path, "case_id,path,diagnosis\nc1,a.dcm,normal\n")
    with pytest.raises(DataError, match=r"lacks required column\(s\) \['label'\]"):
        read_labels(path, class_names=CLASSES)
    path = _csv(tmp_path, "file,label\na.dcm,normal\n")
    with pytest.raises(DataError, match=r"lacks required column\(s\) \['case_id'\]"):
        read_labels(path, class_names=CLASSES)
    path = _csv(tmp_path, "image,label\na.dcm,normal\n")
    with pytest.raises(DataError, match=r"lacks a key column.*'file'.*'case_id'.*PatientID"):
        read_labels(path, class_names=CLASSES)


def test_labels_duplicate_case_id(tmp_path: pathlib.Path) -> None:
    text = "case_id,file,label\nc1,a.dcm,0\nc2,b.dcm,0\nc1,c.dcm,1\n"
    with pytest.raises(DataError, match=r"duplicate case_id values: 'c1' \(rows 2, 4\)"):
        read_labels(_csv(tmp_path, text), class_names=CLASSES)


def test_labels_duplicate_file(tmp_path: pathlib.Path) -> None:
    text = "case_id,file,label\nc1,a.dcm,0\nc2,./a.dcm,0\n"
    with pytest.raises(DataError, match=r"duplicate file values: 'a.dcm' \(rows 2, 3\)"):
        read_labels(_csv(tmp_path, text), class_names=CLASSES)


def test_labels_bad_label(tmp_path: pathlib.Path) -> None:
    text = "case_id,file,label\nc1,a.dcm,normal\nc2,b.dcm,tumour\nc3,c.dcm,2\n"
    with pytest.raises(
        DataError,
        match=r"field 'label' .*row 3: 'tumour', row 4: '2'.*allowed: \['normal', 'abnormal'\]",
    ):
        read_labels(_csv(tmp_path, text), class_names=CLASSES)


def test_labels_empty_case_id(tmp_path: pathlib.Path) -> None:
    text = "case_id,file,label\nc1,a.dcm,0\n ,b.dcm,0\n"
    with pytest.raises(DataError, match=r"empty case_id on row\(s\) 3"):
        read_labels(_csv(tmp_path, text), class_names=CLASSES)


def test_labels_empty_file(tmp_path: pathlib.Path) -> None:
    text = "case_id,file,label\nc1,,0\n"
    with pytest.raises(DataError, match=r"empty file on row\(s\) 2"):
        read_labels(_csv(tmp_path, text), class_names=CLASSES)


def test_labels_need_two_classes(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataError, match="at least 2 classes"):
        read_labels(_csv(tmp_path, "case_id,file,label\n"), class_names=["only"])


def test_unmatched_labels_are_listed(tmp_path: pathlib.Path, root: pathlib.Path) -> None:
    text = "case_id,file,label\nc1,s1/a.dcm,0\nc2,s9/missing.dcm,1\nc3,A.DCM,0\n"
    data = load_cohort(root, _csv(tmp_path, text), class_names=CLASSES, salt="s")
    assert data.cohort.index.tolist() == ["c1"]
    assert [(u.line, u.key, u.value) for u in data.unmatched_labels] == [
        (3, "file", "s9/missing.dcm"),
        (4, "file", "A.DCM"),
    ]


def test_no_label_matches(tmp_path: pathlib.Path, root: pathlib.Path) -> None:
    text = "case_id,file,label\nc2,s9/missing.dcm,1\nc3,A.DCM,0\n"
    with pytest.raises(
        DataError,
        match=r"none of its 2 rows matches a file .* by 'file' \(row 2: 's9/missing.dcm'; "
        r"row 3: 'A.DCM'\); paths must be relative",
    ):
        load_cohort(root, _csv(tmp_path, text), class_names=CLASSES, salt="s")


def test_numeric_class_names(tmp_path: pathlib.Path, root: pathlib.Path) -> None:
    # Class names that look like indices resolve as names first.
    text = "case_id,file,label\nc1,s1/a.dcm,1\nc2,s1/b.dcm,0\n"
    data = load_cohort(root, _csv(tmp_path, text), class_names=["1", "0"], salt="s")
    assert data.cohort["label"].tolist() == [0, 1]
    assert data.cohort["split"].tolist() == ["all", "all"]


@pytest.mark.parametrize("text", ["case_id,file,label\n", "case_id,file,label\n,,\n\n"])
def test_header_only_labels_say_so(tmp_path: pathlib.Path, text: str) -> None:
    # It used to pass and fail later with "every labelled case is in split 'train'".
    with pytest.raises(DataError, match=r"labels\.csv' has a header but no rows; add one row"):
        read_labels(_csv(tmp_path, text), class_names=CLASSES)


def test_a_long_bad_label_is_quoted_short(tmp_path: pathlib.Path) -> None:
    text = "case_id,file,label\nc1,a.dcm," + "x" * 140_000 + "\n"
    with pytest.raises(DataError, match=r"row 2: 'x+\.\.\. \(140000 characters\)") as info:
        read_labels(_csv(tmp_path, text), class_names=CLASSES)
    assert len(str(info.value)) < 400


def test_a_label_naming_a_pipe_is_an_excluded_case(
    tmp_path: pathlib.Path, root: pathlib.Path
) -> None:
    import os

    os.mkfifo(root / "s2" / "pipe.dcm")
    text = "case_id,file,label\nc1,s1/a.dcm,0\nc2,s2/pipe.dcm,1\n"
    data = load_cohort(root, _csv(tmp_path, text), class_names=CLASSES, salt="s")
    assert data.unmatched_labels == ()
    pipe = next(e for e in data.exclusions if e.file == "s2/pipe.dcm")
    assert (pipe.case_id, pipe.reason) == ("c2", "not a regular file (named pipe)")


def test_identifier_keys_agree_with_headers_holding_control_characters(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom
) -> None:
    base = tmp_path / "dicom"
    dicom_writer(base / "a.dcm", patient_id="P\x1b1")
    dicom_writer(base / "b.dcm", patient_id="P2")
    text = "PatientID,label,split\nP\x1b1,0,internal\nP2,1,internal\n"
    data = load_cohort(base, _csv(tmp_path, text), class_names=CLASSES, salt="s")
    assert data.unmatched_labels == () and len(data.cohort) == 2
