"""medval.segmentation: per-case overlap, boundary and lesion metrics of masks.

Pure numpy and scipy (no torch, no pydicom): arrays in, per-case numbers out.
"""

from __future__ import annotations

from medval.segmentation._froc import (
    FP_RATES,
    Froc,
    detection_by_size,
    froc,
    froc_score,
    lesion_summary,
)
from medval.segmentation._lesions import CONNECTIVITY, MATCH_RULES, LesionScores, lesion_scores

__all__: list[str] = [
    "CONNECTIVITY",
    "FP_RATES",
    "MATCH_RULES",
    "Froc",
    "LesionScores",
    "detection_by_size",
    "froc",
    "froc_score",
    "lesion_scores",
    "lesion_summary",
]
