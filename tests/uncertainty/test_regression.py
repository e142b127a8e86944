"""Regression uncertainty: Gaussian coverage and NLL, sigma vs error, referral, decomposition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import beta, norm, spearmanr

from medval import InputError
from medval.stats import resample_counts
from medval.uncertainty import (
    decompose_regression,
    decompose_regression_variances,
    gaussian_calibration,
    gaussian_nll,
    regression_referral_curve,
    sigma_error_rank,
)


def _heteroscedastic(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    mean = rng.normal(50.0, 10.0, n)
    var = rng.uniform(0.5, 9.0, n)
    y = mean + rng.normal(size=n) * np.sqrt(var)
    return y, mean, var


# --- Gaussian interval coverage and NLL ---------------------------------------------


def test_calibration_rows_by_hand(rng: np.random.Generator) -> None:
    y, mean, var = _heteroscedastic(rng, 400)
    rows = gaussian_calibration(y, mean, var, levels=(0.5, 0.9), confidence_level=0.9)
    assert [r["nominal"] for r in rows] == [0.5, 0.9]
    for r in rows:
        z = norm.ppf(0.5 + r["nominal"] / 2)
        k = int(np.sum((y >= mean - z * np.sqrt(var)) & (y <= mean + z * np.sqrt(var))))
        cov = r["coverage"]
        assert cov["value"] == k / 400 and cov["method"] == "clopper-pearson"
        assert cov["low"] == pytest.approx(beta.ppf(0.05, k, 400 - k + 1), rel=1e-10)
        assert cov["high"] == pytest.approx(beta.ppf(0.95, k + 1, 400 - k), rel=1e-10)
        assert r["mean_width"] == pytest.approx(np.mean(2 * z * np.sqrt(var)))


def test_calibrated_model_covers_nominal_and_overconfident_does_not(
    rng: np.random.Generator,
) -> None:
    y, mean, var = _heteroscedastic(rng, 4000)
    for r in gaussian_calibration(y, mean, var):
        assert r["coverage"]["low"] <= r["nominal"] <= r["coverage"]["high"]
    for r in gaussian_calibration(y, mean, var / 4.0):  # sigma halved
        assert r["coverage"]["high"] < r["nominal"]


def test_nll_matches_scipy(rng: np.random.Generator) -> None:
    y, mean, var = _heteroscedastic(rng, 300)
    expected = -np.mean(norm.logpdf(y, loc=mean, scale=np.sqrt(var)))
    assert gaussian_nll(y, mean, var) == pytest.approx(expected, rel=1e-12)
    # the true variances score better than inflated or deflated ones
    assert gaussian_nll(y, mean, var) < gaussian_nll(y, mean, 3 * var)
    assert gaussian_nll(y, mean, var) < gaussian_nll(y, mean, var / 3)


# --- sigma against the error --------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("clustered", [False, True])
def test_rank_bootstrap_equals_spearmanr_on_the_same_resamples(
    rng: np.random.Generator, clustered: bool, ties: bool
) -> None:
    n = 150
    sigma = rng.uniform(1.0, 5.0, n)
    err = np.abs(rng.normal(size=n)) * sigma
    if ties:  # few in sigma, many in the error
        sigma, err = np.round(sigma, 1), np.round(err)
    pid = rng.integers(0, 50, n) if clustered else None
    est = sigma_error_rank(sigma, err, clusters=pid, n_resamples=250, random_state=6)
    assert est.value == pytest.approx(spearmanr(sigma, err).statistic, rel=1e-12)
    # the same resamples: drawn in case order (whatever the order of sigma)
    counts = resample_counts(
        n, n_resamples=250, random_state=np.random.default_rng(6), clusters=pid
    )
    loop = []
    for w in np.concatenate(list(counts)):
        idx = np.repeat(np.arange(n), w)
        loop.append(spearmanr(sigma[idx], err[idx]).statistic)
    low, high = np.quantile(loop, [0.025, 0.975])
    assert (est.low, est.high) == pytest.approx((low, high), rel=1e-10)
    assert est.higher_is_better is True and est.seed == 6
    assert est.method == "bootstrap-percentile" + ("-clustered" if clustered else "")


def test_the_rank_interval_does_not_depend_on_float_noise_in_sigma(
    rng: np.random.Generator,
) -> None:
    """Two nearly equal sigmas that swap order on another CPU leave the interval."""
    sigma = rng.uniform(1.0, 5.0, 200)
    err = np.abs(rng.normal(size=200)) * sigma
    sigma[1] = sigma[0] + 1e-12
    err[0], err[1] = 0.01, 10.0  # very different errors
    nudged = sigma.copy()
    nudged[1] = sigma[0] - 1e-12
    a = sigma_error_rank(sigma, err, n_resamples=300, random_state=2)
    b = sigma_error_rank(nudged, err, n_resamples=300, random_state=2)
    # Swapping two adjacent ranks moves each resample's Spearman by O(1/n); a redraw would
    # move the bounds by their Monte Carlo error (about 0.01 here).
    assert (a.low, a.high) == pytest.approx((b.low, b.high), abs=2e-3)


def test_rank_of_informative_and_useless_sigma(rng: np.random.Generator) -> None:
    y, mean, var = _heteroscedastic(rng, 500)
    err = np.abs(y - mean)
    good = sigma_error_rank(np.sqrt(var), err, n_resamples=300, random_state=0)
    assert good.low > 0.2  # type: ignore[operator]
    useless = sigma_error_rank(rng.uniform(size=500), err, n_resamples=300, random_state=0)
    assert useless.low < 0.0 < useless.high  # type: ignore[operator]


def test_rank_not_estimable() -> None:
    est = sigma_error_rank(np.ones(20), np.arange(20.0), random_state=0)
    assert est.value is None and "constant" in (est.reason or "")
    few = sigma_error_rank(np.arange(5.0), np.arange(5.0) ** 2, random_state=0)
    assert few.value == pytest.approx(1.0) and few.low is None
    assert "only 5 cases" in (few.reason or "")


# --- referral -----------------------------------------------------------------------


def test_referral_curve_by_hand() -> None:
    err = np.array([5.0, 1.0, 3.0, 0.0, 2.0, 4.0, 1.0, 0.5, 6.0, 2.5])
    sigma = np.array([9.0, 1.0, 5.0, 0.5, 3.0, 7.0, 2.0, 0.1, 8.0, 4.0])
    rows = regression_referral_curve(err, sigma, fractions=[0.0, 0.2, 0.5])
    assert [r["referred"] for r in rows] == [0.0, 0.2, 0.5]
    assert [r["n_retained"] for r in rows] == [10, 8, 5]
    by_sigma = err[np.argsort(-sigma)]
    smallest = np.sort(err)
    for r in rows:
        k = r["n_retained"]
        assert r["mae"] == pytest.approx(by_sigma[10 - k :].mean())
        assert r["oracle"] == pytest.approx(smallest[:k].mean())
        assert r["random"] == pytest.approx(err.mean())
        assert r["oracle"] <= r["mae"]
    default = regression_referral_curve(err, sigma)
    assert [r["requested"] for r in default] == pytest.approx(np.arange(11) * 0.05)


def test_referral_ties_are_the_mean_over_tie_orders() -> None:
    err = np.array([4.0, 0.0, 2.0, 7.0, 1.0, 3.0])
    sigma = np.array([2.0, 2.0, 2.0, 1.0, 3.0, 1.0])
    rows = regression_referral_curve(err, sigma, fractions=[0.2, 0.34, 0.5, 0.67])
    for r in rows:
        k = 6 - r["n_retained"]
        # every order of the cases, referral by sigma with ties broken by that order
        maes = [
            np.delete(err, np.array(p)[np.argsort(-sigma[list(p)], kind="stable")][:k]).mean()
            for p in itertools.permutations(range(6))
        ]
        assert r["mae"] == pytest.approx(np.mean(maes), rel=1e-12)
    # and the case order does not matter
    perm = np.array([3, 5, 0, 2, 4, 1])
    again = regression_referral_curve(err[perm], sigma[perm], fractions=[0.2, 0.34, 0.5, 0.67])
    assert [r["mae"] for r in again] == pytest.approx([r["mae"] for r in rows], rel=1e-12)


def test_informative_sigma_beats_random_referral(rng: np.random.Generator) -> None:
    y, mean, var = _heteroscedastic(rng, 2000)
    rows = regression_referral_curve(np.abs(y - mean), np.sqrt(var))
    assert rows[0]["mae"] == pytest.approx(rows[0]["random"])
    assert all(r["oracle"] <= r["mae"] < r["random"] for r in rows[2:])


# --- variance decomposition ---------------------------------------------------------


def test_decomposition_recovers_known_components() -> None:
    # T MC samples per case: means with known between-sample variance v_e and
    # predicted variances averaging v_a (a gamma noise of mean 1 around it).
    rng = np.random.default_rng(12)
    t, n = 4000, 200
    v_e = rng.uniform(0.1, 4.0, n)
    v_a = rng.uniform(0.5, 3.0, n)
    means = rng.normal(10.0, 1.0, n) + rng.normal(size=(t, n)) * np.sqrt(v_e)
    variances = v_a * rng.gamma(4.0, 0.25, size=(t, n))
    d = decompose_regression_variances(means, variances)
    np.testing.assert_array_equal(d.total, d.aleatoric + d.epistemic)
    # sampling SDs: v_e sqrt(2 / T) for a normal variance, v_a sqrt(0.25 / T) for the mean
    z_e = (d.epistemic - v_e * (t - 1) / t) / (v_e * np.sqrt(2.0 / t))
    z_a = (d.aleatoric - v_a) / (v_a * np.sqrt(0.25 / t))
    assert np.max(np.abs(z_e)) < 4.5 and np.max(np.abs(z_a)) < 4.5
    assert abs(z_e.mean()) < 4.5 / np.sqrt(n) and abs(z_a.mean()) < 4.5 / np.sqrt(n)
    # the log-variance form gives the same split
    lv = decompose_regression(means, np.log(variances))
    np.testing.assert_array_equal(lv.total, lv.aleatoric + lv.epistemic)
    np.testing.assert_allclose(lv.aleatoric, d.aleatoric, rtol=1e-12)
    np.testing.assert_array_equal(lv.epistemic, d.epistemic)


def test_total_is_the_variance_of_the_predictive_mixture() -> None:
    # draw y from the equal mixture of the T Gaussians: its variance is the total
    rng = np.random.default_rng(13)
    t, n, draws = 8, 5, 400_000
    means = rng.normal(size=(t, n)) * 2.0
    variances = rng.uniform(0.2, 2.0, (t, n))
    d = decompose_regression_variances(means, variances)
    pick = rng.integers(0, t, (draws, n))
    cols = np.arange(n)
    y = means[pick, cols] + rng.normal(size=(draws, n)) * np.sqrt(variances[pick, cols])
    sd_of_var = d.total * np.sqrt(2.0 / draws) * 2.0  # generous for a non-normal mixture
    assert np.all(np.abs(y.var(axis=0) - d.total) < 4.5 * sd_of_var)


def test_decomposition_errors() -> None:
    mu = np.zeros((3, 4))
    with pytest.raises(InputError, match="variances must be >= 0"):
        decompose_regression_variances(mu, -np.ones((3, 4)))
    with pytest.raises(InputError, match=r"variances must both have shape \(T, n\)"):
        decompose_regression_variances(mu, np.ones((3, 2)))
    with pytest.raises(InputError, match="NaN or infinite"):
        decompose_regression_variances(mu, np.full((3, 4), np.inf))
    with pytest.raises(InputError, match="overflow exp"):
        decompose_regression(mu, np.full((3, 4), 800.0))


# --- input errors -------------------------------------------------------------------


def test_errors() -> None:
    y = np.arange(10.0)
    with pytest.raises(InputError, match="variance must be > 0"):
        gaussian_nll(y, y, np.zeros(10))
    with pytest.raises(InputError, match=r"mean must have shape \(10,\)"):
        gaussian_calibration(y, y[:3], np.ones(10))
    with pytest.raises(InputError, match=r"levels must be .* in \(0, 1\)"):
        gaussian_calibration(y, y, np.ones(10), levels=(0.5, 1.0))
    with pytest.raises(InputError, match="NaN or infinite"):
        gaussian_nll(np.r_[y[:-1], np.nan], y, np.ones(10))
    with pytest.raises(InputError, match="non-empty numeric 1-D"):
        sigma_error_rank(np.ones((10, 2)), y)
    with pytest.raises(InputError, match="n_resamples must be a positive integer"):
        sigma_error_rank(y, y, n_resamples=0)
    with pytest.raises(InputError, match="one patient key per case"):
        sigma_error_rank(y, y, clusters=np.arange(3))
    with pytest.raises(InputError, match="abs_error must be >= 0"):
        regression_referral_curve(y - 5.0, y)
    with pytest.raises(InputError, match=r"fractions must be .* in \[0, 1\)"):
        regression_referral_curve(y, y, fractions=[0.5, 1.0])
