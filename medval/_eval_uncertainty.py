"""Calibration and uncertainty parts of :func:`medval.evaluate`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval import calibration, uncertainty
from medval._result import ValidationResult

__all__ = ["calibration_section", "fit_temperature", "uncertainty_section"]

_BINS = 10
_BINNING = "equal_mass"
_FRACTIONS = [round(0.05 * i, 2) for i in range(11)]
_MEASURES = ("total", "epistemic", "aleatoric")
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
    for i, name in enumerate(test_splits):
        prefix = "" if i == 0 else f"split.{name}."
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


def _referral_at(
    p: NDArray[Any],
    y: NDArray[Any],
    u: NDArray[Any],
    cutoff: float,
    threshold: float | None,
    positive_class: int,
) -> tuple[float, float | None]:
    """Referred fraction and retained sensitivity when cases with ``u >= cutoff`` are referred."""
    keep = u < cutoff
    if threshold is None:
        called = p.argmax(axis=1) == positive_class
    else:
        called = p[:, positive_class] >= threshold
    pos = keep & (y == positive_class)
    sens = float(called[pos].mean()) if pos.any() else None
    return float(1.0 - keep.mean()), sens


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
    threshold: float | None = None,
    calibration_split: str | None = None,
    set_sizes: NDArray[Any] | None = None,
    positive_class: int = 1,
) -> None:
    """Entropy decomposition, uncertainty by site, referral curves per measure.

    Total predictive entropy = aleatoric (expected entropy) + epistemic
    (mutual information) (Depeweg et al. 2018). For each measure (total,
    epistemic, aleatoric, and the conformal set size when ``set_sizes`` is
    given): the referral curve (Leibig et al. 2017), AURC and E-AURC
    (Geifman et al. 2019) and the AUROC of the uncertainty for detecting
    errors. Sensitivity of ``positive_class`` is taken at ``threshold``
    (the operating point; default: the most probable class).
    ``set_sizes`` (shape (n,)) must be finite on the test splits. The referral needed for
    ``target_sensitivity`` on the retained cases is chosen on
    ``calibration_split`` when there is one and then applied unchanged to
    every test split (otherwise chosen on each split itself).
    """
    from scipy.stats import mannwhitneyu

    d = uncertainty.decompose(mc_probabilities)
    measures = {m: np.asarray(getattr(d, m)) for m in _MEASURES}
    if set_sizes is not None:
        measures["set_size"] = np.asarray(set_sizes, dtype=np.float64)
    result.values["uncertainty.mc_samples"] = int(mc_probabilities.shape[0])
    result.values["uncertainty.measure"] = "entropy (nats)"
    result.values["uncertainty.measures"] = list(measures)
    cutoff = None
    rec_fit: dict[str, Any] = {}
    if calibration_split is not None and (splits == calibration_split).any():
        cal = splits == calibration_split
        rec_fit = uncertainty.recommended_referral_fraction(
            probabilities[cal],
            labels[cal],
            measures["total"][cal],
            target_sensitivity=target_sensitivity,
            threshold=threshold,
            positive_class=positive_class,
        )
        cutoff = rec_fit["threshold"]
    by_group: list[dict[str, Any]] = []
    primary = splits == test_splits[0]
    for i, name in enumerate(test_splits):
        prefix = "" if i == 0 else f"split.{name}."
        mask = splits == name
        for m in _MEASURES:
            result.values[f"{prefix}uncertainty.{m}_mean"] = float(measures[m][mask].mean())
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
                        **{m: float(measures[m][sel].mean()) for m in _MEASURES},
                    }
                )
        p, y = probabilities[mask], labels[mask]
        curve_rows: list[dict[str, Any]] = []
        compared = uncertainty.compare_uncertainty_measures(
            p, y, {m: u[mask] for m, u in measures.items()}
        )
        for m, u in measures.items():
            rc = uncertainty.referral_curve(
                p,
                y,
                u[mask],
                fractions=_FRACTIONS,
                threshold=threshold,
                positive_class=positive_class,
            )
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
            for k in ("aurc", "eaurc", "error_auroc"):
                value = compared[m][k]
                result.values[f"{prefix}uncertainty.{m}.{k}"] = (
                    None if value is None else float(value)
                )
        result.tables[f"{prefix}uncertainty.referral"] = curve_rows
        result.values[f"{prefix}uncertainty.referral_for_sensitivity"] = _recommendation(
            p,
            y,
            measures["total"][mask],
            name,
            rec_fit,
            cutoff,
            calibration_split,
            target_sensitivity=target_sensitivity,
            threshold=threshold,
            positive_class=positive_class,
        )
    result.tables["uncertainty.by_group"] = by_group


def _recommendation(
    p: NDArray[Any],
    y: NDArray[Any],
    u: NDArray[Any],
    name: str,
    rec_fit: Mapping[str, Any],
    cutoff: float | None,
    calibration_split: str | None,
    *,
    target_sensitivity: float,
    threshold: float | None,
    positive_class: int,
) -> dict[str, Any]:
    """The referral for the target retained sensitivity, as realised on one split."""
    out: dict[str, Any] = {"target_sensitivity": target_sensitivity, "measure": "total"}
    if rec_fit:
        out["chosen_on"] = calibration_split
        if cutoff is None:
            return {
                **out,
                "fraction": None,
                "retained_sensitivity": None,
                "uncertainty_cutoff": None,
                "reason": rec_fit.get("reason"),
            }
        fraction, sens = _referral_at(p, y, u, cutoff, threshold, positive_class)
        return {
            **out,
            "fraction": fraction,
            "retained_sensitivity": sens,
            "uncertainty_cutoff": _finite(cutoff),  # None: inf, nobody referred
            "reason": None,
        }
    rec = uncertainty.recommended_referral_fraction(
        p,
        y,
        u,
        target_sensitivity=target_sensitivity,
        threshold=threshold,
        positive_class=positive_class,
    )
    return {
        **out,
        "chosen_on": name,
        "fraction": rec["fraction"],
        "retained_sensitivity": rec["retained_sensitivity"],
        "uncertainty_cutoff": None if rec["threshold"] is None else _finite(rec["threshold"]),
        "reason": rec["reason"],
    }
