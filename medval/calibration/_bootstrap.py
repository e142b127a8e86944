"""Percentile bootstrap confidence interval of the ECE."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from medval._errors import InputError
from medval._types import Estimate
from medval.calibration._binning import Target, _ece_from, _edges, bin_ids, confidence_outcome

__all__ = ["ece_ci"]

_CHUNK = 200


def resolve_seed(
    random_state: int | np.random.Generator | None,
) -> tuple[np.random.Generator, int | None]:
    """A generator and the seed to record (a fresh one is drawn for ``None``)."""
    if isinstance(random_state, np.random.Generator):
        return random_state, None
    if random_state is None:
        random_state = int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise InputError(
            f"random_state must be an int, a numpy Generator or None; got {random_state!r}."
        )
    return np.random.default_rng(int(random_state)), int(random_state)


def ece_ci(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 15,
    binning: str = "equal_width",
    target: Target = "top_label",
    confidence_level: float = 0.95,
    n_resamples: int = 1000,
    random_state: int | np.random.Generator | None = None,
) -> Estimate:
    """ECE with a percentile bootstrap confidence interval (Efron and Tibshirani 1993).

    Cases are resampled with replacement; equal-width bins stay fixed,
    equal-mass edges are recomputed on each resample. The point estimate is
    the ECE of the full sample (:func:`ece`). Binned ECE is biased upward,
    so the interval often lies above the point estimate: read it as the
    sampling spread of the estimator, not as an interval around the truth.

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)
    n_bins, binning, target
        As in :func:`ece`.
    confidence_level : float, default 0.95
    n_resamples : int, default 1000
    random_state : int, numpy.random.Generator or None
        An int is recorded as the seed; for ``None`` a fresh seed is drawn
        and recorded; a Generator records no seed.

    Returns
    -------
    Estimate
        ``method="percentile bootstrap"``, ``higher_is_better=False``.

    Raises
    ------
    InputError
        On invalid inputs, ``confidence_level`` outside (0, 1) or
        ``n_resamples < 1``.
    """
    if not 0.0 < confidence_level < 1.0:
        raise InputError(f"confidence_level must be in (0, 1); got {confidence_level}.")
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, (int, np.integer))
        or n_resamples < 1
    ):
        raise InputError(f"n_resamples must be a positive integer; got {n_resamples!r}.")
    conf, outcome = confidence_outcome(probabilities, labels, target)
    value = _ece_from(conf, outcome, n_bins, binning)
    rng, seed = resolve_seed(random_state)
    n = conf.size
    stats = np.empty(int(n_resamples))
    if binning == "equal_width":
        edges = _edges(conf, n_bins, binning)
        ids = bin_ids(conf, edges)
        diff = outcome - conf
        for start in range(0, int(n_resamples), _CHUNK):
            r = min(_CHUNK, int(n_resamples) - start)
            idx = rng.integers(0, n, size=(r, n))
            flat = (ids[idx] + n_bins * np.arange(r)[:, None]).ravel()
            sums = np.bincount(flat, weights=diff[idx].ravel(), minlength=r * n_bins)
            stats[start : start + r] = np.abs(sums.reshape(r, n_bins)).sum(axis=1) / n
    else:
        for i in range(int(n_resamples)):
            idx = rng.integers(0, n, size=n)
            stats[i] = _ece_from(conf[idx], outcome[idx], n_bins, binning)
    tail = (1.0 - confidence_level) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return Estimate(
        value=value,
        low=float(low),
        high=float(high),
        confidence_level=confidence_level,
        method="percentile bootstrap",
        n=int(n),
        seed=seed,
        n_resamples=int(n_resamples),
        higher_is_better=False,
    )
