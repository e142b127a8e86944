"""Lesion-level detection of one case: connected components matched one-to-one.

A segmentation model's probability map is cut at ``threshold``; the connected
components of the result are the predicted lesions, those of the reference
mask the reference lesions. Candidate pairs are the overlapping ones passing
the match rule, and the one-to-one matching maximises the total IoU
(Kuhn's Hungarian method, :func:`scipy.optimize.linear_sum_assignment`): the
one-to-one instance matching of panoptic quality (Kirillov et al. 2019) and of
panoptica (Kofler et al. 2023), not the many-to-one lesion-wise rule of BraTS
2023. :mod:`._froc` turns the per-case results into FROC curves (Setio et al.
2017).

References
----------
Kuhn, H. W. (1955). The Hungarian method for the assignment problem.
Naval Research Logistics Quarterly 2, 83-97.
Kirillov, A. et al. (2019). Panoptic segmentation. CVPR, 9404-9413.
Kofler, F. et al. (2023). Panoptica: instance-wise evaluation of 3D semantic
and instance segmentation maps. arXiv:2312.02608.
Setio, A. A. A. et al. (2017). Validation, comparison, and combination of
algorithms for automatic detection of pulmonary nodules in computed tomography
images: the LUNA16 challenge. Medical Image Analysis 42, 1-13.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from medval._errors import InputError

__all__ = ["CONNECTIVITY", "MATCH_RULES", "LesionScores", "lesion_scores"]

#: Neighbourhoods by alias -> rank connectivity of
#: :func:`scipy.ndimage.generate_binary_structure` (capped at the image rank).
#: 3D: face = 6, edge = 18, vertex = 26 neighbours; 2D: face = 4, edge = vertex = 8.
CONNECTIVITY: dict[str, int] = {"face": 1, "edge": 2, "vertex": 3}

#: Match rules: ``"iou"`` (IoU >= match_threshold) or ``"overlap"`` (the
#: predicted lesion covers at least ``match_threshold`` of the reference lesion).
MATCH_RULES: tuple[str, ...] = ("iou", "overlap")

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def _vector(values: ArrayLike, dtype: Any, name: str) -> Any:
    a = np.asarray(values, dtype=dtype)
    if a.ndim != 1:
        raise InputError(f"LesionScores.{name} must be one-dimensional; got shape {a.shape}.")
    return a


@dataclasses.dataclass(frozen=True, eq=False)
class LesionScores:
    """Lesion-level detection result of one case and one structure.

    Built by :func:`lesion_scores`; may also be built by hand (the fields are
    checked for consistency).

    Parameters
    ----------
    reference_sizes_ml : array of float, shape (m,)
        Volume of each reference lesion in millilitres.
    reference_detected : array of bool, shape (m,)
        Whether the lesion is matched one-to-one to a predicted lesion.
    reference_dice : array of float, shape (m,)
        Dice of the lesion with its matched predicted lesion (0 when missed).
    reference_scores : array of float, shape (m,)
        Score of the matched predicted lesion (``-inf`` when missed).
    predicted_scores : array of float, shape (k,)
        Confidence of each predicted lesion (its maximum probability).
    predicted_matched : array of bool, shape (k,)
        Whether the predicted lesion is matched to a reference lesion.
    predicted_sizes_ml : array of float, shape (k,)
        Volume of each predicted lesion in millilitres.

    Raises
    ------
    InputError
        If lengths disagree, the numbers of matched lesions differ on the two
        sides, a missed lesion has a score other than ``-inf``, or a score,
        size or Dice is out of range.
    """

    reference_sizes_ml: FloatArray
    reference_detected: BoolArray
    reference_dice: FloatArray
    reference_scores: FloatArray
    predicted_scores: FloatArray
    predicted_matched: BoolArray
    predicted_sizes_ml: FloatArray

    def __post_init__(self) -> None:
        ref = ("reference_sizes_ml", "reference_detected", "reference_dice", "reference_scores")
        pred = ("predicted_scores", "predicted_matched", "predicted_sizes_ml")
        for group in (ref, pred):
            for name in group:
                dtype = np.bool_ if name.endswith(("detected", "matched")) else np.float64
                object.__setattr__(self, name, _vector(getattr(self, name), dtype, name))
            lengths = {name: getattr(self, name).shape[0] for name in group}
            if len(set(lengths.values())) != 1:
                raise InputError(
                    f"LesionScores fields must have one length per side; got {lengths}."
                )
        n_det, n_mat = int(self.reference_detected.sum()), int(self.predicted_matched.sum())
        if n_det != n_mat:
            raise InputError(
                f"LesionScores: {n_det} reference lesions detected but {n_mat} predicted "
                "lesions matched; a one-to-one "
                "matching gives the same count on both sides."
            )
        det, s = self.reference_detected, self.reference_scores
        if not (np.all(np.isfinite(s[det])) and np.all(s[~det] == -np.inf)):
            raise InputError(
                "LesionScores.reference_scores must be finite for detected lesions and -inf for "
                "missed ones."
            )
        if not np.all(np.isfinite(self.predicted_scores)):
            raise InputError("LesionScores.predicted_scores must be finite.")
        for name in ("reference_sizes_ml", "predicted_sizes_ml"):
            v = getattr(self, name)
            if not np.all(np.isfinite(v) & (v >= 0.0)):
                raise InputError(f"LesionScores.{name} must be finite and >= 0.")
        d = self.reference_dice
        if not np.all((d >= 0.0) & (d <= 1.0)) or np.any(d[~det] != 0.0):
            raise InputError(
                "LesionScores.reference_dice must lie in [0, 1] and be 0 for missed lesions."
            )

    @property
    def n_reference(self) -> int:
        """Number of reference lesions m."""
        return int(self.reference_detected.shape[0])

    @property
    def n_predicted(self) -> int:
        """Number of predicted lesions k."""
        return int(self.predicted_matched.shape[0])


def _check_inputs(
    probability: ArrayLike, reference: ArrayLike, spacing: Sequence[float]
) -> tuple[NDArray[np.floating[Any]], BoolArray, tuple[float, ...]]:
    p = np.asarray(probability)
    if p.ndim not in (2, 3):
        raise InputError(f"probability must be a 2D or 3D map; got shape {p.shape}.")
    if p.dtype.kind not in "fiub":
        raise InputError(f"probability must be numeric; got dtype {p.dtype}.")
    if p.dtype.kind != "f":
        p = p.astype(np.float64)
    if p.size == 0:
        raise InputError(f"probability is empty (shape {p.shape}).")
    lo, hi = float(p.min()), float(p.max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0.0 or hi > 1.0:
        raise InputError(
            f"probability must hold finite values in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]. "
            "Apply the sigmoid/softmax to logits first."
        )
    r = np.asarray(reference)
    if r.shape != p.shape:
        raise InputError(
            f"reference must have the probability's shape {p.shape}; got {r.shape}. Resample "
            "the mask onto the prediction grid."
        )
    if r.dtype != np.bool_:
        if r.dtype.kind not in "fiu" or not np.all((r == 0) | (r == 1)):
            raise InputError(
                f"reference must be a binary mask (bool, or 0/1 values); got dtype {r.dtype}. "
                "Select one structure, e.g. labels == k."
            )
        r = r.astype(bool)
    sp = tuple(float(s) for s in np.asarray(spacing, dtype=np.float64).ravel())
    if len(sp) != p.ndim or not all(math.isfinite(s) and s > 0.0 for s in sp):
        raise InputError(
            f"spacing must give {p.ndim} positive voxel sizes in mm (one per axis); "
            f"got {spacing!r}."
        )
    return p, r, sp


def _box(mask: BoolArray) -> tuple[slice, ...] | None:
    """The bounding box of ``mask`` (None when empty), from two projections."""
    plane: BoolArray = np.asarray(mask.any(axis=0))
    first = np.flatnonzero(mask.any(axis=tuple(range(1, mask.ndim))))
    if first.size == 0:
        return None
    box = [slice(int(first[0]), int(first[-1]) + 1)]
    for ax in range(plane.ndim):
        hit = np.flatnonzero(plane.any(axis=tuple(a for a in range(plane.ndim) if a != ax)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def _keep(labels: NDArray[np.int32], n: int, voxel_mm3: float, min_mm3: float) -> NDArray[np.intp]:
    """Look-up table old label -> new label 1..n' of the components of at least ``min_mm3``."""
    keep = np.bincount(labels, minlength=n + 1) * voxel_mm3 >= min_mm3
    keep[0] = False
    lut = np.zeros(n + 1, dtype=np.intp)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    return lut


