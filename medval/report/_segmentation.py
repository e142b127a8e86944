"""The report's segmentation sections, from a segmentation result's keys."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from medval._result import ValidationResult, split_prefix
from medval.report._sections import SMALL_CELL, fmt_estimate

__all__ = ["segmentation_context", "segmentation_findings"]

_SUMMARY = (("dice", "Dice"), ("nsd", "NSD"), ("hd95", "HD95 (mm)"), ("assd", "ASSD (mm)"),
            ("relative_volume_error", "Rel. volume error"))  # fmt: skip


def _est(result: ValidationResult, key: str) -> dict[str, Any]:
    e = result.estimates.get(key)
    return fmt_estimate(e)


def _split_rows(result: ValidationResult, splits: list[str], s: str) -> list[dict[str, Any]]:
    rows = []
    for split in splits:
        pre = split_prefix(split, splits)
        key = f"{pre}segmentation.{s}"
        rows.append(
            {
                "split": split,
                "structure": s,
                "n": result.values.get(f"{key}.n_cases"),
                "metrics": [_est(result, f"{key}.{m}") for m, _ in _SUMMARY],
                "empty": result.values.get(f"{key}.empty", {}),
                "lesions": {
                    "n": result.values.get(f"{key}.lesions.n_lesions", 0),
                    "sensitivity": _est(result, f"{key}.lesions.sensitivity"),
                    "fp": _est(result, f"{key}.lesions.fp_per_scan"),
                    "froc": _est(result, f"{key}.lesions.froc_score"),
                    "dice": _est(result, f"{key}.lesions.dice"),
                    "by_size": result.tables.get(f"{key}.lesions.by_size", []),
                },
                "risk": {
                    "fnr": _est(result, f"{key}.risk.fnr"),
                    "fnr_high": (result.estimates.get(f"{key}.risk.fnr") or _NONE).high,
                    "fnr_value": (result.estimates.get(f"{key}.risk.fnr") or _NONE).value,
                    "volume": _est(result, f"{key}.risk.volume_ml"),
                    "fp": _est(result, f"{key}.risk.fp_volume_ml"),
                    "added": _est(result, f"{key}.risk.added_volume_ml"),
                    "added_fp": _est(result, f"{key}.risk.added_fp_volume_ml"),
                    "by_group": result.tables.get(f"{key}.risk.by_group", []),
                    "n_healthy": result.values.get(f"{key}.risk.n_healthy"),
                },
                "margin": {
                    "coverage": _est(result, f"{key}.margin.coverage"),
                    "added": _est(result, f"{key}.margin.added_volume_ml"),
                    "by_group": result.tables.get(f"{key}.margin.by_group", []),
                },
                "calibration": _est(result, f"{key}.calibration.ece"),
                "uncertainty": result.values.get(f"{key}.uncertainty.failure_detection"),
                "referral": result.tables.get(f"{key}.uncertainty.referral", []),
                "worst": [
                    r
                    for r in result.tables.get(f"{pre}segmentation.worst_cases", [])
                    if r["structure"] == s
                ],
            }
        )
    return rows


class _None:
    high = None
    value = None


_NONE = _None()


def _figures(result: ValidationResult, splits: list[str], s: str) -> dict[str, Any]:
    from medval.report._plots import box_svg, froc_svg, reliability_svg

    out: dict[str, Any] = {}
    curves = []
    for split in splits:
        pts = result.tables.get(f"{split_prefix(split, splits)}segmentation.{s}.lesions.froc")
        if pts:
            curves.append((split, pts))
    if curves:
        out["froc"] = Markup(froc_svg(curves, title=f"FROC: {s}"))
    dist = result.tables.get("segmentation.distribution", [])
    for metric, label in (("dice", "Dice"), ("hd95", "HD95 (mm)")):
        groups = [g for g in dist if g["structure"] == s and g["metric"] == metric
                  and g["column"] == "manufacturer" and g["n"] >= SMALL_CELL]  # fmt: skip
        if groups:
            out[f"box_{metric}"] = Markup(
                box_svg(groups, title=f"{label} per scanner: {s}", ylabel=label)
            )
    rel = []
    for split in splits:
        rows = result.tables.get(
            f"{split_prefix(split, splits)}segmentation.{s}.calibration.reliability"
        )
        if rows:
            rel.append((split, [{"confidence": r["mean_probability"],
                                 "observed": r["observed_fraction"]}
                                for r in rows if r["n"] > 0]))  # fmt: skip
    if rel:
        out["reliability"] = Markup(
            reliability_svg(rel, title=f"Voxel calibration near {s}", event=s)
        )
    return out


def _group_rows(result: ValidationResult, s: str) -> list[dict[str, Any]]:
    """One row per (column, group): n and the Dice, NSD, HD95 cells."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in result.tables.get("segmentation.by_group", []):
        if r["structure"] != s:
            continue
        first = {"column": r["column"], "group": r["group"], "n": r["n"]}
        row = rows.setdefault((r["column"], r["group"]), first)
        digits = 1 if r["metric"] == "hd95" else 3
        row[r["metric"]] = {
            "text": "—" if r["value"] is None else f"{r['value']:.{digits}f}",
            "ci": "" if r["low"] is None else f"{r['low']:.{digits}f}–{r['high']:.{digits}f}",
        }
    return list(rows.values())


