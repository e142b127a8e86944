"""The frozen inputs of a segmentation evaluation (the per-case table and the cohort)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._errors import InputError
from medval.evaluation._view import CaseView, resolve_splits
from medval.gate import EvaluationConfig, check_settings
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

    def split_clusters(self, m: NDArray[np.bool_]) -> NDArray[Any] | None:
        return None if self.clusters is None else self.clusters[m]

    def interval_options(self, m: NDArray[np.bool_]) -> dict[str, Any]:
        """The bootstrap settings of an interval over the cases ``m`` (patient-clustered)."""
        cfg = self.config
        return {"clusters": self.split_clusters(m), "n_resamples": cfg.n_resamples,
                "confidence_level": cfg.confidence_level, "random_state": cfg.seed}  # fmt: skip


def _frozen(a: NDArray[Any]) -> NDArray[Any]:
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


def build_segmentation_inputs(
    cases: SegmentationCases, cohort: Any | None, config: EvaluationConfig
) -> SegmentationInputs:
    """Check the cases against the cohort and the settings, then freeze them."""
    import pandas as pd

    data = cohort if hasattr(cohort, "exclusions") else None
    frame = data.cohort if data is not None else cohort
    ids = cases.case_ids
    if frame is not None:
        missing = ids[~pd.Index(ids).isin(frame.index)]
        if missing.size:
            raise InputError(
                f"{missing.size} scored cases have no row in the cohort (e.g. "
                f"{missing[:5].tolist()}); give the cohort a row for every case."
            )
    check_settings(config, None if frame is None else frame[frame.index.isin(ids)])
    probe = SegmentationInputs(
        cases, config, np.full(ids.shape, "all"), None, frame, data, {}, (), (), None
    )
    splits, present, tests, cal = resolve_splits(probe, config)
    keys = probe.column("patient_key")
    clusters = None if keys is None or len(np.unique(keys)) == len(keys) else _frozen(keys)
    return dataclasses.replace(
        probe,
        splits=_frozen(splits),
        clusters=clusters,
        paths={} if data is None else dict(getattr(data, "paths", {}) or {}),
        present=present,
        test_splits=tests,
        calibration_split=cal,
    )
