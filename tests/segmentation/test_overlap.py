"""Dice, IoU and volume values from voxel counts, checked by hand and on masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medval.segmentation import structure_scores
from medval.segmentation._overlap import overlap_values, volume_values


def test_overlap_values_by_hand() -> None:
    # |P| = 36, |R| = 27, |P & R| = 27: dice 54/63, iou 27/36
    got = overlap_values(36, 27, 27)
    assert got["dice"] == pytest.approx(6 / 7)
    assert got["iou"] == pytest.approx(0.75)
    assert overlap_values(5, 5, 0) == {"dice": 0.0, "iou": 0.0}


def test_overlap_empty_rules() -> None:
    assert overlap_values(0, 0, 0) == {"dice": 1.0, "iou": 1.0}
    assert overlap_values(0, 7, 0) == {"dice": 0.0, "iou": 0.0}
    assert overlap_values(7, 0, 0) == {"dice": 0.0, "iou": 0.0}


def test_dice_iou_identity_on_masks(blob) -> None:
    p, r = blob((9, 11, 10), 1), blob((9, 11, 10), 2)
    v = structure_scores(p, r, (1.0, 1.0, 1.0)).values
    inter, total = int((p & r).sum()), int(p.sum() + r.sum())
    assert v["dice"] == pytest.approx(2 * inter / total, abs=1e-15)
    assert v["iou"] == pytest.approx(inter / int((p | r).sum()), abs=1e-15)
    assert v["iou"] == pytest.approx(v["dice"] / (2 - v["dice"]))


def test_volume_values_by_hand() -> None:
    # 3 x 0.5 x 0.5 mm voxels = 0.75 mm3 = 0.00075 ml
    got = volume_values(40, 30, 0.00075)
    assert got["volume_predicted_ml"] == pytest.approx(0.03)
    assert got["volume_reference_ml"] == pytest.approx(0.0225)
    assert got["volume_difference_ml"] == pytest.approx(0.0075)
    assert got["relative_volume_error"] == pytest.approx(1 / 3)
    assert volume_values(0, 30, 0.001)["relative_volume_error"] == -1.0


def test_relative_volume_error_nan_only_for_empty_reference() -> None:
    assert math.isnan(volume_values(4, 0, 0.001)["relative_volume_error"])
    both = volume_values(0, 0, 0.001)
    assert both == {
        "volume_reference_ml": 0.0,
        "volume_predicted_ml": 0.0,
        "volume_difference_ml": 0.0,
        "relative_volume_error": 0.0,
    }


def test_volumes_use_anisotropic_spacing() -> None:
    r = np.zeros((4, 6, 6), dtype=bool)
    r[1:3, 1:4, 1:4] = True  # 18 voxels
    p = np.zeros_like(r)
    p[1:3, 1:5, 1:4] = True  # 24 voxels
    v = structure_scores(p, r, (3.0, 0.5, 0.5)).values
    assert v["volume_reference_ml"] == pytest.approx(18 * 0.75 / 1000)
    assert v["volume_predicted_ml"] == pytest.approx(24 * 0.75 / 1000)
    assert v["volume_difference_ml"] == pytest.approx(6 * 0.75 / 1000)
    assert v["relative_volume_error"] == pytest.approx(6 / 18)
