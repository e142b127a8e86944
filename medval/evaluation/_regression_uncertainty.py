"""A regression model's own uncertainty: variance decomposition, sigma calibration, referral."""

from __future__ import annotations

import numpy as np

from medval.evaluation._regression_inputs import RegressionInputs
from medval.evaluation._section import Part, Section

__all__ = ["SECTION"]


def _decomposition(out: Part, inputs: RegressionInputs) -> None:
    """Epistemic (variance of the MC means) + aleatoric (mean predicted variance), per split."""
    from medval.uncertainty import decompose_regression

    p = inputs.predictions
    if p.mc_values is None or p.mc_values.shape[0] < 2:
        return
    if p.mc_variances is not None:
        variances = p.mc_variances
    elif p.variances is not None:
        variances = np.broadcast_to(p.variances, p.mc_values.shape)
    else:
        variances = np.full(p.mc_values.shape, np.finfo(np.float64).tiny)
    d = decompose_regression(p.mc_values, np.log(variances))
    for split in inputs.test_splits:
        m = inputs.mask(split)
        total, epi, alea = (float(a[m].mean()) for a in (d.total, d.epistemic, d.aleatoric))
        out.values[f"{inputs.prefix(split)}regression.uncertainty.decomposition"] = {
            "total": total, "epistemic": epi, "aleatoric": alea,
            "epistemic_share": epi / total if total > 0 else None,
            "n_samples": d.n_samples, "unit": f"({p.unit})²" if p.unit else "",
            "aleatoric_from": "MC samples of the variance head" if p.mc_variances is not None
            else ("the deterministic variance head" if p.variances is not None else "none"),
        }  # fmt: skip


def _run(inputs: RegressionInputs, earlier: Part) -> Part:
    from medval.uncertainty import (
        gaussian_calibration,
        gaussian_nll,
        regression_referral_curve,
        sigma_error_rank,
    )

    out = Part()
    cfg = inputs.config
    sigma = inputs.sigma
    assert sigma is not None  # the section needs it
    p = inputs.predictions
    out.values["regression.uncertainty.sigma_from"] = (
        "MC dropout and the variance head" if p.n_samples > 1 and p.variances is not None
        else "MC dropout" if p.n_samples > 1 else "the variance head"
    )  # fmt: skip
    _decomposition(out, inputs)
    for split in inputs.test_splits:
        m = inputs.mask(split)
        pre = inputs.prefix(split)
        y, mean, s = inputs.y[m], inputs.pred[m], sigma[m]
        err = np.abs(mean - y)
        out.estimates[f"{pre}regression.uncertainty.sigma_rank"] = sigma_error_rank(
            s, err, **inputs.interval_options(m)
        )
        out.tables[f"{pre}regression.uncertainty.gaussian"] = gaussian_calibration(
            y, mean, s**2, levels=cfg.gaussian_levels, confidence_level=cfg.confidence_level
        )
        with np.errstate(over="ignore", divide="ignore"):
            nll = float(gaussian_nll(y, mean, s**2))
        out.values[f"{pre}regression.uncertainty.nll"] = nll if np.isfinite(nll) else None
        if not np.isfinite(nll):  # a sigma of (nearly) 0 beside a real error
            out.values[f"{pre}regression.uncertainty.nll_reason"] = (
                f"infinite: {int((s <= np.finfo(np.float64).eps * np.abs(mean)).sum())} case(s) "
                "have a sigma of about 0 (MC samples that did not vary)"
            )
        out.values[f"{pre}regression.uncertainty.mean_sigma"] = float(s.mean())
        out.tables[f"{pre}regression.uncertainty.referral"] = regression_referral_curve(err, s)
    return out


SECTION = Section(
    "regression_uncertainty", "predictive sigma: decomposition, calibration, referral", _run,
    needs=("sigma",), tasks=("regression",),
)  # fmt: skip
