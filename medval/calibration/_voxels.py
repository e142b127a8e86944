"""Calibration of voxel probabilities inside a foreground region, from mergeable bins.

Background voxels dominate a volume: with 99% of voxels near probability 0
and label 0, a whole-volume ECE is tiny whatever the model does near the
organ. Calibration is therefore measured in a region: the union of the
reference and predicted foreground, dilated by a margin in millimetres.

The binning is the one of :func:`medval.calibration.ece` with
``target="positive"``: ``n_bins`` equal-width, right-closed bins of the
foreground probability. Each case gives a ``(3, n_bins)`` array of sums
(voxel count, sum of probabilities, sum of reference labels); the bins of a
set of cases are the sum of theirs, so a cohort's voxel ECE never needs all
its voxels in memory at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import distance_transform_edt

from medval._errors import InputError
from medval.calibration._binning import _bin_sums, _edges
from medval.stats import check_mask, check_spacing

__all__ = [
    "ece_from_bins",
    "foreground_region",
    "reliability_from_bins",
    "voxel_calibration_bins",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
# Distances are sums of squares of multiples of the spacing: allow rounding.
_DISTANCE_TOLERANCE = 1e-9


def _same_shape(shape: tuple[int, ...], other: tuple[int, ...], name: str) -> None:
    if other != shape:
        raise InputError(
            f"{name} must have the shape of the other volumes {shape}; got {other}. "
            "Resample it onto the same voxel grid."
        )


def foreground_region(
    predicted: ArrayLike,
    reference: ArrayLike,
    spacing: Sequence[float],
    *,
    margin_mm: float = 5.0,
) -> BoolArray:
    """Union of the predicted and reference foreground, dilated by a margin in mm.

    A voxel belongs to the region when the distance from its centre to the
    centre of the nearest foreground voxel (of either mask) is at most
    ``margin_mm``, with the anisotropic spacing: the exact Euclidean
    distance transform (Maurer et al. 2003, :func:`scipy.ndimage.distance_transform_edt`
    with ``sampling=spacing``), i.e. a dilation by an ellipsoid in voxels.
    The transform runs on the bounding box of the union plus the margin.

    Parameters
    ----------
    predicted, reference : array of bool or 0/1, shape (X, Y, Z) (any ndim)
    spacing : sequence of float, length ndim
        Voxel size in mm along each array axis.
    margin_mm : float, default 5.0
        Non-negative; 0 gives the union itself.

    Returns
    -------
    array of bool, same shape
        All False when both masks are empty.

    Raises
    ------
    InputError
        On non-binary masks, different shapes, a bad spacing or margin.
    """
    pred = check_mask(predicted, name="predicted")
    ref = check_mask(reference, name="reference")
    _same_shape(pred.shape, ref.shape, "reference")
    s = _spacing_array(spacing, pred.ndim)
    if not np.isfinite(margin_mm) or margin_mm < 0:
        raise InputError(f"margin_mm must be a finite number >= 0; got {margin_mm!r}.")
    union = pred | ref
    region = np.zeros(union.shape, dtype=np.bool_)
    if not union.any():
        return region
    # Voxels further than `pad` voxels from the bounding box along an axis are
    # further than the margin from every foreground voxel.
    pad = np.ceil(margin_mm / s).astype(np.int64) + 1
    box = []
    for axis, p in enumerate(pad):
        hit = np.flatnonzero(union.any(axis=tuple(a for a in range(union.ndim) if a != axis)))
        box.append(slice(max(int(hit[0]) - int(p), 0), int(hit[-1]) + int(p) + 1))
    crop = tuple(box)
    distance = distance_transform_edt(~union[crop], sampling=s)
    region[crop] = distance <= margin_mm * (1.0 + _DISTANCE_TOLERANCE)
    return region


def voxel_calibration_bins(
    probability: ArrayLike,
    reference: ArrayLike,
    region: ArrayLike | None = None,
    *,
    n_bins: int = 15,
) -> FloatArray:
    """Per-bin sums of the foreground probability and label of the voxels in a region.

    Parameters
    ----------
    probability : array of float in [0, 1], shape (X, Y, Z) (any ndim)
        Foreground probability of each voxel (not a logit).
    reference : array of bool or 0/1, same shape
        Reference foreground mask.
    region : array of bool or 0/1, same shape, optional
        Voxels to evaluate, usually :func:`foreground_region`; default the
        whole volume (dominated by background: avoid for ECE).
    n_bins : int, default 15
        Equal-width, right-closed bins of [0, 1] (the first holds 0), as
        in :func:`medval.calibration.ece`.

    Returns
    -------
    array of float64, shape (3, n_bins)
        Rows: voxel count, sum of probabilities, sum of reference labels.
        Add the arrays of several cases to pool them. All zero for an
        empty region.

    Raises
    ------
    InputError
        On shapes that differ, a non-binary mask, probabilities outside
        [0, 1] or not finite (checked on the region's voxels), or
        ``n_bins < 1``.
    """
    p = np.asarray(probability)
    if p.dtype.kind not in "iuf":
        raise InputError(f"probability must be a numeric array; got dtype {p.dtype}.")
    y = check_mask(reference, name="reference", ndims=None)
    _same_shape(p.shape, y.shape, "reference")
    if region is None:
        conf, outcome = p.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    else:
        keep = check_mask(region, name="region", ndims=None)
        _same_shape(p.shape, keep.shape, "region")
        conf, outcome = p[keep].astype(np.float64), y[keep].astype(np.float64)
    if not np.all(np.isfinite(conf)) or np.any((conf < 0.0) | (conf > 1.0)):
        bad = float(conf[~(np.isfinite(conf) & (conf >= 0.0) & (conf <= 1.0))][0])
        raise InputError(
            f"probability must be finite and in [0, 1] in the region; found {bad!r}. "
            "Pass the softmax/sigmoid foreground probability, not logits."
        )
    counts, s_conf, s_out = _bin_sums(conf, outcome, _edges(conf, n_bins, "equal_width"))
    return np.stack([counts, s_conf, s_out])


def _check_bins(bins: ArrayLike) -> FloatArray:
    b = np.asarray(bins, dtype=np.float64)
    if b.ndim != 2 or b.shape[0] != 3 or b.shape[1] < 1:
        raise InputError(
            f"bins must have shape (3, n_bins) as returned by voxel_calibration_bins; "
            f"got {b.shape}."
        )
    n, s_p, s_y = b
    slack = 1e-9 * np.maximum(n, 1.0)
    if (
        not np.all(np.isfinite(b))
        or np.any(b < 0)
        or np.any(s_p > n + slack)
        or np.any(s_y > n + slack)
    ):
        raise InputError(
            "bins must hold non-negative finite sums with each bin's sum of "
            "probabilities and of labels at most its voxel count; these do not. "
            "Build them with voxel_calibration_bins and add them across cases."
        )
    if n.sum() == 0:
        raise InputError(
            "the bins hold no voxel (empty region: both masks empty, or every case "
            "skipped); voxel ECE is undefined. Report it as not estimable for these cases."
        )
    return b


def ece_from_bins(bins: ArrayLike) -> float:
    """Voxel ECE from pooled bins (Naeini et al. 2015; Guo et al. 2017).

    ``sum_b (n_b / N) |mean_probability_b - observed_fraction_b|``: the same
    value as :func:`medval.calibration.ece` with ``target="positive"`` on the
    pooled voxels.

    Parameters
    ----------
    bins : array of float, shape (3, n_bins)
        From :func:`voxel_calibration_bins`, possibly summed over cases.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    InputError
        If the bins are malformed or hold no voxel (an empty region): the
        ECE of nothing is undefined, and raising keeps NaN out of reports.
    """
    n, s_p, s_y = _check_bins(bins)
    return float(np.abs(s_y - s_p).sum() / n.sum())


def reliability_from_bins(bins: ArrayLike) -> list[dict[str, float]]:
    """Rows of a reliability diagram (DeGroot and Fienberg 1983) from pooled bins.

    Parameters
    ----------
    bins : array of float, shape (3, n_bins)

    Returns
    -------
    list of dict
        One row per non-empty bin, in increasing order: ``bin_lower``,
        ``bin_upper``, ``n`` (voxel count), ``mean_probability`` and
        ``observed_fraction`` (fraction of reference foreground). Empty
        bins are left out (their means do not exist).

    Raises
    ------
    InputError
        As :func:`ece_from_bins`.
    """
    n, s_p, s_y = _check_bins(bins)
    edges = np.linspace(0.0, 1.0, n.size + 1)
    return [
        {
            "bin_lower": float(edges[b]),
            "bin_upper": float(edges[b + 1]),
            "n": int(n[b]),
            "mean_probability": float(s_p[b] / n[b]),
            "observed_fraction": float(s_y[b] / n[b]),
        }
        for b in np.flatnonzero(n > 0)
    ]


def _spacing_array(spacing: Sequence[float], ndim: int) -> FloatArray:
    return np.asarray(check_spacing(spacing, ndim), dtype=np.float64)
