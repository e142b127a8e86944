"""interval_coverage and coverage_by_bins against scipy's exact binomial interval and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from medval._errors import InputError
from medval._types import Estimate
from medval.conformal import coverage_by_bins, interval_coverage


def _exact(k: int, n: int, level: float) -> tuple[float, float]:
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


@pytest.fixture
def cases(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = 400
    y = rng.normal(size=n)
    centre = y + rng.normal(scale=0.8, size=n)
    half = rng.uniform(0.5, 2.0, n)
    groups = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.45, 0.05])
    return y, np.column_stack((centre - half, centre + half)), groups


@pytest.mark.parametrize("level", [0.9, 0.95])
def test_coverage_matches_scipy_exact(cases, level: float) -> None:
    y, iv, groups = cases
    out = interval_coverage(y, iv, groups=groups, confidence_level=level)
    hit = (iv[:, 0] <= y) & (y <= iv[:, 1])
    cov = Estimate.from_dict(out["coverage"])
    assert cov.value == hit.mean() and cov.n == 400 and cov.method == "clopper-pearson"
    assert (cov.low, cov.high) == pytest.approx(_exact(int(hit.sum()), 400, level), abs=1e-12)
    assert out["n"] == 400 and out["n_infinite"] == 0 and out["n_empty"] == 0
    width = iv[:, 1] - iv[:, 0]
    assert out["mean_width"] == pytest.approx(width.mean())
    assert out["median_width"] == pytest.approx(np.median(width))
    assert [row["group"] for row in out["by_group"]] == ["a", "b", "c"]
    for row in out["by_group"]:
        m = groups == row["group"]
        k = int(hit[m].sum())
        assert row["n"] == m.sum()
        assert row["coverage"]["value"] == pytest.approx(k / m.sum())
        low, high = _exact(k, int(m.sum()), level)
        assert (row["coverage"]["low"], row["coverage"]["high"]) == pytest.approx((low, high))
        assert row["mean_width"] == pytest.approx(width[m].mean())


def test_min_cases_keeps_the_row_without_an_estimate(cases) -> None:
    y, iv, groups = cases
    n_c = int((groups == "c").sum())
    out = interval_coverage(y, iv, groups=groups, min_cases=n_c + 1)
    small = out["by_group"][2]
    assert small["n"] == n_c and np.isfinite(small["mean_width"])
    assert "value" not in small["coverage"]
    assert small["coverage"]["reason"] == f"{n_c} case(s), fewer than min_cases = {n_c + 1}"
    assert all("value" in row["coverage"] for row in out["by_group"][:2])


def test_bounds_inclusive_infinite_and_empty() -> None:
    y = np.array([0.0, 1.0, 2.0, 3.0])
    iv = np.array([[0.0, 0.0], [-np.inf, np.inf], [2.5, 1.5], [3.0, 4.0]])
    out = interval_coverage(y, iv)
    assert out["coverage"]["value"] == 0.75  # closed bounds; the crossed one covers nothing
    assert out["n_infinite"] == 1 and out["n_empty"] == 1
    assert out["mean_width"] == np.inf and out["median_width"] == 0.5
    assert out["by_group"] == []


def test_coverage_by_bins(rng: np.random.Generator) -> None:
    n = 500
    y = rng.normal(size=n)
    sigma = rng.uniform(0.2, 2.0, n)
    iv = np.column_stack((y - sigma * rng.normal(1, 1, n), y + sigma))
    rows = coverage_by_bins(y, iv, sigma, bins=5, confidence_level=0.9)
    assert [r["bin"] for r in rows] == list(range(5))
    assert [r["n"] for r in rows] == [100] * 5
    order = np.argsort(sigma)
    hit = (iv[:, 0] <= y) & (y <= iv[:, 1])
    for r, idx in zip(rows, np.split(order, 5), strict=True):
        assert (r["low"], r["high"]) == (sigma[idx].min(), sigma[idx].max())
        k = int(hit[idx].sum())
        assert r["coverage"]["value"] == k / 100
        low, high = _exact(k, 100, 0.9)
        assert (r["coverage"]["low"], r["coverage"]["high"]) == pytest.approx((low, high))
        # crossed intervals (lower > upper) are empty: width 0
        assert r["mean_width"] == pytest.approx(np.clip(np.diff(iv[idx], axis=1), 0, None).mean())


def test_coverage_by_bins_keeps_ties_together() -> None:
    v = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 2.0])
    y = np.zeros(6)
    iv = np.column_stack((-np.ones(6), np.ones(6)))
    rows = coverage_by_bins(y, iv, v, bins=3)
    assert [(r["low"], r["high"], r["n"]) for r in rows] == [(0.0, 0.0, 4), (1.0, 2.0, 2)]
    assert [r["bin"] for r in rows] == [0, 1]
    one = coverage_by_bins(y, iv, np.ones(6), bins=4)
    assert len(one) == 1 and one[0]["n"] == 6


def test_errors() -> None:
    y = np.zeros(3)
    iv = np.column_stack((-np.ones(3), np.ones(3)))
    with pytest.raises(InputError, match=r"y_true must have shape \(n,\) with n >= 1"):
        interval_coverage([], np.empty((0, 2)))
    with pytest.raises(InputError, match=r"intervals must have shape \(3, 2\).*got \(2, 3\)"):
        interval_coverage(y, iv.T)
    with pytest.raises(InputError, match=r"y_true must be finite"):
        interval_coverage([0.0, np.nan, 1.0], iv)
    with pytest.raises(InputError, match=r"intervals must not hold NaN"):
        interval_coverage(y, np.where(np.eye(3, 2) > 0, np.nan, iv))
    with pytest.raises(InputError, match=r"a lower bound of \+inf"):
        interval_coverage(y, np.column_stack((np.full(3, np.inf), np.full(3, np.inf))))
    with pytest.raises(InputError, match=r"confidence_level must be in \(0, 1\)"):
        interval_coverage(y, iv, confidence_level=95)
    with pytest.raises(InputError, match=r"min_cases must be an int >= 1; got 0"):
        interval_coverage(y, iv, min_cases=0)
    with pytest.raises(InputError, match=r"groups must have shape \(3,\)"):
        interval_coverage(y, iv, groups=["a"])
    with pytest.raises(InputError, match=r"values must be finite with shape \(3,\)"):
        coverage_by_bins(y, iv, [1.0, np.nan, 2.0])
    with pytest.raises(InputError, match=r"values must be finite with shape \(3,\)"):
        coverage_by_bins(y, iv, [1.0])
    with pytest.raises(InputError, match=r"bins must be an int >= 1; got 0"):
        coverage_by_bins(y, iv, y, bins=0)
