"""structure_scores and case_scores: empty-mask rules, properties, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from medval._errors import InputError
from medval.segmentation import (
    EMPTY_STATES,
    HIGHER_IS_BETTER,
    STRUCTURE_METRICS,
    StructureScores,
    case_scores,
    structure_scores,
)

SPACING = (3.0, 0.5, 0.5)
SHAPE = (4, 6, 8)
DIAGONAL = math.sqrt(12.0**2 + 3.0**2 + 4.0**2)  # 13.0 mm


def _square() -> np.ndarray:
    m = np.zeros(SHAPE, dtype=bool)
    m[1:3, 2:4, 2:5] = True  # 12 voxels of 0.75 mm3
    return m


def test_constants_agree() -> None:
    assert set(HIGHER_IS_BETTER) == set(STRUCTURE_METRICS)
    assert [k for k, v in HIGHER_IS_BETTER.items() if v] == ["dice", "iou", "nsd"]
    assert {k for k, v in HIGHER_IS_BETTER.items() if v is False} == {"hd95", "hd", "assd"}
    assert EMPTY_STATES == ("neither", "both", "reference", "prediction")


def test_both_empty() -> None:
    empty = np.zeros(SHAPE, dtype=bool)
    s = structure_scores(empty, empty, SPACING)
    assert s.empty == "both"
    assert (s.n_reference, s.n_predicted) == (0, 0)
    assert s.distance_cap_mm == pytest.approx(DIAGONAL)
    expected = dict.fromkeys(STRUCTURE_METRICS, 0.0) | {"dice": 1.0, "iou": 1.0, "nsd": 1.0}
    assert dict(s.values) == expected


def test_missed_structure_gets_the_cap() -> None:
    s = structure_scores(np.zeros(SHAPE, dtype=bool), _square(), SPACING)
    assert s.empty == "prediction"
    assert (s.n_reference, s.n_predicted) == (12, 0)
    v = s.values
    assert (v["dice"], v["iou"], v["nsd"]) == (0.0, 0.0, 0.0)
    assert v["hd"] == v["hd95"] == v["assd"] == s.distance_cap_mm == pytest.approx(13.0)
    assert v["volume_reference_ml"] == pytest.approx(0.009)
    assert v["volume_difference_ml"] == pytest.approx(-0.009)
    assert v["relative_volume_error"] == -1.0


def test_false_positive_on_healthy_structure() -> None:
    s = structure_scores(_square(), np.zeros(SHAPE, dtype=bool), SPACING, distance_cap_mm=50.0)
    assert s.empty == "reference"
    assert s.distance_cap_mm == 50.0
    v = s.values
    assert (v["dice"], v["iou"], v["nsd"]) == (0.0, 0.0, 0.0)
    assert v["hd"] == v["hd95"] == v["assd"] == 50.0
    assert v["volume_predicted_ml"] == pytest.approx(0.009)
    nan_keys = [k for k, x in v.items() if math.isnan(x)]
    assert nan_keys == ["relative_volume_error"]  # the only NaN medval produces


def test_perfect_prediction() -> None:
    s = structure_scores(_square(), _square(), SPACING)
    assert s.empty == "neither"
    v = s.values
    assert (v["dice"], v["iou"], v["nsd"], v["hd"], v["hd95"], v["assd"]) == (1, 1, 1, 0, 0, 0)
    assert v["relative_volume_error"] == 0.0


def test_values_are_read_only_and_ordered() -> None:
    s = structure_scores(_square(), _square(), SPACING)
    assert tuple(s.values) == STRUCTURE_METRICS
    with pytest.raises(TypeError):
        s.values["dice"] = 0.0  # type: ignore[index]
    d = s.to_dict()
    assert d["empty"] == "neither"
    assert d["n_reference"] == 12
    assert list(d)[: len(STRUCTURE_METRICS)] == list(STRUCTURE_METRICS)


def test_accepts_0_1_integer_and_float_masks() -> None:
    a = structure_scores(_square(), _square(), SPACING)
    b = structure_scores(_square().astype(np.uint8), _square().astype(np.float32), SPACING)
    c = structure_scores(_square().astype(np.int64), _square().astype(np.int16), SPACING)
    assert dict(a.values) == dict(b.values) == dict(c.values)


_masks_2d = hnp.arrays(np.bool_, st.tuples(st.integers(1, 7), st.integers(1, 7)))
_spacing_2d = st.tuples(st.floats(0.2, 4.0), st.floats(0.2, 4.0))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), spacing=_spacing_2d)
def test_symmetric_and_in_range(data: st.DataObject, spacing: tuple[float, float]) -> None:
    a = data.draw(_masks_2d)
    b = data.draw(hnp.arrays(np.bool_, a.shape))
    ab = structure_scores(a, b, spacing, nsd_tolerance_mm=0.7).values
    ba = structure_scores(b, a, spacing, nsd_tolerance_mm=0.7).values
    for k in ("dice", "iou", "nsd", "hd", "hd95", "assd"):
        assert ab[k] == pytest.approx(ba[k], rel=1e-12, abs=1e-12)
    for k in ("dice", "iou", "nsd"):
        assert 0.0 <= ab[k] <= 1.0
    cap = math.hypot(a.shape[0] * spacing[0], a.shape[1] * spacing[1])
    assert 0.0 <= ab["assd"] <= ab["hd"] + 1e-12
    assert 0.0 <= ab["hd95"] <= ab["hd"] <= cap + 1e-9
    assert ab["iou"] <= ab["dice"] + 1e-15
    assert sum(math.isnan(x) for x in ab.values()) == (1 if (a.any() and not b.any()) else 0)


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    spacing=st.tuples(st.floats(0.3, 3.0), st.floats(0.3, 3.0), st.floats(0.3, 3.0)),
    order=st.permutations([0, 1, 2]),
)
def test_axis_permutation_with_spacing(
    data: st.DataObject, spacing: tuple[float, float, float], order: list[int]
) -> None:
    shape = data.draw(st.tuples(*(st.integers(1, 5) for _ in range(3))))
    a = data.draw(hnp.arrays(np.bool_, shape))
    b = data.draw(hnp.arrays(np.bool_, shape))
    base = structure_scores(a, b, spacing).values
    perm = structure_scores(
        a.transpose(order), b.transpose(order), tuple(spacing[i] for i in order)
    ).values
    for k in STRUCTURE_METRICS:
        assert perm[k] == pytest.approx(base[k], rel=1e-9, abs=1e-12, nan_ok=True)


def test_distances_ordered_on_blobs(blob) -> None:
    for seed in range(3):
        v = structure_scores(blob((8, 9, 10), seed), blob((8, 9, 10), seed + 50), SPACING).values
        assert 0.0 < v["assd"] <= v["hd"]
        assert 0.0 < v["hd95"] <= v["hd"]


def test_case_scores_label_map() -> None:
    ref = np.zeros(SHAPE, dtype=np.int16)
    ref[1:3, 2:4, 2:5] = 1
    ref[0, 0, 0:2] = 2
    pred = ref.copy()
    pred[0, 0, 0:2] = 0  # structure 2 missed
    pred[3, 5, 7] = 3  # structure 3: false positive on a healthy structure
    got = case_scores(pred, ref, SPACING, structures={"liver": 1, "lesion": 2, "cyst": 3})
    assert list(got) == ["liver", "lesion", "cyst"]
    assert got["liver"].values["dice"] == 1.0
    assert got["lesion"].empty == "prediction"
    assert got["cyst"].empty == "reference"
    direct = structure_scores(pred == 2, ref == 2, SPACING)
    assert dict(got["lesion"].values) == dict(direct.values)


def test_case_scores_multilabel_and_per_structure_tolerance() -> None:
    ref = np.zeros((2, *SHAPE), dtype=np.uint8)
    ref[0, 1:3, 2:4, 2:5] = 1
    ref[1, 1:3, 2:4, 2:4] = 1  # overlaps channel 0
    pred = ref.copy()
    pred[1, 1:3, 2:4, 4] = 1  # one extra column, 0.5 mm off
    tol = {"organ": 2.0, "part": 0.25}
    got = case_scores(pred, ref, SPACING, structures={"organ": 0, "part": 1}, multilabel=True,
                      nsd_tolerance_mm=tol)  # fmt: skip
    assert got["organ"].values["nsd"] == 1.0
    assert got["part"].values["nsd"] < 1.0
    assert got["part"].values["hd"] == 0.5
    loose = case_scores(pred, ref, SPACING, structures={"part": 1}, multilabel=True)
    assert loose["part"].values["nsd"] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nsd_tolerance_mm": -1.0}, "nsd_tolerance_mm must be a finite number >= 0"),
        ({"nsd_tolerance_mm": math.inf}, "nsd_tolerance_mm must be a finite number >= 0"),
        ({"distance_cap_mm": 0.0}, "distance_cap_mm must be a positive finite number"),
        ({"distance_cap_mm": math.nan}, "distance_cap_mm must be a positive finite number"),
        ({"percentile": 101.0}, r"percentile must be in \[0, 100\]"),
    ],
)
def test_option_errors(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        structure_scores(_square(), _square(), SPACING, **kwargs)


def test_input_errors() -> None:
    sq = _square()
    with pytest.raises(InputError, match="same voxel grid"):
        structure_scores(sq, sq[:, :, :-1], SPACING)
    with pytest.raises(InputError, match="positive and finite"):
        structure_scores(sq, sq, (3.0, 0.0, 0.5))
    with pytest.raises(InputError, match="positive and finite"):
        structure_scores(sq, sq, (3.0, math.nan, 0.5))
    with pytest.raises(InputError, match=r"one voxel size in mm per axis \(3 numbers"):
        structure_scores(sq, sq, (0.5, 0.5))
    with pytest.raises(InputError, match="spacing must be 3 numbers"):
        structure_scores(sq, sq, ("a", "b", None))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="only 0 and 1; got integer values in"):
        structure_scores(sq.astype(int) * 2, sq, SPACING)
    with pytest.raises(InputError, match="Threshold probabilities first"):
        structure_scores(sq * 0.7, sq, SPACING)
    with pytest.raises(InputError, match=r"2D \(y, x\) or 3D \(z, y, x\)"):
        structure_scores(sq[None], sq[None], (1.0,) * 4)
    with pytest.raises(InputError, match="has no voxels"):
        structure_scores(np.zeros((0, 3), bool), np.zeros((0, 3), bool), (1.0, 1.0))
    with pytest.raises(InputError, match="boolean or 0/1 numeric array; got dtype"):
        structure_scores(sq.astype(str), sq, SPACING)


def test_structure_scores_rejects_bad_values_mapping() -> None:
    with pytest.raises(InputError, match="must have the keys"):
        StructureScores(values={"dice": 1.0}, empty="neither", n_reference=1, n_predicted=1,
                        distance_cap_mm=1.0)  # fmt: skip
    good = dict.fromkeys(STRUCTURE_METRICS, 0.0)
    with pytest.raises(InputError, match="empty must be one of"):
        StructureScores(values=good, empty="none", n_reference=1, n_predicted=1,
                        distance_cap_mm=1.0)  # fmt: skip


def test_case_scores_errors() -> None:
    ref = np.zeros(SHAPE, dtype=np.int16)
    with pytest.raises(InputError, match="label maps must have the same shape"):
        case_scores(ref, ref[:-1], SPACING, structures={"a": 1})
    with pytest.raises(InputError, match=r"nsd_tolerance_mm has no tolerance for \['b'\]"):
        case_scores(ref, ref, SPACING, structures={"a": 1, "b": 2}, nsd_tolerance_mm={"a": 1.0})
    with pytest.raises(InputError, match="one voxel size in mm per axis"):
        case_scores(ref[None], ref[None], (1.0,) * 4, structures={"a": 0}, multilabel=True)
