"""Split-conformal and weighted conformal quantiles."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError
from medval.conformal._checks import (
    check_confidence_level,
    conformal_rank,
    min_calibration_size,
)

__all__ = [
    "WeightedThreshold",
    "conformal_quantile",
    "effective_sample_size",
    "weighted_quantile_threshold",
]


def conformal_quantile(scores: ArrayLike, *, confidence_level: float) -> Any:
    """The split-conformal threshold: the ``ceil((n + 1) c)``-th smallest score.

    Same order statistic as MAPIE 1.6 (``np.quantile(scores,
    ceil((n + 1) c) / n, method="lower")``), with ``c`` read exactly from its
    decimal spelling; the value keeps the scores' dtype. For exchangeable
    scores, a new score falls at or below it with probability in
    ``[c, c + 1/(n + 1))`` (Vovk et al. 2005; Angelopoulos & Bates 2023).

    Parameters
    ----------
    scores : array of float, shape (n,)
        Calibration conformity scores.
    confidence_level : float
        Target coverage ``c`` in (0, 1).

    Returns
    -------
    numpy scalar
        The threshold, in the dtype of ``scores``.

    Raises
    ------
    InputError
        If ``ceil((n + 1) c) > n``: the minimum is ``n >= ceil(c / (1 - c))``
        calibration cases (9 for 0.9, 19 for 0.95).
    """
    s = np.asarray(scores).ravel()
    level = check_confidence_level(confidence_level)
    n = s.shape[0]
    k = conformal_rank(n, level)
    if k > n:
        raise InputError(
            f"{n} calibration scores are too few for confidence_level {float(level)}: "
            f"the threshold is the ceil((n+1)*{float(level)}) = {k}-th smallest score, which "
            f"needs ceil((n+1)(1-alpha)) <= n, i.e. n >= {min_calibration_size(level)}."
        )
    return np.partition(s, k - 1)[k - 1]


def effective_sample_size(weights: ArrayLike) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (Kish 1965)."""
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    sq = float(np.dot(w, w))
    return total * total / sq if sq > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class WeightedThreshold:
    """A weighted conformal threshold and its effective sample size.

    Attributes
    ----------
    threshold : float
        Weighted quantile of the calibration scores (``inf`` when the
        test point's own weight makes every finite threshold too small).
    effective_sample_size : float
        Kish's ESS of the calibration weights.
    n_calibration : int
        Number of calibration scores.
    small_ess : bool
        True when the ESS is below ``min_effective_size``: the coverage
        guarantee then rests on very few effective cases and the threshold
        is unstable.
    """

    threshold: float
    effective_sample_size: float
    n_calibration: int
    small_ess: bool


def weighted_quantile_threshold(
    scores: ArrayLike,
    calibration_weights: ArrayLike,
    *,
    test_weight: float | ArrayLike,
    confidence_level: float = 0.9,
    min_effective_size: float = 100.0,
) -> tuple[NDArray[np.float64], WeightedThreshold]:
    """Weighted split-conformal threshold under covariate shift.

    With likelihood ratios ``w(x) = dP_target/dP_cal(x)`` the calibration
    scores ``s_i`` get weights ``p_i = w_i / (sum_j w_j + w_test)`` and the
    test point a point mass ``p_test`` at ``+inf``; the threshold is the
    ``c``-quantile of that distribution (Tibshirani, Barber, Candès & Ramdas
    2019, Cor. 1). It is ``+inf`` (the full label set) when the calibration
    mass below every score falls short of ``c``.

    Parameters
    ----------
    scores : array of float, shape (n,)
        Calibration conformity scores.
    calibration_weights : array of float, shape (n,)
        Likelihood ratios of the calibration cases (non-negative, finite).
    test_weight : float or array of float, shape (m,)
        Likelihood ratio of each test case.
    confidence_level : float, default 0.9
        Target coverage ``c``.
    min_effective_size : float, default 100
        ESS below which ``small_ess`` is set.

    Returns
    -------
    thresholds : array of float64, shape (m,) or (1,)
        One threshold per test weight.
    info : WeightedThreshold
        The first threshold with the ESS diagnostics.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    w = np.asarray(calibration_weights, dtype=np.float64).ravel()
    wt = np.atleast_1d(np.asarray(test_weight, dtype=np.float64)).ravel()
    level = float(check_confidence_level(confidence_level))
    if w.shape != s.shape:
        raise InputError(f"calibration_weights must have shape {s.shape}; got {w.shape}.")
    for name, arr in (("calibration_weights", w), ("test_weight", wt)):
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise InputError(f"{name} must be finite and non-negative likelihood ratios.")
    if w.sum() <= 0:
        raise InputError("calibration_weights sum to 0; no calibration case resembles the target.")
    order = np.argsort(s, kind="stable")
    s_sorted, cum = s[order], np.cumsum(w[order])
    total = cum[-1] + wt  # (m,)
    # smallest i with cum[i] / (sum w + w_test) >= c
    need = level * total
    idx = np.searchsorted(cum, need * (1 - 1e-12), side="left")
    thresholds = np.where(idx < s.shape[0], s_sorted[np.minimum(idx, s.shape[0] - 1)], np.inf)
    ess = effective_sample_size(w)
    info = WeightedThreshold(
        threshold=float(thresholds[0]),
        effective_sample_size=ess,
        n_calibration=int(s.shape[0]),
        small_ess=ess < min_effective_size,
    )
    return thresholds, info
