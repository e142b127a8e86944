"""Overlap (Dice, IoU) and volume metrics of a predicted against a reference mask.

Everything here follows from three voxel counts (predicted, reference, their
intersection) and the voxel volume; the empty-mask rules are medval's
declared rules (see :func:`medval.segmentation.structure_scores`).
"""

from __future__ import annotations

import math

__all__ = ["overlap_values", "volume_values"]


def overlap_values(n_predicted: int, n_reference: int, n_intersection: int) -> dict[str, float]:
    """Dice and IoU (Jaccard) from voxel counts.

    ``dice = 2|P & R| / (|P| + |R|)`` (Dice 1945; Sørensen 1948) and
    ``iou = |P & R| / |P | R|`` (Jaccard 1912). Both masks empty gives 1 for
    both (the prediction is perfect); exactly one empty gives 0 (the formulas'
    own value, never NaN).
    """
    total = n_predicted + n_reference
    if total == 0:
        return {"dice": 1.0, "iou": 1.0}
    union = total - n_intersection
    return {"dice": 2.0 * n_intersection / total, "iou": n_intersection / union}


def volume_values(n_predicted: int, n_reference: int, voxel_ml: float) -> dict[str, float]:
    """Volumes in ml and their differences.

    ``volume_*_ml = count * voxel_ml`` (``voxel_ml = prod(spacing) / 1000``),
    ``volume_difference_ml = V_pred - V_ref`` (positive: over-segmentation),
    ``relative_volume_error = (V_pred - V_ref) / V_ref``; that ratio is 0 when
    both are empty and **NaN when only the reference is empty** (undefined:
    the one NaN medval's segmentation metrics produce; aggregators count and
    report those cases).
    """
    v_ref = n_reference * voxel_ml
    v_pred = n_predicted * voxel_ml
    if n_reference > 0:
        rve = (n_predicted - n_reference) / n_reference
    else:
        rve = 0.0 if n_predicted == 0 else math.nan
    return {
        "volume_reference_ml": v_ref,
        "volume_predicted_ml": v_pred,
        "volume_difference_ml": v_pred - v_ref,
        "relative_volume_error": rve,
    }
