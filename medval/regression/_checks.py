"""Input checks of the regression room: paired values, resample counts, bins."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError

__all__ = [
    "FloatArray",
    "IntArray",
    "check_count",
    "check_n_resamples",
    "check_pair",
    "check_values",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def check_values(values: ArrayLike, *, name: str, n: int | None = None) -> FloatArray:
    """Return ``values`` as a finite 1-D float64 array (of length ``n`` when given) or raise."""
    a = np.asarray(values)
    if a.dtype.kind not in "iufb":
        raise InputError(f"{name} must be numeric; got dtype {a.dtype}.")
    if a.ndim != 1:
        raise InputError(
            f"{name} must be 1-D of shape (n,), one value per case; got shape {a.shape}. "
            "A single-output model's (n, 1) column becomes 1-D with .ravel()."
        )
    if n is not None and a.shape[0] != n:
        raise InputError(
            f"{name} must have shape ({n},) to match y_true; got shape {a.shape}. "
            "Check that both come from the same cases, in the same order."
        )
    if a.shape[0] == 0:
        raise InputError(f"{name} is empty; at least one case is needed.")
    out = a.astype(np.float64)
    finite = np.isfinite(out)
    if not np.all(finite):
        bad = np.flatnonzero(~finite)
        raise InputError(
            f"{name} contains NaN or infinite values at {bad.size} rows (first: row "
            f"{int(bad[0])}); fix or drop those cases first."
        )
    return out


def check_pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Return ``(y_true, y_pred)`` as finite 1-D float64 arrays of one length or raise."""
    t = check_values(y_true, name="y_true")
    return t, check_values(y_pred, name="y_pred", n=t.shape[0])


def check_count(value: Any, *, name: str, minimum: int) -> int:
    """Return ``value`` as an int ``>= minimum`` or raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_n_resamples(n_resamples: Any) -> int:
    """Return ``n_resamples`` as a positive int or raise."""
    return check_count(n_resamples, name="n_resamples", minimum=1)
