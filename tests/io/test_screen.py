"""One bad file never stops a run: the crafted corpus, the decode check, the share rule."""

from __future__ import annotations

import csv
import pathlib
from collections.abc import Callable

import pytest

from medval import io
from medval._errors import DataError, InputError

from ._crafted import CRAFTED

WriteDicom = Callable[..., pathlib.Path]
DECODE = [name for name, c in CRAFTED.items() if c.stage == "decode"]


def _reason(root: pathlib.Path) -> tuple[str, str]:
    """(stage, reason) of the one file under ``root``: the header scan, else the decode check."""
    scan = io.read_dicom_cohort(root, salt="s")
    if scan.exclusions:
        return "scan", scan.exclusions[0].reason
    rels = list(scan.paths)
    dataset = io.DicomDataset([scan.paths[r] for r in rels], rels, names=rels, size=8)
    failed = io.decode_check(dataset)
    return "decode", failed.get(rels[0], "decoded")


@pytest.mark.parametrize("name", list(CRAFTED))
def test_each_crafted_file_alone_is_excluded_with_its_reason(
    tmp_path: pathlib.Path, name: str
) -> None:
    crafted = CRAFTED[name]
    root = tmp_path / "DOE_JOHN_MRN123" / "dicom"
    root.mkdir(parents=True)
    crafted.build(root / name)
    stage, reason = _reason(root)
    assert (stage, reason[: len(crafted.reason)]) == (crafted.stage, crafted.reason), reason
    assert "DOE_JOHN" not in reason and str(tmp_path) not in reason


def test_the_decode_reason_names_the_error_class(tmp_path: pathlib.Path) -> None:
    CRAFTED["bits_allocated_8.dcm"].build(tmp_path / "b.dcm")
    dataset = io.DicomDataset([tmp_path / "b.dcm"], ["b"])
    reason = io.decode_check(dataset)["b"]
    assert reason.startswith("cannot be decoded: ValueError: A (0028,0101) 'Bits Stored'")
    assert len(reason) < 160


def test_a_step_that_fails_on_one_file_excludes_it(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom
) -> None:
    good = dicom_writer(tmp_path / "w.dcm", WindowCenter="100", WindowWidth="200")
    bare = dicom_writer(tmp_path / "n.dcm")  # no window of its own
    pipeline = io.Pipeline([io.Window(voi_lut=True)])
    dataset = io.DicomDataset([good, bare], ["w", "n"], pipeline=pipeline, names=["a/w", "a/n"])
    failed = io.decode_check(dataset)
    assert list(failed) == ["n"]
    assert failed["n"].startswith("cannot be preprocessed: DataError: ")
    assert "WindowCenter/WindowWidth" in failed["n"]


def test_the_error_of_an_undecodable_file_names_it_relative(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "DOE_JOHN" / "x.dcm"
    path.parent.mkdir()
    CRAFTED["jpeg_corrupt.dcm"].build(path)
    with pytest.raises(DataError, match=r"DICOM file 'site/x\.dcm': pixel data cannot be") as e:
        io.read_image(path, name="site/x.dcm")
    assert "DOE_JOHN" not in str(e.value)
    with pytest.raises(DataError, match=r"DICOM file 'x\.dcm'") as e:
        io.DicomDataset([path], ["c"])[0]
    assert "DOE_JOHN" not in str(e.value)


def _cohort(tmp_path: pathlib.Path, dicom_writer: WriteDicom, bad: list[str]) -> io.CohortData:
    """Two good files and the ``bad`` crafted ones, all labelled, split 'test'."""
    root = tmp_path / "dicom"
    dicom_writer(root / "good" / "g1.dcm", patient_id="P1")
    dicom_writer(root / "good" / "g2.dcm", patient_id="P2")
    (root / "bad").mkdir()
    for name in bad:
        CRAFTED[name].build(root / "bad" / name)
    files = ["good/g1.dcm", "good/g2.dcm", *(f"bad/{n}" for n in bad)]
    with (tmp_path / "labels.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["case_id", "file", "label", "split"])
        for i, rel in enumerate(files):
            writer.writerow([f"c{i}", rel, i % 2, "test"])
    return io.load_cohort(root, tmp_path / "labels.csv", class_names=["a", "b"], salt="s")


def test_failed_cases_move_from_the_cohort_to_the_exclusions(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom
) -> None:
    data = _cohort(tmp_path, dicom_writer, [*DECODE, "rows_zero.dcm"])
    ids = list(data.cohort.index)
    assert ids == ["c0", "c1", *(f"c{i + 2}" for i in range(len(DECODE)))]
    assert data.files["c0"] == "good/g1.dcm"
    dataset = io.DicomDataset([data.paths[c] for c in ids], ids, size=8)
    failed = io.decode_check(dataset)
    assert list(failed) == ids[2:]
    kept = io.exclude_cases(data, failed)
    assert list(kept.cohort.index) == ["c0", "c1"]
    assert set(kept.paths) == set(kept.files) == {"c0", "c1"}
    assert [e.file for e in kept.exclusions] == sorted(e.file for e in kept.exclusions)
    by_file = {e.file: e for e in kept.exclusions}
    assert by_file["bad/rows_zero.dcm"].case_id == f"c{len(DECODE) + 2}"
    for case, reason in failed.items():
        assert by_file[data.files[case]].case_id == case
        assert by_file[data.files[case]].reason == reason
    assert io.excluded_share(kept) == (len(DECODE) + 1, len(DECODE) + 3)
    assert io.exclude_cases(kept, {}) is kept


def test_exclude_cases_refuses_unknown_ids(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom
) -> None:
    data = _cohort(tmp_path, dicom_writer, [])
    with pytest.raises(InputError, match=r"case ids not in the cohort: \['nope'\]"):
        io.exclude_cases(data, {"nope": "cannot be decoded: x"})


def test_the_share_rule(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    data = _cohort(tmp_path, dicom_writer, ["rows_zero.dcm", "columns_zero.dcm"])
    assert io.excluded_share(data) == (2, 4)
    io.check_excluded_fraction(data, max_fraction=0.5)  # half: the run goes on
    with pytest.raises(
        DataError,
        match=r"2 of the 4 labelled files \(50%\) cannot be used, more than "
        r"\[data\] max_excluded_fraction = 0.4 allows.*'invalid image geometry' \(2\)",
    ):
        io.check_excluded_fraction(data, max_fraction=0.4)
    with pytest.raises(InputError, match=r"max_fraction must be in \[0, 1\]; got 1.5"):
        io.check_excluded_fraction(data, max_fraction=1.5)


def test_unlabelled_bad_files_do_not_count(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom
) -> None:
    data = _cohort(tmp_path, dicom_writer, [])
    CRAFTED["rows_zero.dcm"].build(tmp_path / "dicom" / "junk.dcm")
    again = io.load_cohort(tmp_path / "dicom", tmp_path / "labels.csv", class_names=["a", "b"])
    assert len(again.exclusions) == len(data.exclusions) + 1
    assert io.excluded_share(again) == (0, 2)
