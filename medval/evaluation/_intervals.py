"""Conformal prediction intervals of a regression model: calibrated, then checked per group."""

from __future__ import annotations

from typing import Any

import numpy as np

from medval._errors import InputError
from medval.evaluation._regression import group_arrays
from medval.evaluation._regression_inputs import RegressionInputs
from medval.evaluation._section import Part, Section

__all__ = ["SECTION", "interval_score"]


def interval_score(inputs: RegressionInputs) -> str:
    """The configured score, ``auto`` resolved: cqr with quantiles, normalized with a sigma."""
    score = inputs.config.interval_score
    p = inputs.predictions
    if score == "auto":
        if p.quantiles is not None:
            return "cqr"
        return "normalized" if inputs.sigma is not None else "absolute"
    if score == "cqr" and p.quantiles is None:
        raise InputError(
            'regression.interval = "cqr" needs quantile heads (model.output = "quantiles"); '
            'use "normalized" or "absolute".'
        )
    if score == "normalized" and inputs.sigma is None:
        raise InputError(
            'regression.interval = "normalized" needs the model\'s sigma (a mean and '
            'log-variance head, or [model] mc_samples); use "absolute".'
        )
    return score


def _outer(inputs: RegressionInputs, m: Any) -> Any:
    q = inputs.predictions.quantiles
    return None if q is None else q[m][:, [0, -1]]


def _features(inputs: RegressionInputs, score: str, m: Any, mondrian: Any) -> dict[str, Any]:
    """What the score reads besides the prediction: sigma, the outer quantiles, the groups."""
    sigma = inputs.sigma
    return {
        "sigma": sigma[m] if score == "normalized" and sigma is not None else None,
        "quantiles": _outer(inputs, m) if score == "cqr" else None,
        "groups": None if mondrian is None else mondrian[m],
    }


def _run(inputs: RegressionInputs, earlier: Part) -> Part:
    from medval.conformal import ConformalRegressor, coverage_by_bins, interval_coverage

    out = Part()
    cfg = inputs.config
    score = interval_score(inputs)
    mondrian = None if cfg.interval_mondrian is None else inputs.column(cfg.interval_mondrian)
    assert inputs.calibration_split is not None  # the section needs it
    cal = inputs.mask(inputs.calibration_split)
    model = ConformalRegressor(score, confidence_level=cfg.interval_level)
    model.conformalize(inputs.y[cal], inputs.pred[cal], **_features(inputs, score, cal, mondrian))
    out.values["regression.interval.score"] = score
    out.values["regression.interval.target"] = cfg.interval_level
    out.values["regression.interval.quantile"] = _finite(model.quantile_)
    out.values["regression.interval.n_calibration"] = int(model.n_calibration_)
    if mondrian is not None:
        out.values["regression.interval.mondrian"] = cfg.interval_mondrian
        out.values["regression.interval.quantiles"] = {
            str(g): _finite(q) for g, q in model.group_quantiles_.items()
        }
    columns = [c for c in cfg.group_columns if inputs.column(c) is not None]
    for split in inputs.test_splits:
        m = inputs.mask(split)
        p = inputs.prefix(split)
        iv = model.predict_interval(inputs.pred[m], **_features(inputs, score, m, mondrian))
        if mondrian is not None:
            out.values[f"{p}regression.interval.fallback_groups"] = sorted(
                str(g) for g in model.fallback_groups_
            )
        y = inputs.y[m]
        report = interval_coverage(y, iv, confidence_level=cfg.confidence_level)
        out.estimates[f"{p}regression.interval.coverage"] = _estimate(report["coverage"])
        out.values[f"{p}regression.interval.mean_width"] = _finite(report["mean_width"])
        out.values[f"{p}regression.interval.median_width"] = _finite(report["median_width"])
        rows: list[dict[str, Any]] = []
        groups = group_arrays(inputs, m, columns)
        for column in columns:
            by = interval_coverage(
                y, iv, groups=groups[column], confidence_level=cfg.confidence_level,
                min_cases=cfg.small_cell,
            )  # fmt: skip
            rows += [{"column": column, **r} for r in by["by_group"]]
        out.tables[f"{p}regression.interval.by_group"] = rows
        bins = cfg.error_bins
        out.tables[f"{p}regression.interval.by_value"] = coverage_by_bins(
            y, iv, y, bins=bins, confidence_level=cfg.confidence_level
        )
        if inputs.sigma is not None:
            out.tables[f"{p}regression.interval.by_sigma"] = coverage_by_bins(
                y, iv, inputs.sigma[m], bins=bins, confidence_level=cfg.confidence_level
            )
    return out


def _finite(x: Any) -> float | None:
    v = float(x)
    return v if np.isfinite(v) else None


def _estimate(d: dict[str, Any]) -> Any:
    from medval._types import Estimate

    return Estimate.from_dict(d)


SECTION = Section(
    "regression_intervals", "conformal prediction intervals (coverage per group)", _run,
    needs=("calibration",), tasks=("regression",),
)  # fmt: skip
