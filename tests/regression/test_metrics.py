"""Error metrics: scikit-learn's point values, the bootstrap against a plain loop, coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import t as student_t
from sklearn.metrics import (
    mean_absolute_error,
    median_absolute_error,
    root_mean_squared_error,
)

from medval import InputError
from medval.regression import REGRESSION_METRICS, error_metrics
from medval.regression._resampling import weighted_median
from medval.stats import resample_counts


def _data(rng: np.random.Generator, n: int, patients: int) -> tuple[np.ndarray, ...]:
    pid = rng.integers(0, patients, n)
    y = rng.normal(120.0, 30.0, n)
    pred = y + 2.0 + rng.normal(0.0, 6.0, patients)[pid] + rng.standard_t(4, n) * 5.0
    return y, pred, pid


@pytest.mark.parametrize("seed", range(20))
def test_point_values_equal_scikit_learn_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    y, pred, _ = _data(rng, n, max(1, n // 3))
    if seed % 2:
        y, pred = np.round(y), np.round(pred)  # ties and even counts for the median
    est = error_metrics(y, pred, n_resamples=20, random_state=seed)
    assert est["mae"].value == mean_absolute_error(y, pred)
    assert est["median_ae"].value == median_absolute_error(y, pred)
    assert est["rmse"].value == root_mean_squared_error(y, pred)
    assert est["bias"].value == np.mean(pred - y)
    assert list(est) == ["mae", "median_ae", "rmse", "bias"]
    for name, e in est.items():
        assert e.higher_is_better is REGRESSION_METRICS[name]


@pytest.mark.parametrize("clustered", [False, True])
def test_bootstrap_equals_a_loop_of_scikit_learn_on_the_same_resamples(
    rng: np.random.Generator, clustered: bool
) -> None:
    y, pred, pid = _data(rng, 600, 150)
    pred = np.round(pred)  # ties in |error|
    clusters = pid if clustered else None
    est = error_metrics(
        y, pred, clusters=clusters, n_resamples=300, random_state=7, bias_interval="bootstrap"
    )
    # The same resamples: drawn in case order (whatever the errors' order).
    counts = np.concatenate(
        list(
            resample_counts(
                600, n_resamples=300, random_state=np.random.default_rng(7), clusters=clusters
            )
        )
    )
    loop: dict[str, list[float]] = {name: [] for name in est}
    for w in counts:
        idx = np.repeat(np.arange(600), w)
        loop["mae"].append(mean_absolute_error(y[idx], pred[idx]))
        loop["median_ae"].append(median_absolute_error(y[idx], pred[idx]))
        loop["rmse"].append(root_mean_squared_error(y[idx], pred[idx]))
        loop["bias"].append(float(np.mean(pred[idx] - y[idx])))
    for name, e in est.items():
        low, high = np.quantile(loop[name], [0.025, 0.975])
        assert e.low == pytest.approx(low, rel=1e-12)
        assert e.high == pytest.approx(high, rel=1e-12)
        assert e.method == "bootstrap-percentile" + ("-clustered" if clustered else "")
        assert (e.seed, e.n_resamples, e.n) == (7, 300, 600)


def test_the_draws_do_not_depend_on_the_order_of_nearly_equal_errors(
    rng: np.random.Generator,
) -> None:
    """Float noise that swaps two nearly equal errors (another CPU) leaves the interval."""
    y, pred, pid = _data(rng, 300, 100)
    # Case 1's error: case 0's with the other sign, its size just above case 0's ...
    pred[1] = y[1] - (pred[0] - y[0]) - np.sign(pred[0] - y[0]) * 1e-9
    nudged = pred.copy()
    nudged[1] += np.sign(pred[0] - y[0]) * 2e-9  # ... and just below
    for clusters in (None, pid):
        kw = {"clusters": clusters, "n_resamples": 200, "random_state": 3,
              "bias_interval": "bootstrap"}  # fmt: skip
        a = error_metrics(y, pred, **kw)  # type: ignore[arg-type]
        b = error_metrics(y, nudged, **kw)  # type: ignore[arg-type]
        for name in a:
            assert a[name].low == pytest.approx(b[name].low, abs=1e-6)
            assert a[name].high == pytest.approx(b[name].high, abs=1e-6)


def test_weighted_median_is_numpy_median_of_the_resample(rng: np.random.Generator) -> None:
    values = np.sort(np.round(rng.exponential(3.0, 50)))
    counts = rng.integers(0, 4, (200, 50))
    counts[:, 0] += 1  # no empty resample
    expected = [np.median(np.repeat(values, w)) for w in counts]
    np.testing.assert_array_equal(weighted_median(values, counts), expected)


def test_weighted_median_outside_the_middle_band(rng: np.random.Generator) -> None:
    # n = 5000: the counts are accumulated in a band around the middle; rows
    # drawing mostly low or mostly high values have their median outside it
    values = np.sort(np.round(rng.normal(size=5000), 2))
    counts = rng.poisson(1.0, (60, 5000))
    counts[:20, :1000] *= 8
    counts[20:40, 4000:] *= 9
    counts[:, 2500] += 1
    expected = [np.median(np.repeat(values, w)) for w in counts]
    np.testing.assert_array_equal(weighted_median(values, counts), expected)


def test_bias_t_interval_by_hand(rng: np.random.Generator) -> None:
    y, pred, _ = _data(rng, 40, 40)
    e = pred - y
    est = error_metrics(y, pred, confidence_level=0.9, random_state=0)["bias"]
    half = student_t.ppf(0.95, 39) * e.std(ddof=1) / np.sqrt(40)
    assert (est.low, est.high) == pytest.approx((e.mean() - half, e.mean() + half), rel=1e-12)
    assert est.method == "t" and est.n_resamples is None and est.confidence_level == 0.9


def test_one_case_per_patient_gives_the_unclustered_intervals(rng: np.random.Generator) -> None:
    y, pred, _ = _data(rng, 300, 300)
    plain = error_metrics(y, pred, n_resamples=200, random_state=3)
    keys = np.array([f"p{i}" for i in rng.permutation(300)])
    clustered = error_metrics(y, pred, clusters=keys, n_resamples=200, random_state=3)
    for name in ("mae", "median_ae", "rmse"):
        assert (clustered[name].low, clustered[name].high) == (plain[name].low, plain[name].high)


def test_clustered_intervals_cover_and_image_level_ones_do_not() -> None:
    # 40 patients of 10 cases each, a large shared patient error: the cases are
    # correlated. The true MAE of a N(0, v) error is sqrt(2 v / pi).
    rng = np.random.default_rng(11)
    truth = np.sqrt(2.0 * (1.5**2 + 0.5**2) / np.pi)
    pid = np.repeat(np.arange(40), 10)
    hits = {True: 0, False: 0}
    reps = 150
    for _ in range(reps):
        e = rng.normal(0.0, 1.5, 40)[pid] + rng.normal(0.0, 0.5, 400)
        y = rng.normal(50.0, 10.0, 400)
        for clustered in (True, False):
            est = error_metrics(
                y,
                y + e,
                clusters=pid if clustered else None,
                n_resamples=200,
                random_state=int(rng.integers(2**31)),
            )["mae"]
            assert est.low is not None and est.high is not None
            hits[clustered] += est.low <= truth <= est.high
    # observed: 0.94 and 0.46 (binomial SE about 0.02 and 0.04)
    assert hits[True] / reps >= 0.88
    assert hits[False] / reps <= 0.65


def test_too_few_cases_or_patients_give_no_bounds() -> None:
    y = np.arange(8.0)
    est = error_metrics(y, y + 1.0, random_state=0)
    assert est["mae"].value == 1.0 and est["mae"].low is None
    assert "only 8 cases" in (est["mae"].reason or "")
    assert est["bias"].low == 1.0  # the t interval needs only 2 cases (zero SD here)
    y = np.arange(30.0)
    est = error_metrics(y, y + np.sin(y), clusters=np.arange(30) % 5, random_state=0)
    assert all(e.low is None and "only 5 patients" in (e.reason or "") for e in est.values())
    one = error_metrics([1.0], [3.0], random_state=0)["bias"]
    assert one.value == 2.0 and one.low is None and "2 cases" in (one.reason or "")


def test_seed_recorded_and_reproducible(rng: np.random.Generator) -> None:
    y, pred, pid = _data(rng, 200, 50)
    a = error_metrics(y, pred, clusters=pid, n_resamples=100, random_state=5)
    b = error_metrics(y, pred, clusters=pid, n_resamples=100, random_state=5)
    assert a == b and a["mae"].seed == 5
    fresh = error_metrics(y, pred, n_resamples=50)
    assert isinstance(fresh["mae"].seed, int)
    gen = error_metrics(y, pred, n_resamples=50, random_state=np.random.default_rng(1))
    assert gen["mae"].seed is None


def test_errors() -> None:
    y = np.arange(20.0)
    with pytest.raises(InputError, match=r"y_pred must have shape \(20,\)"):
        error_metrics(y, y[:5])
    with pytest.raises(InputError, match=r"1-D of shape \(n,\).*ravel"):
        error_metrics(y[:, None], y[:, None])
    with pytest.raises(InputError, match="y_true is empty"):
        error_metrics([], [])
    with pytest.raises(InputError, match="NaN or infinite values at 1 rows"):
        error_metrics(y, np.r_[y[:-1], np.nan])
    with pytest.raises(InputError, match="must be numeric"):
        error_metrics(y.astype(str), y)
    with pytest.raises(InputError, match="n_resamples must be an integer >= 1"):
        error_metrics(y, y, n_resamples=0)
    with pytest.raises(InputError, match=r"confidence_level must be in \(0, 1\)"):
        error_metrics(y, y, confidence_level=95)
    with pytest.raises(InputError, match="bias_interval must be one of t, bootstrap"):
        error_metrics(y, y, bias_interval="z")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="one patient key per case"):
        error_metrics(y, y, clusters=np.arange(3))
    with pytest.raises(InputError, match="random_state must be"):
        error_metrics(y, y, random_state="0")  # type: ignore[arg-type]
