"""The segmentation cohort: the cases CSV and one case per series folder."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from medval import io
from medval._errors import DataError

from ._series import write_series


def _cases(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    p = tmp_path / "cases.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_cases_csv_reads_ids_and_splits_with_a_bom(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "cases.csv"
    p.write_bytes("\ufeffcase_id,split,extra\nsite/a,internal,x\nsite/b/,external,y\n\n".encode())
    assert io.read_cases(p) == {"site/a": "internal", "site/b": "external"}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("case,split\na,internal\n", "no 'case_id' column"),
        ("case_id\na\n", "no 'split' column"),
        ("case_id,split\na,internal\na,external\n", "line 3 repeats case"),
        ("case_id,split\na,\n", "line 2: empty case_id or split"),
        ("case_id,split\na,internal,x\n", "line 2 has 3 fields"),
        ("case_id,split\n", "lists no case"),
    ],
)
def test_bad_cases_csv_is_a_data_error_naming_the_line(
    tmp_path: pathlib.Path, text: str, match: str
) -> None:
    with pytest.raises(DataError, match=match):
        io.read_cases(_cases(tmp_path, text))


def test_missing_cases_file_and_folder(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        io.read_cases(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        io.read_cases(tmp_path)


def test_series_folders_become_cases_and_mixed_series_are_excluded(
    tmp_path: pathlib.Path,
) -> None:
    root = tmp_path / "dicom"
    write_series(root / "site" / "a", n=4, seed=1)
    write_series(root / "site" / "b", n=4, seed=2)
    # A folder holding two series: excluded with its reason, the run goes on.
    write_series(root / "site" / "mixed", n=3, seed=3)
    other = write_series(tmp_path / "tmp2", n=3, seed=4)
    for i, f in enumerate(other):
        shutil.copy(f, root / "site" / "mixed" / f"other{i}.dcm")
    scan = io.read_dicom_cohort(root, salt="s")
    cases = {"site/a": "internal", "site/b": "external", "site/mixed": "internal",
             "site/gone": "internal"}  # fmt: skip
    found = io.series_cohort(scan, cases)
    assert list(found.cohort.index) == ["site/a", "site/b"]
    assert list(found.cohort["split"]) == ["internal", "external"]
    assert len(found.files["site/a"]) == 4
    reasons = {e.file: e.reason for e in found.exclusions}
    assert "2 series" in reasons["site/mixed"]
    assert found.unmatched_cases == ("site/gone",)
    assert "patient_key" in found.cohort.columns
