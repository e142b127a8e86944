"""Predicted uncertainty of a regression model, judged against its errors.

A regression head that predicts a mean and a variance (or an ensemble /
MC-dropout spread) claims a Gaussian predictive distribution; these check
that claim: interval coverage per nominal level, the Gaussian negative
log-likelihood, whether the predicted sigma ranks the errors, and what
referring the most uncertain cases buys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri
from scipy.stats import spearmanr

from medval._errors import InputError
from medval._types import Estimate
from medval.stats import (
    check_clusters,
    check_confidence_level,
    normalise_random_state,
    proportion_ci,
    resample_counts,
    too_few_for_interval,
)

__all__ = [
    "gaussian_calibration",
    "gaussian_nll",
    "regression_referral_curve",
    "sigma_error_rank",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _vector(values: ArrayLike, name: str, n: int | None = None) -> FloatArray:
    a = np.asarray(values)
    if a.dtype.kind not in "iufb" or a.ndim != 1 or a.shape[0] == 0:
        raise InputError(
            f"{name} must be a non-empty numeric 1-D array of shape (n,); got shape "
            f"{a.shape}, dtype {a.dtype}."
        )
    if n is not None and a.shape[0] != n:
        raise InputError(
            f"{name} must have shape ({n},) like the first array; got {a.shape}. "
            "Pass values of the same cases, in the same order."
        )
    out = a.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise InputError(f"{name} contains NaN or infinite values; fix or drop those cases.")
    return out


def _gaussian(
    y_true: ArrayLike, mean: ArrayLike, variance: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    y = _vector(y_true, "y_true")
    mu = _vector(mean, "mean", y.size)
    var = _vector(variance, "variance", y.size)
    if np.any(var <= 0.0):
        raise InputError(
            f"variance must be > 0 for every case; the smallest is {var.min():.4g}. "
            "Pass variances (exp of a log-variance head, or sigma squared), not log-variances."
        )
    return y, mu, var


def gaussian_calibration(
    y_true: ArrayLike,
    mean: ArrayLike,
    variance: ArrayLike,
    *,
    levels: Sequence[float] = (0.5, 0.8, 0.9, 0.95),
    confidence_level: float = 0.95,
) -> list[dict[str, Any]]:
    """Coverage of the central Gaussian prediction intervals at nominal levels.

    For each level ``q`` the interval ``mean ± z sigma`` with
    ``z = Phi^-1((1 + q) / 2)``; a calibrated model covers a share ``q``
    of the true values. Coverage carries the exact Clopper-Pearson
    interval (conservative: at least nominal coverage).

    Parameters
    ----------
    y_true, mean, variance : array of float, shape (n,)
        True values, predicted means and predicted variances (> 0).
    levels : sequence of float in (0, 1), default (0.5, 0.8, 0.9, 0.95)
    confidence_level : float, default 0.95
        Of the coverage's interval.

    Returns
    -------
    list of dict
        One row per level: ``nominal``, ``coverage`` (Estimate dict,
        ``method="clopper-pearson"``) and ``mean_width`` (mean of
        ``2 z sigma``).

    Raises
    ------
    InputError
        On invalid arrays, variances <= 0 or levels outside (0, 1).

    References
    ----------
    Kuleshov, Fenner & Ermon (2018), "Accurate uncertainties for deep
    learning using calibrated regression", ICML; Clopper & Pearson (1934),
    Biometrika 26:404-413.
    """
    y, mu, var = _gaussian(y_true, mean, variance)
    cl = check_confidence_level(confidence_level)
    q = np.asarray(levels, dtype=np.float64)
    if q.ndim != 1 or q.size == 0 or not np.all((q > 0.0) & (q < 1.0)):
        raise InputError(
            f"levels must be a non-empty sequence of nominal coverages in (0, 1), e.g. "
            f"(0.5, 0.9); got {levels!r}."
        )
    sigma = np.sqrt(var)
    gap = np.abs(y - mu)
    rows = []
    for level in q.tolist():
        z = float(ndtri(0.5 + level / 2.0))
        inside = int(np.count_nonzero(gap <= z * sigma))
        coverage = proportion_ci(inside, y.size, method="clopper-pearson", confidence_level=cl)
        rows.append(
            {
                "nominal": level,
                "coverage": coverage.to_dict(),
                "mean_width": float(np.mean(2.0 * z * sigma)),
            }
        )
    return rows


def gaussian_nll(y_true: ArrayLike, mean: ArrayLike, variance: ArrayLike) -> float:
    """Mean Gaussian negative log-likelihood, ``½ log(2 pi var) + (y - mean)^2 / (2 var)``.

    Lower is better; it rewards sharp intervals only where they are right.

    Parameters
    ----------
    y_true, mean, variance : array of float, shape (n,)
        True values, predicted means, predicted variances (> 0).

    Returns
    -------
    float
        In nats per case, the constant ``½ log 2 pi`` included.

    Raises
    ------
    InputError
        On invalid arrays or variances <= 0.

    References
    ----------
    Nix & Weigend (1994), "Estimating the mean and variance of the target
    probability distribution", ICNN; Lakshminarayanan et al. (2017),
    NeurIPS.
    """
    y, mu, var = _gaussian(y_true, mean, variance)
    return float(np.mean(0.5 * np.log(2.0 * np.pi * var) + (y - mu) ** 2 / (2.0 * var)))


def _tie_groups(sorted_values: FloatArray) -> tuple[IntArray, IntArray] | None:
    """Start of each run of equal values in a sorted array and each value's run; None: no ties."""
    new_run = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    if new_run.all():
        return None
    return np.flatnonzero(new_run).astype(np.int64), np.cumsum(new_run).astype(np.int64) - 1


