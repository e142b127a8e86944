"""Report context for the subgroup, shift and leakage sections."""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup

from medval._result import ValidationResult
from medval._types import Estimate

__all__ = ["acquisition_context", "shift_context", "shift_findings", "subgroup_context"]

_FOREST_METRIC = "auroc"
_TABLE_METRICS = ("auroc", "sensitivity", "specificity", "accuracy")


def _ci(entry: dict[str, Any] | None) -> dict[str, Any]:
    if not entry or entry.get("value") is None:
        return {"text": "—", "ci": "", "value": None, "low": None, "high": None}
    low, high = entry.get("low"), entry.get("high")
    ci = "" if low is None or high is None else f"{low:.3f}–{high:.3f}"
    return {"text": f"{entry['value']:.3f}", "ci": ci, "value": entry["value"],
            "low": low, "high": high}  # fmt: skip


def subgroup_context(result: ValidationResult) -> dict[str, Any] | None:
    """Rows per subgroup column, a forest plot, and the worst subgroups."""
    from medval.report._plots import forest_svg

    columns = result.values.get("subgroup.columns")
    if not columns:
        return None
    overall = result.estimates.get("subgroup.overall.auroc")
    blocks = []
    forest_rows: list[dict[str, Any]] = []
    for column in columns:
        rows = []
        for r in result.tables.get(f"subgroup.{column}", []):
            metrics = r["metrics"]
            cells = {m: _ci(metrics[m]["estimate"]) for m in _TABLE_METRICS if m in metrics}
            diff = metrics.get(_FOREST_METRIC, {})
            rows.append(
                {
                    "value": r["value"], "n": r["n"], "patients": r["patients"],
                    "events": r["events"], "suppressed": r["suppressed"],
                    "underpowered": r["underpowered"], "cells": cells,
                    "difference": _ci(diff.get("difference")),
                    "p_adjusted": diff.get("p_adjusted"),
                    "worst": bool(diff.get("worst")), "best": bool(diff.get("best")),
                }
            )  # fmt: skip
            cell = cells.get(_FOREST_METRIC)
            if cell and cell["low"] is not None and not r["suppressed"]:
                label = f"{column} = {r['value']} (n={r['n']})"
                forest_rows.append({**cell, "label": label, "worst": bool(diff.get("worst"))})
        shown = [m for m in _TABLE_METRICS if any(m in r["cells"] for r in rows)]
        blocks.append({"column": column, "rows": rows, "metrics": shown})
    figure = None
    if forest_rows:
        ref = overall.value if isinstance(overall, Estimate) else None
        title = "AUROC by subgroup (evaluated splits pooled)"
        figure = Markup(forest_svg(forest_rows, title=title, reference=ref))
    worst = [
        {"column": c, "value": result.values[f"subgroup.{c}.worst_auroc"]}
        for c in columns
        if f"subgroup.{c}.worst_auroc" in result.values
    ]
    return {
        "blocks": blocks,
        "forest_svg": figure,
        "worst": worst,
        "scope": result.values.get("subgroup.scope", []),
        "overall": _ci(overall.to_dict() if isinstance(overall, Estimate) else None),
        "min_events": result.values.get("subgroup.min_events"),
        "min_non_events": result.values.get("subgroup.min_non_events"),
        "min_cell": result.values.get("subgroup.min_cell"),
        "adjust": result.values.get("subgroup.adjust"),
    }


def shift_context(result: ValidationResult) -> dict[str, Any] | None:
    """Drift per secondary split, black-box and embedding tests, leakage."""
    reference = result.values.get("shift.reference_split")
    splits = []
    for name in result.values.get("evaluation.splits", []):
        prefix = f"split.{name}.shift."
        if f"{prefix}drift_share" not in result.values:
            continue
        est = result.estimates.get(f"{prefix}estimated_accuracy")
        obs = result.estimates.get(f"{prefix}observed_accuracy")
        splits.append(
            {
                "name": name,
                "columns": result.tables.get(f"{prefix}drift", []),
                "drift_share": result.values[f"{prefix}drift_share"],
                "n_drifted": result.values.get(f"{prefix}n_drifted"),
                "n_tested": result.values.get(f"{prefix}n_tested"),
                "bbsd_p": result.values.get(f"{prefix}bbsd_p_value"),
                "bbsd_shift": result.values.get(f"{prefix}bbsd_shift"),
                "mmd_p": result.values.get(f"{prefix}mmd_p_value"),
                "estimated": _ci(est.to_dict() if est else None),
                "observed": _ci(obs.to_dict() if obs else None),
            }
        )
    leakage = None
    if result.values.get("leakage.checked"):
        keys = result.tables.get("leakage.keys", [])
        leakage = {
            "leak": result.values.get("leakage.leak"),
            "reference_splits": result.values.get("leakage.reference_splits", []),
            "keys": keys,
            # Without a patient key only studies were compared.
            "patients_known": any(row.get("key") == "patient_key" for row in keys),
            "pixel_duplicates": result.values.get("leakage.pixel_duplicate_groups"),
        }
    if not splits and leakage is None:
        return None
    return {
        "reference": reference,
        "splits": splits,
        "level": result.values.get("shift.drift_confidence_level"),
        "assumptions": result.values.get("shift.label_free_assumptions", []),
        "leakage": leakage,
    }


