"""The key findings of a regression result: what a reader must not miss.

Each sentence rests on a confidence interval that excludes the comparison
(another split's interval, 0, a coverage target), so that noise is not called
a finding; the numbers come with their unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medval._result import ValidationResult
from medval.report._regression_format import UnitFormat, estimate_dict

__all__ = ["regression_findings", "subgroup_columns"]

_WORST = ".worst_mae_group"


def subgroup_columns(result: ValidationResult) -> list[str]:
    """The subgroup columns of a regression result, in the order they were evaluated.

    Every column analysed has a ``subgroup.<column>.worst_mae_group`` value
    (None when no group was large enough); the keys are listed, not looked up.
    """
    return [
        k[len("subgroup.") : -len(_WORST)]
        for k in result.values
        if k.startswith("subgroup.") and k.endswith(_WORST)
    ]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pct_ci(d: Mapping[str, Any]) -> str:
    if d.get("low") is None or d.get("high") is None:
        return _pct(d["value"])
    return f"{_pct(d['value'])} (CI {_pct(d['low'])}–{_pct(d['high'])})"


def _slope(d: Mapping[str, Any]) -> str:
    ci = "" if d.get("low") is None else f" (CI {d['low']:.3f} to {d['high']:.3f})"
    return f"{d['value']:.3f}{ci}"


def _bounded(e: Any) -> dict[str, Any] | None:
    """The estimate as a dict when it has a value and an interval, else None."""
    d = estimate_dict(e)
    if d is None or d["value"] is None or d["low"] is None or d["high"] is None:
        return None
    return d


def _collapse(result: ValidationResult, f: UnitFormat) -> list[str]:
    out = []
    for name, p in result.split_prefixes():
        if not result.values.get(f"{p}regression.collapsed"):
            continue
        target = result.values.get(f"{p}regression.target") or {}
        out.append(
            f"The model's predictions are constant on '{name}' (SD of the predictions "
            f"{f.qty(target.get('prediction_sd'))}, where the reference values vary with SD "
            f"{f.qty(target.get('sd'))}). No number below is meaningful until this is "
            "explained. First suspect: the preprocessing or the output head; check that "
            "[preprocess] and [model] output match what the model was trained with."
        )
    return out


def _transfer(result: ValidationResult, f: UnitFormat) -> list[str]:
    """MAE of every further split against the primary one."""
    splits = result.split_prefixes()
    primary = _bounded(result.estimates.get("regression.mae"))
    if primary is None or len(splits) < 2:
        return []
    out = []
    first = splits[0][0]
    for name, p in splits[1:]:
        e = _bounded(result.estimates.get(f"{p}regression.mae"))
        if e is None:
            continue
        if e["low"] > primary["high"]:
            ratio = (
                f", {e['value'] / primary['value']:.1f} times as large"
                if primary["value"] > 0
                else ""
            )
            out.append(
                f"MAE on '{name}' ({f.sentence(e)}) is clearly worse than on '{first}' "
                f"({f.sentence(primary)}){ratio}: the model does not transfer to '{name}' as "
                "validated."
            )
        elif e["high"] >= primary["low"]:
            out.append(
                f"MAE on '{name}' ({f.qty(e['value'])}) is compatible with '{first}' "
                f"({f.qty(primary['value'])}) at the reported confidence level."
            )
    return out


def _off_zero(d: Mapping[str, Any]) -> bool:
    """True when a bounded estimate's interval excludes 0."""
    return bool(d["low"] > 0 or d["high"] < 0)


def _direction(slope: Mapping[str, Any]) -> str:
    if slope["high"] < 0:
        return (
            ": high values are under-predicted and low ones over-predicted (regression "
            "towards the mean)"
        )
    if slope["low"] > 0:
        return ": high values are over-predicted and low ones under-predicted"
    return ""


def _bias(result: ValidationResult, f: UnitFormat) -> list[str]:
    """Systematic and proportional bias whose intervals exclude 0."""
    out = []
    for name, p in result.split_prefixes():
        bias = _bounded(result.estimates.get(f"{p}regression.bias"))
        if bias is not None and _off_zero(bias):
            word = "higher" if bias["value"] > 0 else "lower"
            out.append(
                f"On '{name}' the predictions are systematically {word} than the reference: "
                f"mean difference (prediction − reference) {f.sentence(bias)}."
            )
        prop = _bounded(result.estimates.get(f"{p}regression.agreement.proportional_bias"))
        slope = _bounded(result.estimates.get(f"{p}regression.error_slope"))
        if prop is not None and _off_zero(prop):
            text = (
                f"Proportional bias on '{name}': the slope of the difference (prediction − "
                f"reference) on the pair mean is {_slope(prop)} (Bland–Altman regression)"
            )
            if slope is not None and _off_zero(slope):
                text += f"; against the true value the error slope is {_slope(slope)}"
                text += _direction(slope)
            elif slope is not None:
                text += (
                    f"; against the true value the error slope is {_slope(slope)}, compatible "
                    "with 0, so the Bland–Altman slope may only reflect that the pair mean "
                    "carries the model's error (Krouwer 2008)"
                )
            out.append(text + ".")
        elif slope is not None and _off_zero(slope):
            out.append(
                f"On '{name}' the error depends on the true value: the slope of the error on "
                f"the true value is {_slope(slope)}{_direction(slope)}."
            )
    return out


