"""Input checks shared by the calibration functions."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError

__all__ = ["check_probabilities_labels"]

_SUM_TOLERANCE = 1e-3


def check_probabilities_labels(
    probabilities: ArrayLike, labels: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Validate ``(n, K)`` probabilities and ``(n,)`` integer labels.

    Raises
    ------
    InputError
        On wrong shapes, NaN, values outside [0, 1], rows not summing to 1,
        non-integer or out-of-range labels, or an empty set.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise InputError(
            f"probabilities must have shape (n, K) with K >= 2; got {p.shape}. "
            "A binary score s becomes the two columns [1 - s, s]."
        )
    if p.shape[0] == 0:
        raise InputError("probabilities are empty; at least one case is needed.")
    if not np.all(np.isfinite(p)):
        raise InputError("probabilities contain NaN or infinite values.")
    if p.min() < 0.0 or p.max() > 1.0:
        raise InputError(
            f"probabilities must lie in [0, 1]; got [{p.min():.4g}, {p.max():.4g}]. "
            "If these are logits, apply a softmax first (or use TemperatureScaler)."
        )
    sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _SUM_TOLERANCE)
    if bad.size:
        raise InputError(
            f"probability rows must sum to 1; row {int(bad[0])} sums to "
            f"{float(sums[bad[0]]):.6g}. Normalise them or apply a softmax."
        )
    y = _check_labels(labels, p.shape[0], p.shape[1])
    return p, y


def _check_labels(labels: ArrayLike, n: int, k: int) -> NDArray[np.int64]:
    y: NDArray[Any] = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(f"labels must have shape ({n},) to match probabilities; got {y.shape}.")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise InputError("labels must be whole class indices; got NaN or fractional values.")
    elif y.dtype.kind not in "iub":
        raise InputError(f"labels must be integer class indices; got dtype {y.dtype}.")
    yi = y.astype(np.int64)
    bad = np.flatnonzero((yi < 0) | (yi >= k))
    if bad.size:
        raise InputError(f"labels must lie in 0..{k - 1}; row {int(bad[0])} has {int(yi[bad[0]])}.")
    return yi
