"""Report context for the calibration, uncertainty and conformal sections."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from medval._result import ValidationResult
from medval._types import Estimate

SMALL_CELL = 11  # cells with fewer cases are suppressed in the report
_UNC_MEASURES = ("total", "epistemic", "aleatoric")


def fmt_estimate(e: Estimate | None) -> dict[str, Any]:
    if e is None:
        return {"text": "—", "ci": "", "note": "not computed"}
    if e.value is None:
        return {"text": "n/a", "ci": "", "note": e.reason or ""}
    ci = "" if e.low is None else f"{e.low:.3f}–{e.high:.3f}"
    return {"text": f"{e.value:.3f}", "ci": ci, "note": e.method}


def conformal_context(result: ValidationResult) -> dict[str, Any] | None:
    if "conformal.method" not in result.values:
        return None
    v = result.values
    splits, groups = [], []
    for i, (name, prefix) in enumerate(result.split_prefixes()):
        splits.append(
            {
                "name": name,
                "coverage": fmt_estimate(result.estimates.get(f"{prefix}conformal.coverage")),
                "mean_set_size": v.get(f"{prefix}conformal.mean_set_size"),
                "singleton_rate": v.get(f"{prefix}conformal.singleton_rate"),
                "referral_rate": v.get(f"{prefix}conformal.referral_rate"),
                "empty_rate": v.get(f"{prefix}conformal.empty_rate"),
                "triage_sensitivity": fmt_estimate(
                    result.estimates.get(f"{prefix}triage.sensitivity")
                ),
                "flagged_rate": v.get(f"{prefix}triage.flagged_rate"),
                "difference": fmt_estimate(
                    result.estimates.get(f"{prefix}conformal.coverage_difference")
                )
                if i
                else None,
                "weighted": fmt_estimate(
                    result.estimates.get(f"{prefix}conformal.weighted.coverage")
                )
                if f"{prefix}conformal.weighted.coverage" in result.estimates
                else None,
                "weighted_caveat": v.get(f"{prefix}conformal.weighted.caveat"),
                "by_set_size": result.tables.get(f"{prefix}conformal.by_set_size", []),
            }
        )
        rows = result.tables.get(f"{prefix}conformal.by_class", []) + result.tables.get(
            f"{prefix}conformal.by_group", []
        )
        for row in rows:
            groups.append({"split": name, **row, "suppressed": row["n"] < SMALL_CELL})
    return {
        "method": v["conformal.method"],
        "randomized": v.get("conformal.randomized"),
        "temperature": v.get("conformal.temperature"),
        "temperature_fitted_on": v.get("conformal.temperature_fitted_on"),
        "mondrian": v.get("conformal.mondrian"),
        "target": v["conformal.confidence_level"],
        "n_calibration": v.get("conformal.n_calibration"),
        "calibrated_on": v.get("conformal.calibrated_on"),
        "triage_threshold": v.get("triage.threshold"),
        "triage_max_fnr": v.get("triage.max_fnr"),
        "splits": splits,
        "groups": groups,
    }


def per_class_rows(result: ValidationResult) -> list[dict[str, Any]]:
    """Per-class one-vs-rest AUROC, recall and PPV by split (K > 2 tasks)."""
    if result.values.get("task.kind") != "multiclass":
        return []
    rows = []
    for split, prefix in result.split_prefixes():
        for name in result.values.get("task.class_names", []):
            rows.append(
                {
                    "split": split,
                    "name": name,
                    "auroc": fmt_estimate(
                        result.estimates.get(f"{prefix}discrimination.auroc.{name}")
                    ),
                    "recall": fmt_estimate(
                        result.estimates.get(f"{prefix}operating_point.sensitivity.{name}")
                    ),
                    "ppv": fmt_estimate(
                        result.estimates.get(f"{prefix}operating_point.ppv.{name}")
                    ),
                }
            )
    return rows


def calibrated_event(result: ValidationResult) -> str:
    """What the calibrated probability is of: the positive class, or a right top label."""
    if result.values.get("task.kind") == "multiclass":
        return "top label right"
    return str(result.values.get("task.positive_class", "positive class"))


def calibration_context(result: ValidationResult) -> dict[str, Any] | None:
    from medval.report._plots import reliability_svg

    v = result.values
    splits, curves = [], []
    for i, (name, prefix) in enumerate(result.split_prefixes()):
        if f"{prefix}calibration.brier" not in v:
            return None
        splits.append(
            {
                "name": name,
                "ece": fmt_estimate(result.estimates.get(f"{prefix}calibration.ece")),
                "debiased_l2": v.get(f"{prefix}calibration.debiased_l2"),
                "brier": v[f"{prefix}calibration.brier"],
                "nll": v[f"{prefix}calibration.nll"],
                "slope": v.get(f"{prefix}calibration.slope"),
                "intercept": v.get(f"{prefix}calibration.intercept"),
                "ece_after": v.get(f"{prefix}calibration.after.ece_point"),
                "brier_after": v.get(f"{prefix}calibration.after.brier"),
                "nll_after": v.get(f"{prefix}calibration.after.nll"),
            }
        )
        curves.append((name, result.tables.get(f"{prefix}calibration.reliability", [])))
        if i == 0 and "calibration.after.reliability" in result.tables:
            curves.append(
                (f"{name}, temperature-scaled", result.tables["calibration.after.reliability"])
            )
    if not splits:
        return None
    return {
        "bins": v.get("calibration.bins", ""),
        "temperature": v.get("calibration.temperature"),
        "fitted_on": v.get("calibration.temperature_fitted_on"),
        "splits": splits,
        "svg": Markup(
            reliability_svg(curves, title="Reliability by split", event=calibrated_event(result))
        ),
        "event": calibrated_event(result),
    }


def uncertainty_context(result: ValidationResult) -> dict[str, Any] | None:
    from medval.report._plots import referral_svg

    v = result.values
    if "uncertainty.mc_samples" not in v:
        return None
    splits = []
    names = v.get("evaluation.splits", [])
    for name, prefix in result.split_prefixes():
        rec = v.get(f"{prefix}uncertainty.referral_for_sensitivity") or {}
        splits.append(
            {
                "name": name,
                "total": v[f"{prefix}uncertainty.total_mean"],
                "aleatoric": v[f"{prefix}uncertainty.aleatoric_mean"],
                "epistemic": v[f"{prefix}uncertainty.epistemic_mean"],
                "p": v.get(f"{prefix}uncertainty.epistemic_higher_p"),
                "aurc": {m: v.get(f"{prefix}uncertainty.{m}.aurc") for m in _UNC_MEASURES},
                "referral": rec,
            }
        )
    rows = result.tables.get("uncertainty.referral", [])
    curves = [
        (
            f"refer by {m} uncertainty",
            [
                (r["referred"], r["auroc"])
                for r in rows
                if r["measure"] == m and r["auroc"] is not None
            ],
        )
        for m in _UNC_MEASURES
    ]
    primary = names[0] if names else ""
    return {
        "mc_samples": v["uncertainty.mc_samples"],
        "mc_error": _mc_error_lines(result),
        "mc_mean": _mc_mean_rows(result),
        "splits": splits,
        "by_group": result.tables.get("uncertainty.by_group", []),
        "primary": primary,
        "svg": Markup(
            referral_svg(
                curves, title=f"Referral curve ('{primary}')", ylabel="AUROC of the retained cases"
            )
        ),
    }


def _mc_error_lines(result: ValidationResult) -> list[str]:
    """One line per split: the Monte Carlo error of the measures and the T that would suffice."""
    out = []
    unit = " nats" if result.values.get("uncertainty.measure", "").startswith("entropy") else ""
    for name, prefix in result.split_prefixes():
        e = result.values.get(f"{prefix}uncertainty.mc_error")
        if not e:
            continue
        parts = [(m, e["measures"][m]) for m in ("total", "aleatoric", "epistemic")]
        rel = ", ".join(
            f"{s['relative_error']:.2f} ({m})" if s["relative_error"] is not None else f"n/a ({m})"
            for m, s in parts
        )
        mean_se = ", ".join(f"{s['mean_se']:.4f}" for _, s in parts)
        rec = e["recommended_samples"]
        out.append(
            f"Monte Carlo error with T = {e['n_samples']} on '{name}' (jackknife over the "
            f"samples): per-case error {rel} of each measure's spread across cases; SE of the "
            f"split mean {mean_se}{unit}; "
            + (
                f"recommended T ≥ {rec} (per-case error below {e['tolerance']:g})."
                if rec is not None
                else "no T can be recommended: the measures vary no more than their noise."
            )
        )
    return out


def _mc_mean_rows(result: ValidationResult) -> list[dict[str, Any]]:
    """The MC mean's metrics beside the deployed (deterministic) AUROC, per split."""
    rows = []
    for name, prefix in result.split_prefixes():
        key = f"{prefix}uncertainty.mc_mean."
        if f"{key}auroc" not in result.estimates:
            continue
        rows.append(
            {
                "name": name,
                "deployed": fmt_estimate(result.estimates.get(f"{prefix}discrimination.auroc")),
                **{
                    m: fmt_estimate(result.estimates.get(f"{key}{m}"))
                    for m in ("auroc", "auroc_difference", "sensitivity", "specificity")
                },
            }
        )
    return rows


