"""The frozen inputs of an evaluation, built once and shared by every section."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval import stats
from medval._errors import InputError
from medval._types import Predictions
from medval.evaluation._view import CaseView, resolve_splits
from medval.gate import EvaluationConfig, check_settings

__all__ = ["Inputs", "build_inputs"]


@dataclasses.dataclass(frozen=True)
class Inputs(CaseView):
    """Everything a section reads; built once by :func:`build_inputs`.

    Arrays are aligned with ``predictions.case_ids``. ``y`` is 1 for the
    positive class; ``scores`` its probability; ``labels`` the class index.
    """

    predictions: Predictions
    config: EvaluationConfig
    positive_class: int
    labels: NDArray[np.int64]
    y: NDArray[np.int64]
    scores: NDArray[np.float64]
    splits: NDArray[np.str_]
    clusters: NDArray[Any] | None  # patient keys, when known
    cohort: Any | None  # the Cohort DataFrame (every case, train included)
    data: Any | None  # io.CohortData: the file scan (exclusions, counts), when given
    paths: Mapping[str, Any]  # case_id -> DICOM file, when read from DICOM
    present: tuple[str, ...]  # splits of the predicted cases, in order of appearance
    test_splits: tuple[str, ...]  # the evaluated splits, primary first
    calibration_split: str | None  # the calibration split, when the cases have it
    threshold: float
    operating: Mapping[str, Any]  # how the threshold was chosen (operating_point.* values)
    reference: NDArray[np.float64] | None  # the baseline's positive-class probability
    reference_name: str
    input_statistics: Any = None  # evaluation.InputStatistics of the preprocessed images

    @property
    def multiclass(self) -> bool:
        return self.predictions.n_classes > 2

    @property
    def kind(self) -> str:
        return "multiclass" if self.multiclass else "binary"

    @property
    def case_ids(self) -> NDArray[np.str_]:
        return self.predictions.case_ids

    def columns(self, names: Any) -> dict[str, NDArray[Any]]:
        """The present, complete columns of ``names``."""
        return {c: v for c in names if (v := self.column(c)) is not None}

    def split_arrays(
        self, split: str
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[Any] | None]:
        """(y, scores, clusters) of one split."""
        m = self.mask(split)
        return self.y[m], self.scores[m], None if self.clusters is None else self.clusters[m]


def _frozen(a: NDArray[Any]) -> NDArray[Any]:
    """A read-only copy: a section that writes into its inputs fails loudly."""
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


def _check_case_ids(case_ids: NDArray[np.str_], cohort: Any) -> None:
    """Every predicted case needs a cohort row: all ids are checked, not a sample."""
    import pandas as pd

    missing = case_ids[~pd.Index(case_ids).isin(cohort.index)]
    if missing.size:
        raise InputError(
            f"{missing.size} case ids have predictions but no row in the cohort (e.g. "
            f"{missing[:5].tolist()}); give the cohort a row for every predicted case, or "
            "keep only the cohort's cases (Predictions.subset)."
        )


def _labels(predictions: Predictions, cohort: Any | None) -> NDArray[np.int64]:
    if predictions.labels is not None:
        return predictions.labels
    if cohort is not None and "label" in cohort.columns:
        return np.asarray(cohort.loc[predictions.case_ids, "label"], dtype=np.int64)
    raise InputError("no labels: give Predictions with labels or a cohort with a 'label' column.")


def _reference(
    reference: Any, predictions: Predictions, positive_class: int
) -> NDArray[np.float64] | None:
    """The baseline's positive-class probability per predicted case."""
    if reference is None:
        return None
    if isinstance(reference, Predictions):
        if reference.n_classes != predictions.n_classes:
            raise InputError(
                f"reference has {reference.n_classes} classes, the predictions "
                f"{predictions.n_classes}; compare models of the same task."
            )
        order = {c: i for i, c in enumerate(reference.case_ids.tolist())}
        lacking = [c for c in predictions.case_ids.tolist() if c not in order]
        if lacking:
            raise InputError(
                f"reference lacks {len(lacking)} predicted cases (e.g. {lacking[:5]}); the "
                "baseline must be scored on the same cases as the candidate."
            )
        rows = [order[c] for c in predictions.case_ids.tolist()]
        return np.asarray(reference.probabilities[rows, positive_class], dtype=np.float64)
    scores = np.asarray(reference, dtype=np.float64)
    if scores.shape != (predictions.n_cases,) or not np.isfinite(scores).all():
        raise InputError(
            f"reference must be Predictions or one finite probability per predicted case "
            f"({predictions.n_cases}); got shape {scores.shape}."
        )
    return scores


