"""Input checks shared by the statistics engine.

Every public function of :mod:`medval.stats` funnels its arrays through
these helpers, so the messages (what was expected, what arrived, the fix)
read the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError
from medval._types import check_class_labels

__all__ = [
    "MIN_CASES",
    "SUM_TOLERANCE",
    "FloatArray",
    "IntArray",
    "check_binary_labels",
    "check_class_labels",
    "check_clusters",
    "check_confidence_level",
    "check_mask",
    "check_predictions",
    "check_probabilities",
    "check_scores",
    "check_spacing",
    "check_strata",
    "check_threshold",
    "normalise_random_state",
    "too_few_for_interval",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Below this many cases an interval is reported as not estimable.
MIN_CASES = 10
# Probability rows must sum to 1 within this tolerance (as in medval._types.Predictions).
SUM_TOLERANCE = 1e-3


def check_confidence_level(confidence_level: float) -> float:
    """Return ``confidence_level`` as a float in (0, 1) or raise."""
    try:
        cl = float(confidence_level)
    except (TypeError, ValueError):
        raise InputError(
            f"confidence_level must be a number in (0, 1), e.g. 0.95; got {confidence_level!r}."
        ) from None
    if not 0.0 < cl < 1.0:
        raise InputError(
            f"confidence_level must be in (0, 1), e.g. 0.95; got {confidence_level!r}. "
            "(A 95% interval is confidence_level=0.95, not alpha=0.05.)"
        )
    return cl


def check_binary_labels(y_true: ArrayLike, *, name: str = "y_true") -> IntArray:
    """Return ``y_true`` as a 1-D int64 array of 0/1 or raise."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise InputError(f"{name} must be 1-D of shape (n,) with 0/1 labels; got shape {y.shape}.")
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind not in "iuf":
        raise InputError(f"{name} must hold 0/1 labels; got dtype {y.dtype}.")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise InputError(f"{name} contains NaN or infinite values; drop or fix those cases.")
    bad = np.flatnonzero((y != 0) & (y != 1))
    if bad.size:
        raise InputError(
            f"{name} must hold binary labels 0/1; row {int(bad[0])} is {y[bad[0]].item()!r} "
            f"({bad.size} rows are neither 0 nor 1). For K classes use the multiclass "
            "metrics (e.g. 'macro_auroc') with y_score of shape (n, K)."
        )
    return y.astype(np.int64)


def check_scores(y_score: ArrayLike, n: int, *, name: str = "y_score") -> FloatArray:
    """Return a finite 1-D float64 score vector of length ``n`` or raise."""
    s = np.asarray(y_score)
    if s.dtype.kind not in "iufb":
        raise InputError(f"{name} must be numeric; got dtype {s.dtype}.")
    s = s.astype(np.float64)
    if s.ndim == 2 and s.shape[1] == 2:
        raise InputError(
            f"{name} has shape {s.shape}: pass the positive-class column, y_score[:, 1], "
            "for binary metrics."
        )
    if s.ndim != 1 or s.shape[0] != n:
        raise InputError(
            f"{name} must have shape ({n},) to match y_true (n={n}); got shape {s.shape}. "
            "Check that labels and scores come from the same cases."
        )
    finite = np.isfinite(s)
    if not np.all(finite):
        bad = np.flatnonzero(~finite)
        raise InputError(
            f"{name} contains NaN or infinite values at {bad.size} rows (first: row "
            f"{int(bad[0])}); fix or drop those cases before computing metrics."
        )
    return s


