"""Render ``report.html`` from a :class:`ValidationResult`."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from importlib import resources
from pathlib import Path
from typing import Any

from markupsafe import Markup

from medval._result import ValidationResult
from medval._types import Estimate
from medval.report._shift import shift_findings

__all__ = ["Outputs", "render_html", "template_dir", "write_outputs"]

_METRICS = (
    ("discrimination.auroc", "AUROC"),
    ("operating_point.sensitivity", "Sensitivity"),
    ("operating_point.specificity", "Specificity"),
    ("operating_point.ppv", "PPV"),
    ("operating_point.npv", "NPV"),
)
_EXCLUSION_ROWS_SHOWN = 200
_UNC_MEASURES = ("total", "epistemic", "aleatoric")
_SMALL_CELL = 11  # cells with fewer cases are suppressed in the report


def template_dir() -> Path:
    """The report templates: inside the wheel, or ``reports/`` of a source checkout."""
    packaged = resources.files("medval") / "_data" / "reports"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "reports"


def _fmt(e: Estimate | None) -> dict[str, Any]:
    if e is None:
        return {"text": "—", "ci": "", "note": "not computed"}
    if e.value is None:
        return {"text": "n/a", "ci": "", "note": e.reason or ""}
    ci = "" if e.low is None else f"{e.low:.3f}–{e.high:.3f}"
    return {"text": f"{e.value:.3f}", "ci": ci, "note": e.method}


def _split_rows(result: ValidationResult) -> list[dict[str, Any]]:
    rows = []
    for i, name in enumerate(result.values.get("evaluation.splits", [])):
        prefix = "" if i == 0 else f"split.{name}."
        rows.append(
            {
                "name": name,
                "primary": i == 0,
                "n_cases": result.values.get(f"{prefix}cohort.n_cases"),
                "n_patients": result.values.get(f"{prefix}cohort.n_patients"),
                "n_positive": result.values.get(f"{prefix}cohort.n_positive"),
                "metrics": [_fmt(result.estimates.get(prefix + key)) for key, _ in _METRICS],
                "roc": result.tables.get(f"{prefix}curves.roc"),
                "pr": result.tables.get(f"{prefix}curves.pr"),
                "prevalence": result.values.get(f"{prefix}curves.prevalence"),
                "confusion": result.values.get(f"{prefix}operating_point.confusion"),
                "failure_groups": result.tables.get(f"{prefix}failure.by_group", []),
                "failure_uncertainty": result.tables.get(f"{prefix}failure.by_uncertainty", []),
            }
        )
    return rows


def _conformal(result: ValidationResult) -> dict[str, Any] | None:
    if "conformal.method" not in result.values:
        return None
    v = result.values
    splits, groups = [], []
    for i, name in enumerate(v.get("evaluation.splits", [])):
        prefix = "" if i == 0 else f"split.{name}."
        splits.append(
            {
                "name": name,
                "coverage": _fmt(result.estimates.get(f"{prefix}conformal.coverage")),
                "mean_set_size": v.get(f"{prefix}conformal.mean_set_size"),
                "singleton_rate": v.get(f"{prefix}conformal.singleton_rate"),
                "referral_rate": v.get(f"{prefix}conformal.referral_rate"),
                "empty_rate": v.get(f"{prefix}conformal.empty_rate"),
                "triage_sensitivity": _fmt(result.estimates.get(f"{prefix}triage.sensitivity")),
                "flagged_rate": v.get(f"{prefix}triage.flagged_rate"),
                "difference": _fmt(result.estimates.get(f"{prefix}conformal.coverage_difference"))
                if i
                else None,
                "weighted": _fmt(result.estimates.get(f"{prefix}conformal.weighted.coverage"))
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
            groups.append({"split": name, **row, "suppressed": row["n"] < _SMALL_CELL})
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


def _calibration(result: ValidationResult) -> dict[str, Any] | None:
    from medval.report._plots import reliability_svg

    v = result.values
    splits, curves = [], []
    for i, name in enumerate(v.get("evaluation.splits", [])):
        prefix = "" if i == 0 else f"split.{name}."
        if f"{prefix}calibration.brier" not in v:
            return None
        splits.append(
            {
                "name": name,
                "ece": _fmt(result.estimates.get(f"{prefix}calibration.ece")),
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
        "svg": Markup(reliability_svg(curves, title="Reliability by split")),
    }


def _uncertainty(result: ValidationResult) -> dict[str, Any] | None:
    from medval.report._plots import referral_svg

    v = result.values
    if "uncertainty.mc_samples" not in v:
        return None
    splits = []
    names = v.get("evaluation.splits", [])
    for i, name in enumerate(names):
        prefix = "" if i == 0 else f"split.{name}."
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
        "splits": splits,
        "by_group": result.tables.get("uncertainty.by_group", []),
        "primary": primary,
        "svg": Markup(
            referral_svg(
                curves, title=f"Referral curve ('{primary}')", ylabel="AUROC of the retained cases"
            )
        ),
    }


def _uncertainty_findings(result: ValidationResult) -> list[str]:
    v = result.values
    names = v.get("evaluation.splits", [])
    out = []
    for name in names[1:]:
        p = v.get(f"split.{name}.uncertainty.epistemic_higher_p")
        if p is not None and p < 0.01:
            out.append(
                f"Epistemic (model) uncertainty is higher on '{name}' "
                f"({v[f'split.{name}.uncertainty.epistemic_mean']:.4f} vs "
                f"{v['uncertainty.epistemic_mean']:.4f} nats; one-sided Mann-Whitney "
                f"p = {p:.1e}): the model recognises these images as unfamiliar."
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


def _coverage_findings(result: ValidationResult) -> list[str]:
    """One sentence per split whose sets miss the target, overall or in a group."""
    target = result.values.get("conformal.confidence_level")
    out = []
    for i, name in enumerate(result.values.get("evaluation.splits", [])):
        prefix = "" if i == 0 else f"split.{name}."
        under = [
            f"{row['column']} = {row['group']} ({row['coverage']:.2f})"
            for row in result.tables.get(f"{prefix}conformal.by_class", [])
            + result.tables.get(f"{prefix}conformal.by_group", [])
            if row["flag"] and row.get("direction") == "under" and row["n"] >= _SMALL_CELL
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


def _findings(rows: list[dict[str, Any]], result: ValidationResult) -> list[str]:
    """Plain sentences a reader can take in within a minute."""
    out = []
    primary = rows[0]["name"] if rows else None
    for key, label in _METRICS[:3]:
        p = result.estimates.get(key)
        if p is None or p.value is None or p.low is None or p.high is None:
            continue
        for r in rows[1:]:
            e = result.estimates.get(f"split.{r['name']}.{key}")
            if e is None or e.value is None or e.low is None or e.high is None:
                continue
            if e.high < p.low:
                out.append(
                    f"{label} on '{r['name']}' ({e.value:.3f}, CI {e.low:.3f}–{e.high:.3f}) is "
                    f"clearly below '{primary}' ({p.value:.3f}, CI {p.low:.3f}–{p.high:.3f}): "
                    f"the model does not transfer to '{r['name']}' as validated."
                )
            elif key == "discrimination.auroc":
                out.append(
                    f"AUROC on '{r['name']}' ({e.value:.3f}) is compatible with '{primary}' "
                    f"({p.value:.3f}) at the reported confidence level."
                )
    out += _uncertainty_findings(result)
    out += _coverage_findings(result)
    out += shift_findings(result)
    n_excl = result.values.get("cohort.n_excluded", 0)
    if n_excl:
        out.append(f"{n_excl} file(s) were excluded before analysis; see Cohort for reasons.")
    return out


def _checklist(result: ValidationResult, answers: Any, name: str) -> dict[str, Any]:
    from medval import checklist

    statuses = checklist.fill(result, answers=answers, checklist=name)
    return {
        "name": checklist.load_checklist(name).title,
        "rows": checklist.to_rows(statuses),
        "summary": checklist.summary(statuses),
        "limitations": checklist.suggest_limitations(result),
    }


def render_html(
    result: ValidationResult,
    *,
    result_sha256: str,
    generated_at: str | None = None,
    answers: Any = None,
    checklist_name: str = "claim-2024",
) -> str:
    """The self-contained report as an HTML string.

    ``answers`` (a YAML path or a mapping, see :func:`medval.checklist.read_answers`)
    fills the human items of the checklist.
    """
    import jinja2

    from medval.report._plots import pr_svg, roc_svg
    from medval.report._shift import acquisition_context, shift_context, subgroup_context

    tdir = template_dir()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(tdir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    rows = _split_rows(result)
    curves = [(f"{r['name']} (n={r['n_cases']})", r["roc"]) for r in rows if r["roc"]]
    figure = roc_svg(curves, title="ROC by evaluated split") if curves else None
    pr_curves = [
        (f"{r['name']} (n={r['n_cases']})", r["pr"], float(r["prevalence"]))
        for r in rows
        if r["pr"] and r["prevalence"] is not None
    ]
    pr_figure = pr_svg(pr_curves, title="Precision-recall by split") if pr_curves else None
    exclusions = result.tables.get("cohort.exclusions", [])
    context = {
        "title": "medval validation report",
        "generated_at": generated_at
        or _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "metric_names": [label for _, label in _METRICS],
        "splits": rows,
        "findings": _findings(rows, result),
        "values": result.values,
        "flow": result.tables.get("cohort.flow", []),
        "by_site": result.tables.get("cohort.by_split_site", []),
        "exclusions": exclusions[:_EXCLUSION_ROWS_SHOWN],
        "n_exclusions_hidden": max(0, len(exclusions) - _EXCLUSION_ROWS_SHOWN),
        "exclusion_reasons": result.tables.get("cohort.exclusion_reasons", []),
        "provenance": result.provenance,
        "result_sha256": result_sha256,
        "roc_svg": figure,
        "conformal": _conformal(result),
        "calibration": _calibration(result),
        "uncertainty": _uncertainty(result),
        "verdicts": result.tables.get("gate.verdicts", []),
        "checklist": _checklist(result, answers, checklist_name),
        "pr_svg": None if pr_figure is None else Markup(pr_figure),
        "roc_band": result.values.get("curves.roc_band"),
        "subgroups": subgroup_context(result),
        "shift": shift_context(result),
        "acquisition": acquisition_context(result),
        "small_cell": _SMALL_CELL,
        "stylesheet": (tdir / "style.css").read_text(encoding="utf-8"),
    }
    if figure is not None:
        # Our own SVG from numbers; matplotlib escapes text nodes.
        context["roc_svg"] = Markup(figure)
    context["stylesheet"] = Markup(context["stylesheet"])
    return env.get_template("report.html.j2").render(**context)


@dataclasses.dataclass(frozen=True)
class Outputs:
    """Paths written by :func:`write_outputs` and the digest of the JSON."""

    result_json: Path
    report: Path
    result_sha256: str


def write_outputs(
    result: ValidationResult,
    out_dir: Path,
    *,
    generated_at: str | None = None,
    answers: Any = None,
) -> Outputs:
    """Write ``result.json`` then ``report.html`` (which carries the JSON's SHA-256)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "result.json"
    digest = result.write_json(json_path)
    html = render_html(result, result_sha256=digest, generated_at=generated_at, answers=answers)
    report = out_dir / "report.html"
    report.write_text(html, encoding="utf-8")
    return Outputs(result_json=json_path, report=report, result_sha256=digest)
