"""Adjusted p-values for many tests (subgroups, several metrics)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from medval._errors import InputError
from medval.stats._validate import FloatArray

__all__ = ["benjamini_hochberg", "holm"]


def _check(p_values: ArrayLike) -> FloatArray:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise InputError(f"p_values must be 1-D; got shape {p.shape}.")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise InputError("p_values must be finite numbers in [0, 1]; drop NaNs first.")
    return p


def holm(p_values: ArrayLike) -> FloatArray:
    """Holm's step-down adjusted p-values (controls the family-wise error).

    Parameters
    ----------
    p_values : array of float, shape (m,)

    Returns
    -------
    array of float, shape (m,)
        ``p_(i) adj = max_{j <= i} min(1, (m - j + 1) p_(j))`` in sorted
        order, returned in the input order. Reject where ``adj <= alpha``.

    References
    ----------
    Holm (1979), Scand. J. Statist. 6:65-70.
    """
    p = _check(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def benjamini_hochberg(p_values: ArrayLike) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate).

    Parameters
    ----------
    p_values : array of float, shape (m,)

    Returns
    -------
    array of float, shape (m,)
        ``min_{j >= i} min(1, m p_(j) / j)`` in sorted order, returned in
        the input order (as ``scipy.stats.false_discovery_control``).

    References
    ----------
    Benjamini & Hochberg (1995), J. R. Stat. Soc. B 57:289-300.
    """
    p = _check(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    out = np.empty(m)
    out[order] = adj
    return out
