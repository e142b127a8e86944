"""Boundary voxels and the distances between two mask boundaries.

Definitions (medval's declared rules):

* A **boundary** ("surface") voxel is a voxel of the mask with at least one
  face-neighbour (4-connectivity in 2D, 6 in 3D) outside the mask; the outside
  of the array counts as background, so a mask touching the array border has
  its border voxels on the boundary. This is ``mask & ~binary_erosion(mask)``
  with the cross-shaped structuring element and ``border_value=0``: the edge
  definition of MONAI's ``get_mask_edges`` (without ``use_subvoxels``).
* Distances are Euclidean, in mm on the native (possibly anisotropic)
  spacing, between boundary-voxel **centres**. DeepMind's ``surface-distance``
  instead places surface elements between voxel centres and weights them by
  area, so its numbers differ from these by up to about half a voxel.

Both masks are first cropped to the bounding box of their union plus a
1-voxel margin of background; the nearest-boundary search is an exact
k-d tree query (``scipy.spatial.cKDTree``) over the boundary-voxel
coordinates scaled by the spacing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from medval.segmentation._masks import check_mask_pair

__all__ = ["surface_distances"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def _axis_range(mask: BoolArray, axis: int) -> slice:
    """Occupied index range of a non-empty mask along ``axis``."""
    other = tuple(i for i in range(mask.ndim) if i != axis)
    hit = np.flatnonzero(mask.any(axis=other))
    return slice(int(hit[0]), int(hit[-1]) + 1)


def _bbox(mask: BoolArray) -> tuple[slice, ...] | None:
    """The tight bounding box of ``mask`` as slices, None when empty."""
    # Project over the first axis once; later axes are searched inside the box.
    plane: BoolArray = np.asarray(mask.any(axis=0))
    if not plane.any():
        return None
    inner = [_axis_range(plane, ax) for ax in range(plane.ndim)]
    return (_axis_range(mask[(slice(None), *inner)], 0), *inner)


def crop_to_union(predicted: BoolArray, reference: BoolArray) -> tuple[BoolArray, BoolArray] | None:
    """Both masks cropped to their union's bounding box, padded by one background voxel.

    Returns None when both masks are empty. The padding makes "outside the
    array is background" hold for masks touching the array border.
    """
    boxes = [b for b in (_bbox(predicted), _bbox(reference)) if b is not None]
    if not boxes:
        return None
    lo = [min(b[ax].start for b in boxes) for ax in range(predicted.ndim)]
    hi = [max(b[ax].stop for b in boxes) for ax in range(predicted.ndim)]
    src = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    dst = tuple(slice(1, b - a + 1) for a, b in zip(lo, hi, strict=True))
    shape = tuple(b - a + 2 for a, b in zip(lo, hi, strict=True))
    out = []
    for m in (predicted, reference):
        box = np.zeros(shape, dtype=np.bool_)
        box[dst] = m[src]
        out.append(box)
    return out[0], out[1]


def padded_boundary(mask: BoolArray) -> BoolArray:
    """Boundary voxels of a mask whose outermost layer is background (see module doc)."""
    interior = mask.copy()
    for ax in range(mask.ndim):
        lo = [slice(None)] * mask.ndim
        hi = [slice(None)] * mask.ndim
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        interior[tuple(hi)] &= mask[tuple(lo)]
        interior[tuple(lo)] &= mask[tuple(hi)]
    return mask & ~interior


def boundary(mask: BoolArray) -> BoolArray:
    """Boundary voxels of ``mask`` (any 2D/3D boolean array; outside counts as background)."""
    padded = np.pad(mask, 1)
    return padded_boundary(padded)[(slice(1, -1),) * mask.ndim]


def _points(mask: BoolArray, spacing: Sequence[float]) -> FloatArray:
    coords = np.stack(np.nonzero(mask), axis=1).astype(np.float64)
    coords *= np.asarray(spacing, dtype=np.float64)
    return coords


def _directed(
    source: BoolArray, target: BoolArray, shared: BoolArray, spacing: Sequence[float]
) -> FloatArray:
    """Distance from each ``source`` voxel (C order) to the nearest ``target`` voxel.

    Voxels on both boundaries (``shared``) are at distance 0 and skip the query.
    """
    on_both = shared[source]
    d = np.zeros(on_both.shape[0], dtype=np.float64)
    todo = source & ~shared
    if todo.any():
        tree = cKDTree(
            _points(target, spacing), leafsize=32, balanced_tree=False, compact_nodes=False
        )
        d[~on_both] = tree.query(_points(todo, spacing), k=1)[0]
    return d


def box_distances(
    pred_box: BoolArray, ref_box: BoolArray, spacing: Sequence[float]
) -> tuple[FloatArray, FloatArray]:
    """Directed boundary distances of two non-empty masks cropped by :func:`crop_to_union`."""
    pb = padded_boundary(pred_box)
    rb = padded_boundary(ref_box)
    shared = pb & rb
    return _directed(pb, rb, shared, spacing), _directed(rb, pb, shared, spacing)


def surface_distances(
    predicted: ArrayLike, reference: ArrayLike, spacing: Sequence[float]
) -> tuple[FloatArray, FloatArray]:
    """Directed distances (mm) between the boundaries of two masks.

    Parameters
    ----------
    predicted, reference : array of bool or 0/1, shape (y, x) or (z, y, x)
        Masks on the same voxel grid.
    spacing : sequence of float
        Voxel size in mm per axis, in the arrays' axis order (anisotropic allowed).

    Returns
    -------
    pred_to_ref : array of float64, shape (n_pred_boundary,)
        For each boundary voxel of ``predicted`` (C order), the distance from its
        centre to the nearest boundary-voxel centre of ``reference``.
    ref_to_pred : array of float64, shape (n_ref_boundary,)
        The reverse direction.

    If one mask is empty its array is empty and the other holds ``inf``
    (there is no boundary to reach); :func:`structure_scores` turns that case
    into its declared cap instead.

    Notes
    -----
    Boundary voxels: mask voxels with a face-neighbour (4-/6-connectivity)
    outside the mask, the outside of the array counting as background. The
    nearest neighbour comes from an exact k-d tree query (Bentley 1975) on
    the spacing-scaled voxel coordinates; it equals
    ``scipy.ndimage.distance_transform_edt(~boundary, sampling=spacing)`` read
    at the other boundary (tested to 1e-9).

    Raises
    ------
    InputError
        If the masks are not 2D/3D boolean or 0/1 arrays of the same shape, or
        the spacing is not one positive finite number per axis.
    """
    p, r, s = check_mask_pair(predicted, reference, spacing)
    boxes = crop_to_union(p, r)
    if boxes is None:
        return np.zeros(0), np.zeros(0)
    pred_box, ref_box = boxes
    has_p, has_r = bool(pred_box.any()), bool(ref_box.any())
    if has_p and has_r:
        return box_distances(pred_box, ref_box, s)
    n_p = int(np.count_nonzero(padded_boundary(pred_box))) if has_p else 0
    n_r = int(np.count_nonzero(padded_boundary(ref_box))) if has_r else 0
    return np.full(n_p, np.inf), np.full(n_r, np.inf)


def distance_values(
    pred_to_ref: FloatArray,
    ref_to_pred: FloatArray,
    *,
    nsd_tolerance_mm: float,
    percentile: float,
) -> dict[str, float]:
    """HD, HD``percentile``, ASSD and NSD from two non-empty directed distance sets.

    * ``hd`` = max of the two directed maxima (Huttenlocher et al. 1993).
    * ``hd95`` = max of the two directed ``percentile``-th percentiles, each
      with numpy's default linear interpolation (MONAI's definition). medpy's
      ``hd95`` takes one percentile of the pooled distances instead, which is
      lower when one direction is much worse than the other.
    * ``assd`` = (sum of both sets) / (their total count) (MONAI's symmetric
      average surface distance; Heimann et al. 2009).
    * ``nsd`` = (#pred-boundary voxels within tolerance of the reference
      boundary + #reference-boundary voxels within tolerance of the predicted
      boundary) / (#both boundaries), "within" meaning ``<=`` (Nikolov et al.
      2021). This is the voxel-count form of MONAI's ``compute_surface_dice``;
      DeepMind's ``surface-distance`` weights each surface element by its area.
    """
    n = pred_to_ref.size + ref_to_pred.size
    within = np.count_nonzero(pred_to_ref <= nsd_tolerance_mm) + np.count_nonzero(
        ref_to_pred <= nsd_tolerance_mm
    )
    return {
        "nsd": float(within) / n,
        "hd95": float(
            max(np.percentile(pred_to_ref, percentile), np.percentile(ref_to_pred, percentile))
        ),
        "hd": float(max(pred_to_ref.max(), ref_to_pred.max())),
        "assd": float((pred_to_ref.sum() + ref_to_pred.sum()) / n),
    }
