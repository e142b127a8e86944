"""A small synthetic segmentation cohort scored case by case (for the evaluation tests)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from medval import segmentation

SHAPE = (8, 24, 24)
SPACING = (2.5, 1.0, 0.8)
OPTIONS = segmentation.ScoringOptions(structures={"lesion": 1})


def _case(rng: np.random.Generator, scanner: int) -> tuple[Any, Any, Any]:
    """A label map with 0-3 blobs and a probability map near it, with a few misses."""
    z, y, x = np.indices(SHAPE)
    truth = np.zeros(SHAPE, dtype=np.uint8)
    for _ in range(rng.integers(0, 4)):
        c = rng.uniform([2, 4, 4], [6, 20, 20])
        r = rng.uniform(1.5, 4.0)
        truth[((z - c[0]) * 2.5) ** 2 + (y - c[1]) ** 2 + ((x - c[2]) * 0.8) ** 2 <= r**2] = 1
    blur = ndimage.gaussian_filter(truth.astype(float), 1.0)
    logit = 8 * (blur - 0.35) + rng.normal(0, 0.8 + 0.4 * scanner, SHAPE)
    p = 1 / (1 + np.exp(-logit))
    probs = np.stack([1 - p, p]).astype(np.float32)
    maps = {"entropy": rng.random(SHAPE), "epistemic": rng.random(SHAPE) * 0.1,
            "aleatoric": rng.random(SHAPE)}  # fmt: skip
    return probs, truth, maps


@functools.cache
def cohort(n: int = 60, seed: int = 0) -> tuple[segmentation.SegmentationCases, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    records, rows = [], {}
    for i in range(n):
        scanner = i % 3
        probs, truth, maps = _case(rng, scanner)
        cid = f"site{scanner}/case{i:03d}"
        records.append(segmentation.score_case(cid, probs, truth, SPACING, options=OPTIONS,
                                               maps=maps))  # fmt: skip
        split = "calibration" if i < n // 2 else ("internal" if scanner < 2 else "external")
        rows[cid] = {"split": split, "manufacturer": f"M{scanner}",
                     "patient_key": f"p{i // 2}", "sex": "F" if i % 2 else "M"}  # fmt: skip
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "case_id"
    return segmentation.SegmentationCases.from_records(records, options=OPTIONS), frame
