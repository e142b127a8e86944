"""Boundary voxels and directed surface distances: hand values, EDT, medpy, DeepMind."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medval._errors import InputError
from medval.segmentation import structure_scores, surface_distances
from medval.segmentation._surface import boundary, crop_to_union


def _cube(shape: tuple[int, ...], box: tuple[slice, ...]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[box] = True
    return m


def test_boundary_of_cube_inside_and_at_the_border() -> None:
    inside = _cube((6, 6, 6), np.s_[1:4, 1:4, 1:4])
    corner = _cube((6, 6, 6), np.s_[0:3, 0:3, 0:3])
    # 27 voxels, only the centre has all 6 face-neighbours inside
    assert boundary(inside).sum() == 26
    assert not boundary(inside)[2, 2, 2]
    # outside the array is background: the faces on the array border stay boundary
    assert boundary(corner).sum() == 26
    assert boundary(corner)[0, 1, 1]
    eroded = ndimage.binary_erosion(corner, structure=ndimage.generate_binary_structure(3, 1))
    np.testing.assert_array_equal(boundary(corner), corner & ~eroded)


def test_boundary_uses_face_connectivity_2d() -> None:
    plus = np.zeros((5, 5), dtype=bool)
    plus[2, 1:4] = True
    plus[1:4, 2] = True
    # the centre has its 4 face-neighbours inside (its diagonal ones are outside)
    assert boundary(plus).sum() == 4
    assert not boundary(plus)[2, 2]
    full = np.ones((3, 4), dtype=bool)
    assert boundary(full).sum() == 10  # every voxel but the 2 interior ones


def test_single_voxels_at_known_offset_anisotropic() -> None:
    p = np.zeros((4, 4, 5), dtype=bool)
    r = np.zeros_like(p)
    p[1, 1, 1] = True
    r[2, 1, 3] = True  # offset (1, 0, 2) voxels
    d_pr, d_rp = surface_distances(p, r, (3.0, 0.5, 0.5))
    np.testing.assert_allclose(d_pr, [np.sqrt(9.0 + 1.0)])
    np.testing.assert_allclose(d_rp, [np.sqrt(10.0)])
    iso = surface_distances(p, r, (1.0, 1.0, 1.0))[0]
    np.testing.assert_allclose(iso, [np.sqrt(5.0)])
    v = structure_scores(p, r, (3.0, 0.5, 0.5), nsd_tolerance_mm=3.2).values
    assert v["hd"] == v["hd95"] == v["assd"] == pytest.approx(np.sqrt(10.0))
    assert v["nsd"] == 1.0  # sqrt(10) = 3.16 <= 3.2
    assert structure_scores(p, r, (3.0, 0.5, 0.5), nsd_tolerance_mm=3.1).values["nsd"] == 0.0
    assert v["dice"] == v["iou"] == 0.0


def test_border_cube_against_longer_cube_by_hand() -> None:
    # reference 3x3x3 in the array corner, prediction one layer longer along x
    r = _cube((5, 5, 5), np.s_[0:3, 0:3, 0:3])
    p = _cube((5, 5, 5), np.s_[0:3, 0:3, 0:4])
    d_pr, d_rp = surface_distances(p, r, (1.0, 1.0, 2.0))
    # pred boundary: 34 voxels; its 9 voxels at x = 3 are 1 voxel (2 mm) away
    assert sorted(d_pr.tolist()) == [0.0] * 25 + [2.0] * 9
    # ref boundary: 26 voxels; only (1, 1, 2), interior to pred, is off the pred
    # boundary, 1 mm from its z and y neighbours (2 mm from its x neighbour)
    assert sorted(d_rp.tolist()) == [0.0] * 25 + [1.0]
    v = structure_scores(p, r, (1.0, 1.0, 2.0), nsd_tolerance_mm=1.5).values
    assert v["hd"] == 2.0
    assert v["hd95"] == 2.0  # pred->ref: position 0.95 * 33 = 31.35 lies among the 2s
    assert v["assd"] == pytest.approx(19 / 60)
    assert v["nsd"] == pytest.approx(51 / 60)
    assert structure_scores(p, r, (1.0, 1.0, 2.0), nsd_tolerance_mm=0.5).values[
        "nsd"
    ] == pytest.approx(50 / 60)
    assert v["dice"] == pytest.approx(54 / 63)
    assert v["iou"] == pytest.approx(27 / 36)


def test_2d_shifted_square_depends_on_spacing() -> None:
    r = _cube((6, 6), np.s_[1:4, 1:4])
    p = _cube((6, 6), np.s_[1:4, 2:5])
    d_pr, d_rp = surface_distances(p, r, (2.0, 0.5))
    assert sorted(d_pr.tolist()) == [0.0] * 4 + [0.5] * 4
    assert sorted(d_rp.tolist()) == [0.0] * 4 + [0.5] * 4
    v = structure_scores(p, r, (2.0, 0.5), nsd_tolerance_mm=0.4).values
    assert (v["hd"], v["hd95"], v["assd"], v["nsd"]) == (0.5, 0.5, 0.25, 0.5)
    assert v["dice"] == pytest.approx(2 / 3)
    swapped = structure_scores(p, r, (0.5, 2.0), nsd_tolerance_mm=0.4).values
    # (2, 2) is now 0.5 mm from (1, 2); the three right-hand voxels are 2 mm off
    assert (swapped["hd"], swapped["assd"]) == (2.0, 2 * 6.5 / 16)


def test_hd95_is_directed_not_medpys_pooled_percentile() -> None:
    # reference a 3x3 square; prediction the same plus one far-away voxel
    r = _cube((12, 12), np.s_[1:4, 1:4])
    p = r.copy()
    p[10, 10] = True
    d_pr, d_rp = surface_distances(p, r, (1.0, 1.0))
    far = np.hypot(7.0, 7.0)
    assert sorted(d_pr.tolist()) == pytest.approx([0.0] * 8 + [far])
    assert sorted(d_rp.tolist()) == [0.0] * 8
    hd95 = structure_scores(p, r, (1.0, 1.0)).values["hd95"]
    medpy_hd95 = np.percentile(np.hstack((d_pr, d_rp)), 95)  # medpy.metric.binary.hd95
    assert hd95 == pytest.approx(0.6 * far)  # position 0.95 * 8 = 7.6 in the directed set
    assert medpy_hd95 == pytest.approx(0.2 * far)  # position 0.95 * 16 = 15.2 pooled
    assert hd95 > medpy_hd95


def test_kdtree_matches_distance_transform(blob) -> None:
    for seed, spacing in ((0, (3.0, 0.5, 0.8)), (1, (0.7, 1.3, 2.1))):
        p, r = blob((10, 16, 14), seed), blob((10, 16, 14), seed + 100)
        d_pr, d_rp = surface_distances(p, r, spacing)
        bp, br = boundary(p), boundary(r)
        edt_r = ndimage.distance_transform_edt(~br, sampling=spacing)
        edt_p = ndimage.distance_transform_edt(~bp, sampling=spacing)
        np.testing.assert_allclose(d_pr, edt_r[bp], rtol=0, atol=1e-9)
        np.testing.assert_allclose(d_rp, edt_p[br], rtol=0, atol=1e-9)


def test_crop_keeps_values(blob) -> None:
    small = blob((6, 7, 5), 3)
    big = np.zeros((20, 25, 30), dtype=bool)
    big[7:13, 9:16, 12:17] = small
    other = np.zeros_like(big)
    other[8:12, 10:14, 13:18] = True
    spacing = (1.5, 0.6, 0.9)
    a = structure_scores(big, other, spacing, distance_cap_mm=50.0).values
    b = structure_scores(big[5:16, 8:20, 11:19], other[5:16, 8:20, 11:19], spacing,
                         distance_cap_mm=50.0).values  # fmt: skip
    for k in ("dice", "iou", "nsd", "hd95", "hd", "assd", "volume_difference_ml"):
        assert a[k] == pytest.approx(b[k], rel=1e-12)
    boxes = crop_to_union(big, other)
    assert boxes is not None
    idx = np.nonzero(big | other)
    assert boxes[0].shape == tuple(int(i.max() - i.min()) + 3 for i in idx)
    np.testing.assert_array_equal(boxes[0][1:-1, 1:-1, 1:-1].sum(), big.sum())
    assert crop_to_union(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) is None


def test_deepmind_definitions_where_they_coincide(blob) -> None:
    # DeepMind's surface-distance weights surface elements by area and places
    # them between voxel centres. On one set of distances with equal weights
    # its formulas reduce to medval's as follows (hand-coded from its docs).
    p, r = blob((9, 12, 12), 5), blob((9, 12, 12), 6)
    spacing = (2.0, 0.8, 0.8)
    d_pr, d_rp = (np.sort(d) for d in surface_distances(p, r, spacing))
    w_pr, w_rp = np.ones_like(d_pr), np.ones_like(d_rp)

    def robust_hd(percent: float) -> float:
        out = []
        for d, w in ((d_pr, w_pr), (d_rp, w_rp)):
            idx = np.searchsorted(np.cumsum(w) / w.sum(), percent / 100.0)
            out.append(d[min(idx, d.size - 1)])
        return float(max(out))

    tau = 1.1
    surface_dice = (w_pr[d_pr <= tau].sum() + w_rp[d_rp <= tau].sum()) / (w_pr.sum() + w_rp.sum())
    avg_pr, avg_rp = (d_pr * w_pr).sum() / w_pr.sum(), (d_rp * w_rp).sum() / w_rp.sum()
    v = structure_scores(p, r, spacing, nsd_tolerance_mm=tau).values
    assert v["hd"] == robust_hd(100.0)
    assert v["nsd"] == pytest.approx(surface_dice, abs=1e-15)
    # DeepMind returns the two directed means; medval pools them by count
    pooled = (d_pr.size * avg_pr + d_rp.size * avg_rp) / (d_pr.size + d_rp.size)
    assert v["assd"] == pytest.approx(pooled, rel=1e-12)
    # its percentile is the inverted CDF (no interpolation), not numpy's linear one
    inverted = max(np.percentile(d, 95, method="inverted_cdf") for d in (d_pr, d_rp))
    assert robust_hd(95.0) == pytest.approx(inverted)


def test_one_or_both_empty_distance_arrays() -> None:
    r = _cube((5, 5), np.s_[1:4, 1:4])
    empty = np.zeros_like(r)
    d_pr, d_rp = surface_distances(empty, r, (1.0, 1.0))
    assert d_pr.size == 0
    assert d_rp.shape == (8,)
    assert np.all(np.isinf(d_rp))
    d_pr, d_rp = surface_distances(empty, empty, (1.0, 1.0))
    assert d_pr.size == d_rp.size == 0


def test_surface_distances_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="same voxel grid"):
        surface_distances(np.ones((3, 3), bool), np.ones((3, 4), bool), (1.0, 1.0))
    with pytest.raises(InputError, match="one voxel size in mm per axis"):
        surface_distances(np.ones((3, 3), bool), np.ones((3, 3), bool), (1.0, 1.0, 1.0))