def _compact(labels: NDArray[np.intp], n: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The labels present (sorted) and each entry's index among them; O(len + n)."""
    present = np.bincount(labels, minlength=n) > 0
    lut = np.cumsum(present) - 1
    return np.flatnonzero(present), lut[labels]


def _pairs(
    r: NDArray[np.intp], c: NDArray[np.intp], m: int, k: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64]]:
    """Reference index, predicted index and shared voxels of each overlapping pair.

    ``r`` and ``c`` are the 0-based lesion indices of the shared voxels.
    """
    # Only lesions that overlap enter the joint table, so it stays small.
    rows, r = _compact(r, m)
    cols, c = _compact(c, k)
    table = np.bincount(r * cols.size + c, minlength=rows.size * cols.size)
    nz = np.flatnonzero(table)
    return rows[nz // cols.size], cols[nz % cols.size], table[nz].astype(np.int64)


def lesion_scores(
    probability: ArrayLike,
    reference: ArrayLike,
    spacing: Sequence[float],
    *,
    threshold: float = 0.5,
    connectivity: str = "vertex",
    min_size_mm3: float = 0.0,
    match: str = "iou",
    match_threshold: float = 0.1,
) -> LesionScores:
    """Detect, match and score the lesions of one case.

    Predicted lesions are the connected components of ``probability >=
    threshold``, each scored by its maximum probability; reference lesions
    are the components of ``reference``. Components smaller than
    ``min_size_mm3`` are dropped on both sides before matching (a predicted
    lesion over a dropped reference lesion then counts as a false positive
    if it survives). A pair is a candidate when it overlaps and passes the
    rule: ``match="iou"``: IoU >= ``match_threshold``; ``match="overlap"``:
    the predicted lesion covers at least ``match_threshold`` of the
    reference lesion's voxels (``match_threshold=0``: any shared voxel).
    Among candidates, the one-to-one matching of maximum total IoU is taken
    (Hungarian method), so a predicted lesion spanning two reference lesions
    detects one of them, and of two predicted fragments on one lesion the
    other is unmatched (a false positive in :func:`medval.segmentation.froc`).

    Both masks are labelled once (:func:`scipy.ndimage.label`, inside the
    bounding box of their union); sizes, scores and the overlap table (one
    :func:`numpy.bincount` of the joint labels of the shared voxels) are then
    computed on the foreground voxels only, with no per-lesion loop.

    Parameters
    ----------
    probability : array of float, shape (X, Y) or (X, Y, Z)
        Foreground probability in [0, 1].
    reference : array of bool or 0/1, same shape
        Reference mask of the structure.
    spacing : sequence of float, length 2 or 3
        Voxel size in mm along each axis. A 2D image counts as a slice 1 mm
        thick (sizes in ml are then mm^2 / 1000).
    threshold : float, default 0.5
        Probability cut in (0, 1].
    connectivity : {"vertex", "edge", "face"}
        Neighbourhood of :data:`CONNECTIVITY` (3D: 26, 18, 6 neighbours).
    min_size_mm3 : float, default 0.0
        Components below this volume are dropped (on both sides).
    match : {"iou", "overlap"}
        Candidate rule, see above.
    match_threshold : float, default 0.1
        In [0, 1]: minimum IoU, or minimum covered fraction of the reference lesion.

    Returns
    -------
    LesionScores
        Lesions in :func:`scipy.ndimage.label` order (raster order of their first voxel).

    Raises
    ------
    InputError
        If the arrays are not 2D/3D of one shape, the probability is outside
        [0, 1] or not finite, the reference is not binary, the spacing does
        not give one positive size per axis, or an option is invalid.
    """
    p, ref_mask, sp = _check_inputs(probability, reference, spacing)
    if connectivity not in CONNECTIVITY:
        raise InputError(f"unknown connectivity {connectivity!r}; valid: {sorted(CONNECTIVITY)}.")
    if match not in MATCH_RULES:
        raise InputError(f"unknown match rule {match!r}; valid: {list(MATCH_RULES)}.")
    for name, value, ok in (
        ("threshold", threshold, 0.0 < float(threshold) <= 1.0),
        ("match_threshold", match_threshold, 0.0 <= float(match_threshold) <= 1.0),
        ("min_size_mm3", min_size_mm3, 0.0 <= float(min_size_mm3) < math.inf),
    ):
        if not ok:
            valid = {"threshold": "(0, 1]", "match_threshold": "[0, 1]", "min_size_mm3": ">= 0"}
            raise InputError(f"{name} must be {valid[name]}; got {value!r}.")
    voxel_mm3 = math.prod(sp)
    structure = ndimage.generate_binary_structure(p.ndim, min(CONNECTIVITY[connectivity], p.ndim))
    pred_mask = p >= threshold
    box = _box(pred_mask | ref_mask)
    if box is None:
        none = np.zeros(0)
        return LesionScores(none, none.astype(bool), none, none, none, none.astype(bool), none)
    # Label the occupied box once per side; everything after works on foreground voxels only.
    pred_mask, ref_mask, p = pred_mask[box], ref_mask[box], p[box]
    ref_lab, m0 = ndimage.label(ref_mask, structure=structure)
    pred_lab, k0 = ndimage.label(pred_mask, structure=structure)
    ref_at_ref = ref_lab[ref_mask]
    pred_at_pred = pred_lab[pred_mask]
    ref_at_pred = ref_lab[pred_mask]
    prob_at_pred = p[pred_mask]
    del ref_lab, pred_lab
    ref_lut = _keep(ref_at_ref, m0, voxel_mm3, float(min_size_mm3))
    pred_lut = _keep(pred_at_pred, k0, voxel_mm3, float(min_size_mm3))
    m, k = int(ref_lut.max(initial=0)), int(pred_lut.max(initial=0))
    ref_vox = np.bincount(ref_lut[ref_at_ref], minlength=m + 1)[1:].astype(np.float64)
    pred_ids = pred_lut[pred_at_pred]
    pred_vox = np.bincount(pred_ids, minlength=k + 1)[1:].astype(np.float64)
    scores = np.zeros(k + 1, dtype=np.float64)
    np.maximum.at(scores, pred_ids, prob_at_pred)
    scores = scores[1:]
    ref_ids = ref_lut[ref_at_pred]
    shared = (ref_ids > 0) & (pred_ids > 0)
    rows, cols, inter = _pairs(ref_ids[shared] - 1, pred_ids[shared] - 1, m, k)
    iou = inter / (ref_vox[rows] + pred_vox[cols] - inter)
    covered = iou if match == "iou" else inter / ref_vox[rows]
    ok_pair = covered >= match_threshold
    rows, cols, inter, iou = rows[ok_pair], cols[ok_pair], inter[ok_pair], iou[ok_pair]

    detected = np.zeros(m, dtype=bool)
    matched = np.zeros(k, dtype=bool)
    dice = np.zeros(m, dtype=np.float64)
    ref_scores = np.full(m, -np.inf)
    if rows.size:
        ur, ri = np.unique(rows, return_inverse=True)
        uc, ci = np.unique(cols, return_inverse=True)
        weight = np.zeros((ur.size, uc.size))
        weight[ri, ci] = iou
        a, b = linear_sum_assignment(weight, maximize=True)
        # Non-candidate cells weigh 0 (every candidate > 0): dropping them keeps the optimum.
        keep = weight[a, b] > 0.0
        a, b = a[keep], b[keep]
        r_idx, c_idx = ur[a], uc[b]
        pair_inter = np.zeros((ur.size, uc.size))
        pair_inter[ri, ci] = inter
        detected[r_idx] = True
        matched[c_idx] = True
        dice[r_idx] = 2.0 * pair_inter[a, b] / (ref_vox[r_idx] + pred_vox[c_idx])
        ref_scores[r_idx] = scores[c_idx]
    return LesionScores(
        reference_sizes_ml=ref_vox * voxel_mm3 / 1000.0,
        reference_detected=detected,
        reference_dice=dice,
        reference_scores=ref_scores,
        predicted_scores=scores,
        predicted_matched=matched,
        predicted_sizes_ml=pred_vox * voxel_mm3 / 1000.0,
    )
