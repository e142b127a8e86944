"""Error by true value: quantile bins and the error slope against scipy's linregress."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import linregress
from scipy.stats import t as student_t
from sklearn.metrics import mean_absolute_error

from medval import InputError
from medval.regression import error_by_value, error_metrics, error_slope
from medval.stats import resample_counts


def test_slope_matches_linregress(rng: np.random.Generator) -> None:
    y = rng.uniform(20.0, 90.0, 200)
    pred = 0.8 * y + 12.0 + rng.normal(0.0, 4.0, 200)
    est = error_slope(y, pred, confidence_level=0.9)
    fit = linregress(y, pred - y)
    half = student_t.ppf(0.95, 198) * fit.stderr
    assert est.value == pytest.approx(fit.slope, rel=1e-10)
    assert (est.low, est.high) == pytest.approx((fit.slope - half, fit.slope + half), rel=1e-10)
    assert est.method == "ols-t" and est.higher_is_better is None and est.n == 200
    assert est.high < 0  # type: ignore[operator]  # regression to the mean


def test_exact_shrinkage_gives_slope_b_minus_1(rng: np.random.Generator) -> None:
    y = rng.uniform(0.0, 100.0, 80)
    est = error_slope(y, 0.7 * y + 15.0)
    assert est.value == pytest.approx(-0.3, abs=1e-12)
    assert est.high - est.low < 1e-9  # type: ignore[operator]


def test_clustered_slope_equals_a_loop_on_the_same_resamples(rng: np.random.Generator) -> None:
    pid = rng.integers(0, 50, 200)
    y = rng.uniform(20.0, 90.0, 50)[pid] + rng.normal(0.0, 2.0, 200)
    pred = 0.9 * y + 5.0 + rng.normal(0.0, 3.0, 50)[pid]
    est = error_slope(y, pred, clusters=pid, n_resamples=300, random_state=2)
    counts = resample_counts(
        200, n_resamples=300, random_state=np.random.default_rng(2), clusters=pid
    )
    slopes = []
    for w in np.concatenate(list(counts)):
        idx = np.repeat(np.arange(200), w)
        slopes.append(linregress(y[idx], pred[idx] - y[idx]).slope)
    assert (est.low, est.high) == pytest.approx(
        tuple(np.quantile(slopes, [0.025, 0.975])), rel=1e-9
    )
    assert est.method == "bootstrap-percentile-clustered" and est.seed == 2


def test_constant_truth_has_no_slope() -> None:
    est = error_slope(np.full(20, 5.0), np.arange(20.0))
    assert est.value is None and "no spread" in (est.reason or "")


def test_bins_are_quintiles_of_the_truth(rng: np.random.Generator) -> None:
    y = rng.normal(50.0, 10.0, 500)
    pred = 0.8 * y + 10.0 + rng.normal(0.0, 2.0, 500)
    rows = error_by_value(y, pred, n_resamples=100, random_state=0)
    edges = np.quantile(y, np.linspace(0, 1, 6))
    assert [r["bin"] for r in rows] == list(range(5))
    assert [r["low"] for r in rows] == pytest.approx(edges[:-1].tolist())
    assert [r["high"] for r in rows] == pytest.approx(edges[1:].tolist())
    assert sum(r["n"] for r in rows) == 500 and all(r["n"] == 100 for r in rows)
    for r in rows:
        inside = (y >= r["low"]) & ((y < r["high"]) | (r["bin"] == 4))
        assert r["mae"]["value"] == mean_absolute_error(y[inside], pred[inside])
        assert r["bias"]["value"] == pytest.approx(np.mean(pred[inside] - y[inside]))
        assert r["bias"]["method"] == "t" and r["mae"]["seed"] == 0
    # regression to the mean: over-estimates low values, under-estimates high ones
    assert rows[0]["bias"]["low"] > 0 and rows[-1]["bias"]["high"] < 0


def test_bin_intervals_are_those_of_error_metrics_on_the_bin(rng: np.random.Generator) -> None:
    pid = rng.integers(0, 80, 300)
    y = rng.normal(50.0, 10.0, 300)
    pred = y + rng.normal(0.0, 3.0, 80)[pid]
    rows = error_by_value(y, pred, bins=1, clusters=pid, n_resamples=200, random_state=9)
    direct = error_metrics(y, pred, clusters=pid, n_resamples=200, random_state=9)
    assert len(rows) == 1 and rows[0]["n"] == 300
    assert rows[0]["mae"] == direct["mae"].to_dict()
    assert rows[0]["bias"] == direct["bias"].to_dict()


def test_tied_and_sparse_truth_merges_bins() -> None:
    y = np.array([1.0] * 30 + [2.0] * 10 + [3.0] * 10)  # quintile edges 1, 1, 1, 1.4, 2.2, 3
    rows = error_by_value(y, y + 0.5, bins=5, random_state=0, n_resamples=50)
    assert [r["n"] for r in rows] == [30, 10, 10]
    edges = [v for r in rows for v in (r["low"], r["high"])]
    assert edges == pytest.approx([1.0, 1.4, 1.4, 2.2, 2.2, 3.0])
    # three cases, five interpolated bins: the empty ones join the next
    rows = error_by_value([0.0, 10.0, 20.0], [1.0, 11.0, 21.0], bins=5, random_state=0)
    assert [r["n"] for r in rows] == [1, 1, 1]
    assert all(r["mae"]["value"] == 1.0 and "reason" in r["mae"] for r in rows)
    one = error_by_value([4.0, 4.0], [5.0, 3.0], random_state=0)
    assert [(r["low"], r["high"], r["n"]) for r in one] == [(4.0, 4.0, 2)]


def test_errors() -> None:
    y = np.arange(20.0)
    with pytest.raises(InputError, match="bins must be an integer >= 1"):
        error_by_value(y, y, bins=0)
    with pytest.raises(InputError, match="bins must be an integer >= 1"):
        error_by_value(y, y, bins=2.5)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"y_pred must have shape \(20,\)"):
        error_slope(y, y[:3])
    with pytest.raises(InputError, match="n_resamples must be an integer >= 1"):
        error_slope(y, y, n_resamples=-5)


def test_resamples_without_spread_leave_the_slope_interval_undefined() -> None:
    # nine patients at one true value, one at another: a third of the resamples
    # miss the tenth patient and have no slope
    pid = np.repeat(np.arange(10), 3)
    y = np.where(pid == 9, 2.0, 1.0)
    pred = y + np.linspace(0.0, 1.0, 30)
    est = error_slope(y, pred, clusters=pid, n_resamples=200, random_state=0)
    assert est.value is not None and est.low is None
    assert "undefined in" in (est.reason or "") and "of 200 resamples" in (est.reason or "")