def _subgroups(result: ValidationResult, f: UnitFormat) -> list[str]:
    """A worst group whose MAE interval lies above the best group's."""
    v = result.values
    out = []
    for column in subgroup_columns(result):
        worst = v[f"subgroup.{column}{_WORST}"]
        rows = [
            r
            for r in result.tables.get(f"subgroup.{column}", [])
            if "mae" in r and _bounded(r["mae"]) is not None
        ]
        bad = next((r for r in rows if r["group"] == worst), None)
        if bad is None or len(rows) < 2:
            continue
        best = min(rows, key=lambda r: r["mae"]["value"])
        if bad["mae"]["low"] > best["mae"]["high"]:
            out.append(
                f"MAE in {column} = {worst} ({f.sentence(bad['mae'])}, {bad['n']} cases) is "
                f"clearly higher than in {column} = {best['group']} "
                f"({f.sentence(best['mae'])}); evaluated splits pooled."
            )
    return out


def _coverage(result: ValidationResult, f: UnitFormat) -> list[str]:
    v = result.values
    if "regression.interval.score" not in v:
        return []
    target = float(v["regression.interval.target"])
    mondrian = v.get("regression.interval.mondrian")
    out = []
    if "regression.interval.quantile" in v and v["regression.interval.quantile"] is None:
        out.append(
            f"The conformal quantile is infinite: {v.get('regression.interval.n_calibration')} "
            f"calibration cases are too few for a {target:.0%} target, so the prediction "
            "intervals are unbounded. Add calibration cases or lower "
            "[regression] confidence_level."
        )
    for i, (name, p) in enumerate(result.split_prefixes()):
        key = f"{p}regression.interval"
        cov = _bounded(result.estimates.get(f"{key}.coverage"))
        whole = cov is not None and cov["high"] < target
        if cov is not None and whole:
            why = (
                ""
                if i == 0
                else (
                    f"; the guarantee needs cases exchangeable with the calibration cases, and "
                    f"'{name}' is not"
                )
            )
            out.append(
                f"The {target:.0%} conformal prediction intervals under-cover on '{name}': "
                f"coverage {_pct_ci(cov)}{why}."
            )
        # A split that under-covers as a whole: its groups' lines would repeat it.
        for r in [] if whole else result.tables.get(f"{key}.by_group", []):
            c = _bounded(r.get("coverage"))
            if c is None or c["high"] >= target:
                continue
            fix = (
                ""
                if mondrian == r["column"]
                else (
                    f'; Mondrian intervals ([regression] mondrian = "{r["column"]}") calibrate '
                    "each group on its own"
                )
            )
            out.append(
                f"On '{name}' the {target:.0%} prediction intervals cover only {_pct_ci(c)} of "
                f"{r['column']} = {r['group']} ({r['n']} cases): the guarantee is marginal, "
                f"not per group{fix}."
            )
        fallback = v.get(f"{key}.fallback_groups") if mondrian else None
        if fallback:
            out.append(
                f"On '{name}', {mondrian} group(s) {', '.join(map(str, fallback))} had too "
                "few calibration cases for a quantile of their own and use the pooled one."
            )
    return out


def _sigma(result: ValidationResult, f: UnitFormat) -> list[str]:
    v = result.values
    if "regression.uncertainty.sigma_from" not in v:
        return []
    out = []
    for name, p in result.split_prefixes():
        key = f"{p}regression.uncertainty"
        rank = _bounded(result.estimates.get(f"{key}.sigma_rank"))
        if rank is not None and rank["low"] <= 0:
            how = "is negative" if rank["high"] <= 0 else "includes 0"
            out.append(
                f"On '{name}' the model's sigma does not rank its errors: the Spearman "
                f"correlation of sigma with the absolute error is {_slope(rank)}, whose "
                f"interval {how}; referring the most uncertain cases does no better than "
                "referring at random."
            )
        over, under = [], []
        for r in result.tables.get(f"{key}.gaussian", []):
            c = _bounded(r.get("coverage"))
            if c is None:
                continue
            level = f"{r['nominal']:.0%} nominal: {_pct_ci(c)}"
            if c["high"] < r["nominal"]:
                over.append(level)
            elif c["low"] > r["nominal"]:
                under.append(level)
        if over:
            out.append(
                f"On '{name}' sigma is over-confident: mean ± z·sigma covers less than it "
                f"claims ({'; '.join(over)})."
            )
        if under:
            out.append(
                f"On '{name}' sigma is under-confident: mean ± z·sigma covers more than it "
                f"claims ({'; '.join(under)}), so its intervals are wider than needed."
            )
    return out


def regression_findings(result: ValidationResult) -> list[str]:
    """Plain sentences a reader can take in within a minute; empty for other tasks.

    In order: collapsed predictions, transfer to further splits (MAE),
    systematic and proportional bias, the worst subgroup, conformal
    coverage (overall and per group), and the model's sigma (ranking of the
    errors, Gaussian calibration).
    """
    if result.values.get("task.kind") != "regression":
        return []
    f = UnitFormat.of(result)
    return [
        *_collapse(result, f),
        *_transfer(result, f),
        *_bias(result, f),
        *_subgroups(result, f),
        *_coverage(result, f),
        *_sigma(result, f),
    ]
