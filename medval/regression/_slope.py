"""Least-squares slope with a t interval, or a (patient-clustered) bootstrap interval."""

from __future__ import annotations

import numpy as np
from scipy.stats import t as student_t

from medval._types import Estimate
from medval.regression._checks import FloatArray, IntArray
from medval.regression._resampling import Resampling, weighted_sums

__all__ = ["slope_estimate"]

# A resample whose x spread is below this share of the sample's is treated as
# having none (its slope is rounding noise).
_NO_SPREAD = 1e-10


def _line(x: FloatArray, y: FloatArray) -> tuple[float, float, float]:
    """Slope, intercept and the slope's standard error (NaN where undefined)."""
    n = x.size
    xm, ym = float(x.mean()), float(y.mean())
    xc, yc = x - xm, y - ym
    sxx = float(xc @ xc)
    if n < 2 or sxx <= 0.0:
        return float("nan"), float("nan"), float("nan")
    slope = float(xc @ yc) / sxx
    intercept = ym - slope * xm
    if n < 3:
        return slope, intercept, float("nan")
    resid = yc - slope * xc
    return slope, intercept, float(np.sqrt(float(resid @ resid) / (n - 2) / sxx))


def slope_estimate(x: FloatArray, y: FloatArray, rs: Resampling) -> tuple[Estimate, float]:
    """Ordinary least-squares slope of ``y`` on ``x``, with its interval, and the intercept.

    Without clusters the interval is ``slope ± t_{n-2} SE`` (``method="ols-t"``,
    normal homoscedastic residuals); with clusters, the percentile
    bootstrap of the slope over resampled patients.

    Parameters
    ----------
    x, y : array of float, shape (n,)
    rs : Resampling

    Returns
    -------
    (Estimate, float)
        The slope (``higher_is_better=None``; value None when ``x`` has
        no spread) and the intercept (NaN then).

    References
    ----------
    Draper & Smith (1998), *Applied Regression Analysis*, 3rd ed., ch. 1
    (the t interval); Field & Welsh (2007), J. R. Stat. Soc. B 69:369-390
    (the clustered bootstrap).
    """
    n = x.size
    slope, intercept, se = _line(x, y)
    if not np.isfinite(slope):
        none = Estimate(
            value=None,
            confidence_level=rs.confidence_level,
            method="ols-t" if not rs.clustered else rs.method,
            n=n,
            reason="the x values have no spread (or there is one case): no slope",
        )
        return none, intercept
    if not rs.clustered:
        half = None
        if np.isfinite(se):
            half = float(student_t.ppf(0.5 + rs.confidence_level / 2.0, n - 2)) * se
        est = rs.closed_form(
            slope,
            half,
            method="ols-t",
            n=n,
            higher_is_better=None,
            reason="a t interval of a slope needs at least 3 cases",
        )
        return est, intercept
    why = rs.too_few(n)
    if why is not None:
        return rs.estimate(slope, None, n=n, higher_is_better=None, reason=why), intercept
    xc = x - x.mean()
    yc = y - y.mean()
    columns = np.stack([xc, yc, xc * xc, xc * yc, np.ones_like(xc)])
    spread = float(xc @ xc) / n

    def block(w: IntArray) -> FloatArray:
        s = weighted_sums(w, columns)
        m = s[:, 4]
        sxx = s[:, 2] - s[:, 0] ** 2 / m
        sxy = s[:, 3] - s[:, 0] * s[:, 1] / m
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(sxx > _NO_SPREAD * spread * m, sxy / sxx, np.nan)
        return b[:, None]

    resampled = rs.statistics(n, block)[:, 0]
    return rs.estimate(slope, resampled, n=n, higher_is_better=None), intercept