def _operating(
    config: EvaluationConfig,
    y: NDArray[np.int64],
    s: NDArray[np.float64],
    splits: NDArray[Any],
    calibration: str | None,
    multiclass: bool,
) -> tuple[float, dict[str, Any]]:
    """The operating threshold and how it was chosen."""
    if multiclass:
        # The decision is the most probable class; the threshold only serves
        # the class of interest's one-vs-rest views (referral).
        threshold = 0.5 if config.threshold is None else config.threshold
        return float(threshold), {"operating_point.rule": "most probable class"}
    if config.threshold is not None:
        return float(config.threshold), {"operating_point.rule": "fixed"}
    if calibration is None:
        return 0.5, {"operating_point.rule": "default 0.5 (no calibration split)"}
    m = splits == calibration
    rule: Any = config.threshold_rule  # one of THRESHOLD_RULES (checked)
    threshold = stats.choose_threshold(y[m], s[m], rule=rule, target=config.threshold_target)
    info: dict[str, Any] = {
        "operating_point.chosen_on": calibration,
        "operating_point.rule": config.threshold_rule,
    }
    if config.threshold_target is not None:
        info["operating_point.target"] = float(config.threshold_target)
    return float(threshold), info


def _clusters(keys: Any) -> Any:
    """Patient keys for clustered intervals; None when every patient has one case
    (the clustered bootstrap is then the plain one, and is named as such)."""
    if keys is None or len(np.unique(keys)) == len(keys):
        return None
    return _frozen(keys)


def build_inputs(
    predictions: Predictions,
    cohort: Any | None,
    config: EvaluationConfig,
    *,
    positive_class: int,
    reference: Any = None,
    reference_name: str = "baseline",
    input_statistics: Any = None,
) -> Inputs:
    """Check everything, then build the inputs: no statistic runs before this returns.

    ``cohort`` is a Cohort DataFrame or an :class:`medval.io.CohortData`
    (whose file scan adds the cohort flow and the pixel-duplicate check).
    """
    from medval.evaluation._input import as_input_statistics

    intensities = as_input_statistics(input_statistics)
    data = cohort if hasattr(cohort, "exclusions") else None
    frame = data.cohort if data is not None else cohort
    if frame is not None:
        _check_case_ids(predictions.case_ids, frame)
    check_settings(config, None if frame is None else frame[frame.index.isin(predictions.case_ids)])
    k = predictions.n_classes
    if not 0 <= positive_class < k:
        raise InputError(f"positive_class must be a class index 0..{k - 1}; got {positive_class}.")
    if reference is not None and k > 2:
        raise InputError("reference (a baseline comparison) needs a binary task.")
    labels = _labels(predictions, frame)
    y = (labels == positive_class).astype(np.int64)
    s = predictions.probabilities[:, positive_class].astype(np.float64)
    base = _reference(reference, predictions, positive_class)
    if base is not None and config.reference_margin is None:
        raise InputError(
            "reference needs a non-inferiority margin declared up front: reference_margin= "
            "(baseline.margin in a spec), in units of the reference_metric."
        )
    ids = predictions.case_ids
    probe = Inputs(
        predictions, config, positive_class, labels, y, s, np.full(ids.shape, "all"), None,
        frame, data, {}, (), (), None, 0.5, {}, base, reference_name,
    )  # fmt: skip
    splits, present, tests, cal = resolve_splits(probe, config)
    threshold, operating = _operating(config, y, s, splits, cal, k > 2)
    paths = {} if data is None else dict(getattr(data, "paths", {}) or {})
    return dataclasses.replace(
        probe,
        labels=_frozen(labels),
        y=_frozen(y),
        scores=_frozen(s),
        reference=None if base is None else _frozen(base),
        splits=_frozen(splits),
        clusters=_clusters(probe.column("patient_key")),
        paths=paths,
        present=present,
        test_splits=tuple(tests),
        calibration_split=cal,
        threshold=threshold,
        operating=operating,
        input_statistics=intensities,
    )
