"""Case-level segmentation uncertainty: hand cases, brute-force distances, scipy, sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata, t
from scipy.stats import spearmanr as scipy_spearmanr
from sklearn.metrics import roc_auc_score

from medval import InputError
from medval.uncertainty import case_referral_curve, case_uncertainty, failure_detection

ANISO = (3.0, 1.0, 1.0)


def _maps(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    return tuple(rng.uniform(size=shape) for _ in range(3))


def _brute_shell(mask: np.ndarray, spacing: tuple[float, ...], border: float) -> np.ndarray:
    # The definition, voxel by voxel: distance to the nearest voxel on the other side.
    grid = np.stack(np.indices(mask.shape), axis=-1).reshape(-1, mask.ndim) * spacing
    flat = mask.ravel()
    shell = np.zeros(flat.size, dtype=bool)
    for side in (True, False):
        here, there = grid[flat == side], grid[flat != side]
        if here.size and there.size:
            d = np.sqrt(((here[:, None, :] - there[None, :, :]) ** 2).sum(-1)).min(1)
            shell[flat == side] = d <= border + 1e-9
    return shell.reshape(mask.shape)


def _square() -> np.ndarray:
    pred = np.zeros((7, 11, 11), dtype=bool)
    pred[3, 3:8, 3:8] = True  # a 5 x 5 square on one slice
    return pred


def test_border_shell_hand_case_anisotropic() -> None:
    pred = _square()
    ent = np.zeros(pred.shape)
    probes = {
        (3, 5, 5): False,  # the centre: 3 mm from the background in-plane and across slices
        (3, 3, 3): True,
        (3, 2, 2): True,  # diagonal outside neighbour, sqrt(2) mm
        (3, 1, 1): False,  # sqrt(8) mm
        (3, 1, 5): True,  # 2 mm
        (3, 0, 5): False,  # 3 mm
        (2, 5, 5): False,  # the slice above: 3 mm
    }
    for voxel in probes:
        ent[voxel] = 1.0
    out = case_uncertainty(ent, ent, ent, pred, ANISO, border_mm=2.0)
    # Inside: 24 of 25 (all but the centre). Outside, on slice 3 only: 4 strips of
    # 5 x 2 and the four (1, 1) diagonal corners: 44. Each voxel is 3 mm^3.
    assert out["border_ml"] == pytest.approx(68 * 3 / 1000)
    assert out["entropy_border"] == pytest.approx(sum(probes.values()) / 68)
    assert out["predicted_ml"] == pytest.approx(25 * 3 / 1000)
    # 3 mm reaches the centres of the slices above and below the square (25 + 25),
    # and in-plane 4 strips of 5 x 3 with 4 corners of 4: 25 + 76 + 50.
    wide = case_uncertainty(ent, ent, ent, pred, ANISO, border_mm=3.0)
    assert wide["border_ml"] == pytest.approx(151 * 3 / 1000)


@pytest.mark.parametrize("seed", range(3))
def test_means_match_direct_subsets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (5, 8, 9)
    pred = rng.uniform(size=shape) < 0.2
    pred[0, :, 0] = True  # touches the volume's edge
    spacing = tuple(rng.uniform(0.6, 2.5, size=3).round(2))
    border = 1.2 * max(spacing)
    ent, epi, ale = _maps(rng, shape)
    out = case_uncertainty(ent, epi, ale, pred.astype(int), spacing, border_mm=border)
    shell = _brute_shell(pred, spacing, border)
    assert 0 < shell.sum() < shell.size
    for name, a in (("entropy", ent), ("epistemic", epi), ("aleatoric", ale)):
        assert out[f"{name}_region"] == pytest.approx(a[pred].mean())
        assert out[f"{name}_border"] == pytest.approx(a[shell].mean())
        assert out[f"{name}_volume"] == pytest.approx(a.mean())
    voxel_ml = math.prod(spacing) / 1000
    assert out["border_ml"] == pytest.approx(shell.sum() * voxel_ml)
    assert out["predicted_ml"] == pytest.approx(pred.sum() * voxel_ml)
    assert out["empty_prediction"] == 0.0 and out["empty_border"] == 0.0


def test_empty_and_full_predictions_fall_back_to_volume_means() -> None:
    rng = np.random.default_rng(3)
    ent, epi, ale = _maps(rng, (4, 6, 6))
    for pred, empty_pred in ((np.zeros((4, 6, 6), dtype=bool), 1.0), (np.ones((4, 6, 6)), 0.0)):
        out = case_uncertainty(ent, epi, ale, pred, (2.0, 1.0, 1.0))
        assert not any(math.isnan(v) for v in out.values())
        assert out["empty_prediction"] == empty_pred and out["empty_border"] == 1.0
        assert out["border_ml"] == 0.0
        for name, a in (("entropy", ent), ("epistemic", epi), ("aleatoric", ale)):
            assert out[f"{name}_region"] == pytest.approx(a.mean())
            assert out[f"{name}_border"] == pytest.approx(a.mean())


def test_case_uncertainty_errors() -> None:
    pred = _square()
    m = np.zeros(pred.shape)
    with pytest.raises(InputError, match=r"smallest voxel size \(1 mm\)"):
        case_uncertainty(m, m, m, pred, ANISO, border_mm=0.5)
    with pytest.raises(InputError, match="border_mm must be"):
        case_uncertainty(m, m, m, pred, ANISO, border_mm=np.nan)
    with pytest.raises(InputError, match="epistemic must have the shape"):
        case_uncertainty(m, m[:3], m, pred, ANISO)
    bad = m.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(InputError, match="aleatoric holds NaN or infinite"):
        case_uncertainty(m, m, bad, pred, ANISO)
    with pytest.raises(InputError, match="predicted must be boolean or hold only 0 and 1"):
        case_uncertainty(m, m, m, pred * 2, ANISO)
    with pytest.raises(InputError, match=r"spacing must (give one voxel size|be positive)"):
        case_uncertainty(m, m, m, pred, (1.0, 1.0))


def test_failure_detection_matches_scipy_and_sklearn() -> None:
    rng = np.random.default_rng(11)
    quality = np.clip(rng.beta(5, 2, size=40), 0, 1)
    uncertainty = np.round(1 - quality + rng.normal(scale=0.15, size=40), 1)  # with ties
    out = failure_detection(uncertainty, quality, bad_below=0.6)
    ref = scipy_spearmanr(uncertainty, quality)
    assert out["spearman_rho"] == pytest.approx(ref.statistic)
    assert out["spearman_p"] == pytest.approx(ref.pvalue)
    # Independently: Pearson of mid-ranks, and the t approximation of the p value.
    r = np.corrcoef(rankdata(uncertainty), rankdata(quality))[0, 1]
    stat = r * math.sqrt(38 / (1 - r**2))
    assert out["spearman_rho"] == pytest.approx(r)
    assert out["spearman_p"] == pytest.approx(2 * t.sf(abs(stat), 38))
    assert out["spearman_rho"] < 0 and out["spearman_p"] < 0.05
    bad = quality < 0.6
    assert out["auroc"] == pytest.approx(roc_auc_score(bad, uncertainty))
    assert out["auroc"] > 0.5
    assert out["n_bad"] == bad.sum() and 0 < out["n_bad"] < 40 and out["n"] == 40
    assert out["spearman_reason"] is None and out["auroc_reason"] is None


def test_failure_detection_not_estimable_gives_reasons() -> None:
    u = np.array([0.1, 0.2, 0.3, 0.4])
    out = failure_detection(u, [0.9, 0.8, 0.7, 0.95])
    assert out["auroc"] is None and "no case of 4" in str(out["auroc_reason"])
    assert out["spearman_rho"] == pytest.approx(scipy_spearmanr(u, [0.9, 0.8, 0.7, 0.95])[0])
    out = failure_detection(u, [0.1, 0.1, 0.1, 0.1])
    assert out["auroc"] is None and "every case" in str(out["auroc_reason"])
    assert out["spearman_rho"] is None and out["spearman_p"] is None
    assert out["spearman_reason"] == "quality is constant over the 4 cases"
    out = failure_detection(np.zeros(4), [0.1, 0.9, 0.2, 0.8])
    assert out["spearman_reason"] == "uncertainty is constant over the 4 cases"
    assert out["auroc"] == 0.5  # all tied
    for value in out.values():
        assert not (isinstance(value, float) and math.isnan(value))


def test_failure_detection_errors() -> None:
    with pytest.raises(InputError, match="at least 3 cases"):
        failure_detection([0.1, 0.2], [0.5, 0.6])
    with pytest.raises(InputError, match="same length"):
        failure_detection([0.1, 0.2, 0.3], [0.5, 0.6])
    with pytest.raises(InputError, match="1-D arrays"):
        failure_detection(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(InputError, match=r"quality is not finite at case 1 \(nan\)"):
        failure_detection([0.1, 0.2, 0.3], [0.5, np.nan, 0.6])
    with pytest.raises(InputError, match="bad_below must be"):
        failure_detection([0.1, 0.2, 0.3], [0.5, 0.6, 0.7], bad_below=np.inf)


def test_referral_curve_by_hand() -> None:
    u = [0.9, 0.1, 0.5, 0.5, 0.3]
    q = [0.2, 0.9, 0.6, 0.4, 0.8]
    rows = case_referral_curve(u, q, fractions=[0.0, 0.2, 0.3, 0.4, 0.6])
    assert [r["n_referred"] for r in rows] == [0, 1, 1, 2, 3]
    assert [r["n_kept"] for r in rows] == [5, 4, 4, 3, 2]
    # Case 0 goes first; of the tied cases 2 and 3, case 2 (earlier) goes first.
    expected = [2.9 / 5, 2.7 / 4, 2.7 / 4, (0.9 + 0.4 + 0.8) / 3, (0.9 + 0.8) / 2]
    np.testing.assert_allclose([r["mean_quality"] for r in rows], expected)
    oracle = [2.9 / 5, 2.7 / 4, 2.7 / 4, (0.9 + 0.6 + 0.8) / 3, (0.9 + 0.8) / 2]
    np.testing.assert_allclose([r["oracle_mean_quality"] for r in rows], oracle)
    assert all(r["random_mean_quality"] == pytest.approx(0.58) for r in rows)
    assert rows[2]["fraction"] == 0.3 and rows[2]["referred_fraction"] == 0.2


def test_referral_curve_orders_oracle_model_random() -> None:
    rng = np.random.default_rng(4)
    quality = rng.uniform(size=200)
    informative = -quality + rng.normal(scale=0.3, size=200)
    rows = case_referral_curve(informative, quality)
    assert len(rows) == 19 and rows[0]["fraction"] == 0.0 and rows[-1]["fraction"] == 0.9
    assert rows[0]["mean_quality"] == pytest.approx(quality.mean())
    for r in rows[1:]:
        assert r["oracle_mean_quality"] >= r["mean_quality"] > r["random_mean_quality"]
    # Whatever the ranking, nothing beats the oracle.
    for u in (rng.uniform(size=200), quality, np.zeros(200)):
        for r in case_referral_curve(u, quality, fractions=[0.1, 0.5, 0.8]):
            assert r["oracle_mean_quality"] >= r["mean_quality"] - 1e-12
            direct = np.sort(quality)[r["n_referred"] :].mean()
            assert r["oracle_mean_quality"] == pytest.approx(direct)


def test_referral_curve_errors() -> None:
    for bad in ([1.0], [-0.1], [], [[0.1]]):
        with pytest.raises(InputError, match=r"fractions must be .* in \[0, 1\)"):
            case_referral_curve([0.1, 0.2], [0.5, 0.6], fractions=bad)
    with pytest.raises(InputError, match="uncertainty is not finite at case 0"):
        case_referral_curve([np.nan, 0.2], [0.5, 0.6])
    with pytest.raises(InputError, match="same length"):
        case_referral_curve([], [])
