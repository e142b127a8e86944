"""Percentile bootstrap confidence interval of the ECE, patient-clustered on request."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from medval._errors import InputError
from medval._types import Estimate
from medval.calibration._binning import Target, _ece_from, _edges, bin_ids, confidence_outcome
from medval.stats import (
    check_clusters,
    check_confidence_level,
    normalise_random_state,
    resample_counts,
    too_few_for_interval,
)

__all__ = ["ece_ci"]


def ece_ci(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 15,
    binning: str = "equal_width",
    target: Target = "top_label",
    confidence_level: float = 0.95,
    n_resamples: int = 1000,
    clusters: ArrayLike | None = None,
    random_state: int | np.random.Generator | None = None,
) -> Estimate:
    """ECE with a percentile bootstrap confidence interval (Efron and Tibshirani 1993).

    Cases, or with ``clusters`` patients with all their images, are
    resampled with replacement by the statistics room's resampler
    (:func:`medval.stats.resample_counts`, unstratified); equal-width bins
    stay fixed, equal-mass edges are recomputed on each resample. The
    point estimate is the ECE of the full sample (:func:`ece`). Binned ECE
    is biased upward, so the interval often lies above the point estimate:
    read it as the sampling spread of the estimator, not as an interval
    around the truth.

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)
    n_bins, binning, target
        As in :func:`ece`.
    confidence_level : float, default 0.95
    n_resamples : int, default 1000
    clusters : array, shape (n,), optional
        Patient key of each case. Images of one patient are correlated,
        so patients are resampled, not images (Field and Welsh 2007). With
        one image per patient the interval equals the unclustered one for
        the same seed.
    random_state : int, numpy.random.Generator or None
        An int is recorded as the seed; for ``None`` a fresh seed is drawn
        and recorded; a Generator records no seed.

    Returns
    -------
    Estimate
        ``method="bootstrap-percentile"`` (``"bootstrap-percentile-clustered"``
        with ``clusters``), ``higher_is_better=False``. With clusters and
        fewer than 10 patients the bounds are None, with a reason.

    Raises
    ------
    InputError
        On invalid inputs, ``confidence_level`` outside (0, 1),
        ``n_resamples < 1`` or clusters of the wrong length.

    References
    ----------
    Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13;
    Field & Welsh (2007), "Bootstrapping clustered data", J. R. Stat. Soc.
    B 69:369-390.
    """
    cl = check_confidence_level(confidence_level)
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, (int, np.integer))
        or n_resamples < 1
    ):
        raise InputError(f"n_resamples must be a positive integer; got {n_resamples!r}.")
    conf, outcome = confidence_outcome(probabilities, labels, target)
    value = _ece_from(conf, outcome, n_bins, binning)
    n = conf.size
    codes = check_clusters(clusters, n)
    rng, seed = normalise_random_state(random_state)

    def estimate(low: float | None, high: float | None, reason: str | None = None) -> Estimate:
        return Estimate(
            value=value,
            low=low,
            high=high,
            confidence_level=cl,
            method="bootstrap-percentile" + ("-clustered" if codes is not None else ""),
            n=int(n),
            seed=seed,
            n_resamples=int(n_resamples),
            reason=reason,
            higher_is_better=False,
        )

    if codes is not None and (why := too_few_for_interval(n, codes)) is not None:
        return estimate(None, None, why)
    stats = np.empty(int(n_resamples))
    done = 0
    if binning == "equal_width":
        edges = _edges(conf, n_bins, binning)
        # (n, n_bins): each case's outcome - confidence in its bin's column
        gap = np.zeros((n, int(n_bins)))
        gap[np.arange(n), bin_ids(conf, edges)] = outcome - conf
    for w in resample_counts(n, n_resamples=int(n_resamples), random_state=rng, clusters=clusters):
        r = w.shape[0]
        if binning == "equal_width":
            sums = w.astype(np.float64) @ gap
            stats[done : done + r] = np.abs(sums).sum(axis=1) / w.sum(axis=1)
        else:
            for j in range(r):
                idx = np.repeat(np.arange(n), w[j])
                stats[done + j] = _ece_from(conf[idx], outcome[idx], n_bins, binning)
        done += r
    tail = (1.0 - cl) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return estimate(float(low), float(high))
