"""score_case and the per-case table: every number equals the function it comes from."""

from __future__ import annotations

import numpy as np
import pytest

from medval import calibration, conformal, segmentation
from medval._errors import InputError

SPACING = (2.0, 1.0, 0.5)


def _case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.zeros((6, 20, 20), dtype=np.uint8)
    truth[2:4, 5:10, 5:12] = 1
    truth[1:5, 12:16, 12:18] = 2
    p = rng.dirichlet(np.ones(3), size=truth.shape).transpose(3, 0, 1, 2).astype(np.float32)
    for k in (1, 2):
        p[k][truth == k] += 2.0
    p /= p.sum(axis=0, keepdims=True)
    return p, truth


OPTIONS = segmentation.ScoringOptions(structures={"liver": 1, "tumour": 2})


def test_a_case_holds_exactly_what_each_room_computes() -> None:
    p, truth = _case(0)
    rec = segmentation.score_case("a/1", p, truth, SPACING, options=OPTIONS)
    pred = np.argmax(p, axis=0) == 2  # three channels: the most probable class
    ref = truth == 2
    got = rec.structures["tumour"]
    want = segmentation.structure_scores(pred, ref, SPACING)
    assert dict(got.scores.values) == pytest.approx(dict(want.values), nan_ok=True)
    np.testing.assert_array_equal(got.histogram, conformal.probability_histograms(p[2], ref))
    assert got.steps_needed == conformal.dilation_needed(pred, ref)
    region = calibration.foreground_region(pred, ref, SPACING, margin_mm=5.0)
    np.testing.assert_array_equal(got.bins, calibration.voxel_calibration_bins(p[2], ref, region))
    assert rec.voxel_volume_ml == pytest.approx(2.0 * 1.0 * 0.5 / 1000)
    assert got.uncertainty is None


def test_two_channels_threshold_the_foreground_probability() -> None:
    p, truth = _case(1)
    two = np.stack([1 - p[1], p[1]])
    opts = segmentation.ScoringOptions(structures={"liver": 1}, threshold=0.3)
    rec = segmentation.score_case("b", two, truth, SPACING, options=opts)
    pred = p[1] >= 0.3
    want = segmentation.structure_scores(pred, truth == 1, SPACING)
    assert rec.structures["liver"].scores.values["dice"] == pytest.approx(want.values["dice"])


def test_the_table_stacks_subsets_and_lists_rows() -> None:
    records = [segmentation.score_case(f"c{i}", *_case(i), SPACING, options=OPTIONS)
               for i in range(4)]  # fmt: skip
    table = segmentation.SegmentationCases.from_records(records, options=OPTIONS)
    assert table.n_cases == 4 and table.histograms["liver"].shape == (4, 2, 1000)
    sub = table.subset([3, 1])
    assert sub.case_ids.tolist() == ["c3", "c1"]
    assert sub.metrics["tumour"]["dice"][0] == table.metrics["tumour"]["dice"][3]
    rows = table.rows(["x", "y", "x", "y"])
    assert len(rows) == 8 and rows[0]["split"] == "x" and rows[0]["structure"] == "liver"


def test_bad_cases_are_refused_with_the_fix() -> None:
    p, truth = _case(0)
    with pytest.raises(InputError, match="do not fit the reference mask"):
        segmentation.score_case("d", p[:, :3], truth, SPACING, options=OPTIONS)
    with pytest.raises(InputError, match="needs at least 3 output channels"):
        segmentation.score_case("d", p[:2], truth, SPACING, options=OPTIONS)
    rec = segmentation.score_case("d", p, truth, SPACING, options=OPTIONS)
    with pytest.raises(InputError, match="scored twice"):
        segmentation.SegmentationCases.from_records([rec, rec], options=OPTIONS)
    with pytest.raises(InputError, match="no scored cases"):
        segmentation.SegmentationCases.from_records([], options=OPTIONS)
