"""Bland-Altman agreement between the model and the reference.

Differences are ``y_pred - y_true`` (the model's error), plotted against
the pair mean ``(y_pred + y_true) / 2``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtri
from scipy.stats import t as student_t

from medval._errors import InputError
from medval._types import Estimate
from medval.regression._checks import FloatArray, IntArray, check_count, check_pair
from medval.regression._resampling import Resampling, weighted_sums
from medval.regression._slope import slope_estimate

__all__ = ["LIMITS_COVERAGE", "BlandAltman", "bland_altman", "plot_points"]

#: Share of differences the limits of agreement are meant to contain.
LIMITS_COVERAGE = 0.95


@dataclasses.dataclass(frozen=True)
class BlandAltman:
    """Bias and 95% limits of agreement of ``y_pred - y_true``, with their intervals.

    Attributes
    ----------
    bias : Estimate
        Mean difference.
    loa_low, loa_high : Estimate
        ``bias ∓ multiplier * sd``: where 95% of differences are expected.
    sd : float
        Standard deviation of the differences (``ddof=1``).
    multiplier : float
        The normal quantile of the limits, ``1.959964`` (0.975).
    proportional : Estimate
        Slope of the difference on the pair mean (proportional bias; 0 when
        the error does not grow with the value).
    intercept : float
        Intercept of that line.
    n : int
        Number of cases.
    """

    bias: Estimate
    loa_low: Estimate
    loa_high: Estimate
    sd: float
    multiplier: float
    proportional: Estimate
    intercept: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: Estimates as their dicts, numbers as they are."""
        return {
            "bias": self.bias.to_dict(),
            "loa_low": self.loa_low.to_dict(),
            "loa_high": self.loa_high.to_dict(),
            "sd": self.sd,
            "multiplier": self.multiplier,
            "proportional": self.proportional.to_dict(),
            "intercept": self.intercept,
            "n": self.n,
        }


