"""Degenerate inputs, for every public interval of medval.stats.

Each entry point must either raise a clear InputError or return an Estimate
marked not estimable with its reason, never NaN bounds or a silent number:
one class only, n < 10, NaN / inf scores, mismatched lengths and clusters
of the wrong length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from medval._errors import InputError
from medval._types import Estimate
from medval.stats import (
    auroc_ci,
    bootstrap_ci,
    compare,
    delong_ci,
    delong_test,
    sensitivity_at_specificity,
    threshold_metric_ci,
)

Entry = Callable[..., Estimate]


def _boot(y: Any, s: Any, **kw: Any) -> Estimate:
    return bootstrap_ci("auroc", y, s, n_resamples=200, random_state=0, **kw)


def _boot_sens(y: Any, s: Any, **kw: Any) -> Estimate:
    return bootstrap_ci("sensitivity", y, s, threshold=0.5, n_resamples=200, random_state=0, **kw)


def _delong(y: Any, s: Any, **kw: Any) -> Estimate:
    return delong_ci(y, s)


def _auroc_ci(y: Any, s: Any, **kw: Any) -> Estimate:
    return auroc_ci(y, s, n_resamples=200, random_state=0, **kw)


def _threshold(y: Any, s: Any, **kw: Any) -> Estimate:
    return threshold_metric_ci("sensitivity", y, s, threshold=0.5, **kw)


def _sens_at_spec(y: Any, s: Any, **kw: Any) -> Estimate:
    return sensitivity_at_specificity(y, s, specificity=0.8, n_resamples=200, random_state=0, **kw)


def _compare(y: Any, s: Any, **kw: Any) -> Estimate:
    other = np.asarray(s)[::-1].copy()
    return compare(
        "auroc", y, s, other, margin=0.05, n_resamples=200, random_state=0, **kw
    ).difference


def _delong_test(y: Any, s: Any, **kw: Any) -> Estimate:
    return delong_test(y, s, np.asarray(s)[::-1].copy()).difference


# name -> (function, takes clusters, what one class gives: "raise" or "undefined")
ENTRIES: dict[str, tuple[Entry, bool, str]] = {
    "bootstrap_ci": (_boot, True, "undefined"),
    "bootstrap_ci-threshold": (_boot_sens, True, "undefined"),
    "delong_ci": (_delong, False, "undefined"),
    "auroc_ci": (_auroc_ci, True, "undefined"),
    "threshold_metric_ci": (_threshold, True, "undefined"),
    "sensitivity_at_specificity": (_sens_at_spec, True, "raise"),
    "compare": (_compare, True, "undefined"),
    "delong_test": (_delong_test, False, "undefined"),
}


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(17)
    y = np.repeat([0, 1], 30)
    return y, 1.0 / (1.0 + np.exp(-(rng.normal(size=60) + y)))


@pytest.mark.parametrize("name", ENTRIES)
def test_one_class_only(name: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    fn, _, kind = ENTRIES[name]
    _, s = data
    y = np.zeros(60, dtype=np.int64)
    if kind == "raise":
        with pytest.raises(InputError, match="positive and negative cases"):
            fn(y, s)
        return
    est = fn(y, s)
    assert est.value is None and est.low is None
    assert est.reason and ("one class" in est.reason or "no positive" in est.reason)


@pytest.mark.parametrize("name", ENTRIES)
def test_fewer_than_ten_cases(name: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    fn, _, _ = ENTRIES[name]
    y = np.array([0, 1, 0, 1, 0, 1])
    s = np.array([0.2, 0.7, 0.4, 0.6, 0.5, 0.9])
    est = fn(y, s)
    if name == "threshold_metric_ci":
        # Binomial intervals are exact / score intervals: valid at any n.
        assert est.low is not None and est.low < est.value <= est.high  # type: ignore[operator]
        return
    assert est.value is not None and est.low is None and est.high is None
    assert est.reason and ("only 6 cases" in est.reason or "too few cases" in est.reason)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ENTRIES)
def test_non_finite_scores(name: str, bad: float, data: tuple[np.ndarray, np.ndarray]) -> None:
    fn, _, _ = ENTRIES[name]
    y, s = data
    s = s.copy()
    s[7] = bad
    with pytest.raises(InputError, match=r"NaN or infinite values at 1 rows \(first: row 7\)"):
        fn(y, s)


@pytest.mark.parametrize("name", ENTRIES)
def test_mismatched_lengths(name: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    fn, _, _ = ENTRIES[name]
    y, s = data
    with pytest.raises(InputError, match=r"shape \(60,\) to match y_true"):
        fn(y, s[:-1])


@pytest.mark.parametrize("name", [k for k, v in ENTRIES.items() if v[1]])
def test_clusters_of_wrong_length(name: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    fn, _, _ = ENTRIES[name]
    y, s = data
    with pytest.raises(InputError, match=r"one patient key per case, shape \(60,\); got shape"):
        fn(y, s, clusters=np.arange(59))


@pytest.mark.parametrize(
    "name", [k for k, v in ENTRIES.items() if v[1] and k != "threshold_metric_ci"]
)
def test_fewer_than_ten_patients(name: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    # 60 images of 6 patients: enough images, too few resampling units.
    fn, _, _ = ENTRIES[name]
    y = np.repeat([0, 1], 30)
    rng = np.random.default_rng(3)
    s = 1.0 / (1.0 + np.exp(-(rng.normal(size=60) + y)))
    est = fn(y, s, clusters=np.arange(60) // 10)
    assert est.value is not None and est.low is None
    assert est.reason and "only 6 patients" in est.reason


@pytest.mark.parametrize("name", ["bootstrap_ci", "auroc_ci", "compare", "delong_ci"])
def test_single_case_of_a_class(name: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    # A stratified resample repeats the lone positive every time (and DeLong's
    # variance needs two per class): no interval rather than a too-narrow one.
    fn, _, _ = ENTRIES[name]
    _, s = data
    y = np.zeros(60, dtype=np.int64)
    y[4] = 1
    est = fn(y, s)
    assert est.value is not None and est.low is None
    assert est.reason and ("single case" in est.reason or "positives=1" in est.reason)
