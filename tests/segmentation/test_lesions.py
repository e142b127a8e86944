"""Lesion detection of one case: components, one-to-one matching, sizes, options."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from medval._errors import InputError
from medval.segmentation import CONNECTIVITY, MATCH_RULES, LesionScores, lesion_scores


def _vol(shape: tuple[int, ...] = (8, 8, 8)) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(shape), np.zeros(shape, dtype=bool)


def test_two_lesions_one_detected() -> None:
    p, r = _vol()
    r[0:2, 0:2, 0:2] = True  # A: 8 voxels
    r[5:7, 5:7, 5:7] = True  # B: 8 voxels, missed
    p[0:2, 0:2, 0:1] = 0.9  # 4 voxels inside A
    p[1, 1, 0] = 0.95
    s = lesion_scores(p, r, (1.0, 1.0, 1.0))
    np.testing.assert_array_equal(s.reference_detected, [True, False])
    # Dice = 2 * 4 / (8 + 4); IoU = 4 / 8 = 0.5 >= 0.1.
    np.testing.assert_allclose(s.reference_dice, [2 * 4 / 12, 0.0])
    np.testing.assert_array_equal(s.reference_scores, [0.95, -np.inf])
    np.testing.assert_array_equal(s.predicted_scores, [0.95])
    np.testing.assert_array_equal(s.predicted_matched, [True])
    np.testing.assert_allclose(s.reference_sizes_ml, [0.008, 0.008])
    np.testing.assert_allclose(s.predicted_sizes_ml, [0.004])
    assert (s.n_reference, s.n_predicted) == (2, 1)


def test_false_positive_on_healthy_case() -> None:
    p, r = _vol()
    p[3:5, 3:5, 3:5] = 0.7
    s = lesion_scores(p, r, (1, 1, 1))
    assert s.n_reference == 0
    np.testing.assert_array_equal(s.predicted_matched, [False])
    np.testing.assert_array_equal(s.predicted_scores, [0.7])


def test_empty_prediction_misses_every_lesion() -> None:
    p, r = _vol()
    r[2:4, 2:4, 2:4] = True
    p[:] = 0.49  # below the cut everywhere
    s = lesion_scores(p, r, (1, 1, 1))
    np.testing.assert_array_equal(s.reference_detected, [False])
    assert s.n_predicted == 0


def test_merge_one_predicted_lesion_over_two_counts_once() -> None:
    p, r = _vol((1, 12))
    r[0, 0:4] = True
    r[0, 6:10] = True
    p[0, 1:9] = 0.8  # spans both, IoU with each = 3 / 9
    s = lesion_scores(p, r, (1, 1))
    assert int(s.reference_detected.sum()) == 1
    np.testing.assert_array_equal(s.predicted_matched, [True])


def test_split_two_fragments_on_one_lesion_leave_one_unmatched() -> None:
    p, r = _vol((1, 12))
    r[0, 0:10] = True
    p[0, 0:6] = 0.6  # IoU 0.6
    p[0, 7:9] = 0.9  # IoU 0.2
    s = lesion_scores(p, r, (1, 1))
    np.testing.assert_array_equal(s.reference_detected, [True])
    np.testing.assert_array_equal(s.predicted_matched, [True, False])
    # Maximum total IoU takes the larger fragment, whatever the scores.
    np.testing.assert_array_equal(s.reference_scores, [0.6])
    np.testing.assert_allclose(s.reference_dice, [2 * 6 / 16])


def test_optimal_matching_beats_greedy() -> None:
    # A = cols 0-9, B = cols 12-21; P1 = cols 4-14 overlaps both, P2 = cols 0-2 only A.
    # Greedy on IoU takes P1-A (6/15 = 0.4) and leaves P2 and B unmatched (total 0.4);
    # the optimum is P1-B (3/18) + P2-A (3/10) = 0.467 and detects both.
    p, r = _vol((1, 24))
    r[0, 0:10] = True
    r[0, 12:22] = True
    p[0, 0:3] = 0.6
    p[0, 4:15] = 0.8
    s = lesion_scores(p, r, (1, 1))
    np.testing.assert_array_equal(s.reference_detected, [True, True])
    np.testing.assert_array_equal(s.predicted_matched, [True, True])
    np.testing.assert_array_equal(s.reference_scores, [0.6, 0.8])
    np.testing.assert_allclose(s.reference_dice, [2 * 3 / 13, 2 * 3 / 21])


def test_anisotropic_sizes() -> None:
    p, r = _vol()
    r[0:2, 0:3, 0:4] = True  # 24 voxels
    p[4:5, 4:6, 4:7] = 0.8  # 6 voxels
    s = lesion_scores(p, r, (0.5, 1.0, 2.5))  # 1.25 mm3 per voxel
    np.testing.assert_allclose(s.reference_sizes_ml, [24 * 1.25 / 1000])
    np.testing.assert_allclose(s.predicted_sizes_ml, [6 * 1.25 / 1000])


def test_min_size_drops_small_components_on_both_sides() -> None:
    p, r = _vol()
    r[0, 0, 0:3] = True  # 3 voxels = 24 mm3 at 2 mm
    r[4:6, 4:6, 4:6] = True  # 8 voxels = 64 mm3
    p[0, 0, 0:3] = 0.9
    p[4:6, 4:6, 4:6] = 0.9
    p[7, 7, 7] = 0.9  # 1 voxel = 8 mm3
    kept = lesion_scores(p, r, (2, 2, 2), min_size_mm3=24.0)  # ">= 24" keeps 24
    assert (kept.n_reference, kept.n_predicted) == (2, 2)
    dropped = lesion_scores(p, r, (2, 2, 2), min_size_mm3=25.0)
    assert (dropped.n_reference, dropped.n_predicted) == (1, 1)
    np.testing.assert_allclose(dropped.reference_sizes_ml, [0.064])
    np.testing.assert_array_equal(dropped.reference_detected, [True])
    none = lesion_scores(p, r, (2, 2, 2))
    assert (none.n_reference, none.n_predicted) == (2, 3)


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ((1, 0, 0), {"face": 1, "edge": 1, "vertex": 1}),  # shares a face
        ((1, 1, 0), {"face": 2, "edge": 1, "vertex": 1}),  # shares an edge
        ((1, 1, 1), {"face": 2, "edge": 2, "vertex": 1}),  # shares a corner
    ],
)
def test_connectivity_on_diagonal_pairs(
    second: tuple[int, int, int], expected: dict[str, int]
) -> None:
    p, r = _vol((3, 3, 3))
    r[0, 0, 0] = r[second] = True
    p[0, 0, 0] = p[second] = 0.9
    for name, n in expected.items():
        s = lesion_scores(p, r, (1, 1, 1), connectivity=name)
        assert (s.n_reference, s.n_predicted) == (n, n), name


def test_connectivity_2d_edge_equals_vertex() -> None:
    p, r = _vol((3, 3))
    r[0, 0] = r[1, 1] = True
    counts = {c: lesion_scores(p, r, (1, 1), connectivity=c).n_reference for c in CONNECTIVITY}
    assert counts == {"face": 2, "edge": 1, "vertex": 1}


def test_match_rules_iou_versus_overlap() -> None:
    p, r = _vol((10, 10))
    r[0, 0:2] = True  # 2 voxels
    p[0:5, 0:5] = 0.8  # 25 voxels cover it: IoU 2/25 = 0.08, coverage 1.0
    assert list(MATCH_RULES) == ["iou", "overlap"]
    iou = lesion_scores(p, r, (1, 1))
    np.testing.assert_array_equal(iou.reference_detected, [False])
    np.testing.assert_array_equal(iou.predicted_matched, [False])
    assert lesion_scores(p, r, (1, 1), match_threshold=0.08).reference_detected.all()
    over = lesion_scores(p, r, (1, 1), match="overlap", match_threshold=1.0)
    np.testing.assert_array_equal(over.reference_detected, [True])
    np.testing.assert_allclose(over.reference_dice, [2 * 2 / 27])


def test_overlap_fraction_of_the_reference_lesion() -> None:
    p, r = _vol((1, 12))
    r[0, 0:10] = True
    p[0, 7:10] = 0.8  # covers 3 / 10 of the lesion
    hit = lesion_scores(p, r, (1, 1), match="overlap", match_threshold=0.3)
    miss = lesion_scores(p, r, (1, 1), match="overlap", match_threshold=0.31)
    anyvox = lesion_scores(p, r, (1, 1), match="overlap", match_threshold=0.0)
    assert hit.reference_detected.all() and anyvox.reference_detected.all()
    assert not miss.reference_detected.any()
    # Touching is not overlapping, whatever the threshold.
    p2 = np.zeros((1, 12))
    p2[0, 10:12] = 0.8
    touching = lesion_scores(p2, r, (1, 1), match="overlap", match_threshold=0.0)
    assert not touching.reference_detected[0] and not touching.predicted_matched[0]


def test_threshold_is_inclusive_and_score_is_the_maximum() -> None:
    p, r = _vol((1, 6))
    p[0, 1:5] = [0.3, 0.5, 0.7, 0.4]
    s = lesion_scores(p, r, (1, 1), threshold=0.5)
    np.testing.assert_allclose(s.predicted_sizes_ml, [0.002])  # 0.5 and 0.7
    np.testing.assert_array_equal(s.predicted_scores, [0.7])
    s3 = lesion_scores(p, r, (1, 1), threshold=0.3)
    np.testing.assert_allclose(s3.predicted_sizes_ml, [0.004])


def test_binary_references_of_other_dtypes() -> None:
    p, r = _vol((4, 4))
    r[1:3, 1:3] = True
    p[1:3, 1:3] = 0.9
    base = lesion_scores(p, r, (1, 1))
    for ref in (r.astype(np.uint8), r.astype(np.float32), r.astype(int).tolist()):
        other = lesion_scores(p, ref, (1, 1))
        np.testing.assert_array_equal(other.reference_dice, base.reference_dice)
    # An integer 0/1 map is a probability map too.
    ints = lesion_scores((p > 0).astype(int), r, (1, 1))
    np.testing.assert_array_equal(ints.predicted_scores, [1.0])


def _brute_force(p: np.ndarray, r: np.ndarray, threshold: float, min_thr: float):
    """Per-lesion masks, full-volume IoU and every one-to-one matching enumerated."""
    structure = np.ones((3, 3), dtype=bool)
    rl, m = ndimage.label(r, structure=structure)
    pl, k = ndimage.label(p >= threshold, structure=structure)
    refs = [rl == i for i in range(1, m + 1)]
    preds = [pl == j for j in range(1, k + 1)]
    iou = np.zeros((m, k))
    for i, a in enumerate(refs):
        for j, b in enumerate(preds):
            inter = np.sum(a & b)
            iou[i, j] = inter / np.sum(a | b) if inter else 0.0
    edges = [(i, j) for i in range(m) for j in range(k) if iou[i, j] > 0 and iou[i, j] >= min_thr]
    best: list[float] = []
    best_sets: list[tuple[tuple[int, int], ...]] = []
    for n in range(len(edges) + 1):
        for combo in itertools.combinations(edges, n):
            rows = [e[0] for e in combo]
            cols = [e[1] for e in combo]
            if len(set(rows)) == n and len(set(cols)) == n:
                best.append(sum(iou[e] for e in combo))
                best_sets.append(combo)
    order = np.argsort(best)[::-1]
    unique = len(best) == 1 or best[order[0]] - best[order[1]] > 1e-9
    pairs = best_sets[order[0]]
    detected = np.zeros(m, dtype=bool)
    matched = np.zeros(k, dtype=bool)
    dice = np.zeros(m)
    for i, j in pairs:
        detected[i] = matched[j] = True
        dice[i] = 2 * np.sum(refs[i] & preds[j]) / (refs[i].sum() + preds[j].sum())
    scores = np.array([p[b].max() for b in preds])
    sizes = (np.array([a.sum() for a in refs]), np.array([b.sum() for b in preds]))
    return unique, detected, matched, dice, scores, sizes


@pytest.mark.parametrize("seed", range(12))
def test_against_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random((24, 24)), 1.5)
    r = smooth > np.quantile(smooth, 0.75)
    p = np.clip(ndimage.gaussian_filter(rng.random((24, 24)), 1.5) * 2 - 0.5, 0, 1)
    p = np.where(ndimage.binary_dilation(r), np.maximum(p, rng.random((24, 24))), p)
    unique, det, mat, dice, scores, (rv, pv) = _brute_force(p, r, 0.5, 0.1)
    s = lesion_scores(p, r, (1.0, 1.0), match_threshold=0.1)
    np.testing.assert_allclose(s.predicted_scores, scores)
    np.testing.assert_allclose(s.reference_sizes_ml, rv / 1000)
    np.testing.assert_allclose(s.predicted_sizes_ml, pv / 1000)
    assert det.sum() == s.reference_detected.sum()
    if unique:
        np.testing.assert_array_equal(s.reference_detected, det)
        np.testing.assert_array_equal(s.predicted_matched, mat)
        np.testing.assert_allclose(s.reference_dice, dice)


def test_brute_force_cases_are_not_trivial() -> None:
    # The random cases above have several lesions and matches, and most optima are unique.
    n_unique = n_matched = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        smooth = ndimage.gaussian_filter(rng.random((24, 24)), 1.5)
        r = smooth > np.quantile(smooth, 0.75)
        p = np.clip(ndimage.gaussian_filter(rng.random((24, 24)), 1.5) * 2 - 0.5, 0, 1)
        p = np.where(ndimage.binary_dilation(r), np.maximum(p, rng.random((24, 24))), p)
        unique, det, *_ = _brute_force(p, r, 0.5, 0.1)
        n_unique += unique
        n_matched += int(det.sum())
    assert n_unique >= 8 and n_matched >= 12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"probability": np.zeros(5)}, "2D or 3D"),
        ({"probability": np.zeros((2, 2, 2, 2))}, "2D or 3D"),
        ({"probability": np.full((4, 4), 1.5)}, r"in \[0, 1\]"),
        ({"probability": np.full((4, 4), np.nan)}, "finite"),
        ({"probability": np.array([["a"] * 4] * 4)}, "numeric"),
        ({"reference": np.zeros((4, 5), dtype=bool)}, "shape"),
        ({"reference": np.full((4, 4), 2)}, "binary mask"),
        ({"reference": np.full((4, 4), "x")}, "binary mask"),
        ({"spacing": (1.0,)}, "2 positive voxel sizes"),
        ({"spacing": (1.0, 0.0)}, "positive voxel sizes"),
        ({"spacing": (1.0, np.inf)}, "positive voxel sizes"),
        ({"connectivity": "corner"}, "unknown connectivity 'corner'; valid"),
        ({"match": "dice"}, r"unknown match rule 'dice'; valid: \['iou', 'overlap'\]"),
        ({"threshold": 0.0}, r"threshold must be \(0, 1\]"),
        ({"threshold": float("nan")}, r"threshold must be \(0, 1\]"),
        ({"match_threshold": 1.2}, r"match_threshold must be \[0, 1\]"),
        ({"min_size_mm3": -1.0}, "min_size_mm3 must be >= 0"),
    ],
)
def test_input_errors(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "probability": np.zeros((4, 4)),
        "reference": np.zeros((4, 4), dtype=bool),
        "spacing": (1.0, 1.0),
    }
    opts = {k: kwargs.pop(k) for k in list(kwargs) if k not in args}
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        lesion_scores(args["probability"], args["reference"], args["spacing"], **opts)  # type: ignore[arg-type]


def test_empty_probability_is_refused() -> None:
    with pytest.raises(InputError, match="empty"):
        lesion_scores(np.zeros((0, 4)), np.zeros((0, 4), dtype=bool), (1, 1))


def _fields(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "reference_sizes_ml": [0.1, 0.2],
        "reference_detected": [True, False],
        "reference_dice": [0.8, 0.0],
        "reference_scores": [0.9, -np.inf],
        "predicted_scores": [0.9, 0.4],
        "predicted_matched": [True, False],
        "predicted_sizes_ml": [0.1, 0.05],
    }
    return {**base, **over}


def test_lesion_scores_by_hand_is_checked() -> None:
    s = LesionScores(**_fields())  # type: ignore[arg-type]
    assert s.reference_detected.dtype == np.bool_ and s.reference_scores.dtype == np.float64


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"reference_dice": [0.8]}, "one length per side"),
        ({"predicted_scores": [[0.9, 0.4]]}, "one-dimensional"),
        ({"predicted_matched": [True, True]}, "1 reference lesions detected but 2 predicted"),
        ({"reference_scores": [0.9, 0.2]}, "-inf for missed"),
        ({"reference_scores": [np.nan, -np.inf]}, "finite for detected"),
        ({"predicted_scores": [0.9, np.inf]}, "predicted_scores must be finite"),
        ({"reference_sizes_ml": [0.1, -1.0]}, "reference_sizes_ml must be finite and >= 0"),
        ({"predicted_sizes_ml": [0.1, np.nan]}, "predicted_sizes_ml must be finite"),
        ({"reference_dice": [1.2, 0.0]}, r"reference_dice must lie in \[0, 1\]"),
        ({"reference_dice": [0.8, 0.1]}, "0 for missed"),
    ],
)
def test_lesion_scores_by_hand_errors(over: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        LesionScores(**_fields(**over))  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(3))
def test_padding_changes_nothing(seed: int) -> None:
    # The work happens inside the bounding box of the two masks: an offset must not matter.
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random((10, 12, 8)), 1.0)
    r = smooth > np.quantile(smooth, 0.85)
    p = np.clip(smooth + rng.normal(0, 0.05, smooth.shape) - np.quantile(smooth, 0.8) + 0.5, 0, 1)
    big_p, big_r = np.zeros((17, 20, 15)), np.zeros((17, 20, 15), dtype=bool)
    big_p[3:13, 5:17, 6:14] = p
    big_r[3:13, 5:17, 6:14] = r
    opts = {"min_size_mm3": 3.0, "connectivity": "face"}
    a = lesion_scores(p, r, (0.8, 0.8, 2.0), **opts)  # type: ignore[arg-type]
    b = lesion_scores(big_p, big_r, (0.8, 0.8, 2.0), **opts)  # type: ignore[arg-type]
    assert a.n_reference >= 2 and a.n_predicted >= 2 and a.reference_detected.any()
    for field in (
        "reference_sizes_ml",
        "reference_detected",
        "reference_dice",
        "reference_scores",
        "predicted_scores",
        "predicted_matched",
        "predicted_sizes_ml",
    ):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_both_masks_empty() -> None:
    s = lesion_scores(np.full((5, 5, 5), 0.2), np.zeros((5, 5, 5), dtype=bool), (1, 1, 1))
    assert (s.n_reference, s.n_predicted) == (0, 0)
    assert s.reference_scores.dtype == np.float64 and s.predicted_matched.dtype == np.bool_
