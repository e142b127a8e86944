"""Orchestration: predictions + cohort + settings → :class:`ValidationResult`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from medval import stats
from medval._errors import InputError
from medval._eval_curves import curve_tables, failure_tables
from medval._eval_multiclass import multiclass_block
from medval._result import ValidationResult
from medval._types import Predictions
from medval.gate import (
    DEFAULT_CALIBRATION_SPLIT,
    DEFAULT_COLUMNS,
    DEFAULT_INTERSECTIONS,
    EvaluationSettings,
    check_settings,
    evaluated_splits,
)

__all__ = ["evaluate"]

# (result key, registry metric, needs the operating threshold)
_BOOTSTRAPPED = (
    ("discrimination.auprc", "auprc", False),
    ("operating_point.accuracy", "accuracy", True),
    ("operating_point.balanced_accuracy", "balanced_accuracy", True),
    ("operating_point.f1", "f1", True),
)
DEFAULT_GROUP_COLUMNS = DEFAULT_COLUMNS
DEFAULT_SUBGROUP_COLUMNS = DEFAULT_COLUMNS


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


def _align_labels(predictions: Predictions, cohort: Any | None) -> NDArray[np.int64]:
    if predictions.labels is not None:
        return predictions.labels
    if cohort is not None and "label" in cohort.columns:
        return np.asarray(cohort.loc[predictions.case_ids, "label"], dtype=np.int64)
    raise InputError("no labels: give Predictions with labels or a cohort with a 'label' column.")


def _column(cohort: Any | None, name: str, case_ids: NDArray[np.str_]) -> NDArray[Any] | None:
    if cohort is None or name not in cohort.columns:
        return None
    values = cohort.loc[case_ids, name]
    if values.isna().any():
        return None
    return np.asarray(values.astype(str).to_numpy())


def _split_block(
    result: ValidationResult,
    prefix: str,
    y: NDArray[np.int64],
    s: NDArray[np.float64],
    clusters: NDArray[Any] | None,
    *,
    threshold: float,
    confidence_level: float,
    n_resamples: int,
    seed: int,
) -> None:
    n_pos = int(y.sum())
    result.values[f"{prefix}cohort.n_cases"] = int(y.size)
    result.values[f"{prefix}cohort.n_positive"] = n_pos
    result.values[f"{prefix}cohort.n_negative"] = int(y.size - n_pos)
    if clusters is not None:
        result.values[f"{prefix}cohort.n_patients"] = int(np.unique(clusters).size)
    result.estimates[f"{prefix}discrimination.auroc"] = stats.auroc_ci(
        y,
        s,
        clusters=clusters,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        random_state=seed,
    )
    for metric in ("sensitivity", "specificity", "ppv", "npv"):
        result.estimates[f"{prefix}operating_point.{metric}"] = stats.threshold_metric_ci(
            metric, y, s, threshold=threshold, clusters=clusters, confidence_level=confidence_level
        )
    # The other registry metrics: patient-clustered stratified bootstrap.
    for key, metric, thr in _BOOTSTRAPPED:
        result.estimates[f"{prefix}{key}"] = stats.bootstrap_ci(
            metric,
            y,
            s,
            threshold=threshold if thr else None,
            clusters=clusters,
            confidence_level=confidence_level,
            n_resamples=n_resamples,
            random_state=seed,
        )


class _Steps:
    """A step bar over the analysis blocks (tqdm, on stderr), or nothing.

    ``start(block)`` counts the running block done and shows the next one;
    leaving the ``with`` counts the last one and closes the bar.
    """

    def __init__(self, total: int, *, enabled: bool) -> None:
        self._bar: Any = None
        self._running = False
        if enabled:
            # importlib keeps mypy independent of the tqdm stubs.
            tqdm = importlib.import_module("tqdm.auto").tqdm
            self._bar = tqdm(
                total=total, desc="evaluate", unit="block", file=sys.stderr, leave=False
            )

    def start(self, block: str) -> None:
        if self._bar is None:
            return
        if self._running:
            self._bar.update(1)
        self._running = True
        self._bar.set_description(f"evaluate: {block}")

    def __enter__(self) -> _Steps:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is None:
            return
        if self._running and exc_type is None:
            self._bar.update(1)
        self._bar.close()


def _failure_uncertainty(predictions: Predictions) -> NDArray[np.float64] | None:
    """Epistemic uncertainty with MC samples, else the predictive entropy."""
    from medval.uncertainty import decompose, predictive_entropy

    if predictions.mc_probabilities is not None:
        return np.asarray(decompose(predictions.mc_probabilities).epistemic, dtype=np.float64)
    return predictive_entropy(predictions.probabilities)


def evaluate(
    predictions: Predictions,
    cohort: Any | None = None,
    *,
    positive_class: int = 1,
    calibration_split: str | None = DEFAULT_CALIBRATION_SPLIT,
    test_splits: Sequence[str] | None = None,
    threshold: float | None = None,
    threshold_rule: Literal["youden", "sensitivity", "specificity"] = "youden",
    threshold_target: float | None = None,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    random_state: int = 0,
    conformal_method: str | None = "aps",
    conformal_level: float = 0.9,
    conformal_mondrian: str | None = None,
    triage_max_fnr: float | None = 0.05,
    conformal_temperature: bool = True,
    group_columns: Sequence[str] = DEFAULT_GROUP_COLUMNS,
    subgroup_columns: Sequence[str] = DEFAULT_SUBGROUP_COLUMNS,
    subgroup_intersections: Sequence[Sequence[str]] = DEFAULT_INTERSECTIONS,
    subgroup_min_events: int = 100,
    subgroup_min_non_events: int = 100,
    small_cell: int = 11,
    subgroup_adjust: Literal["holm", "bh"] = "holm",
    drift_confidence_level: float = 0.95,
    drift_reference: str | None = None,
    shift: bool = True,
    progress: bool = False,
) -> ValidationResult:
    """Evaluate binary predictions, every number with its confidence interval.

    Parameters
    ----------
    predictions : Predictions
        Two-class probabilities; labels from ``predictions.labels`` or the
        cohort's ``label`` column.
    cohort : pandas.DataFrame, optional
        A Cohort (indexed by ``case_id``); its ``split`` column assigns cases
        to calibration and test splits, its ``patient_key`` column makes every
        interval patient-clustered.
    positive_class : int, default 1
    calibration_split : str or None, default "calibration"
        Split on which the operating threshold is chosen. A value other than
        the default must be a split of the predicted cases; the default may
        be absent (then the threshold is 0.5 and the calibration-split
        analyses are skipped, as the result records).
    test_splits : sequence of str, optional
        Splits to evaluate; the first is the primary one (unprefixed keys).
        Default: every split except ``train`` and the calibration split,
        ``internal`` (or ``test``) first. Each must be a split of the
        predicted cases.
    threshold : float, optional
        A fixed operating threshold; otherwise chosen by ``threshold_rule``
        on the calibration split (0.5 when there is none).
    threshold_rule : {"youden", "sensitivity", "specificity"}, default "youden"
        How the threshold is chosen on the calibration split
        (:func:`medval.stats.choose_threshold`): Youden's J, or the highest
        threshold reaching sensitivity >= ``threshold_target``, or the
        lowest reaching specificity >= ``threshold_target``.
    threshold_target : float, optional
        In (0, 1]; required by the "sensitivity" and "specificity" rules,
        refused with "youden".
    confidence_level : float, default 0.95
    n_resamples : int, default 2000
        Bootstrap resamples, where a bootstrap is used.
    random_state : int, default 0
        Seed for every resampling; recorded in each Estimate.
    conformal_method : {"aps", "raps", "lac", "topk"} or None, default "aps"
        Conformal prediction sets calibrated on the calibration split and
        diagnosed (coverage, set sizes, per group) on every test split; None
        skips them. Needs a calibration split disjoint in patients.
    conformal_level : float, default 0.9
        Target coverage of the prediction sets.
    conformal_mondrian : "class", a cohort column, or None
        Group-conditional (Mondrian) calibration: one quantile per class or
        per value of the column (too-small groups fall back to the marginal
        quantile, recorded in ``conformal.fallback_groups``). A test group
        unseen at calibration is an error.
    triage_max_fnr : float or None, default 0.05
        With a calibration split: a triage threshold from conformal risk
        control keeping the expected false-negative rate at most this.
    conformal_temperature : bool, default True
        Temperature-scale the probabilities before conformal calibration:
        the temperature is fitted on a random half of the calibration
        split's patients and the conformal quantile on the other half, so
        the coverage guarantee stays exact (``conformal.temperature``).
    group_columns : sequence of str
        Cohort columns whose groups get their own coverage diagnostics.
    subgroup_columns : sequence of str
        Cohort columns for the subgroup performance tables (computed on the
        evaluated splits pooled): ``subgroup.<column>=<value>.<metric>``.
        For both: the default takes those of manufacturer, model_name, sex
        and age_band the cohort has; any other list must name de-identified
        columns of the cohort (:data:`medval.COHORT_COLUMNS`).
    subgroup_intersections : sequence of (str, str)
        Pairs of subgroup columns whose intersections get their own rows.
    subgroup_min_events, subgroup_min_non_events : int, default 100
        Below either count a subgroup is flagged underpowered.
    small_cell : int, default 11
        Subgroups with fewer cases are suppressed (no metric is reported).
    subgroup_adjust : {"holm", "bh"}, default "holm"
        Multiplicity adjustment of the subgroup-versus-rest p-values.
    drift_confidence_level : float, default 0.95
        Drift tests of each secondary split against the primary one keep
        the family-wise false-alarm rate at ``1 - drift_confidence_level``.
    drift_reference : str, optional
        The split every other evaluated split is compared with for drift
        (e.g. ``"calibration"``, data from the development sites); default
        the primary test split. It needs predictions.
    shift : bool, default True
        Run the subgroup, drift and leakage analyses (needs a cohort).
    progress : bool, default False
        Show a progress bar on stderr, one step per analysis block (per
        split, then conformal, calibration, uncertainty, shift, failures).
        It changes no number.

    Returns
    -------
    ValidationResult

    Raises
    ------
    SpecError
        Before any computation, when a setting is outside its choices or
        names a split or column the predicted cases lack
        (:func:`medval.gate.check_settings`); the message names the keyword,
        the value, the allowed values and the closest one.
    InputError
        Predictions without labels, a bad ``positive_class``, case ids
        without a cohort row.
    """
    if cohort is not None:
        _check_case_ids(predictions.case_ids, cohort)
    settings = EvaluationSettings(
        calibration_split=calibration_split,
        test_splits=test_splits,
        threshold=threshold,
        threshold_rule=threshold_rule,
        threshold_target=threshold_target,
        conformal_method=conformal_method,
        conformal_mondrian=conformal_mondrian,
        group_columns=group_columns,
        subgroup_columns=subgroup_columns,
        subgroup_intersections=subgroup_intersections,
        subgroup_adjust=subgroup_adjust,
        drift_reference=drift_reference,
    )
    check_settings(
        settings, None if cohort is None else cohort[cohort.index.isin(predictions.case_ids)]
    )
    k = predictions.n_classes
    multiclass = k > 2
    if not 0 <= positive_class < k:
        raise InputError(f"positive_class must be a class index 0..{k - 1}; got {positive_class}.")
    y_all = (_align_labels(predictions, cohort) == positive_class).astype(np.int64)
    s_all = predictions.probabilities[:, positive_class].astype(np.float64)
    ids = predictions.case_ids
    splits = _column(cohort, "split", ids)
    if splits is None:
        splits = np.full(ids.shape, "all")
    clusters_all = _column(cohort, "patient_key", ids)

    present = list(dict.fromkeys(splits.tolist()))
    test_splits = evaluated_splits(
        present, calibration_split=calibration_split, test_splits=test_splits
    )
    unknown = [s for s in test_splits if s not in present]
    if unknown or not test_splits:
        raise InputError(
            f"test splits {list(unknown or test_splits)} have no cases; present: {present}."
        )

    result = ValidationResult()
    result.values["task.positive_class"] = predictions.class_names[positive_class]
    result.values["task.class_names"] = list(predictions.class_names)
    result.values["task.kind"] = "multiclass" if multiclass else "binary"
    if multiclass:
        # The decision is the most probable class; the threshold below only
        # serves the class of interest's one-vs-rest views (referral).
        threshold = 0.5 if threshold is None else threshold
        result.values["operating_point.rule"] = "most probable class"
    elif threshold is None:
        if calibration_split is not None and calibration_split in present:
            mask = splits == calibration_split
            threshold = stats.choose_threshold(
                y_all[mask], s_all[mask], rule=threshold_rule, target=threshold_target
            )
            result.values["operating_point.chosen_on"] = calibration_split
            result.values["operating_point.rule"] = threshold_rule
            if threshold_target is not None:
                result.values["operating_point.target"] = float(threshold_target)
        else:
            threshold = 0.5
            result.values["operating_point.rule"] = "default 0.5 (no calibration split)"
    else:
        result.values["operating_point.rule"] = "fixed"
    result.values["operating_point.threshold"] = float(threshold)
    result.values["evaluation.splits"] = list(test_splits)
    result.values["evaluation.primary_split"] = test_splits[0]
    result.values["evaluation.clustered_by"] = "patient" if clusters_all is not None else "case"

    has_calibration = calibration_split is not None and calibration_split in present
    n_steps = len(test_splits) * (1 if multiclass else 2) + 1  # + calibration
    n_steps += int(conformal_method is not None and has_calibration)
    n_steps += int(predictions.mc_probabilities is not None)
    n_steps += int(shift and cohort is not None)
    n_steps += int(cohort is not None and not multiclass)  # failure analysis
    with _Steps(n_steps, enabled=progress) as steps:
        labels_all = _align_labels(predictions, cohort)
        for i, name in enumerate(test_splits):
            mask = splits == name
            if multiclass:
                steps.start(f"{name}: discrimination (multiclass)")
                multiclass_block(
                    result,
                    "" if i == 0 else f"split.{name}.",
                    labels_all[mask],
                    predictions.probabilities[mask],
                    None if clusters_all is None else clusters_all[mask],
                    class_names=predictions.class_names,
                    confidence_level=confidence_level,
                    n_resamples=n_resamples,
                    seed=random_state,
                )
                continue
            prefix = "" if i == 0 else f"split.{name}."
            split_data = (
                y_all[mask],
                s_all[mask],
                None if clusters_all is None else clusters_all[mask],
            )
            steps.start(f"{name}: discrimination, operating point")
            _split_block(
                result,
                prefix,
                *split_data,
                threshold=float(threshold),
                confidence_level=confidence_level,
                n_resamples=n_resamples,
                seed=random_state,
            )
            steps.start(f"{name}: curves")
            curve_tables(
                result,
                prefix,
                *split_data,
                threshold=float(threshold),
                confidence_level=confidence_level,
                seed=random_state,
            )
        set_sizes = None
        if conformal_method is not None and has_calibration:
            steps.start("conformal sets")
            from medval._eval_conformal import (
                conformal_section,
                raw_threshold,
                temperature_for_conformal,
            )

            columns = [*group_columns]
            if conformal_mondrian not in (None, "class", *columns):
                columns.append(str(conformal_mondrian))
            groups = {c: v for c in columns if (v := _column(cohort, c, ids)) is not None}
            conf_p, conf_splits, scaled = predictions.probabilities, splits, None
            if conformal_temperature:
                scaled = temperature_for_conformal(
                    predictions.probabilities,
                    _align_labels(predictions, cohort),
                    splits,
                    clusters_all,
                    calibration_split=str(calibration_split),
                    seed=random_state,
                )
                if scaled is not None:
                    conf_p, conf_splits, info = scaled
                    result.values.update(info)
                else:
                    result.values["conformal.temperature"] = None
                    result.values["conformal.temperature_fitted_on"] = (
                        "not applied: the calibration split is too small to halve"
                    )
            set_sizes = conformal_section(
                result,
                conf_p,
                _align_labels(predictions, cohort),
                y_all,
                conf_splits,
                calibration_split=str(calibration_split),
                test_splits=test_splits,
                class_names=predictions.class_names,
                groups=groups,
                patients=clusters_all,
                method=conformal_method,
                mondrian=conformal_mondrian,
                confidence_level=conformal_level,
                triage_max_fnr=None if multiclass else triage_max_fnr,
                positive_class=positive_class,
                ci_level=confidence_level,
                seed=random_state,
                embeddings=predictions.embeddings,
            )
            temperature = result.values.get("conformal.temperature")
            if temperature is not None and "triage.threshold" in result.values:
                # Report the triage threshold on the model's own probability scale.
                result.values["triage.threshold_scaled"] = result.values["triage.threshold"]
                result.values["triage.threshold"] = raw_threshold(
                    result.values["triage.threshold"], temperature
                )
        from medval._eval_uncertainty import calibration_section, uncertainty_section

        labels = _align_labels(predictions, cohort)
        steps.start("calibration")
        calibration_section(
            result,
            predictions.probabilities,
            labels,
            splits,
            calibration_split=calibration_split if has_calibration else None,
            test_splits=test_splits,
            confidence_level=confidence_level,
            n_resamples=n_resamples,
            seed=random_state,
            positive_class=positive_class,
            clusters=clusters_all,
        )
        if predictions.mc_probabilities is not None:
            steps.start("uncertainty")
            site_columns = [c for c in ("manufacturer",) if c in group_columns]
            uncertainty_section(
                result,
                predictions.mc_probabilities,
                predictions.probabilities,
                labels,
                splits,
                test_splits=test_splits,
                groups={c: v for c in site_columns if (v := _column(cohort, c, ids)) is not None},
                threshold=None if multiclass else float(threshold),
                calibration_split=str(calibration_split) if has_calibration else None,
                positive_class=positive_class,
                set_sizes=set_sizes,
            )
        if shift and cohort is not None:
            steps.start("subgroups, drift, leakage")
            from medval._eval_shift import cohort_tables, shift_section

            epistemic = None
            if predictions.mc_probabilities is not None:
                from medval.uncertainty import decompose

                epistemic = decompose(predictions.mc_probabilities).epistemic
            shift_section(
                result,
                cohort,
                ids,
                y_all,
                s_all,
                predictions.probabilities.astype(np.float64),
                splits,
                clusters_all,
                test_splits=test_splits,
                development_splits=[s for s in ("train", calibration_split) if s is not None],
                epistemic=epistemic,
                embeddings=predictions.embeddings,
                columns=subgroup_columns,
                intersections=subgroup_intersections,
                labels=labels_all if multiclass else None,
                settings={
                    "threshold": float(threshold),
                    "positive_class": positive_class,
                    "confidence_level": confidence_level,
                    "n_resamples": n_resamples,
                    "seed": random_state,
                    "min_events": subgroup_min_events,
                    "min_non_events": subgroup_min_non_events,
                    "min_cell": small_cell,
                    "adjust": subgroup_adjust,
                    "drift_confidence_level": drift_confidence_level,
                    "drift_reference": drift_reference,
                },
            )
            if "split" in cohort.columns:
                cohort_tables(result, cohort, present, positive_class=positive_class)
        if cohort is not None and not multiclass:
            steps.start("failure analysis")
            unc = _failure_uncertainty(predictions)
            columns = [c for c in ("manufacturer", "sex", "age_band") if c in group_columns]
            for i, name in enumerate(test_splits):
                mask = splits == name
                groups = {c: v[mask] for c in columns if (v := _column(cohort, c, ids)) is not None}
                failure_tables(
                    result,
                    "" if i == 0 else f"split.{name}.",
                    y_all[mask],
                    s_all[mask],
                    threshold=float(threshold),
                    groups=groups,
                    uncertainty=None if unc is None else unc[mask],
                    min_cell=small_cell,
                )
    result.provenance["seed"] = random_state
    result.provenance["n_resamples"] = n_resamples
    result.provenance["confidence_level"] = confidence_level
    return result
