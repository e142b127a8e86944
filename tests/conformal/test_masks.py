"""Conformal risk control of the per-image FNR of segmentation masks.

References: voxel-level counts straight from the arrays; the corrected risk
``n/(n+1) R_n(t) + 1/(n+1)`` recomputed by hand in exact fractions over the
grid (Angelopoulos et al., ICLR 2024, Thm. 1); and the guarantee itself over
200 random 50/50 calibration/test splits of a synthetic three-scanner cohort
(``_seg_data.py``).

Monte-Carlo tolerance of the guarantee tests: given the cohort, the splits
are i.i.d. random permutations, so the per-split mean test FNRs are i.i.d.
and their average estimates the expectation over splits (which the theorem
bounds by alpha, the cases of a random permutation being exchangeable) with
standard error ``SD / sqrt(200)``; the tolerance is 3 standard errors.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from medval._errors import InputError, NotCalibratedError
from medval.conformal import N_BINS, MaskRiskControl, probability_histograms, threshold_grid

from ._seg_data import cohort

N_SPLITS = 200


# -- histograms ----------------------------------------------------------------


def test_histogram_bins_by_hand() -> None:
    p = np.array([0.0, 0.1, 0.19, 0.2, 0.5, 0.99, 1.0, 0.35])
    ref = np.array([1, 1, 0, 1, 0, 1, 1, 0])
    h = probability_histograms(p, ref, n_bins=5, grid="linear")  # edges 0, .2, .4, .6, .8, 1
    np.testing.assert_array_equal(h, [[2, 1, 0, 0, 2], [1, 1, 1, 0, 0]])
    assert h.dtype == np.int64


def test_the_logit_grid_reaches_small_probabilities_symmetrically() -> None:
    e = threshold_grid(1000)
    assert e[0] == 0.0 and e[500] == 0.5 and e[-1] == 1.0 and np.all(np.diff(e) > 0)
    assert 1e-6 < e[1] < 1.1e-6
    np.testing.assert_allclose(e + e[::-1], 1.0, atol=1e-15)
    np.testing.assert_array_equal(threshold_grid(4, "linear"), [0, 0.25, 0.5, 0.75, 1])
    with pytest.raises(InputError, match="grid must be one of"):
        threshold_grid(10, "log")


@pytest.mark.parametrize("grid", ["logit", "linear"])
def test_histogram_counts_equal_voxel_counts(rng: np.random.Generator, grid: str) -> None:
    # Half the values sit exactly on grid edges (as float32): the float edge case.
    edges = threshold_grid(N_BINS, grid)
    p = np.where(
        rng.random((7, 9, 11)) < 0.5,
        edges[rng.integers(0, N_BINS + 1, (7, 9, 11))],
        rng.random((7, 9, 11)) ** 4,
    ).astype(np.float32)
    ref = rng.random(p.shape) < 0.3
    h = probability_histograms(p, ref, grid=grid)
    p64 = p.astype(np.float64)
    for j in range(N_BINS):
        t = edges[j]
        assert h[0, :j].sum() == np.count_nonzero(ref & (p64 < t))
        assert h[1, j:].sum() == np.count_nonzero(~ref & (p64 >= t))
    assert h.sum() == p.size and h[0].sum() == ref.sum()


@pytest.mark.parametrize(
    ("p", "ref", "kwargs", "match"),
    [
        (np.zeros((3, 3)), np.zeros((3, 4)), {}, "same shape"),
        (np.full(3, np.nan), np.zeros(3), {}, "finite"),
        (np.array([0.2, 1.5]), np.zeros(2), {}, r"\[0, 1\]"),
        (np.array([0.2, 0.5]), np.array([0, 2]), {}, "binary mask"),
        (np.array(["a"]), np.array([0]), {}, "numeric"),
        (np.zeros(2), np.zeros(2), {"n_bins": 0}, "positive integer"),
    ],
)
def test_histogram_errors(p: object, ref: object, kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(InputError, match=match):
        probability_histograms(p, ref, **kwargs)  # type: ignore[arg-type]


# -- thresholds against a hand-written loop --------------------------------------


def _toy(rng: np.random.Generator, n: int, n_healthy: int) -> tuple[np.ndarray, np.ndarray]:
    refs = rng.random((n, 12, 12)) < rng.uniform(0.05, 0.5, size=(n, 1, 1))
    refs[:n_healthy] = False
    refs[n_healthy:, 0, 0] = True
    probs = np.where(refs, rng.beta(3, 1, size=refs.shape), rng.beta(1, 3, size=refs.shape))
    return probs, refs


def _hists(probs: np.ndarray, refs: np.ndarray, bins: int, grid: str = "linear") -> np.ndarray:
    return np.stack(
        [probability_histograms(p, r, n_bins=bins, grid=grid)
         for p, r in zip(probs, refs, strict=True)]
    )  # fmt: skip


def _hand_threshold(
    probs: np.ndarray, refs: np.ndarray, alpha: Fraction, bins: int, grid: str = "linear"
) -> float:
    """Largest grid t with n/(n+1) mean FNR(t) + 1/(n+1) <= alpha, in exact fractions."""
    n = probs.shape[0]
    edges = threshold_grid(bins, grid)
    for j in range(bins - 1, -1, -1):
        t = edges[j]
        fnr = [
            Fraction(int(np.count_nonzero(r & (p < t))), max(int(r.sum()), 1))
            for p, r in zip(probs, refs, strict=True)
        ]
        if Fraction(n, n + 1) * sum(fnr, Fraction(0)) / n + Fraction(1, n + 1) <= alpha:
            return t
    return 0.0


@pytest.mark.parametrize("grid", ["linear", "logit"])
@pytest.mark.parametrize("healthy", ["exclude", "include"])
@pytest.mark.parametrize("level", [0.9, 0.8])
def test_thresholds_equal_hand_loop(
    rng: np.random.Generator, healthy: str, level: float, grid: str
) -> None:
    probs, refs = _toy(rng, 31, 6)
    groups = np.array(["x", "y"] * 15 + ["x"])
    h = _hists(probs, refs, 100, grid)
    model = MaskRiskControl(confidence_level=level, healthy=healthy, n_bins=100, grid=grid)
    model.calibrate(h, groups=groups)
    alpha = 1 - Fraction(str(level))
    keep = refs.any(axis=(1, 2)) | (healthy == "include")
    assert model.threshold_ == _hand_threshold(probs[keep], refs[keep], alpha, 100, grid)
    for g in ("x", "y"):
        sel = keep & (groups == g)
        assert model.thresholds_[g] == _hand_threshold(probs[sel], refs[sel], alpha, 100, grid)
        assert model.group_sizes_[g] == sel.sum()
    assert model.n_healthy_[None] == 6 and model.alpha_ == float(alpha)
    assert 0 < model.threshold_ < 1 and not model.fallbacks_


def test_risk_equals_voxel_level_fnr() -> None:
    c = cohort()
    rows = np.arange(0, 300, 7)
    h = np.stack([probability_histograms(c.probabilities[i], c.references[i]) for i in rows])
    model = MaskRiskControl(confidence_level=0.85).calibrate(h, groups=c.scanners[rows])
    risk = model.risk(h, groups=c.scanners[rows])
    for k, i in enumerate(rows):
        t = model.thresholds_[str(c.scanners[i])]
        p, r = c.probabilities[i].astype(np.float64), c.references[i]
        expected = np.count_nonzero(r & (p < t)) / r.sum() if r.any() else 0.0
        assert risk[k] == pytest.approx(expected, abs=1e-15)
    assert np.all(np.isfinite(risk)) and len(set(model.thresholds_.values())) > 1


def test_price_by_hand() -> None:
    p = np.array([[0.1, 0.3, 0.45, 0.55, 0.9, 0.2]])
    ref = np.array([[1, 1, 1, 0, 1, 0]])
    h = probability_histograms(p, ref, n_bins=10, grid="linear")[None]
    model = MaskRiskControl(confidence_level=0.5, healthy="include", n_bins=10, grid="linear")
    # n = 1: 1/2 R(t) + 1/2 <= 1/2 needs FNR 0, i.e. t <= 0.1.
    model.calibrate(h)
    assert model.threshold_ == pytest.approx(0.1)
    out = model.price(h, voxel_volume_ml=0.5)
    assert out["volume_ml"][0] == 3.0 and out["fp_volume_ml"][0] == 1.0  # all 6 voxels, 2 FP
    assert out["default_volume_ml"][0] == 1.0 and out["default_fp_volume_ml"][0] == 0.5
    assert out["added_volume_ml"][0] == 2.0 and out["added_fp_volume_ml"][0] == 0.5
    assert out["fnr"][0] == 0.0 and out["default_fnr"][0] == 0.75
    vols = model.price(np.concatenate([h, h]), voxel_volume_ml=[1.0, 2.0])["volume_ml"]
    np.testing.assert_array_equal(vols, [6.0, 12.0])


# -- small groups, healthy cases, errors --------------------------------------------


def test_small_group_gets_threshold_zero_with_reason(rng: np.random.Generator) -> None:
    probs, refs = _toy(rng, 30, 0)
    h = _hists(probs, refs, 100)
    groups = np.array(["big"] * 22 + ["small"] * 8)
    model = MaskRiskControl(confidence_level=0.9, n_bins=100, grid="linear")
    model.calibrate(h, groups=groups)
    assert model.thresholds_["small"] == 0.0 and "needs n >= 9" in model.fallbacks_["small"]
    assert "big" not in model.fallbacks_ and model.thresholds_["big"] > 0
    assert np.all(model.risk(h[22:], groups=groups[22:]) == 0.0)
    # A group with no lesion at all under healthy="exclude": threshold 0, reason recorded.
    refs[22:] = False
    h = _hists(probs, refs, 100)
    model.calibrate(h, groups=groups)
    assert model.thresholds_["small"] == 0.0 and "no case" in model.fallbacks_["small"]
    assert model.n_healthy_["small"] == 8 and model.group_sizes_["small"] == 0


def test_healthy_exclude_versus_include(rng: np.random.Generator) -> None:
    probs, refs = _toy(rng, 40, 10)
    h = _hists(probs, refs, 100)
    exc = MaskRiskControl(healthy="exclude", n_bins=100, grid="linear").calibrate(h)
    inc = MaskRiskControl(healthy="include", n_bins=100, grid="linear").calibrate(h)
    assert exc.group_sizes_[None] == 30 and inc.group_sizes_[None] == 40
    assert exc.n_healthy_[None] == inc.n_healthy_[None] == 10
    # Healthy images add zero losses, so "include" affords a higher threshold.
    assert inc.threshold_ > exc.threshold_
    assert np.all(inc.risk(h)[:10] == 0) and np.all(exc.risk(h)[:10] == 0)
    assert inc.risk(h)[10:].mean() > exc.risk(h)[10:].mean()


def test_errors_and_not_calibrated(rng: np.random.Generator) -> None:
    probs, refs = _toy(rng, 12, 2)
    h = _hists(probs, refs, 10)
    model = MaskRiskControl(n_bins=10)
    with pytest.raises(NotCalibratedError, match="not calibrated"):
        model.risk(h)
    with pytest.raises(NotCalibratedError, match="not calibrated"):
        model.price(h)
    with pytest.raises(InputError, match="at least one case"):
        model.calibrate(h[:0])
    with pytest.raises(InputError, match="none of the 2"):
        model.calibrate(h[:2])
    with pytest.raises(InputError, match=r"shape \(n, 2, 10\)"):
        model.calibrate(h[:, :, :5])
    with pytest.raises(InputError, match="integer voxel counts"):
        model.calibrate(h + 0.5)
    with pytest.raises(InputError, match="negative"):
        model.calibrate(-h)
    with pytest.raises(InputError, match="one key per case"):
        model.calibrate(h, groups=["a"])
    model.calibrate(h)
    with pytest.raises(InputError, match="calibration was marginal"):
        model.risk(h, groups=["a"] * 12)
    model.calibrate(h, groups=["a"] * 12)
    with pytest.raises(InputError, match="calibrated per group"):
        model.risk(h)
    with pytest.raises(InputError, match="not seen at calibration"):
        model.risk(h, groups=["b"] * 12)
    with pytest.raises(InputError, match="voxel_volume_ml"):
        model.price(h, groups=["a"] * 12, voxel_volume_ml=[1.0, 2.0])
    with pytest.raises(InputError, match="voxel_volume_ml"):
        model.price(h, groups=["a"] * 12, voxel_volume_ml=-1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"confidence_level": 1.0}, "confidence_level"),
        ({"healthy": "drop"}, "healthy must be one of"),
        ({"n_bins": 101}, "even"),
        ({"n_bins": 2.5}, "positive integer"),
    ],
)
def test_constructor_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        MaskRiskControl(**kwargs)  # type: ignore[arg-type]


# -- the guarantee over random splits ------------------------------------------------


@pytest.fixture(scope="module")
def seg_histograms() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Histograms (300, 2, B), scanners, lesion-present flags and the FNR table (300, B)."""
    c = cohort()
    h = np.stack(
        [probability_histograms(p, r) for p, r in zip(c.probabilities, c.references, strict=True)]
    )
    ref = h[:, 0]
    below = np.concatenate([np.zeros((ref.shape[0], 1), np.int64), np.cumsum(ref, 1)[:, :-1]], 1)
    fnr = below / np.maximum(ref.sum(1), 1)[:, None]
    return h, c.scanners, ref.sum(1) > 0, fnr