def uncertainty_findings(result: ValidationResult) -> list[str]:
    v = result.values
    names = v.get("evaluation.splits", [])
    out = list(v.get("uncertainty.warnings") or [])
    for name in names[1:]:
        p = v.get(f"split.{name}.uncertainty.epistemic_higher_p")
        if p is not None and p < 0.01:
            out.append(
                f"Epistemic (model) uncertainty is higher on '{name}' "
                f"({v[f'split.{name}.uncertainty.epistemic_mean']:.4f} vs "
                f"{v['uncertainty.epistemic_mean']:.4f} nats; one-sided Mann-Whitney "
                f"p = {p:.1e}): the model recognises these images as unfamiliar."
            )
        elif p is not None and p >= 0.05:
            out.append(
                f"Epistemic (model) uncertainty is not higher on '{name}' "
                f"({v[f'split.{name}.uncertainty.epistemic_mean']:.4f} vs "
                f"{v['uncertainty.epistemic_mean']:.4f} nats; one-sided Mann-Whitney "
                f"p = {p:.2f}): MC dropout does not recognise these images as unfamiliar, "
                "so it cannot serve as an alarm for this shift."
            )
    rec = v.get("uncertainty.referral_for_sensitivity") or {}
    if rec.get("fraction") is not None and rec["fraction"] > 0.5:
        out.append(
            f"Keeping sensitivity at {rec['target_sensitivity']:.0%} on the cases the model "
            f"decides alone would mean referring {rec['fraction']:.0%} of '{names[0]}' cases: "
            "uncertainty-based referral does not make this model safe to use on its own."
        )
    elif rec.get("fraction") is not None:
        out.append(
            f"Referring the {rec['fraction']:.0%} most uncertain '{names[0]}' cases to a "
            f"radiologist keeps the model's sensitivity on the rest at "
            f"{rec['target_sensitivity']:.0%} or more."
        )
    return out


