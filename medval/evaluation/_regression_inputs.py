"""The frozen inputs of a regression evaluation (the predictions and the cohort)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._errors import InputError
from medval._targets import RegressionPredictions, check_targets
from medval.evaluation._view import CaseView, cohort_frame, frozen, with_splits
from medval.gate import EvaluationConfig

__all__ = ["RegressionInputs", "build_regression_inputs"]

FloatArray = NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class RegressionInputs(CaseView):
    """What a regression section reads; arrays aligned with ``predictions.case_ids``.

    ``sigma`` is the model's own predictive standard deviation per case
    (:meth:`RegressionPredictions.sigma`: the head's variance, plus the MC
    spread with dropout samples), None when the model gives neither.
    """

    predictions: RegressionPredictions
    config: EvaluationConfig
    y: FloatArray
    pred: FloatArray
    sigma: FloatArray | None
    splits: NDArray[np.str_]
    clusters: NDArray[Any] | None
    cohort: Any | None
    data: Any | None
    paths: Mapping[str, Any]
    present: tuple[str, ...]
    test_splits: tuple[str, ...]
    calibration_split: str | None
    kind: str = "regression"
    input_statistics: Any = None
    reference: Any = None
    #: No class of interest; the cohort tables describe the target instead.
    positive_class: None = None

    @property
    def case_ids(self) -> NDArray[np.str_]:
        return self.predictions.case_ids


def build_regression_inputs(
    predictions: RegressionPredictions,
    cohort: Any | None,
    config: EvaluationConfig,
    *,
    input_statistics: Any = None,
) -> RegressionInputs:
    """Check the predictions against the cohort and the settings, then freeze them.

    Raises
    ------
    InputError
        Predicted cases without a cohort row, or no labels (neither
        ``predictions.labels`` nor the cohort's numeric ``label`` column).
    """
    ids = predictions.case_ids
    data, frame = cohort_frame(cohort, ids, config)
    labels = predictions.labels
    if labels is None:
        if frame is None or "label" not in frame.columns:
            raise InputError(
                "regression predictions without labels: pass RegressionPredictions(labels=...) "
                "or a cohort with a numeric 'label' column."
            )
        raw = frame.loc[ids, "label"].to_numpy()
        if raw.dtype.kind not in "fiu":
            raise InputError(
                f"the cohort's 'label' column holds {raw.dtype} values; a regression target "
                "is a number per case (read the labels with class_names=None)."
            )
        labels = check_targets(raw, ids.size, name="the cohort's labels")
    sigma = predictions.sigma()
    probe = RegressionInputs(
        predictions, config, frozen(labels), frozen(predictions.values),
        None if sigma is None else frozen(sigma), np.full(ids.shape, "all"), None, frame,
        data, {}, (), (), None, input_statistics=input_statistics,
    )  # fmt: skip
    return with_splits(probe, config, data)  # type: ignore[no-any-return]
