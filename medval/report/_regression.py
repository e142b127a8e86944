"""The report's regression sections, from a regression result's keys.

Read only: every number shown is one of the result's (``regression.*``,
``subgroup.<column>``), formatted in the target's unit by
:class:`~medval.report._regression_format.UnitFormat`. A section whose keys
are absent (no calibration split: no intervals; no sigma: no uncertainty) is
replaced by the line of ``evaluation.skipped`` that says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from medval._result import ValidationResult
from medval.report._regression_findings import regression_findings, subgroup_columns
from medval.report._regression_format import UnitFormat, estimate_dict, percent_cell, plain_cell
from medval.report._sections import SMALL_CELL

__all__ = ["regression_context", "regression_findings", "with_target_text"]

_SUMMARY = (("mae", "MAE"), ("median_ae", "Median AE"), ("rmse", "RMSE"), ("bias", "Bias"))
_AGREEMENT = ("bias", "loa_low", "loa_high")
#: Conformity score -> what the report says it is.
SCORES = {
    "absolute": "the absolute residual |truth − prediction| (split conformal, Lei et al. 2018)",
    "normalized": "the residual divided by the model's sigma (locally weighted split "
    "conformal, Lei et al. 2018, sec. 5.2)",
    "cqr": "conformalized quantile regression on the outer quantile heads (Romano, "
    "Patterson & Candès 2019)",
}
#: Report section -> the evaluation section behind it.
_BEHIND = {"intervals": "regression_intervals", "uncertainty": "regression_uncertainty"}


def _omitted(result: ValidationResult, part: str) -> str:
    """Why a section is absent: its ``evaluation.skipped`` row, or a plain line."""
    for row in result.tables.get("evaluation.skipped", []):
        if row.get("section") == _BEHIND[part]:
            return f"Not run: {row['reason']}. To run it: {row['fix']}."
    return "Not in this result: the evaluation recorded no numbers for this section."


def _split(result: ValidationResult, f: UnitFormat, name: str, p: str) -> dict[str, Any]:
    from medval.report._regression_plots import bland_altman_svg

    v, est = result.values, result.estimates
    agreement = v.get(f"{p}regression.agreement") or {}
    lines = {k: estimate_dict(est.get(f"{p}regression.agreement.{k}")) for k in _AGREEMENT}
    points = agreement.get("points") or {}
    figure = None
    if points.get("mean") and lines["bias"] is not None:
        figure = Markup(
            bland_altman_svg(
                points["mean"],
                points["difference"],
                lines=lines,
                unit=f.unit,
                title=f"Bland–Altman: {name} (n={agreement.get('n', len(points['mean']))})",
            )
        )
    target = v.get(f"{p}regression.target") or {}
    return {
        "name": name,
        "n": v.get(f"{p}regression.n_cases"),
        "metrics": [f.cell(est.get(f"{p}regression.{m}")) for m, _ in _SUMMARY],
        "agreement": {
            **{k: f.cell(lines[k]) for k in _AGREEMENT},
            "proportional": plain_cell(est.get(f"{p}regression.agreement.proportional_bias")),
            "error_slope": plain_cell(est.get(f"{p}regression.error_slope")),
            "sd": f.num(agreement.get("sd")),
            "multiplier": agreement.get("multiplier"),
            "n_points": len(points.get("mean") or ()),
            "n": agreement.get("n"),
        },
        "bland_altman": figure,
        "target": {k: f.num(target.get(k)) for k in ("mean", "sd", "min", "max", "prediction_sd")}
        if target
        else None,
        "by_value": [
            _bin(f, r, "mae", "bias") for r in result.tables.get(f"{p}regression.by_value", [])
        ],
        "by_value_raw": result.tables.get(f"{p}regression.by_value", []),
    }


def _bin(f: UnitFormat, row: Mapping[str, Any], *cells: str) -> dict[str, Any]:
    """One bin row: its range in the unit, its count, and its estimates."""
    out: dict[str, Any] = {"range": f"{f.num(row['low'])}–{f.num(row['high'])}", "n": row["n"]}
    for name in cells:
        out[name] = percent_cell(row.get(name)) if name == "coverage" else f.cell(row.get(name))
    if "mean_width" in row:
        out["width"] = f.num(row["mean_width"])
    return out


def _subgroups(result: ValidationResult, f: UnitFormat) -> dict[str, Any] | None:
    """Per subgroup column: MAE, bias, RMSE per group; the worst group; a forest plot."""
    from medval.report._plots import forest_svg

    v = result.values
    columns = subgroup_columns(result)
    if not columns:
        return None
    blocks, forest = [], []
    for column in columns:
        worst = v.get(f"subgroup.{column}.worst_mae_group")
        rows = []
        for r in result.tables.get(f"subgroup.{column}", []):
            estimated = "mae" in r
            row = {
                "group": r["group"],
                "n": r["n"],
                "estimated": estimated,
                "suppressed": not estimated and r["n"] < SMALL_CELL,
                "reason": r.get("reason", ""),
                "worst": estimated and r["group"] == worst,
            }
            if estimated:
                row.update({m: f.cell(r[m]) for m in ("mae", "bias", "rmse")})
                mae = r["mae"]
                if mae.get("low") is not None and mae.get("value") is not None:
                    forest.append(
                        {
                            "label": f"{column} = {r['group']} (n={r['n']})",
                            "value": mae["value"],
                            "low": mae["low"],
                            "high": mae["high"],
                            "worst": row["worst"],
                        }
                    )
            rows.append(row)
        worst_mae = None if worst is None else v.get(f"subgroup.{column}.worst_mae")
        blocks.append(
            {"column": column, "rows": rows, "worst": worst, "worst_mae": f.qty(worst_mae)}
        )
    figure = None
    if forest:
        figure = Markup(
            forest_svg(
                forest,
                title="MAE by subgroup (evaluated splits pooled)",
                reference=None,
                xlabel=f"MAE{f.suffix} with its CI (square: worst group)",
            )
        )
    return {"blocks": blocks, "forest_svg": figure, "scope": list(v.get("subgroup.scope") or [])}


def _quantile(f: UnitFormat, score: str, q: Any) -> str:
    if q is None:
        return "∞ (too few calibration cases for the target: unbounded intervals)"
    return f"{q:.3f} × sigma" if score == "normalized" else f.qty(q)


def _flag(cell: Mapping[str, Any], target: float) -> str | None:
    """``"below"`` when the interval lies under the target; ``"under"`` for the point only."""
    if cell.get("value") is None:
        return None
    if cell.get("high") is not None and cell["high"] < target:
        return "below"
    return "under" if cell["value"] < target else None


def _intervals(result: ValidationResult, f: UnitFormat) -> dict[str, Any] | None:
    v = result.values
    if "regression.interval.score" not in v:
        return None
    score, target = v["regression.interval.score"], float(v["regression.interval.target"])
    mondrian = v.get("regression.interval.mondrian")
    splits, groups, by_value, by_sigma = [], [], [], []
    for name, p in result.split_prefixes():
        key = f"{p}regression.interval"
        cov = percent_cell(result.estimates.get(f"{key}.coverage"))
        splits.append(
            {
                "name": name,
                "coverage": cov,
                "flag": _flag(cov, target),
                "mean_width": f.num(v.get(f"{key}.mean_width")),
                "median_width": f.num(v.get(f"{key}.median_width")),
                "fallback": list(v.get(f"{key}.fallback_groups") or []) if mondrian else [],
            }
        )
        for r in result.tables.get(f"{key}.by_group", []):
            c = percent_cell(r.get("coverage"))
            small = c["value"] is None and r["n"] < SMALL_CELL
            groups.append(
                {
                    "split": name,
                    "column": r["column"],
                    "group": r["group"],
                    "n": r["n"],
                    "coverage": c,
                    "suppressed": small,
                    "reason": r.get("reason") or c["note"],
                    "width": f.num(r.get("mean_width")),
                    "flag": _flag(c, target),
                }
            )
        by_value.append(
            (name, [_bin(f, r, "coverage") for r in result.tables.get(f"{key}.by_value", [])])
        )
        if f"{key}.by_sigma" in result.tables:
            by_sigma.append(
                (name, [_bin(f, r, "coverage") for r in result.tables[f"{key}.by_sigma"]])
            )
    quantiles = (v.get("regression.interval.quantiles") or {}) if mondrian else {}
    return {
        "score": score,
        "score_text": SCORES.get(score, score),
        "target": target,
        "quantile": _quantile(f, score, v["regression.interval.quantile"])
        if "regression.interval.quantile" in v
        else "not recorded",
        "n_calibration": v.get("regression.interval.n_calibration"),
        "mondrian": mondrian,
        "quantiles": [{"group": g, "q": _quantile(f, score, q)} for g, q in quantiles.items()],
        "splits": splits,
        "groups": groups,
        "by_value": by_value,
        "by_sigma": by_sigma,
    }


def _decomposition(f: UnitFormat, d: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not d:
        return None
    share = d.get("epistemic_share")
    square = 2 * f.digits
    return {
        **{
            k: "—" if d.get(k) is None else f"{d[k]:.{square}f}"
            for k in ("total", "epistemic", "aleatoric")
        },
        "share": "—" if share is None else f"{100 * share:.0f}%",
        "n_samples": d.get("n_samples"),
        "unit": d.get("unit") or "",
        "aleatoric_from": d.get("aleatoric_from") or "",
    }


def _uncertainty(result: ValidationResult, f: UnitFormat) -> dict[str, Any] | None:
    from medval.report._plots import referral_svg
    from medval.report._regression_plots import coverage_svg

    v = result.values
    if "regression.uncertainty.sigma_from" not in v:
        return None
    outputs = v.get("regression.outputs") or {}
    sampled = int(outputs.get("mc_samples") or 0) >= 2
    splits, curves = [], []
    for name, p in result.split_prefixes():
        key = f"{p}regression.uncertainty"
        gaussian = result.tables.get(f"{key}.gaussian", [])
        curves.append((name, gaussian))
        referral = result.tables.get(f"{key}.referral", [])
        figure = None
        if referral:
            lines = [
                (label, [(r["referred"], r[k]) for r in referral if r.get(k) is not None])
                for k, label in (
                    ("mae", "by the model's sigma"),
                    ("oracle", "oracle (by the true error)"),
                    ("random", "at random"),
                )
            ]
            figure = Markup(
                referral_svg(
                    lines,
                    title=f"Referral by sigma: {name}",
                    ylabel=f"MAE of the retained cases{f.suffix}",
                )
            )
        rows = []
        for r in gaussian:
            c = percent_cell(r.get("coverage"))
            rows.append(
                {
                    "nominal": f"{100 * r['nominal']:.0f}%",
                    "coverage": c,
                    "width": f.num(r.get("mean_width")),
                    "flag": _flag(c, r["nominal"]),
                    "over": c.get("low") is not None and c["low"] > r["nominal"],
                }
            )
        splits.append(
            {
                "name": name,
                "decomposition": _decomposition(f, v.get(f"{key}.decomposition"))
                if sampled
                else None,
                "nll": "—" if v.get(f"{key}.nll") is None else f"{v[f'{key}.nll']:.3f}",
                "mean_sigma": f.num(v.get(f"{key}.mean_sigma")),
                "sigma_rank": plain_cell(result.estimates.get(f"{key}.sigma_rank")),
                "gaussian": rows,
                "referral": [
                    {
                        "referred": f"{100 * r['referred']:.0f}%",
                        **{k: f.num(r.get(k)) for k in ("mae", "oracle", "random")},
                    }
                    for r in referral
                ],
                "referral_svg": figure,
            }
        )
    shown = [(n, rows) for n, rows in curves if rows]
    figure = Markup(coverage_svg(shown, title="Gaussian calibration of sigma")) if shown else None
    return {
        "sigma_from": v["regression.uncertainty.sigma_from"],
        "splits": splits,
        "calibration_svg": figure,
        "decomposed": any(s["decomposition"] for s in splits),
    }


def _target_name(result: ValidationResult) -> str:
    name = result.values.get("task.name")
    return str(name) if name else "target"


def with_target_text(rows: list[dict[str, Any]], result: ValidationResult) -> list[dict[str, Any]]:
    """Cohort rows (Table 1, cases per scanner) with ``target_text``: mean (SD), range."""
    f = UnitFormat.of(result)
    out = []
    for row in rows:
        if row.get("label_mean") is None:
            text = "—"
        else:
            sd = "" if row.get("label_sd") is None else f" ({f.num(row['label_sd'])})"
            text = (
                f"{f.num(row['label_mean'])}{sd}; "
                f"{f.num(row.get('label_min'))}–{f.num(row.get('label_max'))}"
            )
        out.append({**row, "target_text": text})
    return out


def regression_context(result: ValidationResult) -> dict[str, Any] | None:
    """Everything the regression templates show; None for other tasks."""
    from medval.report._regression_plots import error_by_value_svg

    if result.values.get("task.kind") != "regression":
        return None
    v = result.values
    f = UnitFormat.of(result)
    splits = [_split(result, f, name, p) for name, p in result.split_prefixes()]
    for s, (_, p) in zip(splits, result.split_prefixes(), strict=True):
        s["coverage"] = (
            percent_cell(result.estimates.get(f"{p}regression.interval.coverage"))
            if "regression.interval.score" in v
            else None
        )
    curves = [(s["name"], s["by_value_raw"]) for s in splits if s["by_value_raw"]]
    by_value_svg = None
    if curves:
        by_value_svg = Markup(error_by_value_svg(curves, title="Error by true value", unit=f.unit))
    value_range = v.get("task.range")
    outputs = v.get("regression.outputs") or {}
    intervals = _intervals(result, f)
    uncertainty = _uncertainty(result, f)
    return {
        "target": _target_name(result),
        "unit": f.unit,
        "suffix": f.suffix,
        "range": None if not value_range else f"{f.num(value_range[0])}–{f.qty(value_range[1])}",
        "outputs": outputs,
        "metric_names": [label + f.suffix for _, label in _SUMMARY],
        "splits": splits,
        "by_value_svg": by_value_svg,
        "subgroups": _subgroups(result, f),
        "intervals": intervals,
        "uncertainty": uncertainty,
        "omitted": {
            "intervals": None if intervals else _omitted(result, "intervals"),
            "uncertainty": None if uncertainty else _omitted(result, "uncertainty"),
        },
    }
