"""FROC, competition score, detection by size and the lesion summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from medval._errors import InputError
from medval.segmentation import (
    FP_RATES,
    LesionScores,
    detection_by_size,
    froc,
    froc_score,
    lesion_scores,
    lesion_summary,
)


def case(
    hits: list[float | None],
    fps: list[float] = (),  # type: ignore[assignment]
    sizes: list[float] | None = None,
    dice: list[float] | None = None,
) -> LesionScores:
    """A hand-made case: one entry per reference lesion (its score, None if missed), FP scores."""
    det = [h is not None for h in hits]
    tp = [h for h in hits if h is not None]
    return LesionScores(
        reference_sizes_ml=sizes if sizes is not None else [1.0] * len(hits),
        reference_detected=det,
        reference_dice=dice if dice is not None else [0.5 if d else 0.0 for d in det],
        reference_scores=[-np.inf if h is None else h for h in hits],
        predicted_scores=[*tp, *fps],
        predicted_matched=[True] * len(tp) + [False] * len(fps),
        predicted_sizes_ml=[1.0] * (len(tp) + len(fps)),
    )


def hand_cases() -> list[LesionScores]:
    # 3 lesions (TP 0.9, TP 0.6, one missed), FPs 0.95, 0.8, 0.6, 0.6, 0.3, 4 scans.
    return [
        case([0.9, 0.6], fps=[0.8]),
        case([None], fps=[0.6, 0.6, 0.3]),
        case([], fps=[0.95]),
        case([]),
    ]


def test_hand_computed_froc() -> None:
    f = froc(hand_cases())
    np.testing.assert_allclose(f.thresholds, [0.95, 0.9, 0.8, 0.6, 0.3])
    np.testing.assert_allclose(f.fp_per_scan, [0.25, 0.25, 0.5, 1.0, 1.25])
    np.testing.assert_allclose(f.sensitivity, [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    # 1/8: on (0, 0)-(0.25, 0); 1/4: top of the vertical step; >= 1: 2/3.
    np.testing.assert_allclose(f.sensitivity_at, [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert f.score == pytest.approx(10 / 21)
    assert (f.n_scans, f.n_lesions) == (4, 3)
    np.testing.assert_array_equal(f.fp_rates, FP_RATES)
    # On the diagonal (0.5, 1/3)-(1.0, 2/3), where a TP and two FPs enter at 0.6.
    assert froc(hand_cases(), fp_rates=[0.75]).sensitivity_at[0] == pytest.approx(0.5)
    assert froc_score(hand_cases(), fp_rates=[0.75, 0.125]) == pytest.approx(0.25)


def test_diagonal_from_the_origin() -> None:
    # Top score is a TP tied with an FP in 1 of 2 scans: first point (0.5, 1/2).
    f = froc([case([0.9, None], fps=[0.9]), case([])], fp_rates=[0.125, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(f.sensitivity_at, [0.125, 0.25, 0.5, 0.5])


def test_no_false_positive_reads_the_final_sensitivity() -> None:
    # LUNA16's border case: every FP rate reads the last sensitivity.
    f = froc([case([0.9, 0.4, None])])
    np.testing.assert_allclose(f.fp_per_scan, [0, 0])
    np.testing.assert_allclose(f.sensitivity_at, [2 / 3] * 7)


def test_no_predicted_lesion_scores_zero() -> None:
    f = froc([case([None, None]), case([])])
    assert f.thresholds.size == 0 and f.score == 0.0
    np.testing.assert_array_equal(f.sensitivity_at, np.zeros(7))


def random_cases(seed: int, n: int = 12) -> list[LesionScores]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m = int(rng.integers(0, 4))
        hits = [float(np.round(rng.random(), 1)) if rng.random() < 0.6 else None for _ in range(m)]
        fps = list(np.round(rng.random(int(rng.integers(0, 4))), 1))
        out.append(case(hits, fps=fps, sizes=list(rng.choice([0.05, 0.5, 5.0], m))))
    if not any(c.n_reference for c in out):
        out.append(case([0.5]))
    return out


def brute_force(cases: list[LesionScores], rates: tuple[float, ...]) -> tuple[list, list, list]:
    """Plain loops: every distinct score a threshold, then walk the polyline from (0, 0)."""
    scores = sorted({float(s) for c in cases for s in c.predicted_scores}, reverse=True)
    n_lesions = sum(len(c.reference_detected) for c in cases)
    sens, fps = [], []
    for t in scores:
        tp = fp = 0
        for c in cases:
            for d, s in zip(c.reference_detected, c.reference_scores, strict=True):
                tp += bool(d and s >= t)
            for mt, s in zip(c.predicted_matched, c.predicted_scores, strict=True):
                fp += bool(not mt and s >= t)
        sens.append(tp / n_lesions)
        fps.append(fp / len(cases))
    xs, ys = [0.0, *fps], [0.0, *sens]
    at = []
    for r in rates:
        value = ys[-1]
        for i in range(len(xs) - 1):
            if xs[i] <= r < xs[i + 1]:
                value = ys[i] + (ys[i + 1] - ys[i]) * (r - xs[i]) / (xs[i + 1] - xs[i])
        at.append(value)
    return scores, sens, at


def luna16_reference(cases: list[LesionScores], rates: tuple[float, ...]) -> np.ndarray:
    """The LUNA16 script's computeFROC (sklearn roc_curve) + numpy.interp, re-derived."""
    gt, prob = [], []
    n_lesions = n_detected = 0
    for c in cases:
        n_lesions += len(c.reference_detected)
        n_detected += int(c.reference_detected.sum())
        gt += [1] * int(c.reference_detected.sum()) + [0] * int((~c.predicted_matched).sum())
        prob += [
            *c.reference_scores[c.reference_detected],
            *c.predicted_scores[~c.predicted_matched],
        ]
    fpr, tpr, _ = roc_curve(gt, prob)
    fps = fpr * (len(gt) - n_detected) / len(cases)
    sens = tpr * n_detected / n_lesions
    return np.interp(rates, fps, sens)