def _midranks(w: IntArray, ties: tuple[IntArray, IntArray] | None) -> FloatArray:
    """Mid-rank of each case in each resample; ``w`` (c, n) counts in sorted order.

    A case drawn ``k`` times among ``b`` smaller draws holds ranks ``b + 1 .. b + k``
    (and all draws of its tie group share their mean rank): ``cum - (k - 1) / 2``.
    """
    # (written as 0.5 * k: dividing the int array by 2.0 is ten times slower)
    if ties is None:
        return np.cumsum(w, axis=1) - 0.5 * w + 0.5
    starts, run = ties
    g = np.add.reduceat(w, starts, axis=1)
    return np.take(np.cumsum(g, axis=1) - 0.5 * g + 0.5, run, axis=1)


def sigma_error_rank(
    sigma: ArrayLike,
    abs_error: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> Estimate:
    """Spearman correlation of the predicted sigma with the absolute error.

    Positive when the model is less sure where it is more wrong. The
    point value is :func:`scipy.stats.spearmanr`; the interval is a
    percentile bootstrap, patient-clustered with ``clusters``; each
    resample's correlation is computed exactly, with mid-ranks of the
    resampled (repeated) cases.

    Parameters
    ----------
    sigma : array of float, shape (n,)
        Predicted standard deviation (or any uncertainty, higher = less sure).
    abs_error : array of float, shape (n,)
        ``|y_pred - y_true|``.
    clusters : array, shape (n,), optional
        Patient key of each case.
    n_resamples : int, default 2000
    confidence_level : float, default 0.95
    random_state : int, numpy.random.Generator or None
        An int is recorded as ``seed``.

    Returns
    -------
    Estimate
        ``method="bootstrap-percentile"`` (``-clustered``),
        ``higher_is_better=True``; value None when either input is constant.

    Raises
    ------
    InputError
        On invalid arrays or options.

    References
    ----------
    Spearman (1904), Am. J. Psychol. 15:72-101; Efron & Tibshirani (1993),
    ch. 13; Field & Welsh (2007), J. R. Stat. Soc. B 69:369-390;
    Levi et al. (2022), "Evaluating and calibrating uncertainty prediction
    in regression tasks", Sensors 22:5540.
    """
    s = _vector(sigma, "sigma")
    e = _vector(abs_error, "abs_error", s.size)
    cl = check_confidence_level(confidence_level)
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, (int, np.integer))
        or n_resamples < 1
    ):
        raise InputError(f"n_resamples must be a positive integer; got {n_resamples!r}.")
    codes = check_clusters(clusters, s.size)
    rng, seed = normalise_random_state(random_state)
    n = s.size
    method = "bootstrap-percentile" + ("-clustered" if codes is not None else "")

    def estimate(
        value: float | None, bounds: tuple[float, float] | None, reason: str | None
    ) -> Estimate:
        return Estimate(
            value=value,
            low=None if bounds is None else bounds[0],
            high=None if bounds is None else bounds[1],
            confidence_level=cl,
            method=method,
            n=n,
            seed=seed,
            n_resamples=int(n_resamples),
            reason=reason,
            higher_is_better=True,
        )

    if n < 2 or np.all(s == s[0]) or np.all(e == e[0]):
        return estimate(None, None, "sigma or abs_error is constant: no rank correlation")
    value = float(spearmanr(s, e).statistic)
    why = too_few_for_interval(n, codes)
    if why is not None:
        return estimate(value, None, why)
    # Resamples are drawn in case order (so float noise in sigma cannot change
    # them), then taken in order of sigma, where sigma's tie groups are contiguous.
    by_s = np.argsort(s, kind="stable")
    s, e = s[by_s], e[by_s]
    keys = None if clusters is None else np.asarray(clusters)
    s_ties = _tie_groups(s)
    by_e = np.argsort(e, kind="stable")
    back = np.empty(n, dtype=np.int64)
    back[by_e] = np.arange(n)
    e_ties = _tie_groups(e[by_e])
    stats = np.empty(int(n_resamples))
    done = 0
    for drawn in resample_counts(n, n_resamples=int(n_resamples), random_state=rng, clusters=keys):
        w = np.take(drawn, by_s, axis=1)
        centre = (w.sum(axis=1, keepdims=True) + 1) / 2.0
        ra = _midranks(w, s_ties) - centre
        rb = np.take(_midranks(np.take(w, by_e, axis=1), e_ties), back, axis=1) - centre
        wf = w.astype(np.float64)
        num = np.einsum("ij,ij,ij->i", wf, ra, rb)
        den = np.sqrt(np.einsum("ij,ij,ij->i", wf, ra, ra) * np.einsum("ij,ij,ij->i", wf, rb, rb))
        with np.errstate(divide="ignore", invalid="ignore"):
            stats[done : done + w.shape[0]] = num / den
        done += w.shape[0]
    bad = int(np.count_nonzero(~np.isfinite(stats)))
    if bad:
        return estimate(value, None, f"a resample had constant sigma or error ({bad} of {done})")
    tail = (1.0 - cl) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return estimate(value, (float(low), float(high)), None)


