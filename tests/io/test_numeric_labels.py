"""Numeric labels (a regression target) and a regression model's predictions CSV."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from medval import DataError
from medval.io import read_cohort_table, read_labels, read_regression_predictions


def _csv(tmp_path: pathlib.Path, text: str, name: str = "labels.csv") -> pathlib.Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_numeric_labels_are_read_as_float(tmp_path: pathlib.Path) -> None:
    p = _csv(tmp_path, "case_id,label,split\na,12.5,internal\nb,200,external\n")
    frame = read_labels(p, class_names=None, value_range=(0, 240))
    assert frame["label"].dtype == np.float64
    assert frame["label"].tolist() == [12.5, 200.0]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("twelve", "row 3: 'twelve'"),
        ("", "row 3: ''"),
        ("nan", "row 3: 'nan'"),
        ("300", "row 3: '300'"),
    ],
)
def test_a_label_that_is_not_a_number_in_range_names_the_row(
    tmp_path: pathlib.Path, value: str, match: str
) -> None:
    p = _csv(tmp_path, f"case_id,label\na,10\nb,{value}\n")
    with pytest.raises(DataError, match=match) as exc:
        read_labels(p, class_names=None, value_range=(0, 240))
    assert "task.range [0, 240]" in str(exc.value)


def test_a_metadata_table_reads_numeric_labels(tmp_path: pathlib.Path) -> None:
    p = _csv(tmp_path, "case_id,label,manufacturer\na,1.5,X\nb,2,Y\n", "meta.csv")
    data = read_cohort_table(p, class_names=None)
    assert data.cohort["label"].tolist() == [1.5, 2.0]
    bad = _csv(tmp_path, "case_id,label\na,x\n", "bad.csv")
    with pytest.raises(DataError, match="row 2"):
        read_cohort_table(bad, class_names=None)


def test_regression_predictions_csv_with_sigma_becomes_variances(tmp_path: pathlib.Path) -> None:
    p = _csv(tmp_path, "case_id,prediction,sigma\na,10,2\nb,20,3\nz,1,1\n", "p.csv")
    preds, unmatched = read_regression_predictions(p, ["b", "a"], unit="months")
    assert preds.case_ids.tolist() == ["b", "a"]
    assert preds.values.tolist() == [20.0, 10.0] and preds.variances.tolist() == [9.0, 4.0]
    assert unmatched == 1 and preds.unit == "months"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("case_id,probability\na,0.5\n", "need columns case_id and prediction"),
        ("case_id,prediction,variance,sigma\na,1,1,1\n", "variance or sigma, not both"),
        ("case_id,prediction\na,1\na,2\n", "row 3: duplicate case_id"),
        ("case_id,prediction,variance\na,1,0\n", "row 2: variance '0' is not a finite number > 0"),
        ("case_id,prediction\na,inf\n", "row 2: prediction 'inf'"),
        ("case_id,prediction\nq,1\n", "lacks 1 of the 1 evaluated cases"),
    ],
)
def test_a_bad_predictions_csv_names_the_row_and_the_fix(
    tmp_path: pathlib.Path, text: str, match: str
) -> None:
    with pytest.raises(DataError, match=match):
        read_regression_predictions(_csv(tmp_path, text, "p.csv"), ["a"])
