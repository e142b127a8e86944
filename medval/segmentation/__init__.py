"""medval.segmentation: per-case overlap, boundary and lesion metrics of masks.

Pure numpy and scipy (no torch, no pydicom): arrays in, per-case numbers out.
:func:`score_case` scores one case once (metrics, lesions, and the small
arrays the conformal, calibration and uncertainty rooms need: probability
histograms, dilation counts, voxel calibration bins, uncertainty means);
:class:`SegmentationCases` stacks the cases into the table every aggregate is
computed from, with patient-clustered bootstrap intervals (:func:`mean_ci`,
:func:`case_statistic_ci`).
"""

from __future__ import annotations

from medval.segmentation._aggregate import case_statistic_ci, mean_ci
from medval.segmentation._cases import (
    CaseRecord,
    ScoringOptions,
    SegmentationCases,
    StructureCase,
    score_case,
)
from medval.segmentation._froc import (
    FP_RATES,
    Froc,
    detection_by_size,
    froc,
    froc_score,
    lesion_summary,
)
from medval.segmentation._lesions import CONNECTIVITY, MATCH_RULES, LesionScores, lesion_scores
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
    "CONNECTIVITY",
    "EMPTY_STATES",
    "FP_RATES",
    "HIGHER_IS_BETTER",
    "MATCH_RULES",
    "STRUCTURE_METRICS",
    "CaseRecord",
    "Froc",
    "LesionScores",
    "ScoringOptions",
    "SegmentationCases",
    "StructureCase",
    "StructureScores",
    "case_scores",
    "case_statistic_ci",
    "detection_by_size",
    "froc",
    "froc_score",
    "lesion_scores",
    "lesion_summary",
    "mean_ci",
    "score_case",
    "structure_masks",
    "structure_scores",
    "surface_distances",
]
