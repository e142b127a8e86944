"""Calibration of :func:`medval.evaluate`: ECE with its CI, Brier, NLL, slope, reliability."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval import calibration
from medval._result import ValidationResult, split_prefix
from medval.evaluation._inputs import Inputs
from medval.evaluation._section import Part, Section

__all__ = ["SECTION", "calibration_section", "fit_temperature"]

_BINS = 10
_BINNING = "equal_mass"
_LOG_FLOOR = -700.0  # log of a zero probability: finite, and exp() of it is 0


def _finite(x: Any) -> float | None:
    f = float(x)
    return f if math.isfinite(f) else None


def _target(p: NDArray[Any]) -> Any:
    """Binary: the positive class's probability; K > 2: the top label's confidence."""
    return "positive" if p.shape[1] == 2 else "top_label"


def _reliability(p: NDArray[Any], y: NDArray[Any]) -> list[dict[str, Any]]:
    d = calibration.reliability_data(p, y, n_bins=_BINS, binning=_BINNING, target=_target(p))
    return [
        {"confidence": _finite(c), "observed": _finite(o), "count": int(n)}
        for c, o, n in zip(d["mean_confidence"], d["observed_frequency"], d["count"], strict=True)
        if n > 0
    ]


def _scores(result: ValidationResult, key: str, p: NDArray[Any], y: NDArray[Any]) -> None:
    result.values[f"{key}.brier"] = float(calibration.brier(p, y))
    result.values[f"{key}.nll"] = float(calibration.nll(p, y))
    result.values[f"{key}.ece_point"] = float(
        calibration.ece(p, y, n_bins=_BINS, binning=_BINNING, target=_target(p))
    )
    result.values[f"{key}.debiased_l2"] = float(
        calibration.debiased_l2_ce(p, y, n_bins=_BINS, binning=_BINNING, target=_target(p))
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
    positive_class: int,
    scaler: calibration.TemperatureScaler | None = None,
    clusters: NDArray[Any] | None = None,
) -> None:
    """ECE (with CI), MCE, Brier, NLL, slope/intercept and reliability per split.

    With a calibration split, a temperature is fitted there by NLL (Guo et
    al. 2017; or ``scaler`` is used as given, e.g. the one applied before
    conformal prediction) and every split is also scored after scaling
    (keys ``calibration.after.*``). ECE uses 10 equal-mass bins on the
    positive class, with the 10 equal-width bin value next to it; binned
    ECE is biased upward on small sets (Kumar et al. 2019), so the debiased
    L2 error is reported too. Binary tasks are scored on the probability
    of ``positive_class``, whichever column holds it. With ``clusters``
    (patient keys aligned with the rows) the ECE interval resamples patients.
    """
    probabilities, labels = _positive_last(probabilities, labels, positive_class)
    what = "positive class" if probabilities.shape[1] == 2 else "top-label confidence"
    result.values["calibration.bins"] = f"{_BINS} {_BINNING.replace('_', '-')} bins, {what}"
    if scaler is None:
        scaler = fit_temperature(probabilities, labels, splits, calibration_split)
    if scaler is not None:
        result.values["calibration.temperature"] = float(scaler.temperature_)
        result.values["calibration.temperature_fitted_on"] = calibration_split
    for name in test_splits:
        prefix = split_prefix(name, test_splits)
        mask = splits == name
        p, y = probabilities[mask], labels[mask]
        result.estimates[f"{prefix}calibration.ece"] = calibration.ece_ci(
            p,
            y,
            n_bins=_BINS,
            binning=_BINNING,
            target=_target(p),
            confidence_level=confidence_level,
            n_resamples=min(n_resamples, 1000),
            clusters=None if clusters is None else clusters[mask],
            random_state=seed,
        )
        result.values[f"{prefix}calibration.ece_equal_width"] = float(
            calibration.ece(p, y, n_bins=_BINS, binning="equal_width", target=_target(p))
        )
        result.values[f"{prefix}calibration.mce"] = float(
            calibration.mce(p, y, n_bins=_BINS, binning=_BINNING, target=_target(p))
        )
        _scores(result, f"{prefix}calibration", p, y)
        if len(np.unique(y)) == 2:
            fit = calibration.calibration_slope_intercept(p, y, target=_target(p))
            result.values[f"{prefix}calibration.slope"] = float(fit["slope"])
            result.values[f"{prefix}calibration.intercept"] = float(fit["intercept"])
        result.tables[f"{prefix}calibration.reliability"] = _reliability(p, y)
        if scaler is not None:
            q = scaler.predict_proba(_log(p))
            _scores(result, f"{prefix}calibration.after", q, y)
            result.tables[f"{prefix}calibration.after.reliability"] = _reliability(q, y)


def _positive_last(
    p: NDArray[np.floating[Any]], y: NDArray[np.int64], positive_class: int
) -> tuple[NDArray[np.floating[Any]], NDArray[np.int64]]:
    """Binary: swap the classes so the positive one is column 1, the calibration "positive"."""
    if p.shape[1] != 2 or positive_class == 1:
        return p, y
    return p[:, ::-1], (1 - y).astype(np.int64)


def fit_temperature(
    probabilities: NDArray[np.floating[Any]],
    labels: NDArray[np.int64],
    splits: NDArray[Any],
    calibration_split: str | None,
) -> calibration.TemperatureScaler | None:
    """Temperature fitted by NLL on the calibration split, or ``None`` without one.

    The logits are ``log`` of the (MC-averaged) probabilities: samples are
    averaged as probabilities, never as logits.
    """
    if calibration_split is None or not (splits == calibration_split).any():
        return None
    cal = splits == calibration_split
    return calibration.TemperatureScaler().fit(_log(probabilities[cal]), labels[cal])


def _log(p: NDArray[Any]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(np.asarray(p, dtype=np.float64)), _LOG_FLOOR)


def _run(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    c = inputs.config
    calibration_section(
        out, inputs.predictions.probabilities, inputs.labels, inputs.splits,
        calibration_split=inputs.calibration_split, test_splits=inputs.test_splits,
        confidence_level=c.confidence_level, n_resamples=c.n_resamples, seed=c.seed,
        positive_class=inputs.positive_class, clusters=inputs.clusters,
    )  # fmt: skip
    return out


SECTION = Section("calibration", "calibration", _run)
