"""A hand-made regression ValidationResult: every key a regression evaluation writes.

The numbers are chosen so that each key finding has something to find: the
external split's MAE interval lies above the internal one's, its bias and
proportional bias exclude 0, one scanner's interval coverage lies below the
target, and sigma neither ranks the external errors nor covers its nominal
levels there. Used by the report, checklist and terminal-summary tests.
"""

from __future__ import annotations

import itertools
from typing import Any

from medval._result import ValidationResult
from medval._types import Estimate

EVIL = "<script>alert(1)</script>"
SPLITS = ("internal", "external")
PREFIX = {"internal": "", "external": "split.external."}
#: The two splits' headline numbers (value, low, high), in months.
MAE = {"internal": (8.1, 7.4, 8.9), "external": (14.2, 12.8, 15.7)}
BIAS = {"internal": (0.3, -1.1, 1.7), "external": (-4.2, -6.1, -2.3)}
COVERAGE = {"internal": (0.905, 0.857, 0.942), "external": (0.78, 0.71, 0.84)}
N = {"internal": 200, "external": 150}


def est(
    value: float | None,
    low: float | None = None,
    high: float | None = None,
    *,
    n: int = 100,
    method: str = "bootstrap-percentile",
    reason: str | None = None,
) -> Estimate:
    return Estimate(
        value,
        low,
        high,
        method=method,
        n=n,
        seed=0,
        n_resamples=2000 if "bootstrap" in method else None,
        reason=reason or (None if low is not None else "too few cases"),
    )


def _d(
    value: float | None, low: float | None = None, high: float | None = None, **kw: Any
) -> dict[str, Any]:
    return est(value, low, high, **kw).to_dict()


def _bins(values: list[float]) -> list[tuple[float, float]]:
    return list(itertools.pairwise(values))


