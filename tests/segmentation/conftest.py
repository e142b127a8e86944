"""Random smooth blobs for the segmentation metric tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

BlobMaker = Callable[[tuple[int, ...], int], NDArray[np.bool_]]


def _blob(shape: tuple[int, ...], seed: int) -> NDArray[np.bool_]:
    """A smooth random blob (often several pieces, often touching the border), never empty."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    mask = field > 0.05
    if not mask.any():
        mask[tuple(s // 2 for s in shape)] = True
    return np.asarray(mask)


@pytest.fixture
def blob() -> BlobMaker:
    """``blob(shape, seed)``: a reproducible random mask."""
    return _blob
