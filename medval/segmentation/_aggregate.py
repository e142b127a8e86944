"""Cohort aggregates of per-case numbers, each with a patient-clustered bootstrap interval."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError
from medval._types import Estimate
from medval.stats import (
    check_clusters,
    check_confidence_level,
    normalise_random_state,
    resample_counts,
    too_few_for_interval,
)

__all__ = ["case_statistic_ci", "mean_ci"]


def case_statistic_ci(
    statistic: Callable[[NDArray[np.int64]], float],
    n: int,
    *,
    clusters: ArrayLike | None = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
    higher_is_better: bool | None = None,
) -> Estimate:
    """A statistic of weighted cases with a percentile bootstrap interval.

    ``statistic(w)`` takes a count per case (how often each case is in the
    sample; all ones for the point estimate) and returns a number. Cases,
    or with ``clusters`` patients with all their cases, are resampled with
    replacement by :func:`medval.stats.resample_counts` (Field and Welsh
    2007); the interval is the percentile interval of the resampled
    statistic (Efron and Tibshirani 1993, ch. 13). A resample where the
    statistic is undefined (NaN, e.g. no lesion drawn) is left out and
    counted in the method.

    Parameters
    ----------
    statistic : callable
        ``w (n,) int -> float``.
    n : int
        Number of cases.
    clusters : array, shape (n,), optional
        Patient key of each case.
    n_resamples : int, default 2000
    confidence_level : float, default 0.95
    random_state : int, Generator or None
        The seed (recorded in the Estimate).
    higher_is_better : bool or None

    Returns
    -------
    Estimate
        ``method`` ``"bootstrap-percentile"`` (``-clustered`` with clusters);
        bounds None with a reason when the point estimate is undefined or
        there are too few cases or patients.
    """
    cl = check_confidence_level(confidence_level)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)):
        raise InputError(f"n_resamples must be a positive integer; got {n_resamples!r}.")
    if n_resamples < 1 or n < 1:
        raise InputError(f"need n >= 1 cases and n_resamples >= 1; got {n}, {n_resamples}.")
    codes = check_clusters(clusters, n)
    rng, seed = normalise_random_state(random_state)
    value = float(statistic(np.ones(n, dtype=np.int64)))
    method = "bootstrap-percentile" + ("-clustered" if codes is not None else "")

    def estimate(
        v: float | None, low: float | None, high: float | None, why: str | None
    ) -> Estimate:
        return Estimate(
            value=v, low=low, high=high, confidence_level=cl, method=method, n=int(n),
            seed=seed, n_resamples=int(n_resamples), reason=why,
            higher_is_better=higher_is_better,
        )  # fmt: skip

    if not np.isfinite(value):
        return estimate(None, None, None, "not defined on these cases")
    why = too_few_for_interval(n, codes)
    if why is not None:
        return estimate(value, None, None, why)
    reps: list[float] = []
    for block in resample_counts(
        n, n_resamples=int(n_resamples), random_state=rng, clusters=clusters
    ):
        reps.extend(float(statistic(w)) for w in block)
    r = np.asarray(reps)
    r = r[np.isfinite(r)]
    if r.size < 0.9 * n_resamples:
        return estimate(
            value, None, None, f"the statistic is undefined in {n_resamples - r.size} resamples"
        )
    q = (1.0 - cl) / 2.0
    low, high = np.quantile(r, [q, 1.0 - q])
    return estimate(value, float(low), float(high), None)


def mean_ci(
    values: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
    higher_is_better: bool | None = None,
) -> Estimate:
    """The mean of per-case values with a (patient-clustered) percentile bootstrap interval.

    NaN values are refused: a value that is undefined for a case must be
    handled by an explicit rule before averaging (see
    :func:`medval.segmentation.structure_scores`), never skipped.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise InputError(f"values must be a non-empty 1-D array; got shape {v.shape}.")
    if not np.isfinite(v).all():
        raise InputError(
            f"{int((~np.isfinite(v)).sum())} values are NaN or infinite; give every case a "
            "value by a declared rule instead of leaving it out of the mean."
        )
    total = v.copy()

    def mean(w: NDArray[np.int64]) -> float:
        return float(w @ total / w.sum())

    return case_statistic_ci(
        mean, v.size, clusters=clusters, n_resamples=n_resamples,
        confidence_level=confidence_level, random_state=random_state,
        higher_is_better=higher_is_better,
    )  # fmt: skip