def acquisition_context(result: ValidationResult) -> dict[str, Any]:
    """Table 1 per split and acquisition protocols per scanner."""
    table1 = []
    for row in result.tables.get("cohort.table1", []):
        table1.append(
            {
                **row,
                "sex_text": _counts(row.get("sex")),
                "age_text": _counts(row.get("age_band")),
                "manufacturer_text": _counts(row.get("manufacturer")),
            }
        )
    protocols = result.tables.get("cohort.acquisition", [])
    return {"table1": table1, "protocols": protocols, "modalities": _by_modality(protocols)}


# Acquisition columns in table order, with their headers. Each modality's
# table shows the ones its rows carry (the evaluation picks them per modality).
_ACQUISITION_LABELS = {
    "view_position": "View",
    "magnetic_field_strength": "Field strength (T)",
    "scanning_sequence": "Scanning sequence",
    "sequence_name": "Sequence name",
    "echo_time": "TE (ms)",
    "repetition_time": "TR (ms)",
    "compression_force": "Compression force (N)",
    "body_part_thickness": "Body part thickness (mm)",
    "detector_type": "Detector",
    "exposure_index": "Exposure index",
    "kvp": "kVp",
    "exposure_mas": "Exposure (mAs)",
    "ctdi_vol": "CTDIvol (mGy)",
    "convolution_kernel": "Kernel",
    "slice_thickness": "Slice thickness (mm)",
    "pixel_spacing": "Pixel spacing (mm)",
    "photometric_interpretation": "Photometric interpretation",
    "bits_stored": "Bits stored",
}
_MODALITY_NAMES = {
    "CT": "CT",
    "MR": "MR",
    "CR": "CR (computed radiography)",
    "DX": "DX (digital radiography)",
    "MG": "MG (mammography)",
}
_ROW_KEYS = frozenset(("modality", "manufacturer", "model_name", "n_cases"))


def _by_modality(protocols: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table per modality: its rows and the columns they carry, in table order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in protocols:
        groups.setdefault(str(row.get("modality") or "unknown"), []).append(row)
    tables = []
    anchors: set[str] = set()
    for modality, rows in groups.items():
        keys = [k for row in rows for k in row if k not in _ROW_KEYS]
        present = set(keys)
        ordered = [k for k in _ACQUISITION_LABELS if k in present]
        ordered += [k for k in dict.fromkeys(keys) if k not in _ACQUISITION_LABELS]
        slug = re.sub(r"[^a-z0-9]+", "-", modality.lower()).strip("-") or "other"
        anchor = f"acquisition-{slug}"
        if anchor in anchors:
            anchor = f"{anchor}-{len(anchors) + 1}"
        anchors.add(anchor)
        title = _MODALITY_NAMES.get(modality.strip().upper(), modality)
        tables.append(
            {
                "modality": modality,
                "title": "modality not recorded" if modality == "unknown" else title,
                "anchor": anchor,
                "columns": [
                    {"key": k, "label": _ACQUISITION_LABELS.get(k, k.replace("_", " "))}
                    for k in ordered
                ],
                "rows": rows,
            }
        )
    return tables


def _counts(counts: dict[str, int] | None) -> str:
    if not counts:
        return "—"
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def shift_findings(result: ValidationResult) -> list[str]:
    """Sentences for the summary: worst scanner subgroup, drift, leakage."""
    out: list[str] = []
    for column in ("manufacturer", "model_name", "site_key"):
        worst = result.values.get(f"subgroup.{column}.worst_auroc")
        est = result.estimates.get(f"subgroup.{column}={worst}.auroc")
        if worst is None or est is None or est.value is None or est.low is None:
            continue
        out.append(
            f"The worst {column.replace('_', ' ')} subgroup is {worst} "
            f"(AUROC {est.value:.3f}, CI {est.low:.3f}–{est.high:.3f}, n={est.n})."
        )
        break
    for name in result.values.get("evaluation.splits", []):
        prefix = f"split.{name}.shift."
        if not result.values.get(f"{prefix}drifted"):
            continue
        cols = [c["column"] for c in result.tables.get(f"{prefix}drift", []) if c["drifted"]]
        shown = ", ".join(cols[:6]) + (" ..." if len(cols) > 6 else "")
        out.append(
            f"'{name}' has drifted from '{result.values.get('shift.reference_split')}' on "
            f"{len(cols)} of {result.values.get(f'{prefix}n_tested')} columns ({shown})."
        )
    if result.values.get("leakage.leak"):
        out.append(
            "Leakage: patients, studies or identical images of the development splits are "
            "among the evaluated cases; the performance estimates are optimistic."
        )
    return out