def coverage_findings(result: ValidationResult) -> list[str]:
    """One sentence per split whose sets miss the target, overall or in a group."""
    target = result.values.get("conformal.confidence_level")
    out = []
    for name, prefix in result.split_prefixes():
        under = [
            f"{row['column']} = {row['group']} ({row['coverage']:.2f})"
            for row in result.tables.get(f"{prefix}conformal.by_class", [])
            + result.tables.get(f"{prefix}conformal.by_group", [])
            if row["flag"] and row.get("direction") == "under" and row["n"] >= SMALL_CELL
        ]
        cov = result.estimates.get(f"{prefix}conformal.coverage")
        if cov is None or cov.value is None or target is None:
            continue
        if cov.high is not None and cov.high < target:
            head = (
                f"The {target:.0%} prediction sets cover only {cov.value:.3f} (CI "
                f"{cov.low:.3f}–{cov.high:.3f}) of '{name}' cases: the coverage guarantee "
                "does not hold there"
            )
        elif under:
            head = (
                f"On '{name}' the {target:.0%} prediction sets are compatible with the "
                "target overall"
            )
        else:
            continue
        if under:
            shown = "; ".join(under[:4]) + (
                f"; and {len(under) - 4} more" if len(under) > 4 else ""
            )
            head += f", and are under-covered for {shown}"
        out.append(head + ".")
    return out
