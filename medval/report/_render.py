"""Render ``report.html`` from a :class:`ValidationResult`."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from markupsafe import Markup

from medval._result import ValidationResult
from medval.report._preprocess import preprocess_context, preprocess_findings
from medval.report._sections import (
    SMALL_CELL,
    calibration_context,
    conformal_context,
    coverage_findings,
    fmt_estimate,
    per_class_rows,
    uncertainty_context,
    uncertainty_findings,
)
from medval.report._shift import shift_findings

__all__ = [
    "DEFAULT_CHECKLIST",
    "SUMMARY_METRICS",
    "Outputs",
    "render_html",
    "template_dir",
    "write_outputs",
]

#: The checklist a report fills unless told otherwise.
DEFAULT_CHECKLIST = "claim-2024"

#: (result key, label) of the headline numbers: the report's summary table and
#: ``medval``'s terminal summary (``run.summary_table``) show these.
SUMMARY_METRICS: tuple[tuple[str, str], ...] = (
    ("discrimination.auroc", "AUROC"),
    ("operating_point.sensitivity", "Sensitivity"),
    ("operating_point.specificity", "Specificity"),
    ("operating_point.ppv", "PPV"),
    ("operating_point.npv", "NPV"),
)
_EXCLUSION_ROWS_SHOWN = 200


def template_dir() -> Path:
    """The report templates: inside the wheel, or ``reports/`` of a source checkout."""
    packaged = resources.files("medval") / "_data" / "reports"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "reports"


def _split_rows(result: ValidationResult) -> list[dict[str, Any]]:
    rows = []
    for i, (name, prefix) in enumerate(result.split_prefixes()):
        rows.append(
            {
                "name": name,
                "primary": i == 0,
                "n_cases": result.values.get(f"{prefix}cohort.n_cases"),
                "n_patients": result.values.get(f"{prefix}cohort.n_patients"),
                "n_positive": result.values.get(f"{prefix}cohort.n_positive", "—"),
                "metrics": [
                    fmt_estimate(result.estimates.get(prefix + key)) for key, _ in SUMMARY_METRICS
                ],
                "roc": result.tables.get(f"{prefix}curves.roc"),
                "pr": result.tables.get(f"{prefix}curves.pr"),
                "prevalence": result.values.get(f"{prefix}curves.prevalence"),
                "confusion": result.values.get(f"{prefix}operating_point.confusion"),
                "failure_groups": result.tables.get(f"{prefix}failure.by_group", []),
                "failure_uncertainty": result.tables.get(f"{prefix}failure.by_uncertainty", []),
            }
        )
    return rows


def _sanity_findings(result: ValidationResult) -> tuple[list[str], set[str]]:
    """Collapsed outputs and chance-level AUROC first; and the splits at chance."""
    v = result.values
    out, chance = [], set()
    for name, prefix in result.split_prefixes():
        if v.get(f"{prefix}sanity.collapsed"):
            lo, hi = v.get(f"{prefix}sanity.score_range_90") or (float("nan"), float("nan"))
            out.append(
                f"The model's outputs have collapsed on '{name}': the predicted probabilities "
                f"barely vary (standard deviation {v[f'{prefix}sanity.score_sd']:.3f}; 90% of "
                f"cases between {lo:.2f} and {hi:.2f}) where the labels would need a spread "
                f"near {v[f'{prefix}sanity.label_sd']:.2f}. No number below is meaningful "
                "until this is explained. First suspect: the preprocessing. Check that "
                "[preprocess] (window, normalisation, channels, size) matches what the model "
                "was trained on."
            )
        scanners = v.get(f"{prefix}sanity.collapsed_scanners") or []
        if scanners and not v.get(f"{prefix}sanity.collapsed"):
            out.append(
                f"The model's outputs have collapsed within scanner(s) {', '.join(scanners)} "
                f"on '{name}': nearly one probability per scanner, whatever the case. First "
                "suspect: the preprocessing (an intensity scale the normalisation does not "
                "remove). Check that [preprocess] matches what the model was trained on."
            )
        if v.get(f"{prefix}sanity.chance_level"):
            chance.add(name)
            e = result.estimates.get(f"{prefix}discrimination.auroc")
            if e is not None and e.value is not None and e.low is not None and e.high is not None:
                out.append(
                    f"AUROC on '{name}' ({e.value:.3f}, CI {e.low:.3f}–{e.high:.3f}) is "
                    "compatible with chance (0.5): there is no evidence the model discriminates "
                    "here; check the preprocessing and the labels before anything else."
                )
        if v.get(f"{prefix}sanity.calibration_collapsed") and not v.get(
            f"{prefix}sanity.collapsed"
        ):
            out.append(
                f"The calibration slope on '{name}' is near 0 "
                f"({v.get(f'{prefix}calibration.slope', float('nan')):.2f}): the probabilities "
                "carry almost no information about the outcome."
            )
    return out, chance


def _baseline_findings(result: ValidationResult) -> list[str]:
    """A baseline that is the candidate itself: first, since the gate cannot pass it."""
    if not result.values.get("reference.identical"):
        return []
    return [
        "The baseline is the candidate itself: its scores equal the candidate's on every case "
        "of the comparison, so the non-inferiority test compared the model with itself and "
        "proves nothing; the gate does not pass it. A released model's predictions.csv must "
        "be kept outside the output folder (copied from its run); check the [baseline] "
        "predictions or model file."
    ]


def _findings(rows: list[dict[str, Any]], result: ValidationResult) -> list[str]:
    """Plain sentences a reader can take in within a minute; the input mismatch first."""
    sanity, chance = _sanity_findings(result)
    out = _baseline_findings(result) + preprocess_findings(result) + sanity
    primary = rows[0]["name"] if rows else None
    for key, label in SUMMARY_METRICS[:3]:
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
            elif key == "discrimination.auroc" and {primary, r["name"]} & chance:
                continue  # at chance: said above; never "compatible" with each other
            elif key == "discrimination.auroc":
                out.append(
                    f"AUROC on '{r['name']}' ({e.value:.3f}) is compatible with '{primary}' "
                    f"({p.value:.3f}) at the reported confidence level."
                )
    out += uncertainty_findings(result)
    out += coverage_findings(result)
    out += shift_findings(result)
    return out + _cohort_findings(result)


def _cohort_findings(result: ValidationResult) -> list[str]:
    """What happened to the files and labels on the way in (any task with a file scan)."""
    out = []
    n_unusable = result.values.get("cohort.n_unusable", 0)
    if n_unusable:
        share = result.values.get("cohort.unusable_fraction", 0.0)
        out.append(
            f"{n_unusable} labelled file(s) ({share:.1%}) could not be read or decoded and were "
            "excluded; the run went on without them. See Cohort for each file and its reason."
        )
    n_excl = result.values.get("cohort.n_excluded", 0)
    if n_excl:
        out.append(f"{n_excl} file(s) were excluded before analysis; see Cohort for reasons.")
    n_unmatched = result.values.get("cohort.n_unmatched_labels", 0)
    if n_unmatched:
        out.append(
            f"{n_unmatched} labels row(s) matched no image and are not analysed; see Cohort."
        )
    if result.values.get("cohort.aggregation"):
        out.append(
            f"The unit of analysis is the {result.values['cohort.unit']}: "
            f"{result.values['cohort.n_images']} image predictions were aggregated by "
            f"{result.values['cohort.aggregation']} to one per {result.values['cohort.unit']}."
        )
    return out


def _checklist(result: ValidationResult, answers: Any, name: str) -> dict[str, Any]:
    from medval import checklist

    cl = checklist.load_checklist(name)
    statuses = checklist.fill(result, answers=answers, checklist=cl)
    walk = checklist.crosswalk(cl)
    rows = checklist.to_rows(statuses)
    for row in rows:
        row["crosswalk"] = (
            [] if walk is None else [dataclasses.asdict(c) for c in walk.of(row["number"])]
        )
    return {
        "id": cl.id,
        "name": cl.title,
        "default": cl.id == DEFAULT_CHECKLIST,
        "rows": rows,
        "summary": checklist.summary(statuses),
        "limitations": checklist.suggest_limitations(result),
        "crosswalk": None if walk is None else walk.other.short_title,
    }


def _settings_rows(result: ValidationResult) -> list[dict[str, str]]:
    """The evaluation settings the result records, with each one's description."""
    import json

    from medval.gate import settings

    recorded = result.provenance.get("settings") or {}
    docs = {s.key: s.doc for s in settings()}
    return [
        {"key": key, "value": "—" if value is None else json.dumps(value), "doc": docs.get(key, "")}
        for key, value in recorded.items()
    ]


