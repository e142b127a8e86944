"""The terminal summary of a run: one row per evaluated split."""

from __future__ import annotations

import re

from medval import Estimate, ValidationResult
from medval.run import summary_table

from ..report._regression_result import regression_result


def _rows(text: str) -> list[list[str]]:
    """The table's cells: columns are separated by two spaces or more."""
    lines = text.splitlines()
    assert set(lines[1]) <= {"-", " "}
    return [re.split(r"\s{2,}", line.strip()) for line in [lines[0], *lines[2:]]]


def test_regression_rows_give_errors_in_the_unit_and_interval_coverage() -> None:
    rows = _rows(summary_table(regression_result()))
    assert rows[0] == [
        "split", "cases", "MAE (months)", "RMSE (months)", "bias (months)",
        "coverage (target 0.90)",
    ]  # fmt: skip
    assert rows[1] == [
        "internal", "200", "8.1 [7.4, 8.9]", "10.4", "0.3", "0.905 [0.857, 0.942]",
    ]  # fmt: skip
    assert rows[2] == [
        "external", "150", "14.2 [12.8, 15.7]", "18.2", "-4.2", "0.780 [0.710, 0.840]",
    ]  # fmt: skip


def test_regression_without_intervals_has_no_coverage_column() -> None:
    text = summary_table(regression_result(intervals=False))
    assert "coverage" not in text
    assert len(_rows(text)[1]) == 5


def test_an_undefined_regression_number_reads_n_a_and_split_names_stay_on_one_line() -> None:
    r = regression_result()
    r.values["evaluation.splits"] = ["internal", "ext\nernal"]
    r.values["split.ext\nernal.regression.n_cases"] = 1
    r.estimates["split.ext\nernal.regression.mae"] = Estimate(None, reason="one case")
    text = summary_table(r)
    assert len(text.splitlines()) == 4
    assert _rows(text)[2][2:5] == ["n/a", "n/a", "n/a"]


def test_classifier_and_segmentation_tables_are_unchanged() -> None:
    binary = ValidationResult(values={"evaluation.splits": ["test"], "cohort.n_cases": 80})
    binary.estimates["discrimination.auroc"] = Estimate(0.9, 0.85, 0.94, n=80)
    rows = _rows(summary_table(binary))
    assert rows[0][:3] == ["split", "cases", "AUROC"]
    assert rows[1][:3] == ["test", "80", "0.900 [0.850, 0.940]"]
    seg = ValidationResult(values={"task.kind": "segmentation", "evaluation.splits": ["test"],
                                   "segmentation.structures": ["liver"],
                                   "segmentation.liver.n_cases": 12})  # fmt: skip
    seg.estimates["segmentation.liver.dice"] = Estimate(0.91, 0.88, 0.93, n=12)
    rows = _rows(summary_table(seg))
    assert rows[0][:4] == ["split", "structure", "cases", "Dice"]
    assert rows[1][:4] == ["test", "liver", "12", "0.910 [0.880, 0.930]"]