@pytest.mark.parametrize("seed", range(20))
def test_against_brute_force_and_luna16(seed: int) -> None:
    cases = random_cases(seed)
    rates = (*FP_RATES, 0.3, 0.7, 1.5)
    f = froc(cases, fp_rates=rates)
    thresholds, sens, at = brute_force(cases, rates)
    np.testing.assert_allclose(f.thresholds, thresholds)
    np.testing.assert_allclose(f.sensitivity, sens)
    np.testing.assert_allclose(f.sensitivity_at, at, atol=1e-12)
    has_tp = any(c.reference_detected.any() for c in cases)
    has_fp = any((~c.predicted_matched).any() for c in cases)
    if has_tp and has_fp:
        np.testing.assert_allclose(f.sensitivity_at, luna16_reference(cases, rates), atol=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_properties(seed: int) -> None:
    cases = random_cases(100 + seed, n=30)
    f = froc(cases)
    assert np.all(np.diff(f.fp_per_scan) >= 0) and np.all(np.diff(f.sensitivity) >= 0)
    assert np.all(np.diff(f.thresholds) < 0)
    assert np.all(np.diff(f.sensitivity_at) >= 0)  # FP_RATES increase
    assert 0.0 <= f.score <= 1.0
    perm = np.random.default_rng(seed).permutation(len(cases))
    g = froc([cases[i] for i in perm])
    np.testing.assert_array_equal(f.sensitivity_at, g.sensitivity_at)
    assert f.score == g.score == froc_score(cases)


def test_end_to_end_from_masks() -> None:
    p = np.zeros((2, 12))
    r = np.zeros((2, 12), dtype=bool)
    r[0, 0:4] = True
    r[0, 8:12] = True
    p[0, 0:4] = 0.9  # detects the first lesion, score 0.9
    p[1, 6] = 0.7  # a false positive (not touching the second lesion diagonally)
    healthy = lesion_scores(np.full((2, 12), 0.2), np.zeros((2, 12)), (1, 1))
    cases = [lesion_scores(p, r, (1, 1), connectivity="face"), healthy]
    f = froc(cases, fp_rates=[0.5, 1.0])
    np.testing.assert_allclose(f.thresholds, [0.9, 0.7])
    np.testing.assert_allclose(f.sensitivity_at, [0.5, 0.5])
    assert lesion_summary(cases) == {
        "lesion_sensitivity": 0.5,
        "fp_per_scan": 0.5,
        "mean_lesion_dice": 0.5,
        "n_lesions": 2,
        "n_scans": 2,
        "n_fp": 1,
    }


def test_detection_by_size() -> None:
    cases = [
        case([0.9, None, 0.5], sizes=[0.05, 0.1, 0.5]),
        case([None, 0.7], sizes=[2.0, 1.0]),
        case([]),
    ]
    rows = detection_by_size(cases, bands_ml=[0.1, 1.0])
    assert [r["band"] for r in rows] == ["<0.1 ml", "0.1\u20131 ml", "\u22651 ml"]
    assert [(r["n_lesions"], r["n_detected"]) for r in rows] == [(1, 1), (2, 1), (2, 1)]
    assert [r["sensitivity"] for r in rows] == [1.0, 0.5, 0.5]
    assert (rows[0]["low_ml"], rows[-1]["high_ml"]) == (0.0, math.inf)
    empty = detection_by_size(cases, bands_ml=[10.0])
    assert empty[1]["n_lesions"] == 0 and math.isnan(float(empty[1]["sensitivity"]))
    assert detection_by_size(cases, bands_ml=[])[0]["band"] == "all"


def test_lesion_summary_dice_counts_misses_as_zero() -> None:
    s = lesion_summary([case([0.9, None], fps=[0.2, 0.1], dice=[0.8, 0.0]), case([], fps=[0.3])])
    assert s["mean_lesion_dice"] == pytest.approx(0.4)
    assert s["lesion_sensitivity"] == 0.5 and s["fp_per_scan"] == 1.5 and s["n_fp"] == 3
    healthy = lesion_summary([case([], fps=[0.3])])
    assert math.isnan(healthy["lesion_sensitivity"]) and math.isnan(healthy["mean_lesion_dice"])
    assert healthy["fp_per_scan"] == 1.0


def test_froc_errors() -> None:
    with pytest.raises(InputError, match="cases is empty"):
        froc([])
    with pytest.raises(InputError, match=r"cases\[1\] must be a LesionScores"):
        froc([case([0.5]), {"x": 1}])  # type: ignore[list-item]
    with pytest.raises(InputError, match="none of the 2 scans has a reference lesion"):
        froc([case([], fps=[0.4]), case([])])
    for bad in ([], [0.5, -1.0], [np.nan], [[0.5]]):
        with pytest.raises(InputError, match="fp_rates must be a non-empty list of positive"):
            froc([case([0.5])], fp_rates=bad)
    with pytest.raises(InputError, match="cases is empty"):
        lesion_summary([])
    with pytest.raises(InputError, match="cases is empty"):
        detection_by_size([], bands_ml=[1.0])
    for bad_bands in ([1.0, 0.5], [0.0, 1.0], [1.0, 1.0], [np.inf]):
        with pytest.raises(InputError, match="bands_ml must be increasing positive"):
            detection_by_size([case([0.5])], bands_ml=bad_bands)
