"""Evidence rules about the model and its evaluation: metrics, statistics, results.

See :mod:`medval.checklist._rules_data` for the contract of a rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medval.checklist._model import Evidence
from medval.checklist._text import ci, est, join, num, split_prefixes, subgroup_rows

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["EVAL_RULES"]

_THRESHOLD_METRICS = {
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "ppv": "PPV",
    "npv": "NPV",
}
_DEMOGRAPHIC = ("sex", "age_band", "race", "ethnicity")
_SITE = ("site_key", "manufacturer", "model_name")


def _threshold(r: ValidationResult) -> str:
    v = r.values
    t = v.get("operating_point.threshold")
    if t is None:
        return "the operating threshold"
    on = v.get("operating_point.chosen_on")
    rule = v.get("operating_point.rule", "")
    return f"threshold {t:.3f} ({rule}{' on ' + str(on) if on else ''})"


def _worst(r: ValidationResult, columns: tuple[str, ...] | None = None) -> list[str]:
    out = []
    for column in r.values.get("subgroup.columns") or []:
        if columns is not None and column not in columns:
            continue
        worst = r.values.get(f"subgroup.{column}.worst_auroc")
        if worst is not None:
            out.append(f"{column} {worst} {ci(est(r, f'subgroup.{column}={worst}.auroc'))}")
    return out


def model(r: ValidationResult) -> Evidence | None:
    p, v = r.provenance, r.values
    parts = []
    if p.get("model_file"):
        parts.append(f"model file {p['model_file']} ({p.get('model_kind', 'unknown kind')})")
    if p.get("model_sha256"):
        parts.append(f"SHA-256 {str(p['model_sha256'])[:16]}…")
    if v.get("task.class_names"):
        parts.append(
            f"outputs {join(v['task.class_names'])} (positive: {v.get('task.positive_class')})"
        )
    if not parts:
        return None
    return Evidence("; ".join(parts) + ".", complete=False)


def software(r: ValidationResult) -> Evidence | None:
    versions = r.provenance.get("versions")
    if not isinstance(versions, dict) or not versions:
        return None
    text = ", ".join(f"{k} {v}" for k, v in versions.items() if v != "not installed")
    extra = [str(r.provenance[k]) for k in ("platform", "device") if r.provenance.get(k)]
    return Evidence(text + (f"; {', '.join(extra)}" if extra else "") + ".")


def training_record(r: ValidationResult) -> Evidence | None:
    training = r.provenance.get("training")
    if not isinstance(training, dict) or not training:
        return None
    return Evidence("; ".join(f"{k}: {v}" for k, v in sorted(training.items())) + ".", False)


def ensembling(r: ValidationResult) -> Evidence | None:
    p = r.provenance
    t = r.values.get("uncertainty.mc_samples")
    how = f"the mean of {t} MC-dropout passes" if t else "one deterministic pass"
    members = p.get("ensemble_members")
    if members:
        return Evidence(f"{members} ensemble members; probabilities are {how} of each.", False)
    if p.get("model_file"):
        tta = f", test-time augmentation {p['tta']}" if p.get("tta") else ""
        return Evidence(
            f"No ensemble: one model file ({p['model_file']}); probabilities are {how}{tta}."
        )
    if t:
        return Evidence(f"Probabilities are the mean of {t} stochastic samples.", False)
    return None


def metrics(r: ValidationResult) -> Evidence | None:
    if est(r, "discrimination.auroc") is None:
        return None
    v = r.values
    parts = ["AUROC, AUPRC"]
    present = [label for m, label in _THRESHOLD_METRICS.items() if est(r, f"operating_point.{m}")]
    if present:
        parts.append(f"{', '.join(present)}, accuracy, balanced accuracy, F1 at {_threshold(r)}")
    if est(r, "calibration.ece") is not None:
        parts.append(f"calibration: ECE ({v.get('calibration.bins', 'binned')}), Brier, NLL, slope")
    if "conformal.method" in v:
        parts.append(
            f"conformal {str(v['conformal.method']).upper()} sets at "
            f"{num(v.get('conformal.confidence_level'), 2)} target coverage"
        )
    if v.get("uncertainty.mc_samples"):
        parts.append(f"uncertainty from {v['uncertainty.mc_samples']} MC samples (AURC)")
    return Evidence("; ".join(parts) + ".")


def statistics(r: ValidationResult) -> Evidence | None:
    by_method: dict[str, list[str]] = {}
    for key, label in (
        ("discrimination.auroc", "AUROC"),
        ("discrimination.auprc", "AUPRC"),
        ("operating_point.sensitivity", "sensitivity/specificity"),
        ("operating_point.ppv", "PPV/NPV"),
        ("operating_point.f1", "F1"),
        ("calibration.ece", "ECE"),
        ("conformal.coverage", "coverage"),
    ):
        e = est(r, key)
        if e is not None and e.method:
            extra = f", {e.n_resamples} resamples" if e.n_resamples else ""
            by_method.setdefault(f"{e.method}{extra}", []).append(label)
    if not by_method:
        return None
    cl = r.provenance.get("confidence_level") or next(iter(r.estimates.values())).confidence_level
    parts = [
        f"{round(100 * cl)}% CIs: "
        + "; ".join(f"{', '.join(labels)} by {method}" for method, labels in by_method.items())
    ]
    v = r.values
    if v.get("evaluation.clustered_by"):
        parts.append(f"resampling clustered by {v['evaluation.clustered_by']}")
    if r.provenance.get("seed") is not None:
        parts.append(f"seed {r.provenance['seed']}")
    if v.get("subgroup.adjust"):
        parts.append(f"subgroup-vs-rest tests {v['subgroup.adjust']}-adjusted")
    if v.get("shift.drift_confidence_level"):
        parts.append(f"drift tests at family-wise {num(v['shift.drift_confidence_level'], 2)}")
    return Evidence("; ".join(parts) + ".")


def robustness(r: ValidationResult) -> Evidence | None:
    v = r.values
    parts = []
    if v.get("subgroup.columns"):
        parts.append(f"subgroups by {join(v['subgroup.columns'])}")
    for name, prefix in split_prefixes(r)[1:]:
        if f"{prefix}shift.n_drifted" in v:
            bits = [f"{v[f'{prefix}shift.n_drifted']}/{v[f'{prefix}shift.n_tested']} features"]
            for k, label in (("bbsd_p_value", "BBSD"), ("mmd_p_value", "MMD")):
                if f"{prefix}shift.{k}" in v:
                    bits.append(f"{label} p {num(v[f'{prefix}shift.{k}'])}")
            parts.append(f"drift {name} vs {v.get('shift.reference_split')}: {', '.join(bits)}")
        if est(r, f"{prefix}shift.estimated_accuracy") is not None:
            parts.append(f"label-free accuracy estimate on {name}")
    if r.tables.get("conformal.by_group"):
        parts.append("conformal coverage per group")
    if v.get("calibration.temperature") is not None:
        parts.append(f"temperature recalibration (T {num(v['calibration.temperature'])})")
    if not parts:
        return None
    return Evidence("; ".join(parts) + ".")


def _split_line(r: ValidationResult, name: str, prefix: str) -> str:
    v = r.values
    size = f"{v.get(f'{prefix}cohort.n_cases')} cases"
    if v.get(f"{prefix}cohort.n_patients") is not None:
        size += f", {v[f'{prefix}cohort.n_patients']} patients"
    return f"'{name}' ({size}): AUROC {ci(est(r, f'{prefix}discrimination.auroc'))}"


def internal(r: ValidationResult) -> Evidence | None:
    prefixes = split_prefixes(r)
    if not prefixes or est(r, "discrimination.auroc") is None:
        return None
    name, prefix = prefixes[0]
    line = _split_line(r, name, prefix)
    sens, spec = est(r, "operating_point.sensitivity"), est(r, "operating_point.specificity")
    return Evidence(f"Primary test split {line}, sensitivity {ci(sens)}, specificity {ci(spec)}.")


def external(r: ValidationResult) -> Evidence | None:
    prefixes = split_prefixes(r)
    if not prefixes:
        return None
    if len(prefixes) == 1:
        return Evidence(
            f"Only '{prefixes[0][0]}' was evaluated: no external test split; state why.", False
        )
    lines = [_split_line(r, name, prefix) for name, prefix in prefixes[1:]]
    return Evidence("Further test splits: " + "; ".join(lines) + ".")


def performance(r: ValidationResult) -> Evidence | None:
    lines = [_split_line(r, n, p) for n, p in split_prefixes(r)]
    if not lines:
        return None
    rows = subgroup_rows(r)
    if not rows:
        return Evidence("; ".join(lines) + "; no subgroup analysis.", complete=False)
    shown = sum(1 for row in rows if not row.get("suppressed"))
    text = (
        "; ".join(lines)
        + f"; AUROC with CIs for {shown} subgroups ({len(rows) - shown} suppressed as small)"
    )
    worst = _worst(r)
    if worst:
        text += "; lowest: " + join(worst, 3)
    columns = r.values.get("subgroup.columns") or []
    return Evidence(text + ".", complete=any(c in columns for c in _DEMOGRAPHIC))


def diagnostic(r: ValidationResult) -> Evidence | None:
    parts = []
    for name, prefix in split_prefixes(r):
        ms = [
            f"{label} {ci(e)}"
            for m, label in _THRESHOLD_METRICS.items()
            if (e := est(r, f"{prefix}operating_point.{m}")) is not None
        ]
        if ms:
            parts.append(f"{name}: " + ", ".join(ms))
    if not parts:
        return None
    curves = [
        label
        for key, label in (("curves.roc", "ROC"), ("calibration.reliability", "reliability"))
        if key in r.tables
    ]
    text = f"At {_threshold(r)}: " + "; ".join(parts)
    if curves:
        text += f"; {' and '.join(curves)} curves"
    best = [
        f"{c} {r.values[f'subgroup.{c}.best_auroc']}"
        for c in r.values.get("subgroup.columns") or []
        if f"subgroup.{c}.best_auroc" in r.values
    ]
    if best:
        text += f"; best AUROC: {join(best, 3)}; worst: {join(_worst(r), 3)}"
    return Evidence(text + ".", complete=len(curves) == 2)


def failure(r: ValidationResult) -> Evidence | None:
    parts = []
    for name, prefix in split_prefixes(r):
        sens, spec = (
            est(r, f"{prefix}operating_point.sensitivity"),
            est(r, f"{prefix}operating_point.specificity"),
        )
        n_pos = r.values.get(f"{prefix}cohort.n_positive")
        n_neg = r.values.get(f"{prefix}cohort.n_negative")
        if sens is None or spec is None or sens.value is None or spec.value is None:
            continue
        if n_pos is None or n_neg is None:
            continue
        tp, tn = round(sens.value * n_pos), round(spec.value * n_neg)
        parts.append(f"{name}: TP {tp}, FN {n_pos - tp}, FP {n_neg - tn}, TN {tn}")
    if not parts:
        return None
    text = f"Confusion at {_threshold(r)}: " + "; ".join(parts)
    worst = _worst(r)
    if worst:
        text += "; weakest subgroups " + join(worst, 3)
    err = r.values.get("uncertainty.total.error_auroc")
    if err is not None:
        text += f"; total uncertainty ranks errors with AUROC {num(err)}"
    return Evidence(text + ".")


def sample_size(r: ValidationResult) -> Evidence | None:
    e = est(r, "discrimination.auroc")
    prefixes = split_prefixes(r)
    if e is None or not prefixes:
        return None
    v = r.values
    text = (
        f"Primary split {v.get('cohort.n_cases')} cases"
        + (f", {v['cohort.n_patients']} patients" if v.get("cohort.n_patients") else "")
        + f", {v.get('cohort.n_positive')} positive"
    )
    if e.low is not None and e.high is not None:
        text += f"; achieved AUROC CI width {e.high - e.low:.3f}"
    rows = subgroup_rows(r)
    if rows:
        under = sum(1 for row in rows if row.get("underpowered"))
        text += (
            f"; {under} of {len(rows)} subgroups below {v.get('subgroup.min_events')} events or "
            f"{v.get('subgroup.min_non_events')} non-events"
        )
    return Evidence(text + ".", complete=e.low is not None)


def fairness(r: ValidationResult) -> Evidence | None:
    columns = [c for c in r.values.get("subgroup.columns") or [] if c in _DEMOGRAPHIC]
    if not columns:
        return None
    text = f"Performance by {join(columns)} with CIs and differences from the rest"
    if r.values.get("subgroup.adjust"):
        text += f" ({r.values['subgroup.adjust']}-adjusted)"
    worst = _worst(r, tuple(columns))
    return Evidence(text + ("; lowest: " + join(worst) if worst else "") + ".", complete=False)


def heterogeneity(r: ValidationResult) -> Evidence | None:
    parts = []
    for column in r.values.get("subgroup.columns") or []:
        if column not in _SITE:
            continue
        cells = [
            f"{row['value']} {ci(row['metrics']['auroc']['estimate'])}"
            for row in r.tables.get(f"subgroup.{column}") or []
            if not row.get("suppressed") and "auroc" in row.get("metrics", {})
        ]
        if cells:
            parts.append(f"AUROC by {column}: " + join(cells))
    if not parts and len(split_prefixes(r)) > 1:
        parts = [_split_line(r, n, p) for n, p in split_prefixes(r)]
    if not parts:
        return None
    return Evidence("; ".join(parts) + ".")


def operating_point(r: ValidationResult) -> Evidence | None:
    v = r.values
    if "operating_point.threshold" not in v:
        return None
    text = f"Outputs class probabilities; binary calls at {_threshold(r)}"
    if v.get("triage.threshold") is not None:
        text += (
            f"; triage threshold {num(v['triage.threshold'])} keeps the false-negative rate "
            f"at most {num(v.get('triage.max_fnr'), 2)} (conformal risk control)"
        )
    return Evidence(text + ".", complete=False)


def recalibration(r: ValidationResult) -> Evidence | None:
    v = r.values
    if v.get("calibration.temperature") is None:
        return None
    parts = [
        f"{name} ECE {num(v.get(f'{p}calibration.ece_point'))} -> "
        f"{num(v.get(f'{p}calibration.after.ece_point'))}"
        for name, p in split_prefixes(r)
        if f"{p}calibration.after.ece_point" in v
    ]
    text = (
        f"Temperature scaling fitted on '{v.get('calibration.temperature_fitted_on')}' "
        f"(T {num(v['calibration.temperature'])})"
    )
    return Evidence(text + ("; " + "; ".join(parts) if parts else "") + ".", complete=False)


def explainability(r: ValidationResult) -> Evidence | None:
    facts = {k: x for k, x in r.values.items() if k.startswith("explainability.")}
    if not facts:
        return None
    return Evidence("; ".join(f"{k[15:]}: {x}" for k, x in sorted(facts.items())) + ".", False)


def availability(r: ValidationResult) -> Evidence | None:
    p = r.provenance
    versions = p.get("versions")
    if not isinstance(versions, dict):
        versions = {}
    parts = []
    if versions.get("medval"):
        parts.append(f"analysis by medval {versions['medval']} (Apache-2.0)")
    for key, label in (
        ("model_sha256", "model"),
        ("data_manifest_sha256", "data manifest"),
        ("spec_sha256", "spec"),
    ):
        if p.get(key):
            parts.append(f"{label} SHA-256 {str(p[key])[:16]}…")
    if not parts:
        return None
    return Evidence("; ".join(parts) + ".", complete=False)


EVAL_RULES: dict[str, Any] = {
    "model": model,
    "software": software,
    "training_record": training_record,
    "ensembling": ensembling,
    "metrics": metrics,
    "statistics": statistics,
    "robustness": robustness,
    "internal": internal,
    "external": external,
    "performance": performance,
    "diagnostic": diagnostic,
    "failure": failure,
    "sample_size": sample_size,
    "fairness": fairness,
    "heterogeneity": heterogeneity,
    "operating_point": operating_point,
    "recalibration": recalibration,
    "explainability": explainability,
    "availability": availability,
}
