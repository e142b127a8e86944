"""Error as a function of the true value: per-bin bias and MAE, and the error slope.

A model trained with a squared loss regresses towards the training mean:
it over-estimates low values and under-estimates high ones, so the error
``y_pred - y_true`` falls as the true value rises (the brain-age bias).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medval._types import Estimate
from medval.regression._checks import check_count, check_pair
from medval.regression._metrics import error_estimates
from medval.regression._resampling import Resampling
from medval.regression._slope import slope_estimate

__all__ = ["error_by_value", "error_slope"]


def error_by_value(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    bins: int = 5,
    clusters: ArrayLike | None = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> list[dict[str, Any]]:
    """Bias and MAE of ``y_pred - y_true`` within quantile bins of the true value.

    Bin edges are the ``0, 1/bins, ..., 1`` quantiles of ``y_true``; a bin
    holds ``low <= y_true < high`` (the last one includes its upper edge).
    Edges that coincide (many tied true values) are merged, and so is an
    empty bin with the next one, so fewer bins may come back. Each bin's intervals are those of
    :func:`error_metrics` computed on its cases alone (patients resampled
    within the bin when ``clusters`` is given); one generator serves all
    bins.

    Parameters
    ----------
    y_true, y_pred : array of float, shape (n,)
    bins : int, default 5
        Number of quantile bins (quintiles).
    clusters : array, shape (n,), optional
        Patient key of each case.
    n_resamples : int, default 2000
    confidence_level : float, default 0.95
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    list of dict
        One row per bin, in order: ``bin`` (0-based), ``low``, ``high``
        (edges of the true value), ``n``, ``bias`` and ``mae`` (Estimate
        dicts; the bias interval is a t interval without clusters).

    Raises
    ------
    InputError
        On invalid arrays or options, or ``bins < 1``.

    References
    ----------
    Smith et al. (2019), "Estimation of brain age delta from brain imaging",
    NeuroImage 200:528-539 (the age-dependence of the brain-age error);
    Efron & Tibshirani (1993), ch. 13; Field & Welsh (2007), J. R. Stat.
    Soc. B 69:369-390.
    """
    t, p = check_pair(y_true, y_pred)
    k = check_count(bins, name="bins", minimum=1)
    rs = Resampling.make(
        t.size,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        random_state=random_state,
        clusters=clusters,
    )
    edges = np.unique(np.quantile(t, np.linspace(0.0, 1.0, k + 1)))
    if edges.size == 1:  # one true value: one bin
        edges = np.repeat(edges, 2)
    which = np.searchsorted(edges[1:-1], t, side="right")
    # Interpolated edges can leave a bin empty (few cases, many bins): merge it upwards.
    filled = np.bincount(which, minlength=edges.size - 1) > 0
    edges = np.concatenate([edges[:1], edges[1:][filled]])
    which = np.searchsorted(edges[1:-1], t, side="right")
    rows: list[dict[str, Any]] = []
    for i in range(edges.size - 1):
        mask = which == i
        est = error_estimates(p[mask] - t[mask], ("bias", "mae"), rs.subset(mask))
        rows.append(
            {
                "bin": i,
                "low": float(edges[i]),
                "high": float(edges[i + 1]),
                "n": int(mask.sum()),
                "bias": est["bias"].to_dict(),
                "mae": est["mae"].to_dict(),
            }
        )
    return rows


def error_slope(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    confidence_level: float = 0.95,
    clusters: ArrayLike | None = None,
    n_resamples: int = 2000,
    random_state: int | np.random.Generator | None = None,
) -> Estimate:
    """Slope of the error ``y_pred - y_true`` on the true value.

    Ordinary least squares of ``y_pred - y_true`` on ``y_true``; 0 for a
    model whose error does not depend on the value, negative under
    regression to the mean (slope ``b - 1`` for predictions
    ``a + b y_true``, ``b < 1``). Without clusters a t interval with
    ``n - 2`` degrees of freedom (``method="ols-t"``); with clusters the
    percentile bootstrap over resampled patients.

    Parameters
    ----------
    y_true, y_pred : array of float, shape (n,)
    confidence_level : float, default 0.95
    clusters : array, shape (n,), optional
    n_resamples : int, default 2000
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    Estimate
        ``higher_is_better=None`` (0 is best); value None, with a reason,
        when all true values are equal.

    Raises
    ------
    InputError
        On invalid arrays or options.

    References
    ----------
    Le et al. (2018), "A nonlinear simulation framework supports adjusting
    for age when analyzing BrainAGE", Front. Aging Neurosci. 10:317;
    Smith et al. (2019), NeuroImage 200:528-539; Draper & Smith (1998),
    *Applied Regression Analysis*, ch. 1.
    """
    t, p = check_pair(y_true, y_pred)
    rs = Resampling.make(
        t.size,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        random_state=random_state,
        clusters=clusters,
    )
    return slope_estimate(t, p - t, rs)[0]
