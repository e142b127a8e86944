"""Calibration and uncertainty parts of :func:`medval.evaluate`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval import calibration, uncertainty
from medval._result import ValidationResult

__all__ = ["calibration_section", "uncertainty_section"]

_BINS = 10
_BINNING = "equal_mass"
_FRACTIONS = [round(0.05 * i, 2) for i in range(11)]
_MEASURES = ("total", "epistemic", "aleatoric")


def _finite(x: Any) -> float | None:
    f = float(x)
    return f if math.isfinite(f) else None


def _reliability(p: NDArray[Any], y: NDArray[Any]) -> list[dict[str, Any]]:
    d = calibration.reliability_data(p, y, n_bins=_BINS, binning=_BINNING, target="positive")
    return [
        {"confidence": _finite(c), "observed": _finite(o), "count": int(n)}
        for c, o, n in zip(d["mean_confidence"], d["observed_frequency"], d["count"], strict=True)
        if n > 0
    ]


def _scores(result: ValidationResult, key: str, p: NDArray[Any], y: NDArray[Any]) -> None:
    result.values[f"{key}.brier"] = float(calibration.brier(p, y))
    result.values[f"{key}.nll"] = float(calibration.nll(p, y))
    result.values[f"{key}.ece_point"] = float(
        calibration.ece(p, y, n_bins=_BINS, binning=_BINNING, target="positive")
    )


def calibration_section(
    result: ValidationResult,
    probabilities: NDArray[np.floating[Any]],
    labels: NDArray[np.int64],
    splits: NDArray[Any],
    *,
    calibration_split: str | None,
    test_splits: Sequence[str],
    confidence_level: float,
    n_resamples: int,
    seed: int,
) -> None:
    """ECE (with CI), Brier, NLL, slope/intercept and reliability per split.

    With a calibration split, a temperature is fitted there by NLL (Guo et
    al. 2017) and every split is also scored after scaling (keys
    ``calibration.after.*``). ECE uses 10 equal-mass bins on the positive
    class; binned ECE is biased upward on small sets (Kumar et al. 2019), so
    the debiased L2 error is reported next to it.
    """
    result.values["calibration.bins"] = f"{_BINS} {_BINNING.replace('_', '-')} bins, positive class"
    scaler = None
    if calibration_split is not None and (splits == calibration_split).any():
        cal = splits == calibration_split
        scaler = calibration.TemperatureScaler().fit(np.log(probabilities[cal]), labels[cal])
        result.values["calibration.temperature"] = float(scaler.temperature_)
        result.values["calibration.temperature_fitted_on"] = calibration_split
    for i, name in enumerate(test_splits):
        prefix = "" if i == 0 else f"split.{name}."
        mask = splits == name
        p, y = probabilities[mask], labels[mask]
        result.estimates[f"{prefix}calibration.ece"] = calibration.ece_ci(
            p,
            y,
            n_bins=_BINS,
            binning=_BINNING,
            target="positive",
            confidence_level=confidence_level,
            n_resamples=min(n_resamples, 1000),
            random_state=seed,
        )
        _scores(result, f"{prefix}calibration", p, y)
        result.values[f"{prefix}calibration.debiased_l2"] = float(
            calibration.debiased_l2_ce(p, y, n_bins=_BINS, binning=_BINNING, target="positive")
        )
        if len(np.unique(y)) == 2:
            fit = calibration.calibration_slope_intercept(p, y, target="positive")
            result.values[f"{prefix}calibration.slope"] = float(fit["slope"])
            result.values[f"{prefix}calibration.intercept"] = float(fit["intercept"])
        result.tables[f"{prefix}calibration.reliability"] = _reliability(p, y)
        if scaler is not None:
            q = scaler.predict_proba(np.log(p))
            _scores(result, f"{prefix}calibration.after", q, y)
            result.tables[f"{prefix}calibration.after.reliability"] = _reliability(q, y)


def uncertainty_section(
    result: ValidationResult,
    mc_probabilities: NDArray[np.floating[Any]],
    probabilities: NDArray[np.floating[Any]],
    labels: NDArray[np.int64],
    splits: NDArray[Any],
    *,
    test_splits: Sequence[str],
    groups: Mapping[str, NDArray[Any]],
    target_sensitivity: float = 0.95,
) -> None:
    """Entropy decomposition, uncertainty by site and referral curves.

    Total predictive entropy = aleatoric (expected entropy) + epistemic
    (mutual information) (Depeweg et al. 2018); referral curves and AURC
    (Geifman & El-Yaniv 2017) per measure.
    """
    from scipy.stats import mannwhitneyu

    d = uncertainty.decompose(mc_probabilities)
    measures = {m: np.asarray(getattr(d, m)) for m in _MEASURES}
    result.values["uncertainty.mc_samples"] = int(mc_probabilities.shape[0])
    result.values["uncertainty.measure"] = "entropy (nats)"
    by_group: list[dict[str, Any]] = []
    primary = splits == test_splits[0]
    for i, name in enumerate(test_splits):
        prefix = "" if i == 0 else f"split.{name}."
        mask = splits == name
        for m, u in measures.items():
            result.values[f"{prefix}uncertainty.{m}_mean"] = float(u[mask].mean())
        if i > 0:
            test = mannwhitneyu(
                measures["epistemic"][mask], measures["epistemic"][primary], alternative="greater"
            )
            result.values[f"{prefix}uncertainty.epistemic_higher_p"] = float(test.pvalue)
        for column, values in groups.items():
            for value in sorted(set(values[mask].tolist())):
                sel = mask & (values == value)
                by_group.append(
                    {
                        "split": name,
                        "column": column,
                        "group": str(value),
                        "n": int(sel.sum()),
                        **{m: float(u[sel].mean()) for m, u in measures.items()},
                    }
                )
        p, y = probabilities[mask], labels[mask]
        curve_rows: list[dict[str, Any]] = []
        for m, u in measures.items():
            rc = uncertainty.referral_curve(p, y, u[mask], fractions=_FRACTIONS)
            for j in range(len(rc["requested_fraction"])):
                curve_rows.append(
                    {
                        "measure": m,
                        "referred": float(rc["referred_fraction"][j]),
                        **{
                            k: _finite(rc[k][j])
                            for k in ("auroc", "sensitivity", "specificity", "accuracy")
                        },
                    }
                )
            a = uncertainty.aurc(p, y, u[mask])
            result.values[f"{prefix}uncertainty.{m}.aurc"] = float(a["aurc"])
            result.values[f"{prefix}uncertainty.{m}.eaurc"] = float(a["eaurc"])
        result.tables[f"{prefix}uncertainty.referral"] = curve_rows
        rec = uncertainty.recommended_referral_fraction(
            p, y, measures["total"][mask], target_sensitivity=target_sensitivity
        )
        result.values[f"{prefix}uncertainty.referral_for_sensitivity"] = {
            "target_sensitivity": target_sensitivity,
            "fraction": None if rec["fraction"] is None else float(rec["fraction"]),
            "reason": rec.get("reason"),
        }
    result.tables["uncertainty.by_group"] = by_group
