"""medval.segmentation: per-case overlap, boundary and lesion metrics of masks.

Pure numpy and scipy (no torch, no pydicom): arrays in, per-case numbers out.
"""

from __future__ import annotations

from medval.segmentation._masks import structure_masks
from medval.segmentation._scores import (
    EMPTY_STATES,
    HIGHER_IS_BETTER,
    STRUCTURE_METRICS,
    StructureScores,
    case_scores,
    structure_scores,
)
from medval.segmentation._surface import surface_distances

__all__: list[str] = [
    "EMPTY_STATES",
    "HIGHER_IS_BETTER",
    "STRUCTURE_METRICS",
    "StructureScores",
    "case_scores",
    "structure_masks",
    "structure_scores",
    "surface_distances",
]