def _cap(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return f"{value[0]:.1f}–{value[1]:.1f}"
    return f"{value:.1f}"


def segmentation_context(result: ValidationResult) -> dict[str, Any] | None:
    """Everything the segmentation templates show; None for other tasks."""
    if result.values.get("task.kind") != "segmentation":
        return None
    splits = list(result.values["evaluation.splits"])
    structures = list(result.values.get("segmentation.structures", []))
    blocks = []
    for s in structures:
        blocks.append(
            {
                "name": s,
                "splits": _split_rows(result, splits, s),
                "risk_threshold": result.values.get(f"segmentation.{s}.risk.threshold"),
                "risk_target": result.values.get(f"segmentation.{s}.risk.target_fnr"),
                "risk_n": result.values.get(f"segmentation.{s}.risk.n_calibration"),
                "risk_healthy": result.values.get(f"segmentation.{s}.risk.healthy"),
                "risk_n_healthy": result.values.get(f"segmentation.{s}.risk.n_healthy_calibration"),
                "margin_steps": result.values.get(f"segmentation.{s}.margin.steps"),
                "margin_target": result.values.get(f"segmentation.{s}.margin.target_coverage"),
                "figures": _figures(result, splits, s),
                "groups": _group_rows(result, s),
            }
        )
    return {
        "metric_names": [label for _, label in _SUMMARY],
        "structures": blocks,
        "settings": result.values.get("segmentation.settings", {}),
        "distance_cap": _cap(result.values.get("segmentation.distance_cap_mm")),
        "excluded": result.tables.get("cohort.excluded_cases", []),
        "volume_warnings": result.tables.get("cohort.volume_warnings", []),
        "n_listed": result.values.get("cohort.n_cases_listed"),
        "n_unmatched": result.values.get("cohort.n_cases_unmatched"),
        "measure": result.values.get("segmentation.uncertainty.measure"),
    }


def segmentation_findings(result: ValidationResult) -> list[str]:
    """The key findings of a segmentation run: what a reader must not miss."""
    out: list[str] = []
    splits = list(result.values.get("evaluation.splits", []))
    for s in result.values.get("segmentation.structures", []):
        for split in splits:
            key = f"{split_prefix(split, splits)}segmentation.{s}"
            empty = result.values.get(f"{key}.empty", {})
            if empty.get("reference"):
                out.append(
                    f"'{split}': {empty['reference']} case(s) without {s} got a predicted {s} "
                    "(a false positive on a healthy case; overlap 0, distances at the cap)."
                )
            if empty.get("prediction"):
                out.append(f"'{split}': {s} missed entirely in {empty['prediction']} case(s).")
            fnr = result.estimates.get(f"{key}.risk.fnr")
            target = result.values.get(f"segmentation.{s}.risk.target_fnr")
            if split == splits[0] and result.values.get(f"segmentation.{s}.risk.threshold") == 0:
                out.append(
                    f"Conformal risk control of {s} needs threshold 0 (every voxel): the "
                    "model's missed structures get too little probability for a useful mask "
                    "to bound the false-negative rate."
                )
            if fnr is not None and fnr.value is not None and target is not None:
                word = "meets" if fnr.value <= target else "does NOT meet"
                out.append(
                    f"'{split}': conformal risk control {word} its target: mean per-image FNR "
                    f"{fnr.value:.3f} (target {target:.2f})."
                )
            for g in result.tables.get(f"{key}.risk.by_group", []):
                if g["holds"] is False and g["n"] >= SMALL_CELL:
                    out.append(
                        f"'{split}': the FNR guarantee fails in {g['column']} = {g['group']} "
                        f"(mean FNR {g['fnr']:.3f} over {g['n']} cases)."
                    )
    excluded = result.tables.get("cohort.excluded_cases", [])
    if excluded:
        out.append(f"{len(excluded)} case(s) could not be scored and were excluded (listed below).")
    return out