def _splits(seg: tuple[np.ndarray, ...], level: float, healthy: str) -> dict[str, np.ndarray]:
    """Per split: mean test FNR over lesion images (marginal, Mondrian) overall and per scanner."""
    h, scanners, present, fnr = seg
    rng = np.random.default_rng(16)
    n = h.shape[0]
    out: dict[str, list[list[float]]] = {"marginal": [], "mondrian": [], "all_images": []}
    for _ in range(N_SPLITS):
        perm = rng.permutation(n)
        cal, test = perm[: n // 2], perm[n // 2 :]
        model = MaskRiskControl(confidence_level=level, healthy=healthy)
        model.calibrate(h[cal], groups=scanners[cal])
        mondrian = model.risk(h[test], groups=scanners[test])
        marginal = fnr[test, int(np.searchsorted(model.edges_, model.threshold_))]
        les, sc = present[test], scanners[test]
        for key, r in (("marginal", marginal), ("mondrian", mondrian)):
            out[key].append([r[les].mean()] + [r[les & (sc == s)].mean() for s in "ABC"])
        out["all_images"].append([marginal.mean()])
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("level", [0.9, 0.8])
def test_fnr_guarantee_marginal_and_per_scanner(
    seg_histograms: tuple[np.ndarray, ...], level: float
) -> None:
    alpha = 1 - level
    res = _splits(seg_histograms, level, "exclude")
    for key, cols in (("marginal", [0]), ("mondrian", [0, 1, 2, 3])):
        mean = res[key].mean(axis=0)
        tol = 3 * res[key].std(axis=0, ddof=1) / np.sqrt(N_SPLITS)
        for col in cols:
            assert mean[col] <= alpha + tol[col], (key, col, mean, tol)
            assert mean[col] >= alpha - 0.05, (key, col, mean)  # not vacuous
    # The marginal threshold misses far more of the under-confident scanner C
    # (about 0.21 at alpha 0.1, 0.44 at 0.2): the reason for Mondrian thresholds.
    c_mean = res["marginal"][:, 3].mean()
    c_se = res["marginal"][:, 3].std(ddof=1) / np.sqrt(N_SPLITS)
    assert c_mean > alpha + 0.05 + 5 * c_se


def test_fnr_guarantee_with_healthy_included(seg_histograms: tuple[np.ndarray, ...]) -> None:
    alpha = 0.1
    res = _splits(seg_histograms, 0.9, "include")
    all_images = res["all_images"][:, 0]
    assert all_images.mean() <= alpha + 3 * all_images.std(ddof=1) / np.sqrt(N_SPLITS)
    # Weaker for lesion images: about alpha / P(lesion) = 0.1 / 0.83.
    lesion = res["marginal"][:, 0]
    assert lesion.mean() > alpha + 3 * lesion.std(ddof=1) / np.sqrt(N_SPLITS)