def _split(r: ValidationResult, split: str) -> None:
    p, n = PREFIX[split], N[split]
    external = split == "external"
    e, v, t = r.estimates, r.values, r.tables
    mae, bias = MAE[split], BIAS[split]
    e[f"{p}regression.mae"] = est(*mae, n=n)
    e[f"{p}regression.median_ae"] = est(mae[0] - 1.6, mae[1] - 1.6, mae[2] - 1.6, n=n)
    e[f"{p}regression.rmse"] = est(mae[0] * 1.28, mae[1] * 1.28, mae[2] * 1.28, n=n)
    e[f"{p}regression.bias"] = est(*bias, n=n, method="t")
    e[f"{p}regression.agreement.bias"] = est(*bias, n=n, method="t")
    sd = 10.2 if not external else 16.5
    e[f"{p}regression.agreement.loa_low"] = est(
        bias[0] - 1.96 * sd,
        bias[0] - 1.96 * sd - 2.4,
        bias[0] - 1.96 * sd + 2.4,
        n=n,
        method="bland-altman-t",
    )
    e[f"{p}regression.agreement.loa_high"] = est(
        bias[0] + 1.96 * sd,
        bias[0] + 1.96 * sd - 2.4,
        bias[0] + 1.96 * sd + 2.4,
        n=n,
        method="bland-altman-t",
    )
    prop = (-0.15, -0.22, -0.08) if external else (0.01, -0.04, 0.06)
    e[f"{p}regression.agreement.proportional_bias"] = est(*prop, n=n, method="ols-t")
    slope = (-0.2, -0.27, -0.13) if external else (-0.02, -0.07, 0.03)
    e[f"{p}regression.error_slope"] = est(*slope, n=n, method="ols-t")
    cov = COVERAGE[split]
    e[f"{p}regression.interval.coverage"] = est(*cov, n=n, method="clopper-pearson")
    rank = (0.05, -0.1, 0.2) if external else (0.31, 0.18, 0.43)
    e[f"{p}regression.uncertainty.sigma_rank"] = est(*rank, n=n)
    means = [60.0 + 3.1 * i for i in range(30)]
    v[f"{p}regression.n_cases"] = n
    v[f"{p}regression.agreement"] = {
        "sd": sd,
        "multiplier": 1.96,
        "intercept": 2.0,
        "n": n,
        "difference": "prediction - truth",
        "points": {
            "mean": means,
            "difference": [bias[0] + ((-1) ** i) * 0.4 * i for i in range(30)],
        },
    }
    v[f"{p}regression.target"] = {
        "mean": 121.4 if not external else 131.0,
        "sd": 41.3,
        "min": 12.0,
        "max": 228.0,
        "prediction_sd": 39.8,
    }
    edges = [12.0, 90.0, 150.0, 228.0]
    t[f"{p}regression.by_value"] = [
        {
            "bin": i,
            "low": lo,
            "high": hi,
            "n": n // 3,
            "bias": _d(bias[0] + 2 - 2 * i, bias[0] - 1 - 2 * i, bias[0] + 5 - 2 * i, method="t"),
            "mae": _d(mae[0] + i, mae[0] + i - 1.5, mae[0] + i + 1.5),
        }
        for i, (lo, hi) in enumerate(_bins(edges))
    ]
    v[f"{p}regression.interval.mean_width"] = 33.4 if not external else 35.1
    v[f"{p}regression.interval.median_width"] = 31.9 if not external else 33.0
    t[f"{p}regression.interval.by_group"] = [
        {
            "column": "manufacturer",
            "group": "Vendor A",
            "n": 120,
            "coverage": _d(0.95, 0.894, 0.981, method="clopper-pearson"),
            "mean_width": 32.0,
        },
        {
            "column": "manufacturer",
            "group": EVIL,
            "n": n - 124,
            "coverage": _d(0.83, 0.75, 0.885, method="clopper-pearson"),
            "mean_width": 36.2,
        },
        {
            "column": "manufacturer",
            "group": "Vendor Z",
            "n": 4,
            "coverage": _d(
                None, reason="4 case(s), fewer than min_cases = 11", method="clopper-pearson"
            ),
            "mean_width": 30.0,
        },
    ]
    for key, scale in (("by_value", edges), ("by_sigma", [3.0, 6.5, 9.0, 21.0])):
        t[f"{p}regression.interval.{key}"] = [
            {
                "bin": i,
                "low": lo,
                "high": hi,
                "n": n // 3,
                "coverage": _d(
                    0.86 + 0.02 * i, 0.78 + 0.02 * i, 0.92 + 0.02 * i, method="clopper-pearson"
                ),
                "mean_width": 30.0 + i,
            }
            for i, (lo, hi) in enumerate(_bins(scale))
        ]
    v[f"{p}regression.uncertainty.decomposition"] = {
        "total": 92.5,
        "epistemic": 12.5 if not external else 30.0,
        "aleatoric": 80.0 if not external else 62.5,
        "epistemic_share": 0.135 if not external else 0.324,
        "n_samples": 20,
        "unit": "(months)²",
        "aleatoric_from": "MC samples of the variance head",
    }
    v[f"{p}regression.uncertainty.nll"] = 3.712 if not external else 4.488
    v[f"{p}regression.uncertainty.mean_sigma"] = 9.6
    low90 = (0.64, 0.79) if external else (0.84, 0.94)
    t[f"{p}regression.uncertainty.gaussian"] = [
        {
            "nominal": 0.5,
            "coverage": _d(0.52, 0.45, 0.59, method="clopper-pearson"),
            "mean_width": 12.9,
        },
        {
            "nominal": 0.9,
            "coverage": _d((low90[0] + low90[1]) / 2, *low90, method="clopper-pearson"),
            "mean_width": 31.6,
        },
    ]
    t[f"{p}regression.uncertainty.referral"] = [
        {
            "requested": f,
            "referred": f,
            "n_retained": round(n * (1 - f)),
            "mae": mae[0] - 4 * f,
            "oracle": mae[0] - 12 * f,
            "random": mae[0],
        }
        for f in (0.0, 0.1, 0.2, 0.3)
    ]


def _subgroups(r: ValidationResult) -> None:
    r.values["subgroup.scope"] = list(SPLITS)
    rows = [
        {
            "column": "manufacturer",
            "group": "Vendor A",
            "n": 180,
            "mae": _d(7.9, 7.1, 8.6),
            "bias": _d(0.1, -1.2, 1.4),
            "rmse": _d(10.0, 9.0, 11.1),
        },
        {
            "column": "manufacturer",
            "group": EVIL,
            "n": 166,
            "mae": _d(14.0, 12.5, 15.6),
            "bias": _d(-3.9, -5.9, -1.9),
            "rmse": _d(18.0, 16.2, 19.9),
        },
        {
            "column": "manufacturer",
            "group": "Vendor Z",
            "n": 4,
            "reason": "only 4 cases; min_cases is 11",
        },
    ]
    r.tables["subgroup.manufacturer"] = rows
    r.values["subgroup.manufacturer.worst_mae_group"] = EVIL
    r.values["subgroup.manufacturer.worst_mae"] = 14.0
    r.tables["subgroup.sex"] = [
        {
            "column": "sex",
            "group": g,
            "n": 175,
            "mae": _d(m, m - 0.9, m + 0.9),
            "bias": _d(-1.0, -2.5, 0.5),
            "rmse": _d(m * 1.3, m * 1.3 - 1, m * 1.3 + 1),
        }
        for g, m in (("F", 10.4), ("M", 11.0))
    ]
    r.values["subgroup.sex.worst_mae_group"] = "M"
    r.values["subgroup.sex.worst_mae"] = 11.0
    for column in ("manufacturer", "sex"):
        for row in r.tables[f"subgroup.{column}"]:
            for m in ("mae", "bias") if "mae" in row else ():
                r.estimates[f"subgroup.{column}={row['group']}.regression.{m}"] = (
                    Estimate.from_dict(row[m])
                )