def render_html(
    result: ValidationResult,
    *,
    result_sha256: str,
    generated_at: str | None = None,
    answers: Any = None,
    checklist_name: str = DEFAULT_CHECKLIST,
) -> str:
    """The self-contained report as an HTML string.

    ``checklist_name`` (``"claim-2024"`` or ``"tripod-ai-2024"``) is the
    checklist the report fills, each item shown beside its counterparts in
    the other checklist (``checklists/crosswalk.yaml``). ``answers`` (a YAML
    path or a mapping, see :func:`medval.checklist.read_answers`) fills its
    human items and must be written for that checklist.

    Raises
    ------
    SpecError
        On an unknown checklist or answers that do not validate against it.
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
    from medval.report._regression import regression_context, regression_findings, with_target_text
    from medval.report._segmentation import segmentation_context, segmentation_findings

    seg = segmentation_context(result)
    reg = regression_context(result)
    other = seg is not None or reg is not None  # not a classifier: its sections do not apply
    rows = [] if other else _split_rows(result)
    curves = [(f"{r['name']} (n={r['n_cases']})", r["roc"]) for r in rows if r["roc"]]
    figure = roc_svg(curves, title="ROC by evaluated split") if curves else None
    pr_curves = [
        (f"{r['name']} (n={r['n_cases']})", r["pr"], float(r["prevalence"]))
        for r in rows
        if r["pr"] and r["prevalence"] is not None
    ]
    pr_figure = pr_svg(pr_curves, title="Precision-recall by split") if pr_curves else None
    exclusions = result.tables.get("cohort.exclusions", [])
    if seg is not None:
        findings = segmentation_findings(result)
    elif reg is not None:
        findings = (
            preprocess_findings(result) + regression_findings(result) + _cohort_findings(result)
        )
    else:
        findings = _findings(rows, result)
    acquisition = acquisition_context(result)
    by_site = result.tables.get("cohort.by_split_site", [])
    if reg is not None:  # the target's mean, SD and range where a classifier counts positives
        by_site = with_target_text(by_site, result)
        acquisition["table1"] = with_target_text(acquisition["table1"], result)
    context = {
        "title": "medval validation report",
        "generated_at": generated_at
        or _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "metric_names": [label for _, label in SUMMARY_METRICS],
        "splits": rows,
        "findings": findings,
        "segmentation": seg,
        "regression": reg,
        "values": result.values,
        "flow": result.tables.get("cohort.flow", []),
        "by_site": by_site,
        "exclusions": exclusions[:_EXCLUSION_ROWS_SHOWN],
        "n_exclusions_hidden": max(0, len(exclusions) - _EXCLUSION_ROWS_SHOWN),
        "exclusion_reasons": result.tables.get("cohort.exclusion_reasons", []),
        "unmatched": result.tables.get("cohort.unmatched_labels", [])[:_EXCLUSION_ROWS_SHOWN],
        "provenance": result.provenance,
        "result_sha256": result_sha256,
        "roc_svg": figure,
        "conformal": None if other else conformal_context(result),
        "calibration": None if other else calibration_context(result),
        "uncertainty": None if other else uncertainty_context(result),
        "verdicts": result.tables.get("gate.verdicts", []),
        "skipped": result.tables.get("evaluation.skipped", []),
        "settings": _settings_rows(result),
        "checklist": _checklist(result, answers, checklist_name),
        "pr_svg": None if pr_figure is None else Markup(pr_figure),
        "per_class": [] if other else per_class_rows(result),
        "roc_band": result.values.get("curves.roc_band"),
        "subgroups": None if other else subgroup_context(result),
        "shift": None if other else shift_context(result),
        "acquisition": acquisition,
        "preprocess": preprocess_context(result),
        "small_cell": SMALL_CELL,
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
    checklist: str = DEFAULT_CHECKLIST,
    signing_key: bytes | None = None,
) -> Outputs:
    """Write ``result.json`` then ``report.html`` (which carries the JSON's SHA-256).

    The files are written in place: ``medval validate`` and ``medval demo``
    call this on a staging folder that replaces the output folder whole once
    the run is complete (:class:`medval.run.OutputFolder`).

    Parameters
    ----------
    answers : path or mapping, optional
        A person's answers to the checklist (``medval checklist init``).
    checklist : {"claim-2024", "tripod-ai-2024"}, default "claim-2024"
        The reporting checklist the report fills.
    signing_key : bytes, optional
        Sign ``result.json`` with an HMAC of its content
        (:meth:`ValidationResult.to_json`); the key is not written.

    Raises
    ------
    SpecError
        On an unknown checklist (the message lists the valid ones) or answers
        that do not validate against it (answers for another checklist
        included); nothing is written then.
    """
    from medval.checklist import Answer, load_checklist, read_answers

    cl = load_checklist(checklist)
    read = isinstance(answers, Mapping) and all(isinstance(a, Answer) for a in answers.values())
    if answers is not None and not read:
        answers = read_answers(answers, cl)  # fail before anything is written
    text = result.to_json(signing_key=signing_key).encode("utf-8")
    digest = hashlib.sha256(text).hexdigest()
    html = render_html(
        result,
        result_sha256=digest,
        generated_at=generated_at,
        answers=answers,
        checklist_name=cl.id,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "result.json"
    json_path.write_bytes(text)
    report = out_dir / "report.html"
    report.write_text(html, encoding="utf-8")
    return Outputs(result_json=json_path, report=report, result_sha256=digest)
