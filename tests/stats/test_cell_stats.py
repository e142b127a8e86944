"""Statistics of cell tables against scikit-learn, medval.calibration and direct counts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medval._errors import InputError
from medval.calibration import ece
from medval.stats import CELL_STATISTICS, ScoreCells, auroc_binning_bound, cell_statistics

ALL = list(CELL_STATISTICS)


def _binormal(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.35).astype(np.int64)
    s = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + 1.3 * y - 0.4)))
    return s, y


@pytest.mark.parametrize("bins", [2**16, 96_000])
def test_auroc_from_fine_bins_equals_the_rank_auroc(rng: np.random.Generator, bins: int) -> None:
    s, y = _binormal(rng, 100_000)
    cells = ScoreCells.from_arrays(s, y, bins=bins)
    got = cell_statistics(cells, "auroc")["auroc"]
    exact = roc_auc_score(y, s)
    bound = auroc_binning_bound(cells)
    assert got is not None and bound is not None
    assert abs(got - exact) <= 1e-6
    assert abs(got - exact) <= bound
    assert bound < 2e-5  # the worst case is loose: the actual difference is far smaller


def test_auroc_bound_holds_on_coarse_bins(rng: np.random.Generator) -> None:
    s, y = _binormal(rng, 5000)
    for bins in (4, 16, 100):
        cells = ScoreCells.from_arrays(s, y, bins=bins)
        got = cell_statistics(cells, "auroc")["auroc"]
        bound = auroc_binning_bound(cells)
        assert got is not None and bound is not None
        assert abs(got - roc_auc_score(y, s)) <= bound
    assert bound > 1e-4  # coarse bins: a bound that is not trivially small


def test_ties_on_edges_are_exact_ties(rng: np.random.Generator) -> None:
    # scores on a 0.01 grid are all edges: half credit for ties is exact
    y = rng.integers(0, 2, 4000)
    s = np.round(np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1), 2)
    cells = ScoreCells.from_arrays(s, y)
    assert auroc_binning_bound(cells) == 0.0
    assert cell_statistics(cells, "auroc")["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-14)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.731, 1.0])
def test_threshold_metrics_equal_direct_counts(rng: np.random.Generator, threshold: float) -> None:
    y = rng.integers(0, 2, 3000)
    s = rng.random(3000)
    s[:300] = threshold  # cases exactly at the threshold are positive
    s[300:320] = 1.0
    cells = ScoreCells.from_arrays(s, y)
    got = cell_statistics(cells, ["sensitivity", "specificity", "ppv", "npv"], threshold=threshold)
    pred = s >= threshold
    tp, fp = int(np.sum(pred & (y == 1))), int(np.sum(pred & (y == 0)))
    fn, tn = int(np.sum(~pred & (y == 1))), int(np.sum(~pred & (y == 0)))
    assert got["sensitivity"] == tp / (tp + fn)
    assert got["specificity"] == tn / (tn + fp)
    assert got["ppv"] == (tp / (tp + fp) if tp + fp else None)
    assert got["npv"] == (tn / (tn + fn) if tn + fn else None)


def test_calibration_equals_medval_ece_and_direct_means(rng: np.random.Generator) -> None:
    s, y = _binormal(rng, 20_000)
    s[:50] = 0.0
    s[50:100] = 1.0
    s[100:200] = 2 / 15  # on a calibration edge: the bin to its left, as in ece()
    cells = ScoreCells.from_arrays(s, y)
    got = cell_statistics(
        cells, ["ece", "mean_predicted", "observed_rate", "observed_expected_ratio"]
    )
    p = np.c_[1.0 - s, s]
    assert got["ece"] == pytest.approx(ece(p, y, target="positive"), abs=1e-12)
    assert got["mean_predicted"] == pytest.approx(s.mean(), abs=1e-12)
    assert got["observed_rate"] == y.mean()
    assert got["observed_expected_ratio"] == pytest.approx(y.sum() / s.sum(), rel=1e-12)
    for n_bins in (5, 10, 20):
        mine = cell_statistics(cells, "ece", calibration_bins=n_bins)["ece"]
        assert mine == pytest.approx(ece(p, y, n_bins=n_bins, target="positive"), abs=1e-12)


def test_subgroups_equal_the_subsets(rng: np.random.Generator) -> None:
    s, y = _binormal(rng, 6000)
    g = rng.choice(np.array(["a", "b"]), 6000)
    cells = ScoreCells.from_arrays(s, y, groups=g)
    for name in ("a", "b"):
        sub = ScoreCells.from_arrays(s[g == name], y[g == name])
        assert cell_statistics(cells, ALL, threshold=0.5, group=name) == pytest.approx(
            cell_statistics(sub, ALL, threshold=0.5)
        )
        assert auroc_binning_bound(cells, group=name) == auroc_binning_bound(sub)


def test_one_class_leaves_rank_statistics_undefined() -> None:
    cells = ScoreCells.from_arrays([0.2, 0.4, 0.9], [1, 1, 1])
    got = cell_statistics(cells, ALL, threshold=0.5)
    assert got["auroc"] is None and got["specificity"] is None
    assert got["sensitivity"] == 1 / 3 and got["npv"] == 0.0
    assert auroc_binning_bound(cells) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"statistics": "brier"}, r"unknown cell statistic \['brier'\]; valid: \['auroc'"),
        ({"statistics": []}, "statistics is empty"),
        ({"statistics": ["auroc", "auroc"]}, "lists a name twice"),
        ({"statistics": "sensitivity"}, r"\['sensitivity'\] need threshold="),
        ({"statistics": "ppv", "threshold": 0.37777}, r"threshold 0.37777 is not a bin edge"),
        ({"statistics": "npv", "threshold": "high"}, "threshold must be a finite number"),
        ({"statistics": "ece", "calibration_bins": 7}, "calibration edge 0.142857"),
        ({"statistics": "ece", "calibration_bins": 0}, "calibration_bins must be a positive int"),
        ({"statistics": "auroc", "group": "north"}, r"group 'north' is not in this table"),
    ],
)
def test_bad_requests_are_refused(rng: np.random.Generator, kwargs: dict, match: str) -> None:
    cells = ScoreCells.from_arrays(rng.random(100), np.arange(100) % 2)
    with pytest.raises(InputError, match=match):
        cell_statistics(cells, **kwargs)


def test_calibration_needs_probabilities(rng: np.random.Generator) -> None:
    cells = ScoreCells.from_arrays(rng.normal(size=100), np.arange(100) % 2, score_range=(-6, 6))
    assert cell_statistics(cells, "auroc")["auroc"] is not None
    with pytest.raises(InputError, match=r"probabilities binned over \[0, 1\]"):
        cell_statistics(cells, "ece")


def test_explicit_edges_serve_any_threshold(rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, 500)
    s = rng.random(500)
    edges = np.union1d(np.linspace(0, 1, 1001), [0.37777])
    cells = ScoreCells.from_arrays(s, y, bins=edges)
    got = cell_statistics(cells, "sensitivity", threshold=0.37777)["sensitivity"]
    assert got == np.mean(s[y == 1] >= 0.37777)