def check_probabilities(probabilities: ArrayLike, *, name: str = "probabilities") -> FloatArray:
    """Return an (n, K) probability matrix, K >= 2, n >= 1, as float64 or raise.

    Rows must be finite, in [0, 1] and sum to 1 within
    :data:`SUM_TOLERANCE`; the messages point at logits.
    """
    p = np.asarray(probabilities)
    if p.dtype.kind not in "iufb":
        raise InputError(f"{name} must be numeric; got dtype {p.dtype}.")
    p = p.astype(np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise InputError(
            f"{name} must have shape (n, K) with K >= 2; got {p.shape}. "
            "A binary score s becomes the two columns [1 - s, s]."
        )
    if p.shape[0] == 0:
        raise InputError(f"{name} are empty; at least one case is needed.")
    if not np.all(np.isfinite(p)):
        raise InputError(f"{name} contain NaN or infinite values; check the model outputs.")
    if p.min() < 0.0 or p.max() > 1.0:
        raise InputError(
            f"{name} must lie in [0, 1]; got [{p.min():.4g}, {p.max():.4g}]. "
            "If these are logits, apply a softmax first (or use TemperatureScaler)."
        )
    sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOLERANCE)
    if bad.size:
        raise InputError(
            f"{name} rows must sum to 1 (within {SUM_TOLERANCE}); row {int(bad[0])} sums to "
            f"{float(sums[bad[0]]):.6g}. Normalise them or apply a softmax."
        )
    return p


def check_threshold(threshold: Any) -> float:
    """Return a decision threshold as a finite float or raise."""
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        t = float("nan")
    if isinstance(threshold, bool) or not np.isfinite(t):
        raise InputError(
            f"threshold must be a finite number (positive when score >= threshold); "
            f"got {threshold!r}."
        )
    return t


def check_predictions(y_pred: ArrayLike, n: int, *, name: str = "y_pred") -> IntArray:
    """Return 0/1 predicted labels of length ``n`` or raise."""
    p = np.asarray(y_pred)
    if p.ndim != 1 or p.shape[0] != n:
        raise InputError(f"{name} must have shape ({n},) to match y_true; got shape {p.shape}.")
    if p.dtype.kind == "f" and not np.all(np.isfinite(p)):
        raise InputError(f"{name} contains NaN or infinite values.")
    if p.dtype.kind not in "iufb" or np.any((p != 0) & (p != 1)):
        raise InputError(
            f"{name} must hold 0/1 predicted labels; got values other than 0 and 1. "
            "To threshold scores, pass threshold=... (a case is positive when score >= threshold)."
        )
    return p.astype(np.int64)


def check_clusters(clusters: ArrayLike | None, n: int) -> tuple[IntArray, int] | None:
    """Encode patient keys as codes ``0..K-1`` in order of first appearance.

    Returns ``None`` when ``clusters`` is ``None``, else ``(codes (n,), K)``.
    """
    if clusters is None:
        return None
    c = np.asarray(clusters)
    if c.ndim != 1 or c.shape[0] != n:
        raise InputError(
            f"clusters must hold one patient key per case, shape ({n},); got shape {c.shape}. "
            "Pass cohort['patient_key'] aligned with the predictions."
        )
    if c.dtype.kind == "f" and not np.all(np.isfinite(c)):
        raise InputError("clusters contains NaN; every case needs a patient key.")
    if c.dtype.kind == "O" and any(v is None for v in c):
        raise InputError("clusters contains None; every case needs a patient key.")
    _, first, codes = np.unique(c, return_index=True, return_inverse=True)
    # Number patients by first appearance, not by key: pseudonymised keys change
    # with the salt, and results must not (same cases, same seed, same numbers).
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    codes = rank[codes.astype(np.int64).ravel()]
    return codes, int(codes.max()) + 1 if n else 0


def check_strata(strata: ArrayLike, n: int, *, name: str = "strata") -> IntArray:
    """Encode stratum keys as codes ``0..S-1`` in sorted order of the keys.

    Sorted order (not first appearance) so that "the largest stratum"
    of a patient is well defined: for 0/1 labels, stratum 1 is positive.
    """
    g = np.asarray(strata)
    if g.ndim != 1 or g.shape[0] != n:
        raise InputError(
            f"{name} must hold one stratum per case, shape ({n},); got shape {g.shape}. "
            "Pass e.g. the 0/1 labels to resample within each class."
        )
    if g.dtype.kind == "f" and not np.all(np.isfinite(g)):
        raise InputError(f"{name} contains NaN or infinite values; every case needs a stratum.")
    if g.dtype.kind == "O" and any(v is None for v in g):
        raise InputError(f"{name} contains None; every case needs a stratum.")
    _, codes = np.unique(g, return_inverse=True)
    out: IntArray = codes.astype(np.int64).ravel()
    return out


