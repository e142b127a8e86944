"""The conformal part of :func:`medval.evaluate`: sets, coverage, triage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval import conformal
from medval._errors import InputError
from medval._result import ValidationResult
from medval._types import Estimate

__all__ = ["conformal_section"]


def _rows(per: Mapping[Any, Mapping[str, Any]], column: str) -> list[dict[str, Any]]:
    rows = []
    for value, info in per.items():
        cov: Estimate = info["coverage"]
        rows.append(
            {
                "column": column,
                "group": str(value),
                "n": int(info["n"]),
                "coverage": cov.value,
                "low": cov.low,
                "high": cov.high,
                "flag": bool(info["flag"]),
                "direction": info.get("direction"),
            }
        )
    return rows


def conformal_section(
    result: ValidationResult,
    probabilities: NDArray[np.floating[Any]],
    labels: NDArray[np.int64],
    positive: NDArray[np.int64],
    splits: NDArray[Any],
    *,
    calibration_split: str,
    test_splits: Sequence[str],
    class_names: Sequence[str],
    groups: Mapping[str, NDArray[Any]],
    patients: NDArray[Any] | None,
    method: str,
    mondrian: str | None,
    confidence_level: float,
    triage_max_fnr: float | None,
    ci_level: float,
    seed: int,
) -> None:
    """Calibrate on ``calibration_split``; diagnose sets on every test split.

    Keys (primary split unprefixed, others under ``split.<name>.``):
    ``conformal.coverage`` (Clopper-Pearson CI), ``conformal.mean_set_size``,
    ``conformal.singleton_rate``, ``conformal.empty_rate``,
    ``conformal.referral_rate`` (sets that are not a single class), tables
    ``conformal.by_group`` and ``conformal.by_class``; and, with
    ``triage_max_fnr``, a conformal-risk-control threshold
    (``triage.threshold``) with the realised ``triage.sensitivity``.
    """
    cal = splits == calibration_split
    if patients is not None:
        for name in test_splits:
            conformal.check_disjoint_patients(patients[cal], patients[splits == name])
    by_column = None
    if mondrian is not None and mondrian != "class":
        if mondrian not in groups:
            raise InputError(
                f"conformal.mondrian {mondrian!r} is not a cohort column with values for every "
                f"case; available: {sorted(groups)} or 'class'."
            )
        by_column = groups[mondrian]
    model = conformal.ConformalClassifier(
        method,
        confidence_level=confidence_level,
        groups="class" if mondrian == "class" else None,
        min_group_size_policy="marginal",
        random_state=seed,
    ).calibrate(probabilities[cal], labels[cal], None if by_column is None else by_column[cal])
    result.values["conformal.method"] = method
    result.values["conformal.mondrian"] = mondrian or "none (marginal)"
    result.values["conformal.fallback_groups"] = [str(g) for g in model.fallback_groups_]
    result.values["conformal.confidence_level"] = confidence_level
    result.values["conformal.calibrated_on"] = calibration_split
    result.values["conformal.n_calibration"] = int(model.n_calibration_)
    if model.quantile_ is not None:
        result.values["conformal.quantile"] = float(model.quantile_)
    risk = None
    if triage_max_fnr is not None:
        risk = conformal.conformal_risk_control(
            probabilities[cal, 1], positive[cal], target=triage_max_fnr
        )
        result.values["triage.max_fnr"] = triage_max_fnr
        result.values["triage.threshold"] = float(risk.threshold_)
        result.values["triage.feasible"] = bool(risk.feasible)
    for i, name in enumerate(test_splits):
        prefix = "" if i == 0 else f"split.{name}."
        mask = splits == name
        sets = model.predict_sets(
            probabilities[mask], None if by_column is None else by_column[mask]
        )
        y = labels[mask]
        by_group: list[dict[str, Any]] = []
        for column, values in groups.items():
            rep = conformal.coverage_report(
                sets, y, groups=values[mask], confidence_level=confidence_level, ci_level=ci_level
            )
            by_group += _rows(rep["per_group"], column)
        rep = conformal.coverage_report(
            sets, y, confidence_level=confidence_level, ci_level=ci_level
        )
        result.estimates[f"{prefix}conformal.coverage"] = rep["coverage"]
        for key in ("mean_set_size", "singleton_rate", "empty_rate"):
            result.values[f"{prefix}conformal.{key}"] = float(rep[key])
        result.values[f"{prefix}conformal.referral_rate"] = float(1.0 - rep["singleton_rate"])
        per_class = _rows(rep["per_class"], "class")
        for row in per_class:
            row["group"] = class_names[int(row["group"])]
        result.tables[f"{prefix}conformal.by_class"] = per_class
        result.tables[f"{prefix}conformal.by_group"] = by_group
        if risk is not None:
            pos = positive[mask] == 1
            flagged = probabilities[mask, 1] >= risk.threshold_
            result.values[f"{prefix}triage.flagged_rate"] = float(flagged.mean())
            if pos.any():
                result.estimates[f"{prefix}triage.sensitivity"] = conformal.clopper_pearson(
                    int(flagged[pos].sum()), int(pos.sum()), ci_level=ci_level
                )
