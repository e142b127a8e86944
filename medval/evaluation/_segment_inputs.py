"""The frozen inputs of a segmentation evaluation (the per-case table and the cohort)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval.evaluation._view import CaseView, cohort_frame, with_splits
from medval.gate import EvaluationConfig
from medval.segmentation import SegmentationCases

__all__ = ["SegmentationInputs", "build_segmentation_inputs"]


@dataclasses.dataclass(frozen=True)
class SegmentationInputs(CaseView):
    """What a segmentation section reads; arrays aligned with ``cases.case_ids``."""

    cases: SegmentationCases
    config: EvaluationConfig
    splits: NDArray[np.str_]
    clusters: NDArray[Any] | None
    cohort: Any | None
    data: Any | None
    paths: Mapping[str, Any]
    present: tuple[str, ...]
    test_splits: tuple[str, ...]
    calibration_split: str | None
    kind: str = "segmentation"
    input_statistics: Any = None
    reference: Any = None

    @property
    def case_ids(self) -> NDArray[np.str_]:
        return self.cases.case_ids


def build_segmentation_inputs(
    cases: SegmentationCases, cohort: Any | None, config: EvaluationConfig
) -> SegmentationInputs:
    """Check the cases against the cohort and the settings, then freeze them."""
    ids = cases.case_ids
    data, frame = cohort_frame(cohort, ids, config)
    probe = SegmentationInputs(
        cases, config, np.full(ids.shape, "all"), None, frame, data, {}, (), (), None
    )
    return with_splits(probe, config, data)  # type: ignore[no-any-return]
