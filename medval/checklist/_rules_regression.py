"""Evidence rules for regression results: the same checklist items, from the error metrics.

Each rule here replaces the classifier's rule of the same name when the result
is a regression (``task.kind = "regression"``); :func:`medval.checklist._rules.for_task`
picks. Numbers carry the target's unit (``task.unit``); only the keys a
regression evaluation writes are read (``regression.*``, ``subgroup.<column>``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from medval.checklist._model import Evidence
from medval.checklist._rules_eval import interval_methods
from medval.checklist._rules_regression_data import REGRESSION_DATA_RULES, target_name, unit_suffix
from medval.checklist._text import ci, est, join, num, split_prefixes

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["REGRESSION_RULES", "subgroup_columns"]

Rule = Callable[["ValidationResult"], Evidence | None]

_DEMOGRAPHIC = ("sex", "age_band", "race", "ethnicity")
_SITE = ("manufacturer", "model_name", "site_key", "institution")
_WORST = ".worst_mae_group"


def subgroup_columns(r: ValidationResult) -> list[str]:
    """The subgroup columns of a regression result, in the order evaluated."""
    return [
        k[len("subgroup.") : -len(_WORST)]
        for k in r.values
        if k.startswith("subgroup.") and k.endswith(_WORST)
    ]


def _errors(r: ValidationResult, name: str, prefix: str) -> str:
    u = unit_suffix(r)
    n = r.values.get(f"{prefix}regression.n_cases")
    return (
        f"'{name}' ({n} cases): MAE {ci(est(r, f'{prefix}regression.mae'), 2)}{u}, RMSE "
        f"{ci(est(r, f'{prefix}regression.rmse'), 2)}{u}, bias "
        f"{ci(est(r, f'{prefix}regression.bias'), 2)}{u}"
    )


def _agreement(r: ValidationResult, prefix: str) -> str:
    u = unit_suffix(r)
    return (
        f"limits of agreement {ci(est(r, f'{prefix}regression.agreement.loa_low'), 2)} to "
        f"{ci(est(r, f'{prefix}regression.agreement.loa_high'), 2)}{u}"
    )


def _intervals(r: ValidationResult) -> bool:
    return "regression.interval.score" in r.values


def _sigma(r: ValidationResult) -> bool:
    return "regression.uncertainty.sigma_from" in r.values


def _coverage(r: ValidationResult, prefix: str) -> str:
    target = num(r.values.get("regression.interval.target"), 2)
    return f"{target} interval coverage {ci(est(r, f'{prefix}regression.interval.coverage'))}"


def _lines(r: ValidationResult) -> list[str]:
    """One line per evaluated split: errors, and coverage where intervals were made."""
    return [
        _errors(r, n, p) + (f", {_coverage(r, p)}" if _intervals(r) else "")
        for n, p in split_prefixes(r)
    ]


def _worst(r: ValidationResult, columns: tuple[str, ...] | None = None) -> list[str]:
    out = []
    for column in subgroup_columns(r):
        worst = r.values.get(f"subgroup.{column}{_WORST}")
        if worst is None or (columns is not None and column not in columns):
            continue
        out.append(
            f"{column} {worst} MAE {ci(est(r, f'subgroup.{column}={worst}.regression.mae'), 2)}"
        )
    return out


def structured_summary(r: ValidationResult) -> Evidence | None:
    lines = _lines(r)
    if not lines:
        return None
    status = r.values.get("gate.status")
    tail = f"; acceptance criteria: {status}" if status else ""
    return Evidence(f"{target_name(r)}: " + "; ".join(lines) + tail + ".", complete=False)


def metrics(r: ValidationResult) -> Evidence | None:
    if est(r, "regression.mae") is None:
        return None
    unit = r.values.get("task.unit")
    parts = [
        "MAE, median absolute error, RMSE and bias (prediction − reference)"
        + (f" in {unit}" if unit else ""),
        "Bland–Altman bias and limits of agreement, proportional bias (slope of the "
        "difference on the pair mean) and the error slope on the true value",
        "error by bin of the true value",
    ]
    if _intervals(r):
        parts.append(
            f"conformal prediction intervals ({r.values['regression.interval.score']} score, "
            f"target coverage {num(r.values.get('regression.interval.target'), 2)}): coverage "
            "overall, per group, by true value and by sigma, and width"
        )
    if _sigma(r):
        parts.append(
            "the model's sigma: Gaussian calibration, NLL, Spearman correlation with the "
            "absolute error, referral curve"
        )
    return Evidence("; ".join(parts) + ".")


def statistics(r: ValidationResult) -> Evidence | None:
    parts = interval_methods(r, (
        ("regression.mae", "MAE, median AE, RMSE"),
        ("regression.bias", "bias"),
        ("regression.agreement.loa_low", "limits of agreement"),
        ("regression.agreement.proportional_bias", "proportional bias"),
        ("regression.interval.coverage", "interval coverage"),
        ("regression.uncertainty.sigma_rank", "Spearman of sigma and |error|"),
    ))  # fmt: skip
    return None if parts is None else Evidence("; ".join(parts) + ".")


def robustness(r: ValidationResult) -> Evidence | None:
    parts = []
    columns = subgroup_columns(r)
    if columns:
        parts.append(f"errors by subgroup of {join(columns)}")
    if len(split_prefixes(r)) > 1:
        parts.append(f"errors on {len(split_prefixes(r))} evaluated splits")
    if _intervals(r):
        parts.append("conformal interval coverage per group, by true value and by sigma")
        if r.values.get("regression.interval.mondrian"):
            parts.append(f"Mondrian intervals by {r.values['regression.interval.mondrian']}")
    if not parts:
        return None
    return Evidence("; ".join(parts) + ".")


def internal(r: ValidationResult) -> Evidence | None:
    prefixes = split_prefixes(r)
    if not prefixes or est(r, "regression.mae") is None:
        return None
    name, prefix = prefixes[0]
    return Evidence(f"Primary test split {_errors(r, name, prefix)}, {_agreement(r, prefix)}.")


def external(r: ValidationResult) -> Evidence | None:
    prefixes = split_prefixes(r)
    if not prefixes:
        return None
    if len(prefixes) == 1:
        return Evidence(
            f"Only '{prefixes[0][0]}' was evaluated: no external test split; state why.", False
        )
    lines = [f"{_errors(r, n, p)}, {_agreement(r, p)}" for n, p in prefixes[1:]]
    return Evidence("Further test splits: " + "; ".join(lines) + ".")


def performance(r: ValidationResult) -> Evidence | None:
    lines = _lines(r)
    if not lines:
        return None
    columns = subgroup_columns(r)
    if not columns:
        return Evidence("; ".join(lines) + "; no subgroup analysis.", complete=False)
    rows = [row for c in columns for row in r.tables.get(f"subgroup.{c}") or []]
    shown = sum(1 for row in rows if "mae" in row)
    text = "; ".join(lines) + (
        f"; MAE and bias with CIs for {shown} subgroups of {join(columns)} "
        f"({len(rows) - shown} too small to estimate)"
    )
    worst = _worst(r)
    if worst:
        text += "; highest MAE: " + join(worst, 3)
    return Evidence(text + ".", complete=any(c in columns for c in _DEMOGRAPHIC))


def diagnostic(r: ValidationResult) -> Evidence | None:
    parts = [
        f"{n}: bias {ci(est(r, f'{p}regression.agreement.bias'), 2)}{unit_suffix(r)}, "
        + _agreement(r, p)
        for n, p in split_prefixes(r)
        if est(r, f"{p}regression.agreement.bias") is not None
    ]
    if not parts:
        return None
    curves = ["Bland–Altman"]
    if _sigma(r):
        curves.append("Gaussian calibration of sigma")
    text = "Agreement " + "; ".join(parts) + f"; {' and '.join(curves)} plots"
    worst = _worst(r)
    if worst:
        text += f"; highest MAE by subgroup: {join(worst, 3)}"
    return Evidence(text + ".", complete=_sigma(r))


def failure(r: ValidationResult) -> Evidence | None:
    parts = []
    u = unit_suffix(r)
    for name, p in split_prefixes(r):
        bins = r.tables.get(f"{p}regression.by_value") or []
        biases = [b["bias"]["value"] for b in bins if b.get("bias", {}).get("value") is not None]
        bits = []
        if biases:
            bits.append(
                f"bias from {num(min(biases), 2)} to {num(max(biases), 2)}{u} across "
                f"{len(bins)} bins of the true value"
            )
        prop = est(r, f"{p}regression.agreement.proportional_bias")
        if prop is not None:
            bits.append(f"proportional bias {ci(prop)}")
        slope = est(r, f"{p}regression.error_slope")
        if slope is not None:
            bits.append(f"error slope on the true value {ci(slope)}")
        rank = est(r, f"{p}regression.uncertainty.sigma_rank")
        if rank is not None:
            bits.append(f"Spearman of sigma and |error| {ci(rank)}")
        if bits:
            parts.append(f"{name}: " + ", ".join(bits))
    if not parts:
        return None
    text = "; ".join(parts)
    worst = _worst(r)
    if worst:
        text += "; worst groups " + join(worst, 3)
    return Evidence(text + ".")


def sample_size(r: ValidationResult) -> Evidence | None:
    e = est(r, "regression.mae")
    prefixes = split_prefixes(r)
    if e is None or not prefixes:
        return None
    text = f"Primary split {r.values.get('regression.n_cases')} cases"
    if e.low is not None and e.high is not None:
        text += f"; achieved MAE CI width {e.high - e.low:.2f}{unit_suffix(r)}"
    cov = est(r, "regression.interval.coverage")
    if cov is not None and cov.low is not None and cov.high is not None:
        text += f"; interval coverage CI width {cov.high - cov.low:.3f}"
    return Evidence(text + ".", complete=e.low is not None)


def fairness(r: ValidationResult) -> Evidence | None:
    columns = [c for c in subgroup_columns(r) if c in _DEMOGRAPHIC]
    if not columns:
        return None
    worst = _worst(r, tuple(columns))
    text = f"MAE and bias with CIs by {join(columns)}"
    if _intervals(r):
        text += "; conformal interval coverage per group"
    return Evidence(text + ("; highest MAE: " + join(worst) if worst else "") + ".", False)


def heterogeneity(r: ValidationResult) -> Evidence | None:
    parts = []
    u = unit_suffix(r)
    for column in subgroup_columns(r):
        if column not in _SITE:
            continue
        cells = [
            f"{row['group']} {ci(row['mae'], 2)}{u}"
            for row in r.tables.get(f"subgroup.{column}") or []
            if "mae" in row
        ]
        if cells:
            parts.append(f"MAE by {column}: " + join(cells))
    if not parts and len(split_prefixes(r)) > 1:
        parts = [_errors(r, n, p) for n, p in split_prefixes(r)]
    if not parts:
        return None
    return Evidence("; ".join(parts) + ".")


REGRESSION_RULES: dict[str, Rule] = {
    "structured_summary": structured_summary,
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
    **REGRESSION_DATA_RULES,
}
