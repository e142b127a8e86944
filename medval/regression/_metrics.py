"""Error metrics of a regression model, each with its confidence interval.

Convention: error = prediction - truth, so a positive bias means the model
over-estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import t as student_t

from medval._errors import InputError
from medval._types import Estimate
from medval.regression._checks import FloatArray, IntArray, check_pair
from medval.regression._resampling import Resampling, weighted_median, weighted_sums

__all__ = ["BIAS_INTERVALS", "REGRESSION_METRICS", "error_metrics"]

#: Metric name -> higher_is_better (None: two-sided, the best value is 0).
REGRESSION_METRICS: dict[str, bool | None] = {
    "mae": False,
    "median_ae": False,
    "rmse": False,
    "bias": None,
}

#: How the bias interval is computed without clusters (with clusters: the bootstrap).
BIAS_INTERVALS = ("t", "bootstrap")
BiasInterval = Literal["t", "bootstrap"]


def _point(name: str, error: FloatArray) -> float:
    # The formulas of scikit-learn's mean_absolute_error, median_absolute_error
    # and root_mean_squared_error, so the values agree to the last bit.
    if name == "mae":
        return float(np.mean(np.abs(error)))
    if name == "median_ae":
        return float(np.median(np.abs(error)))
    if name == "rmse":
        return float(np.sqrt(np.mean(error**2)))
    return float(np.mean(error))


def _resampled(error: FloatArray, names: Sequence[str], rs: Resampling) -> dict[str, FloatArray]:
    """Each metric on every resample, shape (B,) per name."""
    # Resamples are drawn in case order: drawing in |error| order would tie the
    # draws to float noise (two nearly equal errors that swap places on another
    # CPU would change every interval). Sums need no order; only the weighted
    # median takes the counts in |error| order, narrowed so the gather is cheap.
    order = np.argsort(np.abs(error), kind="stable")
    absolute = np.abs(error)
    sorted_absolute = absolute[order]
    # a column of ones: the resample size comes out of the same product
    columns = np.stack([absolute, error * error, error, np.ones_like(error)])
    want_median = "median_ae" in names

    def block(w: IntArray) -> FloatArray:
        sums = weighted_sums(w, columns)
        m = sums[:, 3]
        out = np.empty((w.shape[0], 4))
        out[:, 0] = sums[:, 0] / m
        out[:, 1] = np.sqrt(sums[:, 1] / m)
        out[:, 2] = sums[:, 2] / m
        out[:, 3] = np.nan
        if want_median:
            narrow = np.int16 if int(w.max()) <= np.iinfo(np.int16).max else np.int64
            out[:, 3] = weighted_median(sorted_absolute, np.take(w.astype(narrow), order, axis=1))
        return out

    stats = rs.statistics(error.size, block)
    index = {"mae": 0, "rmse": 1, "bias": 2, "median_ae": 3}
    return {name: stats[:, index[name]] for name in names}


def error_estimates(
    error: FloatArray,
    names: Sequence[str],
    rs: Resampling,
    *,
    bias_interval: BiasInterval = "t",
) -> dict[str, Estimate]:
    """The named metrics of ``error`` (shape (n,), n >= 1) under the resampling ``rs``."""
    n = error.size
    values = {name: _point(name, error) for name in names}
    t_bias = "bias" in names and bias_interval == "t" and not rs.clustered
    boot = [name for name in names if not (t_bias and name == "bias")]
    why = rs.too_few(n)
    resampled = {} if why is not None or not boot else _resampled(error, boot, rs)
    out = {
        name: rs.estimate(
            values[name],
            resampled.get(name),
            n=n,
            higher_is_better=REGRESSION_METRICS[name],
            reason=why,
        )
        for name in boot
    }
    if t_bias:
        half = None
        if n >= 2:
            q = float(student_t.ppf(0.5 + rs.confidence_level / 2.0, n - 1))
            half = q * float(np.std(error, ddof=1)) / np.sqrt(n)
        out["bias"] = rs.closed_form(
            values["bias"],
            half,
            method="t",
            n=n,
            higher_is_better=None,
            reason="a t interval needs at least 2 cases",
        )
    return {name: out[name] for name in names}


def error_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
    bias_interval: BiasInterval = "t",
) -> dict[str, Estimate]:
    """MAE, median absolute error, RMSE and bias with confidence intervals.

    With error ``e = y_pred - y_true``: MAE ``mean |e|``, median AE
    ``median |e|``, RMSE ``sqrt(mean e^2)`` and bias ``mean e`` (positive:
    the model over-estimates). The point values are those of
    scikit-learn's ``mean_absolute_error``, ``median_absolute_error`` and
    ``root_mean_squared_error``.

    Intervals are percentile bootstrap intervals (Efron and Tibshirani
    1993, ch. 13): cases are resampled with replacement, or with
    ``clusters`` patients with all their cases (Field and Welsh 2007),
    since the cases of one patient are correlated. Without clusters the
    bias interval is by default the t interval ``mean ± t_{n-1} s / sqrt(n)``
    (Student 1908), ``method="t"``.

    Parameters
    ----------
    y_true : array of float, shape (n,)
        Reference values (e.g. bone age in months).
    y_pred : array of float, shape (n,)
        Model predictions, same unit.
    clusters : array, shape (n,), optional
        Patient key of each case; intervals then resample patients.
    n_resamples : int, default 2000
    confidence_level : float, default 0.95
    random_state : int, numpy.random.Generator or None
        An int is recorded as ``seed``; None draws and records a fresh one.
    bias_interval : {"t", "bootstrap"}, default "t"
        The bias interval without clusters.

    Returns
    -------
    dict of str to Estimate
        Keys ``"mae"``, ``"median_ae"``, ``"rmse"``, ``"bias"``;
        ``higher_is_better`` from :data:`REGRESSION_METRICS` (None for the
        bias: 0 is best). ``method`` ``"bootstrap-percentile"``
        (``"-clustered"`` with clusters) or ``"t"``. Below 10 cases (or
        10 patients with clusters) bootstrap bounds are None, with a reason.

    Raises
    ------
    InputError
        On arrays of different lengths, non-numeric or non-finite values,
        no cases, clusters of the wrong length, ``n_resamples < 1``,
        ``confidence_level`` outside (0, 1) or an unknown ``bias_interval``.

    References
    ----------
    Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13;
    Field & Welsh (2007), J. R. Stat. Soc. B 69:369-390; Willmott &
    Matsuura (2005), Climate Research 30:79-82 (MAE and RMSE).
    """
    t, p = check_pair(y_true, y_pred)
    if bias_interval not in BIAS_INTERVALS:
        raise InputError(
            f"bias_interval must be one of {', '.join(BIAS_INTERVALS)}; got {bias_interval!r}."
        )
    rs = Resampling.make(
        t.size,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        random_state=random_state,
        clusters=clusters,
    )
    return error_estimates(p - t, tuple(REGRESSION_METRICS), rs, bias_interval=bias_interval)
