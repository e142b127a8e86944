"""``evaluate``: predictions + cohort + config → :class:`ValidationResult`.

Builds the inputs once (every check first), runs the registered sections
(:data:`medval.evaluation.SECTIONS`) and merges what they return; a section
whose needs are not met is recorded in ``evaluation.skipped`` with the
reason and the fix. The CLI (``medval validate``) calls this same function.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from typing import Any

from medval._errors import InputError
from medval._result import ValidationResult
from medval._targets import RegressionPredictions
from medval._types import Predictions
from medval.evaluation._inputs import Inputs, build_inputs
from medval.evaluation._progress import Steps
from medval.evaluation._regression_inputs import RegressionInputs, build_regression_inputs
from medval.evaluation._section import Part, Section, missing
from medval.evaluation._segment_inputs import SegmentationInputs, build_segmentation_inputs
from medval.gate import EvaluationConfig
from medval.segmentation import SegmentationCases

__all__ = ["evaluate"]

# Keywords of earlier versions -> today's name.
_RENAMED = {"random_state": "seed"}


def _config(config: EvaluationConfig | None, settings: dict[str, Any]) -> EvaluationConfig:
    names = [f.name for f in dataclasses.fields(EvaluationConfig)]
    for key in settings:
        if key in names:
            continue
        if key in _RENAMED:
            raise TypeError(f"evaluate() keyword {key!r} is now {_RENAMED[key]!r}.")
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise TypeError(
            f"evaluate() got an unknown setting {key!r}{hint} The settings are the fields of "
            "medval.EvaluationConfig."
        )
    if settings.get("conformal_method", "") is None:
        raise TypeError("conformal_method=None: turn conformal sets off with conformal=False.")
    base = config if config is not None else EvaluationConfig()
    return dataclasses.replace(base, **settings)


def _header(inputs: Inputs, result: ValidationResult) -> None:
    p = inputs.predictions
    result.values["task.positive_class"] = p.class_names[inputs.positive_class]
    result.values["task.class_names"] = list(p.class_names)
    result.values["task.kind"] = inputs.kind
    result.values.update(inputs.operating)
    result.values["operating_point.threshold"] = inputs.threshold
    result.values["evaluation.splits"] = list(inputs.test_splits)
    result.values["evaluation.primary_split"] = inputs.test_splits[0]
    result.values["evaluation.clustered_by"] = "patient" if inputs.clusters is not None else "case"


def _segmentation_header(inputs: SegmentationInputs, result: ValidationResult) -> None:
    result.values["task.kind"] = "segmentation"
    result.values["task.structures"] = dict(inputs.cases.options["structures"])
    result.values["evaluation.splits"] = list(inputs.test_splits)
    result.values["evaluation.primary_split"] = inputs.test_splits[0]
    result.values["evaluation.clustered_by"] = "patient" if inputs.clusters is not None else "case"
    result.values["evaluation.unit"] = "case (one series)"


def _regression_header(inputs: RegressionInputs, result: ValidationResult) -> None:
    result.values["task.kind"] = "regression"
    result.values["task.unit"] = inputs.predictions.unit
    result.values["evaluation.splits"] = list(inputs.test_splits)
    result.values["evaluation.primary_split"] = inputs.test_splits[0]
    result.values["evaluation.clustered_by"] = "patient" if inputs.clusters is not None else "case"
    p = inputs.predictions
    result.values["regression.outputs"] = {
        "variance": p.variances is not None, "quantile_levels": list(p.quantile_levels),
        "mc_samples": p.n_samples,
    }  # fmt: skip


def _merge(result: Part, part: Part, section: Section) -> None:
    for store in ("estimates", "values", "tables", "provenance"):
        mine, theirs = getattr(result, store), getattr(part, store)
        twice = [k for k in theirs if k in mine and k not in part.replaces]
        if twice:
            raise RuntimeError(f"section {section.name!r} rewrites {store} {twice[:3]}")
        mine.update(theirs)
    result.shared.update(part.shared)


def evaluate(
    predictions: Predictions | SegmentationCases | RegressionPredictions,
    cohort: Any | None = None,
    *,
    config: EvaluationConfig | None = None,
    positive_class: int = 1,
    reference: Any = None,
    reference_name: str = "baseline",
    input_statistics: Any = None,
    progress: bool = False,
    sections: Sequence[Section] | None = None,
    **settings: Any,
) -> ValidationResult:
    """Evaluate predictions, every number with its confidence interval.

    Parameters
    ----------
    predictions : Predictions or segmentation.SegmentationCases
        Class probabilities; labels from ``predictions.labels`` or the
        cohort's ``label`` column. Or a segmentation model's per-case table
        (:func:`medval.segmentation.score_case` per case, stacked by
        ``SegmentationCases.from_records``): then the segmentation sections
        run (overlap and boundary metrics, lesions and FROC, the mask
        guarantees, voxel calibration and uncertainty). Or a regression
        model's :class:`~medval.RegressionPredictions` (labels from them or
        the cohort's numeric ``label``): errors with patient-clustered
        intervals, Bland-Altman agreement, conformal intervals checked per
        group, and the model's sigma (decomposition, calibration, referral).
    cohort : pandas.DataFrame or io.CohortData, optional
        A Cohort (indexed by ``case_id``): its ``split`` column assigns cases
        to calibration and test splits, its ``patient_key`` column makes every
        interval patient-clustered. :func:`medval.io.load_cohort`'s
        CohortData also adds the cohort flow (files found, excluded and why)
        and the pixel-duplicate leakage check, exactly as ``medval validate``.
    config : EvaluationConfig, optional
        Every setting at once (:meth:`EvaluationConfig.from_sections` reads a
        spec's); keyword settings override it.
    positive_class : int, default 1
        The class of interest: its probability is thresholded, and its
        sensitivity and specificity reported.
    reference : Predictions or array of shape (n,), optional
        A released baseline scored on the same cases (its Predictions, or
        its positive-class probability aligned with ``predictions``): the
        candidate's non-inferiority by ``reference_margin`` is tested and
        recorded as ``noninferiority.<metric>.*``.
    reference_name : str, default "baseline"
        How the baseline is named in the result.
    input_statistics : InputStatistics or list of dict, optional
        Intensity summaries of the preprocessed images
        (:func:`medval.io.input_statistics`), with what the model was trained
        on (:class:`~medval.evaluation.InputStatistics`): recorded as
        ``input.*`` and a mismatch flagged (the report leads with it).
    progress : bool, default False
        A progress bar on stderr, one step per section; it changes no number.
    sections : sequence of Section, optional
        The sections to run (default :data:`medval.evaluation.SECTIONS`).
    **settings
        Any field of :class:`~medval.EvaluationConfig`, by name: ``seed``,
        ``n_resamples``, ``confidence_level``, ``calibration_split``,
        ``test_splits``, ``threshold_rule``, ``subgroup_columns``... (each
        field's metadata gives its spec key, range and meaning).

    Returns
    -------
    ValidationResult
        With ``evaluation.sections`` (the sections run) and the table
        ``evaluation.skipped`` (each section not run, with reason and fix).

    Raises
    ------
    TypeError
        An unknown setting (with the closest name).
    SpecError
        Before any computation, when a setting is outside its choices or
        range, or names a split or column the predicted cases lack
        (:func:`medval.gate.check_settings`); the message names the keyword,
        the value, the allowed values and the closest one.
    InputError
        Predictions without labels, a bad ``positive_class``, case ids
        without a cohort row, a reference without a margin.
    """
    from medval.evaluation._registry import SECTIONS

    cfg = _config(config, settings)
    result = Part()
    inputs: Any
    if isinstance(predictions, SegmentationCases):
        if reference is not None:
            raise InputError("a baseline comparison of segmentation models is not built yet.")
        inputs = build_segmentation_inputs(predictions, cohort, cfg)
        _segmentation_header(inputs, result)
    elif isinstance(predictions, RegressionPredictions):
        if reference is not None:
            raise InputError("a baseline comparison of regression models is not built yet.")
        inputs = build_regression_inputs(
            predictions, cohort, cfg, input_statistics=input_statistics
        )
        _regression_header(inputs, result)
    else:
        inputs = build_inputs(
            predictions, cohort, cfg, positive_class=positive_class, reference=reference,
            reference_name=reference_name, input_statistics=input_statistics,
        )  # fmt: skip
        _header(inputs, result)
    todo: list[Section] = []
    skipped: list[dict[str, str]] = []
    for section in SECTIONS if sections is None else sections:
        if inputs.kind not in section.tasks:
            continue
        why = missing(section, inputs)
        if why is None:
            todo.append(section)
        else:
            skipped.append({"section": section.name, "title": section.title,
                            "reason": why[0], "fix": why[1]})  # fmt: skip
    with Steps(len(todo), enabled=progress) as steps:
        for section in todo:
            steps.start(section.title)
            _merge(result, section.run(inputs, result), section)
    result.values["evaluation.sections"] = [s.name for s in todo]
    result.tables["evaluation.skipped"] = skipped
    result.provenance["seed"] = cfg.seed
    result.provenance["n_resamples"] = cfg.n_resamples
    result.provenance["confidence_level"] = cfg.confidence_level
    result.provenance["settings"] = cfg.as_spec()
    return ValidationResult(result.estimates, result.values, result.tables, result.provenance)
