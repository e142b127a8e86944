"""Per-case, per-structure scores of a segmentation: overlap, boundary and volume.

:func:`structure_scores` scores one structure of one case and never returns
NaN except ``relative_volume_error`` on an empty reference; empty masks get
declared values (see its docstring) instead of the NaN or inf other libraries
return, so a mean over cases cannot improve by missing more structures.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medval._errors import InputError
from medval.segmentation._masks import check_mask_pair, check_spacing, structure_masks
from medval.segmentation._overlap import overlap_values, volume_values
from medval.segmentation._surface import box_distances, crop_to_union, distance_values

__all__ = [
    "EMPTY_STATES",
    "HIGHER_IS_BETTER",
    "STRUCTURE_METRICS",
    "StructureScores",
    "case_scores",
    "structure_scores",
]

STRUCTURE_METRICS: tuple[str, ...] = (
    "dice", "iou", "nsd", "hd95", "hd", "assd",
    "volume_reference_ml", "volume_predicted_ml", "volume_difference_ml", "relative_volume_error",
)  # fmt: skip
"""Every key of :attr:`StructureScores.values`, in report order."""

HIGHER_IS_BETTER: dict[str, bool | None] = {
    "dice": True, "iou": True, "nsd": True,
    "hd95": False, "hd": False, "assd": False,
    "volume_reference_ml": None, "volume_predicted_ml": None, "volume_difference_ml": None,
    "relative_volume_error": None,
}  # fmt: skip
"""Direction of each metric; None where neither direction is better (signed or raw volumes)."""

EMPTY_STATES: tuple[str, ...] = ("neither", "both", "reference", "prediction")
"""Which mask is empty: "reference" = only the reference (a false positive on a healthy
structure), "prediction" = only the prediction (a missed structure)."""


@dataclasses.dataclass(frozen=True)
class StructureScores:
    """Scores of one structure in one case.

    Attributes
    ----------
    values : mapping of str to float
        One value per :data:`STRUCTURE_METRICS` key (read-only).
    empty : str
        One of :data:`EMPTY_STATES`.
    n_reference, n_predicted : int
        Voxel counts of the two masks.
    distance_cap_mm : float
        The distance given to HD, HD95 and ASSD when exactly one mask is empty.
    """

    values: Mapping[str, float]
    empty: str
    n_reference: int
    n_predicted: int
    distance_cap_mm: float

    def __post_init__(self) -> None:
        keys = tuple(self.values)
        if set(keys) != set(STRUCTURE_METRICS):
            raise InputError(
                f"StructureScores.values must have the keys {list(STRUCTURE_METRICS)}; "
                f"got {sorted(keys)}."
            )
        if self.empty not in EMPTY_STATES:
            raise InputError(f"empty must be one of {EMPTY_STATES}; got {self.empty!r}.")
        ordered = {k: float(self.values[k]) for k in STRUCTURE_METRICS}
        object.__setattr__(self, "values", types.MappingProxyType(ordered))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict: the metric values, then ``empty``, the counts and the cap."""
        return {
            **self.values,
            "empty": self.empty,
            "n_reference": self.n_reference,
            "n_predicted": self.n_predicted,
            "distance_cap_mm": self.distance_cap_mm,
        }


def _check_options(
    nsd_tolerance_mm: float, distance_cap_mm: float | None, percentile: float
) -> None:
    if not (isinstance(nsd_tolerance_mm, numbers.Real) and math.isfinite(nsd_tolerance_mm)) or (
        nsd_tolerance_mm < 0
    ):
        raise InputError(
            f"nsd_tolerance_mm must be a finite number >= 0 (mm); got {nsd_tolerance_mm!r}. "
            "Pick the inter-rater boundary tolerance of the structure (e.g. 2.0)."
        )
    if distance_cap_mm is not None and not (
        isinstance(distance_cap_mm, numbers.Real)
        and math.isfinite(distance_cap_mm)
        and distance_cap_mm > 0
    ):
        raise InputError(
            f"distance_cap_mm must be a positive finite number (mm) or None (the image "
            f"diagonal); got {distance_cap_mm!r}."
        )
    if not (isinstance(percentile, numbers.Real) and 0.0 <= percentile <= 100.0):
        raise InputError(f"percentile must be in [0, 100]; got {percentile!r} (HD95 uses 95).")


