"""The shift part of :func:`medval.evaluate`: subgroups, drift, leakage, cohort tables.

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

__all__ = ["cohort_tables", "shift_section"]

# Cohort columns that describe acquisition or demographics (drift candidates).
_DRIFT_COLUMNS = (
    "modality", "manufacturer", "model_name", "software_version", "body_part", "kvp",
    "slice_thickness", "pixel_spacing", "magnetic_field_strength", "convolution_kernel",
    "rows", "columns", "photometric_interpretation", "sex", "age_band",
)  # fmt: skip
_PROTOCOL_COLUMNS = ("kvp", "slice_thickness", "pixel_spacing", "convolution_kernel")
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
    p_cal = _with_temperature(probabilities, result.values.get("calibration.temperature"))
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


def cohort_tables(
    result: ValidationResult, cohort: Any, splits: Sequence[str], *, positive_class: int
) -> None:
    """ "Table 1" per split and the acquisition protocol per scanner (CLAIM item 13).

    Only aggregate counts and ranges of de-identified columns are written;
    cells under the small-cell limit are kept as counts (they describe the
    cohort, not a subgroup's performance).
    """
    table1: list[dict[str, Any]] = []
    for split in splits:
        part = cohort[cohort["split"] == split]
        if part.empty:
            continue
        row: dict[str, Any] = {"split": split, "n_cases": len(part)}
        if "patient_key" in part.columns:
            row["n_patients"] = int(part["patient_key"].nunique())
        if "label" in part.columns:
            row["n_positive"] = int((part["label"] == positive_class).sum())
        for col in ("sex", "age_band", "manufacturer"):
            if col in part.columns:
                counts = part[col].fillna("unknown").astype(str).value_counts().sort_index()
                row[col] = {str(k): int(v) for k, v in counts.items()}
        table1.append(row)
    result.tables["cohort.table1"] = table1
    keys = [c for c in ("manufacturer", "model_name") if c in cohort.columns]
    if not keys:
        return
    protocols: list[dict[str, Any]] = []
    frame = cohort.assign(**{c: cohort[c].fillna("unknown").astype(str) for c in keys})
    for key, g in frame.groupby(keys, sort=True):
        names = key if isinstance(key, tuple) else (key,)
        row = {c: str(v) for c, v in zip(keys, names, strict=True)}
        row["n_cases"] = len(g)
        for col in _PROTOCOL_COLUMNS:
            if col not in g.columns or g[col].isna().all():
                row[col] = None
            elif g[col].dtype.kind in "fi":
                lo, hi = float(g[col].min()), float(g[col].max())
                row[col] = f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
            else:
                row[col] = ", ".join(sorted(g[col].dropna().astype(str).unique())[:4])
        protocols.append(row)
    result.tables["cohort.acquisition"] = protocols
