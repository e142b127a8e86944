"""Input checks shared by the conformal classes (batched, no full-size copies)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError
from medval.stats import check_class_labels

__all__ = [
    "batches",
    "case_uniforms",
    "check_confidence_level",
    "check_groups",
    "check_labels",
    "check_probabilities",
    "conformal_rank",
    "min_calibration_size",
]

# Row sums must be 1 within this tolerance (as in medval._types.Predictions).
_SUM_TOLERANCE = 1e-3
# Elements per batch: large enough to amortise Python overhead, small enough
# that the per-batch temporaries stay in the last-level cache's neighbourhood.
_BATCH_ELEMENTS = 1 << 17

FloatArray = NDArray[np.floating[Any]]


def batches(n: int, k: int) -> Iterator[slice]:
    """Row slices covering ``range(n)`` with about ``2**17`` elements each."""
    step = max(1, _BATCH_ELEMENTS // max(k, 1))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def check_confidence_level(confidence_level: float) -> Fraction:
    """Return the level as an exact fraction (from its decimal spelling)."""
    try:
        level = float(confidence_level)
    except (TypeError, ValueError):
        raise InputError(
            f"confidence_level must be a number in (0, 1); got {confidence_level!r}."
        ) from None
    if not 0.0 < level < 1.0:
        raise InputError(f"confidence_level must be in (0, 1), e.g. 0.9; got {level}.")
    # The decimal spelling, as MAPIE does, so 0.9 means 9/10 exactly.
    return Fraction(Decimal(str(level)))


def conformal_rank(n: int, level: Fraction) -> int:
    """The split-conformal order statistic ``k = ceil((n + 1) * level)``.

    The threshold is the k-th smallest of n calibration scores; it exists only
    when ``k <= n`` (Vovk et al. 2005; Angelopoulos & Bates 2023, eq. 1).
    """
    return math.ceil((n + 1) * level)


def min_calibration_size(level: Fraction) -> int:
    """Smallest n with ``ceil((n + 1) * level) <= n``."""
    # (n + 1) * level <= n  <=>  n >= level / (1 - level)
    return math.ceil(level / (1 - level))


def check_probabilities(probabilities: ArrayLike, *, what: str = "probabilities") -> FloatArray:
    """Check an (n, K) probability matrix without copying float32/float64 input.

    Raises
    ------
    InputError
        If it is not 2-D with K >= 2, holds NaN/inf or values outside [0, 1],
        or a row does not sum to 1 within 1e-3 (the message hints at logits).
    """
    p = np.asarray(probabilities)
    if p.ndim != 2 or p.shape[1] < 2:
        raise InputError(
            f"{what} must have shape (n, K) with K >= 2; got shape {p.shape}. "
            "A single binary score s becomes the two columns [1 - s, s]."
        )
    if p.dtype not in (np.float32, np.float64):
        if p.dtype.kind not in "fiub":
            raise InputError(f"{what} must be numeric; got dtype {p.dtype}.")
        p = p.astype(np.float64)
    n, k = p.shape
    for sl in batches(n, k):
        block = p[sl]
        lo, hi = block.min(initial=np.inf), block.max(initial=-np.inf)
        if not (np.isfinite(lo) and np.isfinite(hi)) and block.size:
            raise InputError(f"{what} contain NaN or infinite values; check the model outputs.")
        if block.size and (lo < 0.0 or hi > 1.0):
            raise InputError(
                f"{what} must lie in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]. "
                "If these are logits, apply softmax or use Predictions.from_logits."
            )
        sums = block.sum(axis=1, dtype=np.float64)
        bad = np.flatnonzero(np.abs(sums - 1.0) > _SUM_TOLERANCE)
        if bad.size:
            row = int(bad[0]) + int(sl.start)
            raise InputError(
                f"{what} rows must sum to 1 (within {_SUM_TOLERANCE}); row {row} sums to "
                f"{float(sums[bad[0]]):.6g}. If these are logits, apply softmax or use "
                "Predictions.from_logits."
            )
    return p


def check_labels(labels: ArrayLike, n: int, k: int) -> NDArray[np.intp]:
    """Integer class indices of shape (n,) in ``0 .. K-1``."""
    return check_class_labels(labels, n, k).astype(np.intp)


def check_groups(groups: ArrayLike, n: int, *, what: str = "groups") -> NDArray[Any]:
    """A 1-D array of group keys aligned with n rows."""
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != n:
        raise InputError(f"{what} must have shape ({n},), one key per case; got {g.shape}.")
    if g.dtype.kind == "f" and not np.all(np.isfinite(g)):
        raise InputError(f"{what} contain NaN; give missing values an explicit key.")
    if g.dtype.kind == "O" and any(v is None for v in g.tolist()):
        raise InputError(f"{what} contain None; give missing values an explicit key.")
    return g


def case_uniforms(seed: int, case_ids: ArrayLike, *, n: int | None = None) -> NDArray[np.float64]:
    """One uniform in [0, 1) per case, keyed by ``(seed, case id)``: shape (n,).

    BLAKE2b of ``f"{seed}\\0{case_id}"`` (8 bytes) keeps its top 53 bits, as
    the MC-dropout masks do (:mod:`medval.inference`): a case draws the same
    number whatever else is in the batch, in any order, on any machine. The
    randomised conformal sets use it, so a deployed predictor given the case
    id reproduces the set the validation gave that case.

    Raises
    ------
    InputError
        Ids not of shape (n,), or repeated (two cases would share a draw).
    """
    ids = np.asarray(case_ids).astype(str)
    if ids.ndim != 1 or (n is not None and ids.shape[0] != n):
        raise InputError(f"case_ids must have shape ({n},), one id per case; got {ids.shape}.")
    if np.unique(ids).shape[0] != ids.shape[0]:
        raise InputError("case_ids repeat; give every case its own id.")
    words = [
        int.from_bytes(hashlib.blake2b(f"{seed}\x00{c}".encode(), digest_size=8).digest(), "little")
        for c in ids.tolist()
    ]
    return (np.array(words, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) * 2.0**-53