def structure_scores(
    predicted: ArrayLike,
    reference: ArrayLike,
    spacing: Sequence[float],
    *,
    nsd_tolerance_mm: float = 2.0,
    distance_cap_mm: float | None = None,
    percentile: float = 95.0,
) -> StructureScores:
    """Overlap, boundary and volume scores of one predicted against one reference mask.

    Parameters
    ----------
    predicted, reference : array of bool or 0/1, shape (y, x) or (z, y, x)
        Masks on the same voxel grid.
    spacing : sequence of float
        Voxel size in mm per axis, same axis order as the arrays; anisotropic
        spacing is used as given everywhere.
    nsd_tolerance_mm : float, default 2.0
        Tolerance τ (mm) of the normalised surface distance; ``d <= τ`` counts.
    distance_cap_mm : float, optional
        HD, HD95 and ASSD when exactly one mask is empty. Default: the diagonal
        of the image extent, ``sqrt(sum((shape_i * spacing_i)**2))``, larger
        than any distance two voxels of the image can have. Recorded in the result.
    percentile : float, default 95.0
        Percentile of the robust Hausdorff distance reported as ``hd95``.

    Returns
    -------
    StructureScores
        All :data:`STRUCTURE_METRICS`, which mask is empty, the voxel counts and the cap.

    Notes
    -----
    Definitions (medval's declared rules):

    * ``dice = 2|P & R| / (|P| + |R|)``, ``iou = |P & R| / |P | R|``.
    * Volumes: voxel count * ``prod(spacing)`` / 1000 ml;
      ``volume_difference_ml = V_pred - V_ref``;
      ``relative_volume_error = (V_pred - V_ref) / V_ref``.
    * Boundary voxels: mask voxels with a face-neighbour (4-connectivity in 2D,
      6 in 3D) outside the mask; outside the array is background. Distances
      are between boundary-voxel centres in mm (MONAI's edges, not DeepMind's
      surfels between voxels).
    * ``hd`` = max of the two directed maximum distances; ``hd95`` = max of the
      two directed ``percentile``-th percentiles, numpy's default linear
      interpolation (MONAI's ``HausdorffDistanceMetric(percentile=95)``). Not
      medpy's ``hd95``, which takes one percentile of both directions pooled
      and so understates a one-sided error; DeepMind's robust Hausdorff uses an
      area-weighted percentile without interpolation.
    * ``assd`` = mean over both directed distance sets pooled (sum / total
      count), as MONAI's ``compute_average_surface_distance(symmetric=True)``;
      DeepMind returns the two directed, area-weighted means instead.
    * ``nsd`` = boundary voxels of either mask within τ of the other boundary,
      over all boundary voxels (count form of MONAI's ``compute_surface_dice``;
      DeepMind's surface Dice weights by surfel area). Nikolov et al. (2021),
      J Med Internet Res 23(7):e26151.

    Empty masks (MONAI returns NaN/inf here, which a nan-skipping mean hides):

    * both empty: dice = iou = nsd = 1, distances 0, volumes 0,
      relative volume error 0;
    * exactly one empty: dice = iou = nsd = 0 and hd = hd95 = assd =
      ``distance_cap_mm``; volumes as counted;
    * no value is ever NaN except ``relative_volume_error`` when only the
      reference is empty (undefined ratio; aggregators count those cases).

    Both masks are cropped to the bounding box of their union plus one voxel
    before any work, so cost scales with the structure, not the image.

    Raises
    ------
    InputError
        If the masks are not 2D/3D boolean or 0/1 arrays of the same shape, the
        spacing is not one positive finite number per axis, or an option is out
        of range.
    """
    p, r, s = check_mask_pair(predicted, reference, spacing)
    _check_options(nsd_tolerance_mm, distance_cap_mm, percentile)
    cap = float(distance_cap_mm) if distance_cap_mm is not None else _diagonal(p.shape, s)
    voxel_ml = math.prod(s) / 1000.0
    boxes = crop_to_union(p, r)
    if boxes is None:
        n_pred = n_ref = n_both = 0
    else:
        pred_box, ref_box = boxes
        n_pred = int(np.count_nonzero(pred_box))
        n_ref = int(np.count_nonzero(ref_box))
        n_both = int(np.count_nonzero(pred_box & ref_box)) if n_pred and n_ref else 0
    values = {**overlap_values(n_pred, n_ref, n_both), **volume_values(n_pred, n_ref, voxel_ml)}
    if n_pred and n_ref:
        state = "neither"
        d_pr, d_rp = box_distances(pred_box, ref_box, s)
        values.update(
            distance_values(d_pr, d_rp, nsd_tolerance_mm=nsd_tolerance_mm, percentile=percentile)
        )
    elif n_pred or n_ref:
        state = "reference" if n_pred else "prediction"
        values.update(nsd=0.0, hd95=cap, hd=cap, assd=cap)
    else:
        state = "both"
        values.update(nsd=1.0, hd95=0.0, hd=0.0, assd=0.0)
    return StructureScores(
        values=values, empty=state, n_reference=n_ref, n_predicted=n_pred, distance_cap_mm=cap
    )


