"""The shift part of :func:`medval.evaluate`: subgroups, drift, leakage.

Subgroups are computed on the evaluated splits pooled (so a scanner that only
the external site has is compared with the others); drift compares each
secondary test split with the primary one; leakage compares the development
splits (train, calibration) with the evaluated ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._result import ValidationResult
from medval.evaluation._inputs import Inputs
from medval.evaluation._section import Part, Section
from medval.shift import (
    bbsd_ks,
    drift_report,
    estimate_performance,
    intersect,
    leakage_report,
    mmd_test,
    subgroup_keys,
    subgroup_table,
    subgroup_table_multiclass,
)
from medval.stats import auroc_ci, bootstrap_ci

__all__ = ["SECTION", "shift_section"]

# Cohort columns that describe acquisition or demographics (drift candidates).
_DRIFT_COLUMNS = (
    "modality", "manufacturer", "model_name", "software_version", "body_part", "kvp",
    "slice_thickness", "pixel_spacing", "magnetic_field_strength", "convolution_kernel",
    "rows", "columns", "photometric_interpretation", "sex", "age_band",
)  # fmt: skip
_MMD_MAX = 2000  # cases per side for the O(n^2) kernel test


def _with_temperature(p: NDArray[np.float64], temperature: float | None) -> NDArray[np.float64]:
    if temperature is None:
        return p
    z = np.log(np.clip(p, 1e-12, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


def _output_frame(p: NDArray[np.float64], epistemic: NDArray[np.float64] | None) -> dict[str, Any]:
    from medval.uncertainty import predictive_entropy

    cols: dict[str, Any] = {"max_probability": p.max(axis=1), "entropy": predictive_entropy(p)}
    if epistemic is not None:
        cols["epistemic"] = epistemic
    return cols


def _subgroups(
    result: ValidationResult,
    cohort: Any,
    ids: NDArray[np.str_],
    y: NDArray[np.int64],
    s: NDArray[np.float64],
    scope: NDArray[np.bool_],
    clusters: NDArray[Any] | None,
    *,
    columns: Sequence[str],
    intersections: Sequence[Sequence[str]],
    settings: Mapping[str, Any],
    multiclass: tuple[NDArray[np.int64], NDArray[np.float64]] | None = None,
) -> None:
    groups: dict[str, NDArray[Any]] = {}
    for c in columns:
        if c in cohort.columns:
            groups[c] = np.asarray(cohort.loc[ids[scope], c].astype(object).to_numpy())
    for pair in intersections:
        if all(c in groups for c in pair):
            name, values = intersect(groups, pair[0], pair[1])
            groups[name] = values
    if not groups:
        return
    if multiclass is not None:
        _multiclass_subgroups(result, groups, multiclass, scope, clusters, settings)
        return
    tables = subgroup_table(
        y[scope],
        s[scope],
        groups,
        threshold=settings["threshold"],
        clusters=None if clusters is None else clusters[scope],
        min_events=settings["min_events"],
        min_non_events=settings["min_non_events"],
        min_cell=settings["min_cell"],
        confidence_level=settings["confidence_level"],
        n_resamples=settings["n_resamples"],
        random_state=settings["seed"],
        adjust=settings["adjust"],
    )
    yy, ss = y[scope], s[scope]
    if 0 < int(yy.sum()) < yy.size:
        result.estimates["subgroup.overall.auroc"] = auroc_ci(
            yy,
            ss,
            clusters=None if clusters is None else clusters[scope],
            confidence_level=settings["confidence_level"],
            n_resamples=settings["n_resamples"],
            random_state=settings["seed"],
        )
    _record_subgroups(result, tables, settings)


def _record_subgroups(
    result: ValidationResult, tables: Mapping[str, Any], settings: Mapping[str, Any]
) -> None:
    for column, rows in tables.items():
        result.tables[f"subgroup.{column}"] = rows
        for row in rows:
            auroc = row["metrics"].get("auroc", {})
            if auroc.get("worst"):
                result.values[f"subgroup.{column}.worst_auroc"] = str(row["value"])
            if auroc.get("best"):
                result.values[f"subgroup.{column}.best_auroc"] = str(row["value"])
    result.estimates.update(subgroup_keys(tables))
    result.values["subgroup.columns"] = list(tables)
    result.values["subgroup.min_cell"] = settings["min_cell"]
    result.values["subgroup.min_events"] = settings["min_events"]
    result.values["subgroup.min_non_events"] = settings["min_non_events"]
    result.values["subgroup.adjust"] = settings["adjust"]


def _multiclass_subgroups(
    result: ValidationResult,
    groups: Mapping[str, NDArray[Any]],
    multiclass: tuple[NDArray[np.int64], NDArray[np.float64]],
    scope: NDArray[np.bool_],
    clusters: NDArray[Any] | None,
    settings: Mapping[str, Any],
) -> None:
    labels, probabilities = multiclass[0][scope], multiclass[1][scope]
    sub_c = None if clusters is None else clusters[scope]
    tables = subgroup_table_multiclass(
        labels,
        probabilities,
        groups,
        clusters=sub_c,
        min_events=settings["min_events"],
        min_cell=settings["min_cell"],
        confidence_level=settings["confidence_level"],
        n_resamples=settings["n_resamples"],
        random_state=settings["seed"],
    )
    if (np.bincount(labels, minlength=probabilities.shape[1]) > 0).all():
        result.estimates["subgroup.overall.auroc"] = bootstrap_ci(
            "macro_auroc",
            labels,
            probabilities,
            clusters=sub_c,
            confidence_level=settings["confidence_level"],
            n_resamples=settings["n_resamples"],
            random_state=settings["seed"],
        )
    _record_subgroups(result, tables, settings)


def _leakage(
    result: ValidationResult,
    cohort: Any,
    ids: NDArray[np.str_],
    splits: NDArray[Any],
    test_splits: Sequence[str],
    development: Sequence[str],
) -> None:
    keys = [k for k in ("patient_key", "study_key") if k in cohort.columns]
    # The development cases need no predictions: take them from the whole cohort.
    dev_rows = cohort[cohort["split"].isin(list(development))] if "split" in cohort else None
    test_rows = cohort.loc[ids[np.isin(splits, list(test_splits))]]
    if not keys or dev_rows is None or dev_rows.empty:
        result.values["leakage.checked"] = False
        return
    report = leakage_report(
        {k: dev_rows[k].to_numpy() for k in keys},
        {k: test_rows[k].to_numpy() for k in keys},
    )
    result.values["leakage.checked"] = True
    result.values["leakage.reference_splits"] = sorted(set(dev_rows["split"].astype(str)))
    result.values["leakage.leak"] = bool(report["leak"])
    for k in keys:
        result.values[f"leakage.{k}.n_overlap"] = int(report[k]["n_overlap"])
    result.tables["leakage.keys"] = [{"key": k, **report[k]} for k in keys]


def _drift(
    result: ValidationResult,
    cohort: Any,
    ids: NDArray[np.str_],
    splits: NDArray[Any],
    probabilities: NDArray[np.float64],
    epistemic: NDArray[np.float64] | None,
    embeddings: NDArray[np.floating[Any]] | None,
    labels: NDArray[np.int64],
    test_splits: Sequence[str],
    settings: Mapping[str, Any],
) -> None:
    import pandas as pd

    reference = settings.get("drift_reference") or test_splits[0]
    ref_mask = splits == reference
    if not ref_mask.any():
        from medval._errors import InputError

        raise InputError(
            f"drift reference split {reference!r} has no predicted cases; use a split the "
            f"model was run on: {sorted(set(splits.tolist()))}."
        )
    columns = [c for c in _DRIFT_COLUMNS if c in cohort.columns]
    frame = cohort.loc[ids, columns].reset_index(drop=True)
    p_cal = _with_temperature(probabilities, settings.get("temperature"))
    frame = pd.concat([frame, pd.DataFrame(_output_frame(probabilities, epistemic))], axis=1)
    cl = settings["drift_confidence_level"]
    result.values["shift.reference_split"] = reference
    shares: list[float] = []
    for name in [t for t in test_splits if t != reference]:
        cur_mask = splits == name
        prefix = f"split.{name}.shift."
        report = drift_report(frame[ref_mask], frame[cur_mask], confidence_level=cl)
        result.tables[f"{prefix}drift"] = report["columns"]
        result.values[f"{prefix}drift_share"] = float(report["drift_share"])
        result.values[f"{prefix}n_drifted"] = int(report["n_drifted"])
        result.values[f"{prefix}n_tested"] = int(report["n_tested"])
        result.values[f"{prefix}drifted"] = bool(report["drifted"])
        shares.append(float(report["drift_share"]))
        bbsd = bbsd_ks(probabilities[ref_mask], probabilities[cur_mask], confidence_level=cl)
        result.values[f"{prefix}bbsd_p_value"] = float(bbsd["p_value"])
        result.values[f"{prefix}bbsd_shift"] = bool(bbsd["shift_detected"])
        if embeddings is not None:
            rng = np.random.default_rng(settings["seed"])
            a, b = embeddings[ref_mask], embeddings[cur_mask]
            a = a[rng.permutation(len(a))[:_MMD_MAX]]
            b = b[rng.permutation(len(b))[:_MMD_MAX]]
            mmd = mmd_test(a, b, n_permutations=500, random_state=rng)
            result.values[f"{prefix}mmd_p_value"] = float(mmd["p_value"])
            result.values[f"{prefix}mmd_shift"] = bool(mmd["p_value"] < 1.0 - cl)
        _label_free(
            result, prefix, probabilities[cur_mask], p_cal[cur_mask], labels[cur_mask], settings
        )
    if shares:
        result.values["shift.drift_share"] = max(shares)
        result.values["shift.drift_confidence_level"] = cl


def _label_free(
    result: ValidationResult,
    prefix: str,
    p: NDArray[np.float64],
    p_cal: NDArray[np.float64],
    y: NDArray[np.int64],
    settings: Mapping[str, Any],
) -> None:
    """CBPE on the recalibrated ``p_cal`` next to the observed accuracy.

    Both judge the model's own decisions: the operating threshold was chosen
    on the model's probability scale (``p``), not on the temperature-scaled
    one. Binary ``y`` is the one-versus-rest label of the positive class.
    """
    from medval._types import Estimate
    from medval.stats import proportion_ci

    binary = p.shape[1] == 2
    positive = int(settings["positive_class"]) if binary else 1
    if binary:
        decision = (p[:, positive] >= settings["threshold"]).astype(np.int64)
    else:
        decision = p.argmax(axis=1)
    est = estimate_performance(
        p_cal,
        positive_class=positive,
        decisions=decision,
        confidence_level=settings["confidence_level"],
    )
    result.estimates[f"{prefix}estimated_accuracy"] = Estimate.from_dict(est["accuracy"])
    correct = int((decision == y).sum())
    result.estimates[f"{prefix}observed_accuracy"] = proportion_ci(
        correct, int(y.size), method="wilson", confidence_level=settings["confidence_level"]
    )
    result.values["shift.label_free_assumptions"] = list(est["assumptions"])


def shift_section(
    result: ValidationResult,
    cohort: Any,
    ids: NDArray[np.str_],
    y: NDArray[np.int64],
    s: NDArray[np.float64],
    probabilities: NDArray[np.float64],
    splits: NDArray[Any],
    clusters: NDArray[Any] | None,
    *,
    test_splits: Sequence[str],
    development_splits: Sequence[str],
    epistemic: NDArray[np.float64] | None,
    embeddings: NDArray[np.floating[Any]] | None,
    columns: Sequence[str],
    intersections: Sequence[Sequence[str]],
    settings: Mapping[str, Any],
    labels: NDArray[np.int64] | None = None,
) -> None:
    """Subgroup tables, drift and label-free estimates, and leakage checks.

    ``labels`` (class indices) serve the label-free check of K > 2 class
    tasks; ``y`` is the one-vs-rest label of the positive class.

    ``settings`` holds ``threshold``, ``positive_class`` (the column the
    threshold applies to), ``confidence_level``, ``n_resamples``, ``seed``,
    ``min_events``, ``min_non_events``, ``min_cell``, ``adjust`` and
    ``drift_confidence_level``.
    """
    scope = np.isin(splits, list(test_splits))
    result.values["subgroup.scope"] = list(test_splits)
    multiclass = None
    if labels is not None and probabilities.shape[1] > 2:
        multiclass = (labels, probabilities)
    _subgroups(
        result, cohort, ids, y, s, scope, clusters,
        columns=columns, intersections=intersections, settings=settings, multiclass=multiclass,
    )  # fmt: skip
    _leakage(result, cohort, ids, splits, test_splits, development_splits)
    if len(test_splits) > 1 or settings.get("drift_reference") not in (None, test_splits[0]):
        _drift(
            result, cohort, ids, splits, probabilities, epistemic, embeddings,
            y if labels is None else labels, test_splits, settings,
        )  # fmt: skip


def _run(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    c, p = inputs.config, inputs.predictions
    epistemic = None
    if p.mc_probabilities is not None:
        from medval.uncertainty import decompose

        epistemic = decompose(p.mc_probabilities, measure=c.uncertainty_measure).epistemic
    settings = {
        "threshold": inputs.threshold, "positive_class": inputs.positive_class,
        "confidence_level": c.confidence_level, "n_resamples": c.n_resamples, "seed": c.seed,
        "min_events": c.subgroup_min_events, "min_non_events": c.subgroup_min_non_events,
        "min_cell": c.small_cell, "adjust": c.subgroup_adjust,
        "drift_confidence_level": c.drift_confidence_level, "drift_reference": c.drift_reference,
        "temperature": earlier.values.get("calibration.temperature"),
    }  # fmt: skip
    shift_section(
        out, inputs.cohort, p.case_ids, inputs.y, inputs.scores,
        p.probabilities.astype(np.float64), inputs.splits, inputs.clusters,
        test_splits=inputs.test_splits,
        development_splits=[s for s in ("train", c.calibration_split) if s is not None],
        epistemic=epistemic, embeddings=p.embeddings, columns=c.subgroup_columns,
        intersections=c.subgroup_intersections,
        labels=inputs.labels if inputs.multiclass else None, settings=settings,
    )  # fmt: skip
    return out


SECTION = Section(
    "shift", "subgroups, drift and leakage", _run, needs=("cohort",), switch=("shift",)
)
