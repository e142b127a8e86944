"""Coverage diagnostics of regression prediction intervals: marginal, per group, per bin."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medval._errors import InputError
from medval._types import Estimate
from medval.conformal._regression import FloatArray
from medval.stats import check_confidence_level, proportion_ci

__all__ = ["coverage_by_bins", "interval_coverage"]


def _check(y_true: ArrayLike, intervals: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """y (n,) finite and intervals (n, 2) without NaN; returns (covered, width) as floats."""
    y = np.asarray(y_true, dtype=np.float64)
    iv = np.asarray(intervals, dtype=np.float64)
    if y.ndim != 1 or y.shape[0] == 0:
        raise InputError(f"y_true must have shape (n,) with n >= 1; got {y.shape}.")
    if iv.shape != (y.shape[0], 2):
        raise InputError(
            f"intervals must have shape ({y.shape[0]}, 2): lower and upper bound per case; got "
            f"{iv.shape}."
        )
    if not np.all(np.isfinite(y)):
        raise InputError("y_true must be finite; drop or impute the missing values first.")
    lo, hi = iv[:, 0], iv[:, 1]
    if np.isnan(iv).any() or np.any(lo == np.inf) or np.any(hi == -np.inf):
        raise InputError(
            "intervals must not hold NaN, a lower bound of +inf or an upper bound of -inf; "
            "an infinite interval is (-inf, +inf)."
        )
    covered = ((lo <= y) & (y <= hi)).astype(np.float64)
    # a crossed interval (lower > upper) is empty: width 0, covers nothing
    width = np.maximum(hi - lo, 0.0)
    return covered, width


def _coverage(covered: FloatArray, confidence_level: float) -> dict[str, Any]:
    k, n = int(covered.sum()), int(covered.shape[0])
    return proportion_ci(
        k, n, method="clopper-pearson", confidence_level=confidence_level
    ).to_dict()


def interval_coverage(
    y_true: ArrayLike,
    intervals: ArrayLike,
    *,
    groups: ArrayLike | None = None,
    confidence_level: float = 0.95,
    min_cases: int = 1,
) -> dict[str, Any]:
    """Coverage and width of prediction intervals, overall and per group.

    Coverage is the share of cases with ``lower <= y <= upper``, with an
    exact Clopper-Pearson interval (Clopper & Pearson 1934): the guarantee of
    split conformal intervals is marginal (Lei et al. 2018), and per group
    only for Mondrian calibration (Vovk 2003), so the per-group rows show
    where a marginal guarantee hides under-coverage.

    Parameters
    ----------
    y_true : array of float, shape (n,)
        True values.
    intervals : array of float, shape (n, 2)
        Lower and upper bounds (``±inf`` allowed; a crossed interval,
        lower > upper, is empty: width 0, not covering).
    groups : array, shape (n,), optional
        Group key per case (manufacturer, site, sex, age band).
    confidence_level : float, default 0.95
        Level of the Clopper-Pearson intervals (not the target coverage).
    min_cases : int, default 1
        A group with fewer cases gets a coverage without value or interval
        (``reason`` says why); its row and width stay in the table.

    Returns
    -------
    dict
        ``coverage`` (an :class:`~medval._types.Estimate` dict), ``mean_width``
        and ``median_width`` (``inf`` when an interval is infinite), ``n``,
        ``n_infinite`` (cases with an infinite bound), ``n_empty`` (crossed
        intervals) and ``by_group``: rows ``{"group", "n", "coverage",
        "mean_width"}`` in sorted group order (empty without groups).

    Raises
    ------
    InputError
        Misshapen or NaN inputs, ``min_cases < 1``.
    """
    covered, width = _check(y_true, intervals)
    cl = check_confidence_level(confidence_level)
    if isinstance(min_cases, bool) or not isinstance(min_cases, (int, np.integer)) or min_cases < 1:
        raise InputError(f"min_cases must be an int >= 1; got {min_cases!r}.")
    iv = np.asarray(intervals, dtype=np.float64)
    out: dict[str, Any] = {
        "coverage": _coverage(covered, cl),
        "mean_width": float(width.mean()),
        "median_width": float(np.median(width)),
        "n": int(covered.shape[0]),
        "n_infinite": int(np.sum(~np.isfinite(iv).all(axis=1))),
        "n_empty": int(np.sum(iv[:, 0] > iv[:, 1])),
        "by_group": [],
    }
    if groups is None:
        return out
    g = np.asarray(groups)
    if g.shape != covered.shape:
        raise InputError(f"groups must have shape ({covered.shape[0]},); got {g.shape}.")
    keys, inverse = np.unique(g, return_inverse=True)
    inverse = inverse.ravel()
    for i, key in enumerate(keys.tolist()):
        member = inverse == i
        n = int(member.sum())
        if n < min_cases:
            cov = Estimate(
                value=None,
                confidence_level=cl,
                method="clopper-pearson",
                n=n,
                reason=f"{n} case(s), fewer than min_cases = {min_cases}",
            ).to_dict()
        else:
            cov = _coverage(covered[member], cl)
        row = {"group": key, "n": n, "coverage": cov, "mean_width": float(width[member].mean())}
        out["by_group"].append(row)
    return out


def coverage_by_bins(
    y_true: ArrayLike,
    intervals: ArrayLike,
    values: ArrayLike,
    *,
    bins: int = 5,
    confidence_level: float = 0.95,
) -> list[dict[str, Any]]:
    """Conditional coverage: coverage and mean width per quantile bin of ``values``.

    Split conformal intervals cover marginally; binning by the true value,
    the predicted value or the model's ``sigma`` shows whether the coverage
    is bought by over-covering easy cases and under-covering hard ones (the
    conditional-coverage diagnostics of Lei et al. 2018, sec. 5, and Romano
    et al. 2019, sec. 6; Angelopoulos & Bates 2023, sec. 3).

    Parameters
    ----------
    y_true : array of float, shape (n,)
    intervals : array of float, shape (n, 2)
    values : array of float, shape (n,)
        What to bin by (e.g. ``y_true`` or ``sigma``).
    bins : int, default 5
        Number of equal-count bins by rank of ``values``; tied values stay
        in one bin, so bins may be unequal and fewer may come back (never
        an empty one).
    confidence_level : float, default 0.95
        Level of the Clopper-Pearson intervals.

    Returns
    -------
    list of dict
        One row per bin, in increasing order of ``values``: ``{"bin", "low",
        "high" (the smallest and largest value in the bin), "n", "coverage"
        (Estimate dict), "mean_width"}``.

    Raises
    ------
    InputError
        Misshapen or non-finite inputs, ``bins < 1``.
    """
    covered, width = _check(y_true, intervals)
    cl = check_confidence_level(confidence_level)
    v = np.asarray(values, dtype=np.float64)
    if v.shape != covered.shape or not np.all(np.isfinite(v)):
        raise InputError(
            f"values must be finite with shape ({covered.shape[0]},), one per case; got {v.shape}."
        )
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise InputError(f"bins must be an int >= 1; got {bins!r}.")
    # equal-count bins by rank; tied values share their first rank, hence a bin
    n = v.shape[0]
    first_rank = np.searchsorted(np.sort(v), v, side="left")
    which = first_rank * int(bins) // n
    rows = []
    for i, b in enumerate(np.unique(which).tolist()):
        member = which == b
        rows.append(
            {
                "bin": i,
                "low": float(v[member].min()),
                "high": float(v[member].max()),
                "n": int(member.sum()),
                "coverage": _coverage(covered[member], cl),
                "mean_width": float(width[member].mean()),
            }
        )
    return rows
