"""Voxel calibration in a dilated foreground region: brute-force distances, scikit-learn, ece."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from medval import InputError
from medval.calibration import (
    ece,
    ece_from_bins,
    foreground_region,
    reliability_from_bins,
    voxel_calibration_bins,
)


def _brute_region(union: np.ndarray, spacing: tuple[float, ...], margin: float) -> np.ndarray:
    # Every voxel against every foreground voxel: the definition, no distance transform.
    grid = np.stack(np.indices(union.shape), axis=-1).reshape(-1, union.ndim) * spacing
    fg = grid[union.ravel()]
    if fg.size == 0:
        return np.zeros(union.shape, dtype=bool)
    d = np.sqrt(((grid[:, None, :] - fg[None, :, :]) ** 2).sum(-1)).min(1)
    return (d <= margin + 1e-9).reshape(union.shape)


def _case(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    # A blob of reference foreground and a roughly calibrated probability map.
    centre = np.array(shape) / 2
    dist = np.sqrt(((np.indices(shape).T - centre) ** 2).sum(-1)).T
    logit = 2.0 * (3.0 - dist) + rng.normal(scale=1.0, size=shape)
    prob = 1 / (1 + np.exp(-logit))
    ref = rng.uniform(size=shape) < prob
    return prob, ref


def test_region_hand_case_dilates_in_plane_only() -> None:
    mask = np.zeros((5, 7, 7), dtype=bool)
    mask[2, 3, 3] = True
    empty = np.zeros_like(mask)
    region = foreground_region(mask, empty, (3.0, 1.0, 1.0), margin_mm=2.0)
    # 2 mm < 3 mm slice spacing: the disc dy^2 + dx^2 <= 4 on slice 2 only (13 voxels).
    assert region.sum() == 13
    assert region[2].sum() == 13 and not region[[0, 1, 3, 4]].any()
    assert region[2, 3, 1] and region[2, 1, 3] and not region[2, 1, 2]
    # 3 mm reaches the centres of the neighbouring slices, and a disc of radius 3 in-plane.
    wider = foreground_region(empty, mask, (3.0, 1.0, 1.0), margin_mm=3.0)
    assert wider.sum() == 29 + 2
    assert wider[1, 3, 3] and wider[3, 3, 3] and not wider[1, 3, 4]


@pytest.mark.parametrize("seed", range(4))
def test_region_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (6, 9, 8)
    pred = rng.uniform(size=shape) < 0.03
    ref = np.zeros(shape, dtype=bool)
    ref[0, 0, :2] = True  # touches the volume's edge: the crop must clip there
    spacing = tuple(rng.uniform(0.5, 3.0, size=3).round(2))
    for margin in (0.0, 1.7, 4.0):
        got = foreground_region(pred.astype(np.uint8), ref, spacing, margin_mm=margin)
        np.testing.assert_array_equal(got, _brute_region(pred | ref, spacing, margin))


def test_region_of_empty_masks_is_empty_and_has_no_ece() -> None:
    empty = np.zeros((4, 5, 6), dtype=bool)
    region = foreground_region(empty, empty, (1.0, 1.0, 1.0))
    assert region.dtype == bool and not region.any()
    bins = voxel_calibration_bins(np.full(empty.shape, 0.1), empty, region, n_bins=10)
    assert bins.shape == (3, 10) and not bins.any()
    with pytest.raises(InputError, match="hold no voxel"):
        ece_from_bins(bins)
    with pytest.raises(InputError, match="hold no voxel"):
        reliability_from_bins(bins)


def _loop_ece(p: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    # Right-closed bins (lo, hi], the first also holding 0, written out bin by bin.
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        inside = (p > edges[b]) & (p <= edges[b + 1])
        if b == 0:
            inside |= p == 0
        if inside.any():
            total += inside.sum() * abs(p[inside].mean() - y[inside].mean())
    return total / p.size


def test_bins_merge_and_ece_matches_pooled_voxels() -> None:
    rng = np.random.default_rng(5)
    cases = [_case(rng, (8, 10, 12)), _case(rng, (6, 12, 9))]
    bins, pooled_p, pooled_y = [], [], []
    for prob, ref in cases:
        region = foreground_region(prob > 0.5, ref, (2.0, 0.8, 0.8), margin_mm=2.0)
        assert 0 < region.sum() < region.size
        bins.append(voxel_calibration_bins(prob, ref, region))
        pooled_p.append(prob[region])
        pooled_y.append(ref[region])
    p, y = np.concatenate(pooled_p), np.concatenate(pooled_y).astype(int)
    merged = bins[0] + bins[1]
    np.testing.assert_allclose(merged, voxel_calibration_bins(p, y))  # a 1-D "volume"
    assert merged[0].sum() == p.size
    value = ece_from_bins(merged)
    assert value == pytest.approx(ece(np.column_stack([1 - p, p]), y, target="positive"))
    assert value == pytest.approx(_loop_ece(p, y, 15))
    assert 0 < value < 0.2
    # The whole-volume ECE is diluted by background.
    prob, ref = cases[0]
    whole = ece_from_bins(voxel_calibration_bins(prob, ref))
    assert whole == pytest.approx(_loop_ece(prob.ravel(), ref.ravel().astype(float), 15))


def test_reliability_rows_match_sklearn() -> None:
    prob, ref = _case(np.random.default_rng(7), (10, 12, 12))
    bins = voxel_calibration_bins(prob, ref, n_bins=8)
    rows = reliability_from_bins(bins)
    prob_true, prob_pred = calibration_curve(ref.ravel(), prob.ravel(), n_bins=8)
    np.testing.assert_allclose([r["observed_fraction"] for r in rows], prob_true)
    np.testing.assert_allclose([r["mean_probability"] for r in rows], prob_pred)
    assert sum(r["n"] for r in rows) == prob.size
    assert rows[0]["bin_lower"] == 0.0 and rows[-1]["bin_upper"] == 1.0
    for r in rows:
        assert r["bin_upper"] - r["bin_lower"] == pytest.approx(1 / 8)


def test_reliability_skips_empty_bins() -> None:
    p = np.array([0.05, 0.1, 0.95])
    y = np.array([0, 1, 1])
    rows = reliability_from_bins(voxel_calibration_bins(p, y, n_bins=4))
    assert [(r["bin_lower"], r["n"]) for r in rows] == [(0.0, 2), (0.75, 1)]
    assert rows[0]["mean_probability"] == pytest.approx(0.075)
    assert rows[0]["observed_fraction"] == pytest.approx(0.5)
    # By hand: (2/3)|0.075 - 0.5| + (1/3)|0.95 - 1|.
    assert ece_from_bins(voxel_calibration_bins(p, y, n_bins=4)) == pytest.approx(
        2 / 3 * 0.425 + 1 / 3 * 0.05
    )


def test_region_errors() -> None:
    m = np.zeros((3, 4, 5), dtype=bool)
    with pytest.raises(InputError, match="must be boolean or hold only 0 and 1"):
        foreground_region(np.full(m.shape, 2), m, (1, 1, 1))
    with pytest.raises(
        InputError, match=r"must be (boolean or hold only 0 and 1|a boolean or 0/1 numeric array)"
    ):
        foreground_region(m, np.full(m.shape, "a"), (1, 1, 1))
    with pytest.raises(InputError, match="same voxel grid"):
        foreground_region(m, np.zeros((3, 4, 6), dtype=bool), (1, 1, 1))
    for bad in [(1, 1), (1, 0, 1), (1, np.nan, 1)]:
        with pytest.raises(InputError, match=r"spacing must (give one voxel size|be positive)"):
            foreground_region(m, m, bad)
    for margin in (-1.0, np.inf):
        with pytest.raises(InputError, match="margin_mm must be"):
            foreground_region(m, m, (1, 1, 1), margin_mm=margin)


def test_bins_errors() -> None:
    p, y = np.full((2, 3), 0.5), np.zeros((2, 3), dtype=bool)
    with pytest.raises(InputError, match=r"found 1\.5"):
        voxel_calibration_bins(np.full((2, 3), 1.5), y)
    with pytest.raises(InputError, match="not logits"):
        voxel_calibration_bins(np.full((2, 3), np.nan), y)
    with pytest.raises(InputError, match="numeric"):
        voxel_calibration_bins(np.full((2, 3), "x"), y)
    with pytest.raises(InputError, match="shape of the other volumes"):
        voxel_calibration_bins(p, np.zeros((3, 2), dtype=bool))
    with pytest.raises(InputError, match="region must have the shape"):
        voxel_calibration_bins(p, y, np.ones(6, dtype=bool))
    with pytest.raises(InputError, match="n_bins"):
        voxel_calibration_bins(p, y, n_bins=0)
    # Outside the region a value is not used, so it is not checked.
    region = np.ones((2, 3), dtype=bool)
    region[0, 0] = False
    q = p.copy()
    q[0, 0] = 7.0
    assert voxel_calibration_bins(q, y, region)[0].sum() == 5
    for bad in [np.zeros((2, 15)), np.zeros(15)]:
        with pytest.raises(InputError, match=r"shape \(3, n_bins\)"):
            ece_from_bins(bad)
    good = voxel_calibration_bins(p, y)
    for row, value in itertools.product(range(3), (-1.0, np.nan)):
        bad = good.copy()
        bad[row, 0] = value
        with pytest.raises(InputError, match="non-negative finite sums"):
            ece_from_bins(bad)
    bad = good.copy()
    bad[2] = bad[0] + 1
    with pytest.raises(InputError, match="at most its voxel count"):
        reliability_from_bins(bad)
