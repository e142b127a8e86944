"""medval against MONAI: agreement where the definitions match, and the deliberate differences.

MONAI (1.x) finds edges as ``seg ^ binary_erosion(seg)`` (scipy's cross
structure, ``border_value=0``) after cropping to the union with a 1-voxel
margin: medval's boundary voxels. Its distances are exact (k-d tree) but
returned as float32, hence the 1e-5 relative tolerance. Its surface dice
without ``use_subvoxels`` counts edge voxels, as medval's NSD does; its
HD95 is the max of the two directed percentiles (``torch.quantile``, linear).

Deliberate differences shown below: empty masks. MONAI returns NaN (Dice
with ``ignore_empty``, HD95, NSD on two empty masks) or inf (HD, ASSD), and
its nan-skipping aggregation then drops exactly the failures.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from medval.segmentation import structure_scores
from medval.segmentation._surface import boundary

monai_metrics = pytest.importorskip("monai.metrics")
torch = pytest.importorskip("torch")
from monai.metrics.utils import get_mask_edges  # noqa: E402


def _t(mask: np.ndarray):  # one-hot (batch 1, channel 1) float tensor
    return torch.from_numpy(mask[None, None].astype(np.float32))


def _monai(
    p: np.ndarray, r: np.ndarray, spacing: tuple[float, ...], tau: float
) -> dict[str, float]:
    P, R = _t(p), _t(r)
    kw = {"include_background": True, "spacing": list(spacing)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's own deprecation notices
        return {
            "dice": float(monai_metrics.compute_dice(P, R, include_background=True)),
            "hd": float(monai_metrics.compute_hausdorff_distance(P, R, **kw)),
            "hd95": float(
                monai_metrics.compute_hausdorff_distance(P, R, percentile=95, directed=False, **kw)
            ),
            "assd": float(
                monai_metrics.compute_average_surface_distance(P, R, symmetric=True, **kw)
            ),
            "nsd": float(monai_metrics.compute_surface_dice(P, R, class_thresholds=[tau], **kw)),
        }


@pytest.mark.parametrize(
    ("shape", "spacing", "seed"),
    [
        ((10, 18, 16), (3.0, 0.5, 0.8), 0),
        ((12, 14, 14), (1.2, 0.7, 0.7), 1),
        ((8, 20, 12), (5.0, 0.9, 0.6), 2),
        ((40, 36), (0.6, 1.7), 3),
        ((30, 50), (2.5, 0.5), 4),
    ],
)
def test_agrees_with_monai_on_random_blobs(blob, shape, spacing, seed) -> None:
    p, r = blob(shape, seed), blob(shape, seed + 1000)
    tau = 1.3
    ours = structure_scores(p, r, spacing, nsd_tolerance_mm=tau).values
    theirs = _monai(p, r, spacing, tau)
    for k in ("dice", "hd", "hd95", "assd"):
        assert ours[k] == pytest.approx(theirs[k], rel=1e-5), k
    # MONAI compares float32 distances with tau; count ties within rounding
    assert ours["nsd"] == pytest.approx(theirs["nsd"], rel=1e-5)


def test_monai_edges_are_medval_boundary(blob) -> None:
    for shape, seed in (((9, 11, 10), 7), ((15, 13), 8)):
        p, r = blob(shape, seed), blob(shape, seed + 1)
        p[(0,) * len(shape)] = True  # a voxel in the array corner
        r[(slice(None),) * (len(shape) - 1) + (-1,)] = True  # a face on the array border
        edges_p, edges_r = get_mask_edges(p, r, crop=False)
        np.testing.assert_array_equal(np.asarray(edges_p), boundary(p))
        np.testing.assert_array_equal(np.asarray(edges_r), boundary(r))


def test_monai_dice_ignore_empty_hides_a_false_positive() -> None:
    healthy = np.zeros((6, 8, 8), dtype=bool)
    organ = healthy.copy()
    organ[2:4, 2:6, 2:6] = True
    fp = healthy.copy()
    fp[1, 1, 1] = True  # a false positive where the reference is healthy
    metric = monai_metrics.DiceMetric(include_background=True, reduction="mean")
    metric(_t(organ), _t(organ))  # perfect case
    metric(_t(fp), _t(healthy))
    per_case = metric.get_buffer().flatten().tolist()
    assert per_case[0] == 1.0
    assert np.isnan(per_case[1])
    assert float(metric.aggregate()) == 1.0  # MONAI: the failure vanishes from the mean
    ours = [structure_scores(organ, organ, (1.0,) * 3), structure_scores(fp, healthy, (1.0,) * 3)]
    assert [s.values["dice"] for s in ours] == [1.0, 0.0]
    assert np.mean([s.values["dice"] for s in ours]) == 0.5


def test_monai_hd95_of_missed_structures_improves_the_mean() -> None:
    spacing = (2.0, 1.0, 1.0)
    shape = (8, 12, 12)
    ref = np.zeros(shape, dtype=bool)
    ref[2:6, 3:9, 3:9] = True
    near = np.zeros(shape, dtype=bool)
    near[2:6, 3:9, 4:10] = True  # HD95 1 mm
    far = np.zeros(shape, dtype=bool)
    far[2:6, 3:9, 6:12] = True  # HD95 3 mm
    missed = np.zeros(shape, dtype=bool)

    def monai_mean(cases: list[np.ndarray]) -> float:
        metric = monai_metrics.HausdorffDistanceMetric(
            include_background=True, percentile=95, reduction="mean"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "the prediction of class ... is all 0"
            for pred in cases:
                metric(_t(pred), _t(ref), spacing=list(spacing))
        return float(metric.aggregate())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        single = monai_metrics.compute_hausdorff_distance(
            _t(missed), _t(ref), include_background=True, percentile=95, spacing=list(spacing)
        )
        hd = monai_metrics.compute_hausdorff_distance(
            _t(missed), _t(ref), include_background=True, spacing=list(spacing)
        )
    assert np.isnan(float(single))  # HD95 of a missed structure: NaN
    assert np.isinf(float(hd))  # plain HD: inf
    # MONAI: missing the far structure instead of finding it lowers (improves) mean HD95
    assert monai_mean([near, far]) == pytest.approx(2.0)
    assert monai_mean([near, missed]) == pytest.approx(1.0)
    ours = [structure_scores(c, ref, spacing).values["hd95"] for c in (near, far, missed)]
    cap = structure_scores(missed, ref, spacing).distance_cap_mm
    assert ours == pytest.approx([1.0, 3.0, cap])
    assert np.mean([ours[0], ours[2]]) > np.mean([ours[0], ours[1]])


def test_monai_two_empty_masks_give_nan_medval_declared_values() -> None:
    empty = np.zeros((5, 6, 7), dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nsd = monai_metrics.compute_surface_dice(
            _t(empty), _t(empty), class_thresholds=[1.0], include_background=True
        )
        hd95 = monai_metrics.compute_hausdorff_distance(
            _t(empty), _t(empty), include_background=True, percentile=95
        )
    assert np.isnan(float(nsd))
    assert np.isnan(float(hd95))
    v = structure_scores(empty, empty, (1.0, 1.0, 1.0)).values
    assert (v["nsd"], v["hd95"], v["dice"]) == (1.0, 0.0, 1.0)
