"""Morphological margins: dilations needed, their price, and the split-conformal margin.

References: iterated ``scipy.ndimage.binary_dilation`` (the definition the
single distance transform must reproduce), hand-sorted order statistics,
and coverage over 200 random 50/50 splits of the synthetic three-scanner
cohort (``_seg_data.py``; predicted mask ``p >= 0.5``).

Tolerance of the guarantee tests: 3 standard errors (split-to-split SD /
sqrt(200)) of the mean coverage. Only the lower bound ``1 - alpha`` is
asserted: the scores are small integers with many ties (most lesions need 0
or 1 dilation), so the ``1 - alpha + 1/(n+1)`` upper bound of continuous
scores does not apply; non-vacuity is checked instead (coverage within 0.05
of the target where the margin is finite).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medval._errors import InputError, NotCalibratedError
from medval.conformal import MorphologicalMargin, added_volume, dilation_needed

from ._seg_data import cohort

N_SPLITS = 200
INF = float("inf")


def _iterated(
    pred: np.ndarray, ref: np.ndarray, max_steps: int, connectivity: str
) -> tuple[float, np.ndarray]:
    """(steps needed, added volume) by dilating k = 1 .. max_steps times."""
    structure = ndimage.generate_binary_structure(
        pred.ndim, pred.ndim if connectivity == "vertex" else 1
    )
    added = np.zeros((2, max_steps + 1), dtype=np.int64)
    needed: float = 0 if not ref.any() else INF
    grown = pred.copy()
    if ref.any() and pred.any() and not np.any(ref & ~grown):
        needed = 0
    for k in range(1, max_steps + 1):
        grown = ndimage.binary_dilation(grown, structure=structure)
        new = grown & ~pred
        added[:, k] = [np.count_nonzero(new & ref), np.count_nonzero(new & ~ref)]
        if needed == INF and pred.any() and not np.any(ref & ~grown):
            needed = k
    return needed, added


@pytest.mark.parametrize("connectivity", ["vertex", "face"])
@pytest.mark.parametrize("shape", [(15, 17), (7, 9, 8)])
def test_distance_transform_equals_iterated_dilation(
    rng: np.random.Generator, connectivity: str, shape: tuple[int, ...]
) -> None:
    for trial in range(60):
        pred = rng.random(shape) < rng.choice([0.0, 0.02, 0.05, 0.15])
        ref = rng.random(shape) < rng.choice([0.0, 0.01, 0.03])
        max_steps = int(rng.integers(0, 12))
        needed, added = _iterated(pred, ref, max_steps, connectivity)
        got = dilation_needed(pred, ref, max_steps=max_steps, connectivity=connectivity)
        assert got == needed, (trial, got, needed)
        vol = added_volume(pred, ref, max_steps=max_steps, connectivity=connectivity)
        np.testing.assert_array_equal(vol, added)


def test_dilation_needed_by_hand() -> None:
    pred = np.zeros((20, 20), dtype=bool)
    pred[2, 2] = True
    ref = np.zeros_like(pred)
    ref[5, 4] = True  # chessboard distance 3, city-block distance 5
    assert dilation_needed(pred, ref) == 3
    assert dilation_needed(pred, ref, connectivity="face") == 5
    assert dilation_needed(pred, ref, connectivity="face", max_steps=4) == INF
    assert dilation_needed(pred, ref, max_steps=3) == 3
    assert dilation_needed(pred, np.zeros_like(ref)) == 0
    assert dilation_needed(np.zeros_like(pred), ref) == INF
    ref[19, 19] = True  # outside the prediction's box + max_steps: still found
    assert dilation_needed(pred, ref, max_steps=2) == INF
    assert dilation_needed(pred, ref) == 17
    vol = added_volume(pred, ref, max_steps=2)
    np.testing.assert_array_equal(vol, [[0, 0, 0], [0, 8, 24]])
    assert added_volume(np.zeros_like(pred), ref).sum() == 0


@pytest.mark.parametrize(
    ("pred", "ref", "kwargs", "match"),
    [
        (np.zeros((3, 3)), np.zeros((3, 4)), {}, "same shape"),
        (
            np.zeros((3, 3)),
            np.full((3, 3), 2),
            {},
            "reference must be boolean or hold only 0 and 1",
        ),
        (
            np.full((3, 3), 0.5),
            np.zeros((3, 3)),
            {},
            "predicted must be boolean or hold only 0 and 1",
        ),
        (np.ones((3, 3)), np.ones((3, 3)), {"max_steps": -1}, "non-negative integer"),
        (np.ones((3, 3)), np.ones((3, 3)), {"max_steps": True}, "non-negative integer"),
        (np.ones((3, 3)), np.ones((3, 3)), {"connectivity": "edge"}, "connectivity"),
    ],
)
def test_dilation_errors(
    pred: np.ndarray, ref: np.ndarray, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(InputError, match=match):
        dilation_needed(pred, ref, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=match):
        added_volume(pred, ref, **kwargs)  # type: ignore[arg-type]


# -- the margin ---------------------------------------------------------------------


def test_margin_is_the_conformal_order_statistic() -> None:
    steps = np.array([3, 0, 1, INF, 2, 1, 5, 0, 4.0])
    model = MorphologicalMargin(confidence_level=0.8, healthy="include")
    model.calibrate(steps)
    # ceil((9 + 1) * 0.8) = 8-th smallest of 0 0 1 1 2 3 4 5 inf.
    assert model.k_hat_ == 5 and not model.reasons_
    np.testing.assert_array_equal(model.covered([5, 6, INF, 0]), [True, False, False, True])
    model = MorphologicalMargin(confidence_level=0.9, healthy="include").calibrate(steps)
    assert model.k_hat_ == INF and "needs n >= 9" not in model.reasons_[None]
    assert "exceeds max_steps" in model.reasons_[None]  # 9th of 9 is inf
    model = MorphologicalMargin(confidence_level=0.8, healthy="include", max_steps=4).calibrate(
        steps
    )
    assert model.k_hat_ == INF and "max_steps = 4" in model.reasons_[None]  # not clipped to 4
    assert model.covered([INF]).all()  # an infinite margin is the whole image


def test_small_group_margin_is_infinite_with_reason() -> None:
    steps = np.array([0, 1, 1, 2, 0, 1, 3, 1, 0, 2, 1, 1.0])
    groups = np.array(["a"] * 10 + ["b"] * 2)
    model = MorphologicalMargin(confidence_level=0.9, healthy="include")
    model.calibrate(steps, groups=groups)
    assert model.k_hats_["a"] == 3 and model.k_hats_["b"] == INF
    assert "needs n >= 9" in model.reasons_["b"] and "a" not in model.reasons_
    np.testing.assert_array_equal(
        model.covered([3, 4, 9], groups=["a", "a", "b"]), [True, False, True]
    )
    np.testing.assert_array_equal(model.margins(2, groups=["b", "a"]), [INF, 3])


def test_healthy_exclude_versus_include() -> None:
    steps = np.array([0.0] * 6 + [1, 2, 2, 3, 4, 5, 6, 7, 8, 9])
    present = np.array([False] * 6 + [True] * 10)
    exc = MorphologicalMargin(confidence_level=0.8).calibrate(steps, reference_present=present)
    inc = MorphologicalMargin(confidence_level=0.8, healthy="include").calibrate(
        steps, reference_present=present
    )
    # exclude: 9th of the 10 lesion scores; include: 14th of all 16 (6 free zeros).
    assert exc.k_hat_ == 8 and inc.k_hat_ == 7
    assert exc.group_sizes_[None] == 10 and inc.group_sizes_[None] == 16
    assert exc.n_healthy_[None] == inc.n_healthy_[None] == 6


def test_margin_errors() -> None:
    model = MorphologicalMargin()
    with pytest.raises(NotCalibratedError, match="not calibrated"):
        model.covered([1.0])
    with pytest.raises(InputError, match="reference_present"):
        model.calibrate([1.0, 2.0])
    with pytest.raises(InputError, match=r"bool of shape \(2,\)"):
        model.calibrate([1.0, 2.0], reference_present=[1, 1])
    with pytest.raises(InputError, match="no usable"):
        model.calibrate([0.0, 0.0], reference_present=np.array([False, False]))
    for bad in ([np.nan], [-1.0], [1.5]):
        with pytest.raises(InputError, match="non-negative integers or inf"):
            model.calibrate(bad, reference_present=np.array([True]))
    with pytest.raises(InputError, match=r"shape \(n,\)"):
        model.calibrate([[1.0]], reference_present=np.array([True]))
    present = np.ones(12, dtype=bool)
    model.calibrate(np.arange(12.0), reference_present=present)
    with pytest.raises(InputError, match="marginal"):
        model.covered([1.0], groups=["a"])
    model.calibrate(np.arange(12.0), groups=["a"] * 12, reference_present=present)
    with pytest.raises(InputError, match="per group"):
        model.covered([1.0])
    with pytest.raises(InputError, match="not seen at calibration"):
        model.covered([1.0], groups=["z"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"confidence_level": 0.0}, "confidence_level"),
        ({"healthy": "keep"}, "healthy must be one of"),
        ({"max_steps": -2}, "max_steps must be"),
    ],
)
def test_margin_constructor_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        MorphologicalMargin(**kwargs)  # type: ignore[arg-type]


# -- coverage over random splits ---------------------------------------------------


@pytest.fixture(scope="module")
def seg_steps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dilations needed by the mask p >= 0.5 (300,), scanners, lesion-present flags."""
    c = cohort()
    steps = np.array(
        [dilation_needed(p >= 0.5, r) for p, r in zip(c.probabilities, c.references, strict=True)],
        dtype=np.float64,
    )
    return steps, c.scanners, c.references.reshape(steps.shape[0], -1).any(axis=1)