def too_few_for_interval(n: int, clusters: tuple[IntArray, int] | None) -> str | None:
    """Why ``n`` cases (of ``K`` patients) are too few for an interval, or None.

    A patient-clustered interval resamples patients, so it needs
    :data:`MIN_CASES` patients, not just cases.
    """
    if n < MIN_CASES:
        return f"only {n} cases; an interval needs {MIN_CASES}"
    if clusters is not None and clusters[1] < MIN_CASES:
        return (
            f"only {clusters[1]} patients; a patient-clustered interval needs {MIN_CASES} "
            "(it resamples patients, not images)"
        )
    return None


def normalise_random_state(random_state: Any) -> tuple[np.random.Generator, int | None]:
    """``random_state`` -> (Generator, recorded seed).

    The seed is recorded only when an int was given; a Generator's state
    cannot be summarised by one int, so ``None`` is recorded then.
    """
    if random_state is None:
        seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0])
        return np.random.default_rng(seed), seed
    if isinstance(random_state, np.random.Generator):
        return random_state, None
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise InputError(f"random_state must be a non-negative int; got {random_state}.")
        return np.random.default_rng(int(random_state)), int(random_state)
    raise InputError(
        "random_state must be an int, a numpy.random.Generator or None; "
        f"got {type(random_state).__name__}."
    )


def check_mask(
    mask: ArrayLike, *, name: str = "mask", ndims: tuple[int, ...] | None = (2, 3)
) -> NDArray[np.bool_]:
    """Return ``mask`` as a boolean array (2D or 3D by default), or raise :class:`InputError`.

    Booleans pass through without a copy; integer and float arrays must hold
    only 0 and 1 (a probability map must be thresholded first). ``ndims=None``
    accepts any number of axes (e.g. voxels already flattened).
    """
    a = np.asarray(mask)
    if ndims is not None and a.ndim not in ndims:
        raise InputError(
            f"{name} must be a 2D (y, x) or 3D (z, y, x) array; got shape {a.shape}. "
            "Drop batch and channel axes (multi-label stacks go through structure_masks)."
        )
    if a.size == 0:
        raise InputError(f"{name} has no voxels (shape {a.shape}); pass the full image grid.")
    if a.dtype == np.bool_:
        return a
    if a.dtype.kind in "iu":
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 1:
            raise InputError(
                f"{name} must be boolean or hold only 0 and 1; got integer values in "
                f"[{lo}, {hi}]. For a label map pick one class (labels == k) or use "
                "structure_masks(labels, structures)."
            )
        return a.view(np.bool_) if a.dtype.itemsize == 1 else a.astype(np.bool_)
    if a.dtype.kind == "f":
        bad = ~((a == 0) | (a == 1))
        if bad.any():
            v = float(a[bad].flat[0])
            raise InputError(
                f"{name} must be boolean or hold only 0 and 1; got the float value {v!r} "
                f"({int(bad.sum())} voxels). Threshold probabilities first (p >= 0.5)."
            )
        return a.astype(np.bool_)
    raise InputError(
        f"{name} must be a boolean or 0/1 numeric array; got dtype {a.dtype}. "
        "Convert it with np.asarray(mask, dtype=bool)."
    )


def check_spacing(spacing: Sequence[float], ndim: int) -> tuple[float, ...]:
    """Return ``spacing`` as ``ndim`` positive finite floats (mm), or raise :class:`InputError`."""
    try:
        s = np.asarray(spacing, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"spacing must be {ndim} numbers (mm per axis); got {spacing!r}."
        ) from None
    if s.ndim != 1 or s.shape[0] != ndim:
        raise InputError(
            f"spacing must give one voxel size in mm per axis ({ndim} numbers, in the "
            f"array's axis order); got {spacing!r}. For isotropic voxels pass (s,) * {ndim}."
        )
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise InputError(
            f"spacing must be positive and finite (mm per axis); got {tuple(s.tolist())}. "
            "Read it from the image header (NIfTI pixdim, DICOM PixelSpacing/slice spacing)."
        )
    return tuple(float(v) for v in s)
