"""Evidence rules about the model and how it was evaluated: metrics, statistics, set-up.

See :mod:`medval.checklist._rules_data` for the contract of a rule. The rules
about the results (per split, subgroup and site) are in
:mod:`medval.checklist._rules_results`; :data:`EVAL_RULES` registers both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medval.checklist._model import Evidence
from medval.checklist._rules_results import (
    THRESHOLD_METRICS,
    diagnostic,
    external,
    failure,
    fairness,
    heterogeneity,
    internal,
    performance,
    sample_size,
    threshold_text,
)
from medval.checklist._text import est, join, num, split_prefixes

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["EVAL_RULES"]


def model(r: ValidationResult) -> Evidence | None:
    p, v = r.provenance, r.values
    parts = []
    if p.get("model_file"):
        kind = p.get("model_kind", "unknown kind")
        parts.append(f"model file {_file_names(p['model_file'])} ({_file_names(kind)})")
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


def _file_names(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def ensembling(r: ValidationResult) -> Evidence | None:
    p = r.provenance
    t = r.values.get("uncertainty.mc_samples")
    members = p.get("ensemble_members")
    tta = f", test-time augmentation {p['tta']}" if p.get("tta") else ""
    if members:
        # uncertainty.mc_samples counts every member's samples; the spec's count is per member.
        mc = (p.get("preprocess") or {}).get("MC-dropout samples")
        each = f"the mean of {mc} MC-dropout passes" if mc else "one deterministic pass"
        return Evidence(
            f"{members} ensemble members ({_file_names(p.get('model_file', ''))}), each "
            f"{each}; probabilities are the mean over the members{tta}.",
            False,
        )
    how = f"the mean of {t} MC-dropout passes" if t else "one deterministic pass"
    if p.get("model_file"):
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
    present = [label for m, label in THRESHOLD_METRICS.items() if est(r, f"operating_point.{m}")]
    if present:
        parts.append(
            f"{', '.join(present)}, accuracy, balanced accuracy, F1 at {threshold_text(r)}"
        )
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


def interval_methods(r: ValidationResult, labels: Sequence[tuple[str, str]]) -> list[str] | None:
    """ "95% CIs: <labels> by <method>", the clustering and the seed; None without intervals.

    ``labels`` pairs a result key with the metric names its interval method covers.
    """
    by_method: dict[str, list[str]] = {}
    for key, label in labels:
        e = est(r, key)
        if e is not None and e.method:
            extra = f", {e.n_resamples} resamples" if e.n_resamples else ""
            by_method.setdefault(f"{e.method}{extra}", []).append(label)
    if not by_method:
        return None
    cl = r.provenance.get("confidence_level") or next(iter(r.estimates.values())).confidence_level
    parts = [
        f"{round(100 * cl)}% CIs: "
        + "; ".join(f"{', '.join(names)} by {method}" for method, names in by_method.items())
    ]
    if r.values.get("evaluation.clustered_by"):
        parts.append(f"resampling clustered by {r.values['evaluation.clustered_by']}")
    if r.provenance.get("seed") is not None:
        parts.append(f"seed {r.provenance['seed']}")
    return parts


def statistics(r: ValidationResult) -> Evidence | None:
    parts = interval_methods(r, (
        ("discrimination.auroc", "AUROC"),
        ("discrimination.auprc", "AUPRC"),
        ("operating_point.sensitivity", "sensitivity/specificity"),
        ("operating_point.ppv", "PPV/NPV"),
        ("operating_point.f1", "F1"),
        ("calibration.ece", "ECE"),
        ("conformal.coverage", "coverage"),
    ))  # fmt: skip
    if parts is None:
        return None
    v = r.values
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


def operating_point(r: ValidationResult) -> Evidence | None:
    v = r.values
    if "operating_point.threshold" not in v:
        return None
    text = f"Outputs class probabilities; binary calls at {threshold_text(r)}"
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