def regression_result(
    *, sigma: bool = True, intervals: bool = True, mc: bool = True
) -> ValidationResult:
    """The result; ``sigma=False`` / ``intervals=False`` drop those sections (as skipped)."""
    r = ValidationResult()
    r.values.update(
        {
            "task.kind": "regression",
            "task.unit": "months",
            "task.name": "bone age",
            "task.range": [0.0, 240.0],
            "evaluation.splits": list(SPLITS),
            "evaluation.primary_split": "internal",
            "evaluation.clustered_by": "patient",
            "regression.outputs": {
                "variance": True,
                "quantile_levels": [],
                "mc_samples": 20 if mc else 0,
            },
            "gate.status": "failed",
            "regression.interval.score": "normalized",
            "regression.interval.target": 0.9,
            "regression.interval.quantile": 1.645,
            "regression.interval.n_calibration": 300,
            "regression.uncertainty.sigma_from": "MC dropout and the variance head",
        }
    )
    for split in SPLITS:
        _split(r, split)
    _subgroups(r)
    r.tables["cohort.table1"] = [
        {
            "split": s,
            "n_cases": N[s],
            "n_patients": N[s] // 2,
            "label_mean": 121.4,
            "label_sd": 41.3,
            "label_min": 12.0,
            "label_max": 228.0,
            "sex": {"F": 100, "M": 100},
            "age_band": {"0-9": N[s]},
            "manufacturer": {"Vendor A": N[s]},
        }
        for s in SPLITS
    ]
    r.tables["cohort.by_split_site"] = [
        {
            "split": "internal",
            "manufacturer": "Vendor A",
            "model_name": "X1",
            "n_cases": 200,
            "n_patients": 100,
            "label_mean": 121.4,
            "label_sd": 41.3,
            "label_min": 12.0,
            "label_max": 228.0,
        },
    ]
    r.tables["cohort.acquisition"] = [
        {
            "modality": "DX",
            "manufacturer": "Vendor A",
            "model_name": "X1",
            "n_cases": 200,
            "view_position": "PA",
            "kvp": "50-60",
            "photometric_interpretation": "MONOCHROME2",
            "bits_stored": "12",
        }
    ]
    r.tables["cohort.flow"] = [{"step": "cases included", "count": 650}]
    r.tables["gate.verdicts"] = [
        {
            "name": "mae",
            "status": "failed",
            "severity": "error",
            "reason": "MAE high bound 15.7 > 12",
        }
    ]
    skipped = []
    if not intervals:
        for k in [k for k in r.values if ".interval." in k]:
            del r.values[k]
        for store in (r.estimates, r.tables):
            for k in [k for k in store if ".interval." in k]:
                del store[k]
        skipped.append(
            {
                "section": "regression_intervals",
                "title": "conformal prediction intervals (coverage per group)",
                "reason": "no calibration split",
                "fix": "set [analysis] "
                "calibration_split, or give the cohort a split named 'calibration'",
            }
        )
    if not sigma:
        for store in (r.estimates, r.values, r.tables):
            for k in [k for k in store if "regression.uncertainty" in k]:
                del store[k]
        skipped.append(
            {
                "section": "regression_uncertainty",
                "title": "predictive sigma: decomposition, calibration, referral",
                "reason": "the regression model gives no sigma (neither a variance head "
                "nor MC-dropout samples)",
                "fix": "declare a mean and log-variance "
                'head ([model] output = "mean_log_variance")',
            }
        )
    elif not mc:
        for _, p in r.split_prefixes():
            del r.values[f"{p}regression.uncertainty.decomposition"]
    r.tables["evaluation.skipped"] = skipped
    r.provenance.update(
        {
            "seed": 0,
            "n_resamples": 2000,
            "confidence_level": 0.95,
            "model_file": "boneage.pt",
            "model_kind": "state_dict",
            "model_sha256": "ab" * 32,
            "versions": {"medval": "0.0", "numpy": "2"},
        }
    )
    return r
