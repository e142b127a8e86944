"""Bland-Altman: closed forms by hand, the Lancet 1986 example, the clustered bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import linregress, norm
from scipy.stats import t as student_t

from medval import InputError
from medval.regression import LIMITS_COVERAGE, BlandAltman, bland_altman, plot_points
from medval.stats import resample_counts

# Bland & Altman (1986), Lancet 327:307-310, Table 1: peak expiratory flow rate
# (l/min) of 17 subjects, first reading with the Wright and the mini Wright meter.
WRIGHT = np.array(
    [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
)
MINI = np.array(
    [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]
)


def test_lancet_1986_peak_flow_example() -> None:
    # The paper's differences are Wright - mini: Wright plays the prediction.
    ba = bland_altman(MINI, WRIGHT)
    assert ba.n == 17
    assert ba.bias.value == pytest.approx(-2.1, abs=0.05)
    assert ba.sd == pytest.approx(38.8, abs=0.05)
    # 95% limits -78 to 74 (with 1.96 SD; the paper's 2 SD gives -79.7 to 75.5)
    assert ba.loa_low.value == pytest.approx(-78, abs=0.5)
    assert ba.loa_high.value == pytest.approx(74, abs=0.5)
    # SE of the bias s / sqrt(n) = 9.4, t(16) = 2.12: CI -22.0 to 17.8
    assert (ba.bias.low, ba.bias.high) == pytest.approx((-22.0, 17.8), abs=0.05)
    # SE of a limit sqrt(3 s^2 / n) = 16.3 with t(16) = 2.12; the paper's lower limit
    # -79.7 (2 SD) gets the CI -114.3 to -45.1 (from the rounded -79.7 +- 2.12 x 16.3).
    q = student_t.ppf(0.975, 16)
    half = ba.loa_low.high - ba.loa_low.value  # type: ignore[operator]
    assert half / q == pytest.approx(16.3, abs=0.05)
    assert (ba.bias.high - ba.bias.value) / q == pytest.approx(9.4, abs=0.05)  # type: ignore[operator]
    two_sd_low = ba.bias.value - 2 * ba.sd  # type: ignore[operator]
    assert (two_sd_low - half, two_sd_low + half) == pytest.approx((-114.3, -45.1), abs=0.15)


def test_closed_forms_by_hand() -> None:
    y = np.array([10.0, 12.5, 9.0, 15.0, 11.0, 13.5, 8.0, 14.0, 12.0, 10.5, 16.0, 9.5])
    pred = y + np.array([0.4, -0.3, 1.1, 0.2, -0.8, 0.6, 0.0, 1.4, -0.5, 0.3, 0.9, -0.2])
    d = pred - y
    n, s, m = d.size, d.std(ddof=1), d.mean()
    q = student_t.ppf(0.95, n - 1)  # 90% intervals
    z = norm.ppf(0.975)
    ba = bland_altman(y, pred, confidence_level=0.9)
    assert ba.multiplier == z == pytest.approx(1.959964, abs=1e-6)
    assert LIMITS_COVERAGE == 0.95
    assert ba.bias.value == pytest.approx(m, rel=1e-14)
    assert (ba.bias.low, ba.bias.high) == pytest.approx(
        (m - q * s / np.sqrt(n), m + q * s / np.sqrt(n)), rel=1e-12
    )
    se_limit = np.sqrt(3 * s**2 / n)
    for est, limit in ((ba.loa_low, m - z * s), (ba.loa_high, m + z * s)):
        assert est.value == pytest.approx(limit, rel=1e-12)
        assert (est.low, est.high) == pytest.approx(
            (limit - q * se_limit, limit + q * se_limit), rel=1e-12
        )
        assert est.method == "bland-altman-t" and est.confidence_level == 0.9
    assert ba.bias.method == "t"
    fit = linregress((y + pred) / 2, d)
    assert ba.proportional.value == pytest.approx(fit.slope, rel=1e-10)
    assert ba.intercept == pytest.approx(fit.intercept, rel=1e-10)
    half = student_t.ppf(0.95, n - 2) * fit.stderr
    assert (ba.proportional.low, ba.proportional.high) == pytest.approx(
        (fit.slope - half, fit.slope + half), rel=1e-10
    )
    assert ba.proportional.method == "ols-t"


def test_proportional_bias_is_found(rng: np.random.Generator) -> None:
    y = rng.uniform(20.0, 80.0, 300)
    pred = 1.2 * y - 10.0 + rng.normal(0.0, 1.0, 300)  # d = 0.2 y - 10 + noise
    ba = bland_altman(y, pred)
    assert ba.proportional.low > 0.15 and ba.proportional.high < 0.21  # type: ignore[operator]
    # no proportional bias: the slope is near 0 (not exactly: the pair mean shares
    # half the error with the difference, Krouwer 2008)
    flat = bland_altman(y, y + rng.normal(0.0, 1.0, 300))
    assert abs(flat.proportional.value) < 0.02  # type: ignore[arg-type]


def test_clustered_bootstrap_equals_a_loop_on_the_same_resamples(
    rng: np.random.Generator,
) -> None:
    pid = rng.integers(0, 60, 240)
    y = rng.normal(60.0, 15.0, 240)
    pred = y + 1.0 + rng.normal(0.0, 3.0, 60)[pid] + rng.normal(0.0, 2.0, 240)
    ba = bland_altman(y, pred, clusters=pid, n_resamples=400, random_state=4)
    gen = np.random.default_rng(4)
    counts = np.concatenate(
        list(resample_counts(240, n_resamples=400, random_state=gen, clusters=pid))
    )
    stats = []
    for w in counts:
        d = np.repeat(pred - y, w)
        stats.append((d.mean(), d.mean() - ba.multiplier * d.std(ddof=1)))
    stats_arr = np.array(stats)
    for est, column in ((ba.bias, 0), (ba.loa_low, 1)):
        low, high = np.quantile(stats_arr[:, column], [0.025, 0.975])
        assert (est.low, est.high) == pytest.approx((low, high), rel=1e-9)
        assert est.method == "bootstrap-percentile-clustered" and est.seed == 4
    # the slope draws the next 400 resamples from the same generator
    counts = np.concatenate(
        list(resample_counts(240, n_resamples=400, random_state=gen, clusters=pid))
    )
    slopes = []
    for w in counts:
        idx = np.repeat(np.arange(240), w)
        slopes.append(linregress((y[idx] + pred[idx]) / 2, pred[idx] - y[idx]).slope)
    low, high = np.quantile(slopes, [0.025, 0.975])
    assert (ba.proportional.low, ba.proportional.high) == pytest.approx((low, high), rel=1e-8)


def test_to_dict_and_frozen(rng: np.random.Generator) -> None:
    y = rng.normal(size=30)
    ba = bland_altman(y, y + rng.normal(size=30))
    d = ba.to_dict()
    assert set(d) == {
        "bias",
        "loa_low",
        "loa_high",
        "sd",
        "multiplier",
        "proportional",
        "intercept",
        "n",
    }
    assert d["bias"] == ba.bias.to_dict() and d["n"] == 30
    assert isinstance(ba, BlandAltman)
    with pytest.raises(AttributeError):
        ba.sd = 0.0  # type: ignore[misc]


def test_few_patients_and_flat_means() -> None:
    y = np.arange(20.0)
    ba = bland_altman(y, y + np.cos(y), clusters=np.arange(20) % 4, random_state=0)
    assert ba.bias.low is None and "only 4 patients" in (ba.bias.reason or "")
    assert ba.proportional.low is None and "only 4 patients" in (ba.proportional.reason or "")
    # all pair means equal: no slope
    flat = bland_altman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]))
    assert flat.proportional.value is None and "no spread" in (flat.proportional.reason or "")
    assert np.isnan(flat.intercept)
    two = bland_altman(np.array([1.0, 2.0]), np.array([1.5, 2.0]))
    assert two.bias.low is not None and two.proportional.low is None
    assert "3 cases" in (two.proportional.reason or "")


def test_plot_points(rng: np.random.Generator) -> None:
    y = rng.normal(size=1000)
    pred = y + rng.normal(size=1000)
    means, diffs = plot_points(y, pred)
    assert means.shape == diffs.shape == (400,)
    again = plot_points(y, pred)
    np.testing.assert_array_equal(again[0], means)
    # every point is one case's pair, in case order
    index = {v: i for i, v in enumerate((pred - y).tolist())}
    picked = [index[v] for v in diffs.tolist()]
    assert picked == sorted(picked)
    np.testing.assert_allclose(means, (y[picked] + pred[picked]) / 2)
    other = plot_points(y, pred, random_state=1)
    assert not np.array_equal(other[1], diffs)
    small_m, small_d = plot_points(y[:50], pred[:50], max_points=400)
    np.testing.assert_array_equal(small_d, pred[:50] - y[:50])
    np.testing.assert_array_equal(small_m, (pred[:50] + y[:50]) / 2)


def test_errors() -> None:
    with pytest.raises(InputError, match="at least 2 differences"):
        bland_altman([1.0], [2.0])
    with pytest.raises(InputError, match=r"y_pred must have shape \(3,\)"):
        bland_altman([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(InputError, match=r"confidence_level must be in \(0, 1\)"):
        bland_altman([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], confidence_level=1.0)
    with pytest.raises(InputError, match="max_points must be an integer >= 1"):
        plot_points([1.0, 2.0], [1.0, 2.0], max_points=0)
    with pytest.raises(InputError, match="random_state must be an integer >= 0"):
        plot_points([1.0, 2.0], [1.0, 2.0], random_state=-1)