def regression_referral_curve(
    abs_error: ArrayLike, sigma: ArrayLike, *, fractions: Sequence[float] | None = None
) -> list[dict[str, Any]]:
    """MAE of the retained cases as the most uncertain fraction is referred.

    For each fraction ``f`` the ``floor(f n)`` cases of highest sigma are
    referred. Ties in sigma are broken deterministically and without
    regard to case order: each tied case counts with its tie group's mean
    error, which is the expected MAE over random orders of the tied cases
    (as in :func:`aurc`). ``oracle`` refers the largest errors instead
    (the best any ranking can do); ``random`` is the expected MAE under
    random referral, the overall MAE.

    Parameters
    ----------
    abs_error : array of float, shape (n,)
        ``|y_pred - y_true|``, >= 0.
    sigma : array of float, shape (n,)
        Predicted uncertainty, higher = refer first.
    fractions : sequence of float in [0, 1), optional
        Default 0, 0.05, ..., 0.5.

    Returns
    -------
    list of dict
        One row per fraction: ``requested``, ``referred`` (the fraction
        actually referred, ``floor(f n) / n``), ``n_retained``, ``mae``,
        ``oracle``, ``random``.

    Raises
    ------
    InputError
        On invalid arrays, negative errors or fractions outside [0, 1).

    References
    ----------
    Leibig et al. (2017), "Leveraging uncertainty information from deep
    neural networks for disease detection", Sci. Rep. 7:17816; Geifman
    et al. (2019), ICLR (the oracle ordering).
    """
    e = _vector(abs_error, "abs_error")
    s = _vector(sigma, "sigma", e.size)
    if np.any(e < 0.0):
        raise InputError(
            f"abs_error must be >= 0; the smallest is {e.min():.4g}. Pass |y_pred - y_true|."
        )
    f = np.linspace(0.0, 0.5, 11) if fractions is None else np.asarray(fractions, dtype=float)
    if f.ndim != 1 or f.size == 0 or np.any((f < 0.0) | (f >= 1.0)):
        raise InputError(
            f"fractions must be a non-empty sequence of numbers in [0, 1); got {fractions!r}."
        )
    n = e.size
    _, group, size = np.unique(s, return_inverse=True, return_counts=True)
    tied = (np.bincount(group, weights=e) / size)[group]
    # most uncertain first; tied cases are interchangeable (equal tied means)
    by_sigma = np.concatenate([[0.0], np.cumsum(tied[np.argsort(-s, kind="stable")])])
    smallest = np.concatenate([[0.0], np.cumsum(np.sort(e))])
    overall = float(np.mean(e))
    rows = []
    for frac in f.tolist():
        k = min(int(np.floor(frac * n + 1e-9)), n - 1)
        kept = n - k
        rows.append(
            {
                "requested": frac,
                "referred": k / n,
                "n_retained": kept,
                "mae": float((by_sigma[-1] - by_sigma[k]) / kept),
                "oracle": float(smallest[kept] / kept),
                "random": overall,
            }
        )
    return rows
