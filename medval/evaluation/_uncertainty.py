"""MC-dropout uncertainty of :func:`medval.evaluate`: decomposition, by site, referral.

Also the Monte Carlo error of the measures for the T samples drawn (with the
T that would suffice), and the binary metrics of the MC mean beside the
deployed model's (:mod:`medval.evaluation._mc_mean`), labelled as such.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval import uncertainty
from medval._result import ValidationResult, split_prefix
from medval.evaluation._inputs import Inputs
from medval.evaluation._mc_mean import mc_mean_metrics
from medval.evaluation._section import Part, Section

__all__ = ["SECTION", "uncertainty_section"]

_FRACTIONS = [round(0.05 * i, 2) for i in range(11)]
_MEASURES = ("total", "epistemic", "aleatoric")


def _finite(x: Any) -> float | None:
    f = float(x)
    return f if math.isfinite(f) else None


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
    measure: str = "entropy",
    mc_tolerance: float = uncertainty.MC_TOLERANCE,
) -> None:
    """Entropy (or variance) decomposition, uncertainty by site, referral curves per measure.

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

    The Monte Carlo error of the measures on each test split
    (:func:`medval.uncertainty.mc_error`, jackknife over the T samples,
    tolerance ``mc_tolerance``) goes to ``uncertainty.mc_error``; when T is
    below the recommended number on any split, ``uncertainty.warnings``
    (always written, possibly empty) says so and names ``[model] mc_samples``.
    """
    from scipy.stats import mannwhitneyu

    d = uncertainty.decompose(mc_probabilities, measure=measure)
    measures = {m: np.asarray(getattr(d, m)) for m in _MEASURES}
    if set_sizes is not None:
        measures["set_size"] = np.asarray(set_sizes, dtype=np.float64)
    result.values["uncertainty.mc_samples"] = int(mc_probabilities.shape[0])
    result.values["uncertainty.measure"] = "entropy (nats)" if measure == "entropy" else measure
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
    errors: dict[str, dict[str, Any] | None] = {}
    for i, name in enumerate(test_splits):
        prefix = split_prefix(name, test_splits)
        mask = splits == name
        errors[name] = _mc_error(mc_probabilities[:, mask], measure, mc_tolerance)
        result.values[f"{prefix}uncertainty.mc_error"] = errors[name]
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
    result.values["uncertainty.warnings"] = _mc_warnings(errors, int(mc_probabilities.shape[0]))


def _mc_error(mc: NDArray[Any], measure: str, tolerance: float) -> dict[str, Any] | None:
    """The Monte Carlo error on one split; None when T < 2 or the split is empty."""
    if mc.shape[0] < 2 or mc.shape[1] == 0:
        return None
    return uncertainty.mc_error(mc, measure=measure, tolerance=tolerance)


def _mc_warnings(errors: Mapping[str, dict[str, Any] | None], t: int) -> list[str]:
    """One warning when T is below the recommendation on any split (or cannot be judged)."""
    if t < 2:
        return [
            f"Only T = {t} Monte Carlo sample per case: the uncertainty measures carry a Monte "
            "Carlo error that cannot be estimated. Set [model] mc_samples to 30 or more."
        ]
    short = {name: e for name, e in errors.items() if e is not None and e["too_small"]}
    if not short:
        return []
    worst = max(short, key=lambda n: short[n]["recommended_samples"] or 0)
    e = short[worst]
    if e["recommended_samples"] is None:
        return [
            f"With T = {t} Monte Carlo samples the uncertainty measures on '{worst}' vary "
            "between cases no more than their own Monte Carlo error: no number of samples can "
            "be extrapolated. Raise [model] mc_samples (e.g. to 4 x the current T) and rerun."
        ]
    m = e["limiting_measure"]
    return [
        f"T = {t} Monte Carlo samples are too few: on '{worst}' the {m} uncertainty's Monte "
        f"Carlo error is {e['measures'][m]['relative_error']:.2f} of its spread across cases "
        f"(tolerance {e['tolerance']:g}). Use T >= {e['recommended_samples']}: set [model] "
        f"mc_samples = {e['recommended_samples']}."
    ]


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


def _run(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    c, p = inputs.config, inputs.predictions
    assert p.mc_probabilities is not None  # the section needs mc_samples
    sites = [col for col in ("manufacturer",) if col in c.group_columns]
    uncertainty_section(
        out, p.mc_probabilities, p.probabilities, inputs.labels, inputs.splits,
        test_splits=inputs.test_splits, groups=inputs.columns(sites),
        target_sensitivity=c.referral_sensitivity,
        threshold=None if inputs.multiclass else inputs.threshold,
        calibration_split=inputs.calibration_split, positive_class=inputs.positive_class,
        set_sizes=earlier.shared.get("conformal.set_sizes"), measure=c.uncertainty_measure,
    )  # fmt: skip
    if not inputs.multiclass:
        out.estimates.update(mc_mean_metrics(inputs, p.mc_probabilities))
    return out


SECTION = Section("uncertainty", "MC-dropout uncertainty and referral", _run, needs=("mc_samples",))
