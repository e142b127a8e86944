"""RAPS parameters tuned on held-out calibration cases (Angelopoulos et al. 2021)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from medval.conformal._checks import FloatArray, batches
from medval.conformal._quantile import conformal_quantile
from medval.conformal._scores import EPSILON, Regularization, _true_rank

__all__ = ["RAPS_LAMBDA_GRID", "tune_raps"]

#: Candidate penalties of the RAPS size-optimal tuning (Angelopoulos et al. 2021, App. E).
RAPS_LAMBDA_GRID: tuple[float, ...] = (0.001, 0.01, 0.1, 0.2, 0.5)


def tune_raps(
    probabilities: FloatArray,
    labels: NDArray[np.intp],
    rows: NDArray[np.intp],
    *,
    confidence_level: float,
    lambda_reg: float | None = None,
    k_reg: float | None = None,
) -> tuple[float, float]:
    """Size-optimal RAPS ``(lambda_reg, k_reg)`` from the tuning cases ``rows``.

    ``k_reg`` is the conformal quantile of the true label's 0-based rank,
    plus one; ``lambda_reg`` the value in :data:`RAPS_LAMBDA_GRID` whose
    non-randomised RAPS sets, calibrated and evaluated on the tuning cases,
    are smallest on average (Angelopoulos, Bates, Malik & Jordan 2021, ICLR,
    App. E). A value given is kept. The tuning rows are sorted once and kept
    sorted (input dtype), so the grid costs no further sort.

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)
    rows : array of int, shape (n_tune,)
        Indices of the tuning cases (to be left out of the threshold).
    confidence_level : float
    lambda_reg, k_reg : float, optional
        Values fixed by the caller.

    Returns
    -------
    (lambda_reg, k_reg) : tuple of float
    """
    n_t, k = rows.shape[0], probabilities.shape[1]
    ranks = np.empty(n_t, dtype=np.intp)
    at_rank = np.empty(n_t, dtype=np.float64)
    sorted_rows = np.empty((n_t, k), dtype=probabilities.dtype)
    for sl in batches(n_t, k):
        block = probabilities[rows[sl]]
        r, _ = _true_rank(block, labels[rows[sl]])
        s = sorted_rows[sl]
        s[:] = np.sort(block, axis=1)[:, ::-1]
        # a contiguous float64 copy summed in place (cumsum's dtype= path is slow)
        c = s.astype(np.float64)
        np.cumsum(c, axis=1, out=c)
        ranks[sl], at_rank[sl] = r, c[np.arange(r.shape[0]), r]
    if k_reg is None:
        k_reg = float(conformal_quantile(ranks, confidence_level=confidence_level)) + 1
    if lambda_reg is not None:
        return float(lambda_reg), float(k_reg)
    grid = [Regularization(lam, k_reg) for lam in RAPS_LAMBDA_GRID]
    q = [
        conformal_quantile(
            at_rank + reg.lambda_reg * np.maximum(0.0, ranks + 1 - k_reg),
            confidence_level=confidence_level,
        )
        for reg in grid
    ]
    pens = [reg.penalty(k) for reg in grid]
    totals = np.zeros(len(grid))
    for sl in batches(n_t, k):
        s = sorted_rows[sl]
        idx = np.arange(s.shape[0])
        c = s.astype(np.float64)
        np.cumsum(c, axis=1, out=c)
        for i, (pen, q_i) in enumerate(zip(pens, q, strict=True)):
            # the set rule of ConformityScore.row_sets (include_last_label=True)
            reached = np.count_nonzero((c + pen - q_i) >= -EPSILON, axis=1)
            last = np.minimum(k - reached, k - 1)
            p_last = np.maximum(s[idx, last], EPSILON)
            totals[i] += np.count_nonzero(s >= (p_last - EPSILON)[:, None])
    best, best_size = 0.0, np.inf
    for reg, total in zip(grid, totals, strict=True):
        size = float(total) / n_t
        if size < best_size - EPSILON:
            best, best_size = reg.lambda_reg, size
    return best, float(k_reg)