@pytest.mark.parametrize("level", [0.9, 0.8])
def test_margin_coverage_over_splits(seg_steps: tuple[np.ndarray, ...], level: float) -> None:
    steps, scanners, present = seg_steps
    rng = np.random.default_rng(16)
    n = steps.shape[0]
    cov, k_hats, reasons_c = [], [], []
    for _ in range(N_SPLITS):
        perm = rng.permutation(n)
        cal, test = perm[: n // 2], perm[n // 2 :]
        model = MorphologicalMargin(confidence_level=level)
        model.calibrate(steps[cal], groups=scanners[cal], reference_present=present[cal])
        mondrian = model.covered(steps[test], groups=scanners[test])
        marginal = (steps[test] <= model.k_hat_) | np.isinf(model.k_hat_)
        les, sc = present[test], scanners[test]
        cov.append(
            [marginal[les].mean(), marginal[les & (sc == "C")].mean()]
            + [mondrian[les & (sc == s)].mean() for s in "ABC"]
        )
        k_hats.append([model.k_hat_] + [model.k_hats_[s] for s in "ABC"])
        reasons_c.append(model.reasons_.get("C", ""))
    cov_a, k_arr = np.array(cov), np.array(k_hats)
    mean, tol = cov_a.mean(axis=0), 3 * cov_a.std(axis=0, ddof=1) / np.sqrt(N_SPLITS)
    target = level
    assert np.all(mean[[0, 2, 3, 4]] >= target - tol[[0, 2, 3, 4]]), mean
    # Non-vacuous on A and B: finite margins, coverage close to the target.
    assert np.mean(np.isfinite(k_arr[:, 1:3])) > 0.9
    assert np.all(mean[2:4] <= target + 0.05), mean
    # C's prediction misses about 30 of its 78 lesions entirely: no margin up to
    # max_steps reaches the level, and the margin says so instead of clipping.
    assert np.all(np.isinf(k_arr[:, 3])) and all("max_steps" in r for r in reasons_c)
    if level == 0.8:
        # The marginal margin is finite but under-covers scanner C (about 0.57).
        assert np.mean(np.isfinite(k_arr[:, 0])) > 0.9 and mean[0] <= target + 0.05
        assert mean[1] < target - 0.1 - tol[1]
