"""A verdict's reason never carries an absolute path (folder names can identify people)."""

from __future__ import annotations

import pytest

from medval import ValidationResult
from medval.gate import Criterion, judge
from medval.gate._judge import _without_paths


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cannot read /home/alice/studies/x.csv now", "cannot read x.csv now"),
        ("file '/data/DOE_JOHN/a.dcm' is bad", "file 'a.dcm' is bad"),
        ("C:\\Users\\bob\\model.pt is missing", "model.pt is missing"),
        ("see ~/work/run/result.json", "see result.json"),
        # Not paths: left alone.
        ("key split.external.discrimination.auroc", "key split.external.discrimination.auroc"),
        ("ratio 1/2/3 and a/b/c", "ratio 1/2/3 and a/b/c"),
    ],
)
def test_absolute_paths_are_cut_to_their_last_part(text: str, expected: str) -> None:
    assert _without_paths(text) == expected


def test_an_analysis_error_reason_keeps_no_folder() -> None:
    result = ValidationResult()
    result.values["analysis.errors"] = {
        "noninferiority.auroc": "cannot read /home/alice/released/predictions.csv"
    }
    criterion = Criterion(name="ni", key="noninferiority.auroc.difference", op=">",
                          threshold=-0.02)  # fmt: skip
    (verdict,) = judge(result, [criterion])
    assert verdict.status == "error"
    assert "/home/alice" not in verdict.reason and "predictions.csv" in verdict.reason
