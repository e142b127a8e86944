"""structure_masks and the mask checks."""

from __future__ import annotations

import numpy as np
import pytest

from medval._errors import InputError
from medval.segmentation import structure_masks
from medval.segmentation._masks import check_mask


def test_label_map_to_masks() -> None:
    labels = np.array([[0, 1, 2], [2, 2, 0]])
    got = structure_masks(labels, {"a": 1, "b": 2, "absent": 7})
    assert list(got) == ["a", "b", "absent"]
    np.testing.assert_array_equal(got["a"], labels == 1)
    np.testing.assert_array_equal(got["b"], labels == 2)
    assert not got["absent"].any()
    floats = structure_masks(labels.astype(float), {"b": 2})
    np.testing.assert_array_equal(floats["b"], labels == 2)


def test_multilabel_channels() -> None:
    stack = np.zeros((3, 4, 5, 6), dtype=np.uint8)
    stack[0, 1] = 1
    stack[2, :, 2] = 1
    got = structure_masks(stack, {"x": 0, "z": 2}, multilabel=True)
    np.testing.assert_array_equal(got["x"], stack[0].astype(bool))
    np.testing.assert_array_equal(got["z"], stack[2].astype(bool))
    assert got["z"].dtype == np.bool_


def test_uint8_mask_is_a_view() -> None:
    m = np.zeros((3, 3), dtype=np.uint8)
    m[1, 1] = 1
    out = check_mask(m)
    assert out.dtype == np.bool_
    assert np.shares_memory(out, m)


def test_structure_masks_errors() -> None:
    labels = np.zeros((4, 4), dtype=int)
    with pytest.raises(InputError, match="non-empty mapping of name -> class index"):
        structure_masks(labels, {})
    with pytest.raises(InputError, match="non-empty strings"):
        structure_masks(labels, {"": 1})
    with pytest.raises(InputError, match="must map to an integer class index"):
        structure_masks(labels, {"a": 1.5})  # type: ignore[dict-item]
    with pytest.raises(InputError, match="whole class indices"):
        structure_masks(labels + 0.5, {"a": 1})
    with pytest.raises(InputError, match="integer label map; got dtype"):
        structure_masks(labels.astype(str), {"a": 1})
    with pytest.raises(InputError, match="A channel stack needs multilabel=True"):
        structure_masks(np.zeros((2, 3, 4, 5), int), {"a": 1})
    with pytest.raises(InputError, match=r"\(multilabel\)"):
        structure_masks(labels, {"a": 0}, multilabel=True)
    with pytest.raises(InputError, match=r"names channel 3, but labels has 2 channels"):
        structure_masks(np.zeros((2, 4, 4), int), {"a": 3}, multilabel=True)
    with pytest.raises(InputError, match=r"labels channel 0 \('a'\)"):
        structure_masks(np.full((2, 4, 4), 2), {"a": 0}, multilabel=True)
