"""Regression errors and agreement: MAE, RMSE, bias, Bland-Altman, error by value and group."""

from __future__ import annotations

from typing import Any

import numpy as np

from medval._result import subgroup_key
from medval._types import Estimate
from medval.evaluation._regression_inputs import RegressionInputs
from medval.evaluation._section import Part, Section

__all__ = ["SECTION", "group_arrays"]

_MIN_CASES = 2  # fewer cases in a split: no interval can be estimated


def _agreement(out: Part, p: str, inputs: RegressionInputs, m: Any) -> None:
    from medval.regression import bland_altman, plot_points

    opts = inputs.interval_options(m)
    y, pred = inputs.y[m], inputs.pred[m]
    ba = bland_altman(y, pred, **opts)
    out.estimates[f"{p}regression.agreement.bias"] = ba.bias
    out.estimates[f"{p}regression.agreement.loa_low"] = ba.loa_low
    out.estimates[f"{p}regression.agreement.loa_high"] = ba.loa_high
    out.estimates[f"{p}regression.agreement.proportional_bias"] = ba.proportional
    means, diffs = plot_points(y, pred, random_state=inputs.config.seed)
    out.values[f"{p}regression.agreement"] = {
        "sd": ba.sd, "multiplier": ba.multiplier, "intercept": ba.intercept, "n": ba.n,
        "difference": "prediction - truth",
        "points": {"mean": [float(v) for v in means], "difference": [float(v) for v in diffs]},
    }  # fmt: skip


def _split(out: Part, inputs: RegressionInputs, split: str) -> None:
    from medval.regression import error_by_value, error_metrics, error_slope

    m = inputs.mask(split)
    p = inputs.prefix(split)
    y, pred = inputs.y[m], inputs.pred[m]
    out.values[f"{p}regression.n_cases"] = int(m.sum())
    if m.sum() < _MIN_CASES:
        out.values[f"{p}regression.reason"] = f"{int(m.sum())} case(s): too few for intervals"
        return
    opts = inputs.interval_options(m)
    for name, est in error_metrics(y, pred, **opts).items():
        out.estimates[f"{p}regression.{name}"] = est
    _agreement(out, p, inputs, m)
    out.estimates[f"{p}regression.error_slope"] = error_slope(y, pred, **opts)
    out.tables[f"{p}regression.by_value"] = error_by_value(
        y, pred, bins=inputs.config.error_bins, **opts
    )
    out.values[f"{p}regression.target"] = {
        "mean": float(y.mean()), "sd": float(y.std(ddof=1)), "min": float(y.min()),
        "max": float(y.max()), "prediction_sd": float(pred.std(ddof=1)),
    }  # fmt: skip
    if float(np.ptp(pred)) == 0.0:
        out.values[f"{p}regression.collapsed"] = True


def group_arrays(inputs: RegressionInputs, scope: Any, columns: Any) -> dict[str, Any]:
    """Each subgroup column (and crossed pair) present in the cohort: values over ``scope``."""
    from medval.shift import intersect

    groups: dict[str, Any] = {}
    for c in columns:
        values = inputs.column(c)
        if values is not None:
            groups[c] = values[scope]
    for pair in inputs.config.subgroup_intersections:
        if all(c in groups for c in pair):
            name, values = intersect(groups, pair[0], pair[1])
            groups[name] = values
    return groups


def _subgroups(out: Part, inputs: RegressionInputs) -> None:
    from medval.regression import group_errors

    cfg = inputs.config
    scope = np.isin(inputs.splits, list(inputs.test_splits))
    out.values["subgroup.scope"] = list(inputs.test_splits)
    clusters = inputs.split_clusters(scope)
    for column, values in group_arrays(inputs, scope, cfg.subgroup_columns).items():
        rows, worst = group_errors(
            inputs.y[scope], inputs.pred[scope], values, clusters=clusters,
            min_cases=cfg.small_cell, n_resamples=cfg.n_resamples,
            confidence_level=cfg.confidence_level, random_state=cfg.seed,
        )  # fmt: skip
        out.tables[f"subgroup.{column}"] = [{"column": column, **r} for r in rows]
        out.values[f"subgroup.{column}.worst_mae_group"] = worst
        for r in rows:
            for metric in ("mae", "bias") if "mae" in r else ():
                key = subgroup_key(column, str(r["group"]), f"regression.{metric}")
                out.estimates[key] = Estimate.from_dict(r[metric])
        worst_row = next((r for r in rows if r["group"] == worst), None)
        if worst_row is not None:
            out.values[f"subgroup.{column}.worst_mae"] = worst_row["mae"]["value"]


def _run(inputs: RegressionInputs, earlier: Part) -> Part:
    out = Part()
    for split in inputs.test_splits:
        _split(out, inputs, split)
    if inputs.cohort is not None:
        _subgroups(out, inputs)
    return out


SECTION = Section(
    "regression", "errors, agreement (Bland-Altman), error by value and subgroup", _run,
    tasks=("regression",),
)  # fmt: skip
