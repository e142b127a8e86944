"""Paired comparisons and non-inferiority verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from medval._errors import InputError
from medval.stats import compare, delong_test


@pytest.fixture
def cases() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(31)
    y = rng.integers(0, 2, 600)
    base = rng.normal(size=600) + 1.2 * y
    return y, base


def test_auroc_uses_delong_paired(cases: tuple[np.ndarray, np.ndarray]) -> None:
    y, base = cases
    cand = base + np.random.default_rng(1).normal(size=600) * 0.3
    res = compare("auroc", y, cand, base, margin=0.05)
    ref = delong_test(y, cand, base)
    assert res.method == "delong-paired"
    assert res.difference.value == pytest.approx(ref.difference.value)
    assert res.difference.low == pytest.approx(ref.difference.low)
    se = ref.difference.value / ref.statistic  # type: ignore[operator]
    assert res.p_value == pytest.approx(norm.sf((ref.difference.value + 0.05) / se))
    assert res.verdict == "non-inferior" and res.passed


def test_verdicts(cases: tuple[np.ndarray, np.ndarray]) -> None:
    y, base = cases
    rng = np.random.default_rng(2)
    better = base + 1.0 * y
    worse = base + rng.normal(size=600) * 2.0
    assert compare("auroc", y, better, base, margin=0.02).verdict == "superior"
    bad = compare("auroc", y, worse, base, margin=0.02)
    assert bad.verdict == "inferior" and not bad.passed
    assert bad.p_value is not None and bad.p_value > 0.5


def test_bootstrap_compare_lower_is_better(cases: tuple[np.ndarray, np.ndarray]) -> None:
    y, base = cases
    p_base = 1 / (1 + np.exp(-(base - 0.6)))
    p_cand = 1 / (1 + np.exp(-1.3 * (base - 0.6)))  # sharper, better calibrated here
    res = compare("brier", y, p_cand, p_base, margin=0.01, n_resamples=1000, random_state=0)
    diff = np.mean((p_base - y) ** 2) - np.mean((p_cand - y) ** 2)
    assert res.difference.value == pytest.approx(diff)  # baseline - candidate: + is better
    assert res.method == "bootstrap-bca-paired" and res.difference.seed == 0
    half = (1 - 0.95) / 2
    assert (res.p_value is not None and res.p_value < half) == (
        res.difference.low is not None and res.difference.low > -0.01
    )


@pytest.mark.parametrize("method", ["bca", "percentile", "basic"])
def test_p_value_consistent_with_interval(
    cases: tuple[np.ndarray, np.ndarray], method: str
) -> None:
    y, base = cases
    cand = base + np.random.default_rng(3).normal(size=600) * 0.5
    clusters = np.arange(600) // 3
    for margin in (0.0, 0.01, 0.03, 0.06):
        res = compare(
            "auroc",
            y,
            cand,
            base,
            margin=margin,
            clusters=clusters,
            n_resamples=1000,
            method=method,
            random_state=4,  # type: ignore[arg-type]
        )
        assert res.method == f"bootstrap-{method}-clustered-paired"
        low = res.difference.low
        assert low is not None and res.p_value is not None
        if abs(low + margin) > 1e-3:  # away from the knife edge
            assert (res.p_value < 0.025) == (low > -margin)


def test_label_metric_with_two_thresholds(cases: tuple[np.ndarray, np.ndarray]) -> None:
    y, base = cases
    res = compare(
        "sensitivity",
        y,
        base + 0.2,
        base,
        margin=0.05,
        threshold=(0.5, 0.5),
        n_resamples=500,
        random_state=0,
    )
    assert res.difference.value is not None and res.difference.value >= 0


def test_compare_errors(cases: tuple[np.ndarray, np.ndarray]) -> None:
    y, base = cases
    with pytest.raises(InputError, match="margin must be a finite number >= 0"):
        compare("auroc", y, base, base, margin=-0.1)
    with pytest.raises(InputError, match=r"shape \(600,\) to match y_true"):
        compare("auroc", y, base, base[:10], margin=0.1)
    res = compare("auroc", np.zeros(600, dtype=int), base, base, margin=0.1, n_resamples=200)
    assert res.verdict == "inconclusive" and res.difference.value is None
