"""Binomial intervals against closed forms and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from medval._errors import InputError
from medval.stats import (
    clustered_proportion_ci,
    clustered_proportion_variance,
    proportion_ci,
    threshold_metric_ci,
)


def _wilson(x: int, n: int, cl: float) -> tuple[float, float]:
    z = stats.norm.ppf(0.5 + cl / 2)
    p = x / n
    c = (2 * x + z**2) / (2 * (n + z**2))
    h = z * np.sqrt(z**2 + 4 * x * (1 - p)) / (2 * (n + z**2))
    return c - h, c + h


@pytest.mark.parametrize(("x", "n"), [(0, 10), (3, 10), (10, 10), (97, 100), (450, 1000)])
@pytest.mark.parametrize("cl", [0.9, 0.95])
def test_wilson_closed_form_and_scipy(x: int, n: int, cl: float) -> None:
    est = proportion_ci(x, n, confidence_level=cl)
    lo, hi = _wilson(x, n, cl)
    assert est.low == pytest.approx(max(lo, 0), abs=1e-12)
    assert est.high == pytest.approx(min(hi, 1), abs=1e-12)
    ref = stats.binomtest(x, n).proportion_ci(confidence_level=cl, method="wilson")
    assert est.low == pytest.approx(ref.low, abs=1e-12)
    assert est.method == "wilson" and est.value == x / n


@pytest.mark.parametrize(("x", "n"), [(0, 10), (3, 10), (10, 10), (97, 100)])
def test_clopper_pearson_beta_quantiles(x: int, n: int) -> None:
    est = proportion_ci(x, n, method="clopper-pearson")
    lo = 0.0 if x == 0 else stats.beta.ppf(0.025, x, n - x + 1)
    hi = 1.0 if x == n else stats.beta.ppf(0.975, x + 1, n - x)
    assert (est.low, est.high) == pytest.approx((lo, hi), abs=1e-12)
    ref = stats.binomtest(x, n).proportion_ci(method="exact")
    assert (est.low, est.high) == pytest.approx((ref.low, ref.high), abs=1e-10)


def test_hundred_percent_is_not_degenerate() -> None:
    est = proportion_ci(25, 25)
    assert est.high == 1.0 and est.low is not None and est.low < 0.9


def test_proportion_errors() -> None:
    with pytest.raises(InputError, match="0 <= successes <= n"):
        proportion_ci(11, 10)
    with pytest.raises(InputError, match="whole count"):
        proportion_ci(2.5, 10)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="Unknown proportion method 'exact'"):
        proportion_ci(2, 10, method="exact")  # type: ignore[arg-type]


def test_clustered_design_effect_by_hand() -> None:
    x = np.array([4, 0, 4, 0, 4, 1, 3, 0, 4, 2])
    m = np.full(10, 4)
    est = clustered_proportion_ci(x, m)
    p = x.sum() / m.sum()
    var = 10 / 9 * np.sum((x - p * m) ** 2) / m.sum() ** 2
    n_eff = m.sum() / max(1.0, var / (p * (1 - p) / m.sum()))
    lo, hi = _wilson(p * n_eff, n_eff, 0.95)  # type: ignore[arg-type]
    assert (est.low, est.high) == pytest.approx((lo, hi), abs=1e-12)
    assert est.method == "wilson-clustered" and est.n == 40
    plain = proportion_ci(int(x.sum()), 40)
    assert est.high - est.low > 1.5 * (plain.high - plain.low)  # type: ignore[operator]


def test_clustered_boundary_uses_patients() -> None:
    est = clustered_proportion_ci(np.full(8, 3), np.full(8, 3))
    ref = proportion_ci(8, 8)
    assert (est.low, est.high) == pytest.approx((ref.low, ref.high))


def test_clustered_errors() -> None:
    with pytest.raises(InputError, match="at least 2 clusters"):
        clustered_proportion_ci([1], [2])
    with pytest.raises(InputError, match="equal length"):
        clustered_proportion_ci([1, 2], [2])
    with pytest.raises(InputError, match="0 <= successes <= trials"):
        clustered_proportion_ci([3, 1], [2, 2])


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200)
    return y, rng.random(200) * 0.7 + 0.3 * y


def test_threshold_metrics_are_binomial(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    p = s >= 0.5
    cases = {
        "sensitivity": (np.sum(p & (y == 1)), np.sum(y == 1)),
        "specificity": (np.sum(~p & (y == 0)), np.sum(y == 0)),
        "ppv": (np.sum(p & (y == 1)), np.sum(p)),
        "npv": (np.sum(~p & (y == 0)), np.sum(~p)),
        "accuracy": (np.sum(p == y), y.size),
    }
    for name, (x, n) in cases.items():
        est = threshold_metric_ci(name, y, s, threshold=0.5, method="clopper-pearson")
        ref = proportion_ci(int(x), int(n), method="clopper-pearson")
        assert (est.value, est.low, est.high) == (ref.value, ref.low, ref.high), name


def test_threshold_metrics_clustered_and_bootstrap(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    clusters = np.arange(200) // 4
    est = threshold_metric_ci("sensitivity", y, s, threshold=0.5, clusters=clusters)
    assert est.method == "wilson-clustered"
    f1 = threshold_metric_ci("f1", y, s, threshold=0.5, n_resamples=300, random_state=0)
    assert f1.method == "bootstrap-bca" and f1.seed == 0


def test_threshold_metric_errors(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    with pytest.raises(InputError, match="thresholded metric"):
        threshold_metric_ci("auroc", y, s, threshold=0.5)
    est = threshold_metric_ci("ppv", y, s, threshold=2.0)
    assert est.value is None and "no predicted positives" in (est.reason or "")


def test_bad_arguments_are_input_errors(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    # clusters are checked even when the denominator is empty
    with pytest.raises(InputError, match="one patient key per case"):
        threshold_metric_ci("ppv", y, s, threshold=2.0, clusters=np.arange(5))
    with pytest.raises(InputError, match="threshold must be a finite number"):
        threshold_metric_ci("sensitivity", y, s, threshold="high")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="threshold must be a finite number"):
        threshold_metric_ci("sensitivity", y, s, threshold=np.nan)
    with pytest.raises(InputError, match="whole count"):
        proportion_ci("7", 10)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="whole count"):
        proportion_ci(3, np.inf)  # type: ignore[arg-type]


def test_case_proportion_ci_matches_its_building_blocks() -> None:
    import numpy as np

    from medval.stats import case_proportion_ci, clustered_proportion_ci, proportion_ci

    rng = np.random.default_rng(0)
    hit = rng.random(300) < 0.7
    assert case_proportion_ci(hit) == proportion_ci(int(hit.sum()), 300)
    clusters = np.repeat([f"pt-{i}" for i in range(100)], 3)
    want = clustered_proportion_ci(hit.reshape(100, 3).sum(axis=1), np.full(100, 3))
    assert case_proportion_ci(hit, clusters=clusters) == want
    with pytest.raises(InputError, match="one patient key per case"):
        case_proportion_ci(hit, clusters=clusters[:10])


def _former_shift_variance(hit: np.ndarray, den: np.ndarray, codes: np.ndarray | None) -> tuple:
    # The copy that lived in shift/_subgroups.py before it used the stats function.
    n = int(den.sum())
    p = float(hit[den].sum() / n)
    x, m = (hit & den).astype(float), den.astype(float)
    if codes is not None:
        k = int(codes.max()) + 1
        x, m = (
            np.bincount(codes, weights=x, minlength=k),
            np.bincount(codes, weights=m, minlength=k),
        )
        keep = m > 0
        x, m = x[keep], m[keep]
    else:
        x, m = x[den], m[den]
    g = x.size
    return p, g / (g - 1) * float(np.sum((x - p * m) ** 2)) / n**2


def test_clustered_proportion_variance_equals_former_copies() -> None:
    rng = np.random.default_rng(12)
    for _ in range(20):
        n = int(rng.integers(20, 300))
        hit, den = rng.uniform(size=n) < 0.6, rng.uniform(size=n) < 0.7
        codes = rng.integers(0, n // 3, n)
        for c in (None, codes):
            x, m = (hit & den).astype(float), den.astype(float)
            if c is None:
                xs, ms = x[den], m[den]
            else:
                xs = np.bincount(c, weights=x, minlength=n)
                ms = np.bincount(c, weights=m, minlength=n)
                xs, ms = xs[ms > 0], ms[ms > 0]
            assert clustered_proportion_variance(xs, ms) == _former_shift_variance(hit, den, c)
        # the former copy inside clustered_proportion_ci
        x, m = rng.integers(0, 4, 30).astype(float), np.full(30, 4.0)
        p = x.sum() / m.sum()
        former = 30 / 29.0 * float(np.sum((x - p * m) ** 2)) / m.sum() ** 2
        assert clustered_proportion_variance(x, m) == (p, former)


def test_clustered_proportion_variance_edge_cases() -> None:
    assert np.isnan(clustered_proportion_variance([2.0], [3.0])[1])
    assert clustered_proportion_variance([2.0], [3.0])[0] == pytest.approx(2 / 3)
    assert all(np.isnan(clustered_proportion_variance([], [])))
    # one trial per cluster: binomial variance times K / (K - 1)
    x = np.array([1.0, 0, 1, 1, 0, 1, 0, 1])
    p, var = clustered_proportion_variance(x, np.ones(8))
    assert var == pytest.approx(p * (1 - p) / 8 * 8 / 7)