def _diagonal(shape: Sequence[int], spacing: Sequence[float]) -> float:
    return math.sqrt(sum((n * sp) ** 2 for n, sp in zip(shape, spacing, strict=True)))


def case_scores(
    predicted: ArrayLike,
    reference: ArrayLike,
    spacing: Sequence[float],
    *,
    structures: Mapping[str, int],
    multilabel: bool = False,
    nsd_tolerance_mm: float | Mapping[str, float] = 2.0,
    distance_cap_mm: float | None = None,
    percentile: float = 95.0,
) -> dict[str, StructureScores]:
    """Scores of every named structure of one case, from two label maps.

    Parameters
    ----------
    predicted, reference : array of int, shape (y, x) or (z, y, x), or (C, ...) if multilabel
        Label maps (values = class index) or, with ``multilabel``, 0/1 channel stacks.
    spacing : sequence of float
        Voxel size in mm per spatial axis (no entry for the channel axis).
    structures : mapping of str to int
        Structure name -> class index (label value, or channel with ``multilabel``).
    multilabel : bool, default False
        Whether the arrays carry a leading channel axis (overlapping structures).
    nsd_tolerance_mm : float or mapping of str to float, default 2.0
        NSD tolerance, one for all structures or one per structure name.
    distance_cap_mm, percentile
        As in :func:`structure_scores`.

    Returns
    -------
    dict of str to StructureScores
        One entry per structure, in the order of ``structures``.

    Raises
    ------
    InputError
        As :func:`structure_masks` and :func:`structure_scores`; also if the two
        arrays differ in shape or a per-structure tolerance is missing.
    """
    p_arr, r_arr = np.asarray(predicted), np.asarray(reference)
    if p_arr.shape != r_arr.shape:
        raise InputError(
            f"predicted and reference label maps must have the same shape; got {p_arr.shape} "
            f"and {r_arr.shape}. Resample the prediction to the reference grid first."
        )
    check_spacing(spacing, p_arr.ndim - 1 if multilabel else p_arr.ndim)
    pred_masks = structure_masks(p_arr, structures, multilabel=multilabel)
    ref_masks = structure_masks(r_arr, structures, multilabel=multilabel)
    if isinstance(nsd_tolerance_mm, Mapping):
        missing = [name for name in structures if name not in nsd_tolerance_mm]
        if missing:
            raise InputError(
                f"nsd_tolerance_mm has no tolerance for {missing}; give one per structure "
                f"({list(structures)}) or a single number."
            )
        tolerances = {name: nsd_tolerance_mm[name] for name in structures}
    else:
        tolerances = dict.fromkeys(structures, nsd_tolerance_mm)
    return {
        name: structure_scores(
            pred_masks[name],
            ref_masks[name],
            spacing,
            nsd_tolerance_mm=tolerances[name],
            distance_cap_mm=distance_cap_mm,
            percentile=percentile,
        )
        for name in structures
    }
