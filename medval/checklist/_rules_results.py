"""Evidence rules about the results: performance per split, subgroup and site.

See :mod:`medval.checklist._rules_data` for the contract of a rule. The
rules are registered in :data:`medval.checklist._rules_eval.EVAL_RULES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medval.checklist._model import Evidence
from medval.checklist._text import ci, est, join, num, split_prefixes, subgroup_rows

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = [
    "THRESHOLD_METRICS",
    "diagnostic",
    "external",
    "failure",
    "fairness",
    "heterogeneity",
    "internal",
    "performance",
    "sample_size",
    "threshold_text",
]

#: Operating-point metric key -> label.
THRESHOLD_METRICS = {
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "ppv": "PPV",
    "npv": "NPV",
}
_DEMOGRAPHIC = ("sex", "age_band", "race", "ethnicity")
_SITE = ("site_key", "manufacturer", "model_name")


def threshold_text(r: ValidationResult) -> str:
    """The operating threshold in words, with its rule and the split it was chosen on."""
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
            for m, label in THRESHOLD_METRICS.items()
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
    text = f"At {threshold_text(r)}: " + "; ".join(parts)
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
    text = f"Confusion at {threshold_text(r)}: " + "; ".join(parts)
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
