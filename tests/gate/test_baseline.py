"""Baseline predictions files and the paired non-inferiority section of the gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medval import DataError, ExitCode
from medval._result import ValidationResult
from medval.gate import (
    ANALYSIS_ERRORS,
    baseline_criterion,
    exit_code,
    judge,
    noninferiority_section,
    read_baseline_scores,
    read_prediction_scores,
    read_predictions_csv,
    write_predictions_csv,
)


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "baseline.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_baseline_scores_follow_the_candidate_order(tmp_path: Path) -> None:
    p = _csv(tmp_path, "case_id,probability,extra\nb,0.2,x\na,0.9,y\nz,0.5,w\n")
    np.testing.assert_array_equal(read_baseline_scores(p, ["a", "b"]), [0.9, 0.2])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("case_id,score\na,0.1\n", r"needs columns case_id and probability.*'score'\]"),
        ("case_id,probability\na,0.1\na,0.2\n", r"row 3: duplicate case_id 'a'"),
        ("case_id,probability\na,1.5\n", r"row 2: probability '1.5' is not a number in \[0, 1\]"),
        ("case_id,probability\na,high\n", r"row 2: probability 'high'"),
        ("case_id,probability\na,0.1\n", r"lack 1 of the 2 cases \(e\.g\. \['b'\]\); .* paired"),
        ("case_id,probability\nz,0.1\n", r"none of its 1 rows names one of the 2 evaluated cases"),
    ],
)  # fmt: skip
def test_bad_baseline_files_name_the_row(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        read_baseline_scores(_csv(tmp_path, text), ["a", "b"])


def test_a_byte_order_mark_is_accepted_like_the_labels_csv(tmp_path: Path) -> None:
    # Excel's "CSV UTF-8" starts with a BOM; it used to hide the case_id column.
    p = tmp_path / "bom.csv"
    p.write_bytes("case_id,probability\na,0.25\n".encode("utf-8-sig"))
    np.testing.assert_array_equal(read_baseline_scores(p, ["a"]), [0.25])
    assert read_prediction_scores(p) == {"a": 0.25}
    q = write_predictions_csv(tmp_path / "p.csv", ["a"], ["internal"], [1], [0.5])
    q.write_bytes(q.read_bytes().decode().encode("utf-8-sig"))
    assert list(read_predictions_csv(q, class_names=["n", "p"], positive_class="p").case_ids) == [
        "a"
    ]


def test_unreadable_predictions_files_are_data_errors_naming_the_file(tmp_path: Path) -> None:
    # A folder and a field over the csv module's limit used to exit 4 ("internal error").
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match=r"model\.predictions '.*folder' is a folder"):
        read_prediction_scores(tmp_path / "folder", what="model.predictions")
    big = _csv(tmp_path, "case_id,probability\na," + "1" * 140_000 + "\n")
    with pytest.raises(DataError, match=r"'baseline\.csv' line 2: not a readable CSV \(field"):
        read_prediction_scores(big)
    with pytest.raises(DataError, match=r"'baseline\.csv' is not a readable UTF-8 CSV \(field"):
        read_predictions_csv(big, class_names=["n", "p"], positive_class="p")
    # A long bad value is quoted short, with its length.
    with pytest.raises(DataError, match=r"probability 'xxx+\.\.\. \(20000 characters\) is not"):
        read_prediction_scores(_csv(tmp_path, "case_id,probability\na," + "x" * 20_000 + "\n"))


def test_missing_and_binary_baseline_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"baseline predictions file .*nope\.csv does not exist"):
        read_baseline_scores(tmp_path / "nope.csv", ["a"])
    p = tmp_path / "latin1.csv"
    p.write_bytes("case_id,probability\n\xe9,0.1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_baseline_scores(p, ["a"])


def test_predictions_csv_round_trip(tmp_path: Path) -> None:
    p = write_predictions_csv(
        tmp_path / "predictions.csv", ["a", "b"], ["internal", "external"], [1, 0], [0.75, 0.1]
    )
    preds = read_predictions_csv(p, class_names=["neg", "pos"], positive_class="pos")
    assert list(preds.case_ids) == ["a", "b"] and list(preds.labels) == [1, 0]
    np.testing.assert_allclose(preds.probabilities, [[0.25, 0.75], [0.9, 0.1]])
    flipped = read_predictions_csv(p, class_names=["pos", "neg"], positive_class="pos")
    np.testing.assert_allclose(flipped.probabilities, [[0.75, 0.25], [0.1, 0.9]])
    np.testing.assert_array_equal(read_baseline_scores(p, ["b"]), [0.1])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("case_id,label,probability\na,1,0.5\n", r"needs columns \['case_id', 'split'"),
        ("case_id,split,label,probability\na,t,yes,0.5\n", "malformed probability or label"),
    ],
)
def test_bad_predictions_csv(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        read_predictions_csv(_csv(tmp_path, text), class_names=["n", "p"], positive_class="p")
    with pytest.raises(DataError, match="does not exist"):
        read_predictions_csv(tmp_path / "no.csv", class_names=["n", "p"], positive_class="p")


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels and an informative score (AUROC about 0.85), 300 cases."""
    y = rng.integers(0, 2, 300)
    score = 1.0 / (1.0 + np.exp(-(1.5 * y - 0.75 + rng.normal(0.0, 1.0, 300))))
    return y, score


