"""Means of per-case values with (patient-clustered) bootstrap intervals: coverage by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from medval._errors import InputError
from medval.segmentation import case_statistic_ci, mean_ci


def test_point_estimate_is_the_plain_mean_and_the_seed_is_recorded() -> None:
    v = np.random.default_rng(0).uniform(size=40)
    e = mean_ci(v, n_resamples=500, random_state=7)
    assert e.value == pytest.approx(v.mean(), abs=1e-15)
    assert e.low < e.value < e.high and e.seed == 7 and e.n == 40
    assert e.method == "bootstrap-percentile"
    assert mean_ci(v, n_resamples=500, random_state=7) == e  # same seed, same interval


def test_nan_is_refused_never_skipped() -> None:
    with pytest.raises(InputError, match="declared rule"):
        mean_ci([0.5, float("nan"), 0.7])
    with pytest.raises(InputError, match="non-empty 1-D"):
        mean_ci([])


def test_too_few_patients_give_no_interval_with_a_reason() -> None:
    e = mean_ci(np.arange(12.0), clusters=np.repeat(np.arange(4), 3), n_resamples=200)
    assert e.low is None and "patients" in (e.reason or "")


def test_an_undefined_statistic_has_no_value() -> None:
    e = case_statistic_ci(lambda w: float("nan"), 20, n_resamples=200, random_state=0)
    assert e.value is None and e.reason


def test_clustered_intervals_cover_where_case_level_ones_do_not() -> None:
    """Three strongly correlated cases per patient: the case-level bootstrap is too narrow."""
    rng = np.random.default_rng(11)
    hit_clustered = hit_naive = 0
    runs = 150
    for _ in range(runs):
        patient = rng.normal(0.0, 1.0, size=20)
        values = np.repeat(patient, 3) + rng.normal(0.0, 0.2, size=60)
        clusters = np.repeat(np.arange(20), 3)
        c = mean_ci(values, clusters=clusters, n_resamples=400, random_state=rng)
        n = mean_ci(values, n_resamples=400, random_state=rng)
        hit_clustered += c.low <= 0.0 <= c.high
        hit_naive += n.low <= 0.0 <= n.high
    # Nominal 95%: the clustered percentile interval is a little liberal at 20 patients.
    assert hit_clustered / runs >= 0.88
    assert hit_naive / runs <= 0.80