def _bootstrap_limits(
    d: FloatArray, z: float, rs: Resampling
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bias and both limits on every resample, each of shape (B,)."""
    dc = d - d.mean()
    columns = np.stack([dc, dc * dc, np.ones_like(dc)])

    def block(w: IntArray) -> FloatArray:
        s = weighted_sums(w, columns)
        m = s[:, 2]
        mean = s[:, 0] / m
        sd = np.sqrt(np.maximum(s[:, 1] - m * mean**2, 0.0) / (m - 1.0))
        return np.stack([mean, mean - z * sd, mean + z * sd], axis=1)

    stats = rs.statistics(d.size, block)
    shift = float(d.mean())
    return stats[:, 0] + shift, stats[:, 1] + shift, stats[:, 2] + shift


def bland_altman(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    confidence_level: float = 0.95,
    clusters: ArrayLike | None = None,
    n_resamples: int = 2000,
    random_state: int | np.random.Generator | None = None,
) -> BlandAltman:
    """Bland-Altman bias and limits of agreement, with confidence intervals.

    With differences ``d = y_pred - y_true`` (mean ``dbar``, SD ``s``), the
    95% limits of agreement are ``dbar ∓ 1.96 s``. Their confidence
    intervals are the closed forms of Bland and Altman (1999, sec. 2-3):
    ``SE(dbar) = s / sqrt(n)`` and ``SE(limit) ≈ sqrt(3 s^2 / n)``, with
    the t quantile of ``n - 1`` degrees of freedom (``method="t"`` for the
    bias, ``"bland-altman-t"`` for the limits). With ``clusters`` the
    cases of one patient are not independent, and all three intervals are
    percentile bootstraps over resampled patients instead
    (``"bootstrap-percentile-clustered"``). Proportional bias is the OLS
    slope of ``d`` on the pair mean (Bland and Altman 1999, sec. 3.2),
    with a t interval (``"ols-t"``) or, with clusters, the clustered
    bootstrap.

    When ``y_true`` is a reference standard measured almost without error,
    the pair mean shares half of the model's error with the difference,
    which tilts this slope upwards by about ``var(error) / (2 var(mean))``
    even without proportional bias (Krouwer 2008); :func:`error_slope`
    (the error on the true value) is then the cleaner reading.

    Parameters
    ----------
    y_true : array of float, shape (n,)
        Reference values.
    y_pred : array of float, shape (n,)
        Model predictions, same unit.
    confidence_level : float, default 0.95
        Of the intervals of the bias, the limits and the slope; the limits
        themselves always cover 95% of differences.
    clusters : array, shape (n,), optional
        Patient key of each case.
    n_resamples : int, default 2000
        For the bootstrap intervals (with clusters).
    random_state : int, numpy.random.Generator or None
        For the bootstrap; an int is recorded as ``seed``.

    Returns
    -------
    BlandAltman

    Raises
    ------
    InputError
        On fewer than 2 cases, arrays of different lengths, non-finite
        values or invalid options.

    References
    ----------
    Bland & Altman (1986), "Statistical methods for assessing agreement
    between two methods of clinical measurement", Lancet 327:307-310;
    Bland & Altman (1999), "Measuring agreement in method comparison
    studies", Stat. Methods Med. Res. 8:135-160; Krouwer (2008), "Why
    Bland-Altman plots should use X, not (Y+X)/2 when X is a reference
    method", Stat. Med. 27:778-780.
    """
    t, p = check_pair(y_true, y_pred)
    n = t.size
    if n < 2:
        raise InputError(
            f"Bland-Altman limits need the SD of at least 2 differences; got {n} case. "
            "Pass the whole test set."
        )
    rs = Resampling.make(
        n,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        random_state=random_state,
        clusters=clusters,
    )
    d = p - t
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    z = float(ndtri(0.5 + LIMITS_COVERAGE / 2.0))
    values = (bias, bias - z * sd, bias + z * sd)
    if rs.clustered:
        why = rs.too_few(n)
        boot = (None, None, None) if why is not None else _bootstrap_limits(d, z, rs)
        parts = [
            rs.estimate(v, b, n=n, higher_is_better=None, reason=why)
            for v, b in zip(values, boot, strict=True)
        ]
    else:
        q = float(student_t.ppf(0.5 + rs.confidence_level / 2.0, n - 1))
        halves = (
            q * sd / np.sqrt(n),
            q * np.sqrt(3.0 * sd * sd / n),
            q * np.sqrt(3.0 * sd * sd / n),
        )
        parts = [
            rs.closed_form(v, h, method=m, n=n, higher_is_better=None)
            for v, h, m in zip(
                values, halves, ("t", "bland-altman-t", "bland-altman-t"), strict=True
            )
        ]
    proportional, intercept = slope_estimate((t + p) / 2.0, d, rs)
    return BlandAltman(
        bias=parts[0],
        loa_low=parts[1],
        loa_high=parts[2],
        sd=sd,
        multiplier=z,
        proportional=proportional,
        intercept=intercept,
        n=n,
    )


def plot_points(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    max_points: int = 400,
    random_state: int = 0,
) -> tuple[FloatArray, FloatArray]:
    """The points of a Bland-Altman plot: pair means and differences.

    Parameters
    ----------
    y_true, y_pred : array of float, shape (n,)
    max_points : int, default 400
        Above this many cases a random subsample of this size is returned
        (in case order), the same for the same ``random_state``.
    random_state : int, default 0

    Returns
    -------
    (means, differences) : arrays of float, shape (min(n, max_points),)
        ``(y_true + y_pred) / 2`` and ``y_pred - y_true``.

    Raises
    ------
    InputError
        On invalid arrays or ``max_points < 1``.

    References
    ----------
    Bland & Altman (1986), Lancet 327:307-310 (the plot).
    """
    t, p = check_pair(y_true, y_pred)
    k = check_count(max_points, name="max_points", minimum=1)
    seed = check_count(random_state, name="random_state", minimum=0)
    if t.size > k:
        keep = np.sort(np.random.default_rng(seed).choice(t.size, size=k, replace=False))
        t, p = t[keep], p[keep]
    return (t + p) / 2.0, p - t