def _judge(
    y: np.ndarray, candidate: np.ndarray, baseline: np.ndarray, *, margin: float = 0.02, **kw: Any
) -> tuple[Any, ValidationResult]:
    result = ValidationResult()
    metric = kw.pop("metric", "auroc")
    noninferiority_section(
        result, y, candidate, baseline, margin=margin, metric=metric, n_resamples=300, **kw
    )
    crit = baseline_criterion({"metric": metric, "margin": margin, "severity": "fail"})
    (verdict,) = judge(result, [crit])
    return verdict, result


def test_degraded_candidate_fails_same_and_better_pass(
    data: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
) -> None:
    y, score = data
    noisy = np.clip(score + rng.normal(0.0, 0.35, score.shape), 0.0, 1.0)
    worse, result = _judge(y, noisy, score)
    assert worse.status == "fail"
    assert worse.reason.startswith("difference CI low -0.")
    assert result.values["noninferiority.auroc.verdict"] in ("inferior", "inconclusive")
    better, result = _judge(y, score, noisy)
    assert better.status == "pass" and result.values["noninferiority.auroc.verdict"] == "superior"
    assert result.values["reference.identical"] is False


@pytest.mark.parametrize("severity", ["fail", "warn"])
@pytest.mark.parametrize("jitter", [0.0, 1e-13])
def test_a_baseline_identical_to_the_candidate_is_an_error_never_a_pass(
    data: tuple[np.ndarray, np.ndarray], severity: str, jitter: float
) -> None:
    # The bypass: the baseline file is the candidate's own predictions.csv.
    y, score = data
    result = ValidationResult()
    clusters = np.repeat(np.arange(100), 3)
    noninferiority_section(
        result, y, score, score + jitter, margin=0.02, clusters=clusters, n_resamples=300,
        baseline_name="predictions.csv",
    )  # fmt: skip
    crit = baseline_criterion({"metric": "auroc", "margin": 0.02, "severity": severity})
    (same,) = judge(result, [crit])
    assert same.status == "error" and not same.passed
    assert exit_code([same]) == ExitCode.INTERNAL_ERROR
    assert "the baseline is the candidate itself" in same.reason
    assert "predictions.csv" in same.reason
    assert result.values["reference.identical"] is True
    assert result.values["noninferiority.auroc.method"] == "identical-scores"
    est = result.estimates["noninferiority.auroc.difference"]
    assert (est.value, est.low, est.high, est.n_resamples) == (0.0, 0.0, 0.0, 300)


def test_a_baseline_differing_on_one_case_is_compared(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    y, score = data
    other = score.copy()
    other[7] = min(1.0, other[7] + 1e-6)  # a real, if tiny, difference: not the candidate
    verdict, result = _judge(y, score, other)
    assert result.values["reference.identical"] is False
    assert verdict.status == "pass"


def test_recalibrated_model_has_the_same_auroc(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = data
    recalibrated = score**2  # monotone: the same ranking, other probabilities
    same, result = _judge(y, recalibrated, score)
    assert same.status == "pass"
    assert result.values["noninferiority.auroc.method"] == "identical-ranking"
    # Brier depends on the probabilities themselves: a real comparison.
    _, result = _judge(y, recalibrated, score, metric="brier")
    assert result.values["noninferiority.brier.method"].startswith("bootstrap")


def test_label_metric_compares_decisions_at_the_threshold(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    y, score = data
    shifted = np.where(score >= 0.5, 0.99, 0.01)  # other scores, the same decisions
    same, result = _judge(y, shifted, score, metric="sensitivity", threshold=0.5)
    assert same.status == "pass"
    assert result.values["noninferiority.sensitivity.method"] == "identical-decisions"


def test_zero_margin_needs_superiority(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = data
    same, result = _judge(y, score**2, score, margin=0.0)  # the same ranking, other scores
    assert same.status == "fail" and same.reason == "difference CI low 0.000 <= 0 (n=300)"
    assert result.values["noninferiority.auroc.verdict"] == "inconclusive"


def test_undefined_metric_is_not_passed_as_identical() -> None:
    y = np.ones(40, dtype=np.int64)  # one class only: AUROC is undefined
    score = np.linspace(0.1, 0.9, 40)
    same, _ = _judge(y, score, score)
    assert same.status in ("fail", "error") and not same.passed


def test_crashing_comparison_is_an_error_and_exit_4(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = data
    verdict, result = _judge(y, score, score[:-1])  # the baseline lacks a case
    assert verdict.status == "error"
    assert "analysis noninferiority.auroc failed: InputError" in verdict.reason
    assert "noninferiority.auroc" in result.values[ANALYSIS_ERRORS]
    assert "noninferiority.auroc.difference" not in result.estimates
    assert exit_code([verdict]) == ExitCode.INTERNAL_ERROR
