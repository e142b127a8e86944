"""Curves and failure analysis for :func:`medval.evaluate`.

ROC with a pointwise bootstrap band (patients resampled when known), the
precision-recall curve, the confusion matrix at the operating threshold,
and where the errors fall: by subgroup and by uncertainty quartile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._result import ValidationResult
from medval.evaluation._inputs import Inputs
from medval.evaluation._section import Part, Section
from medval.stats import resample_counts

__all__ = ["CURVES", "FAILURES", "curve_tables", "failure_tables"]

_GRID = np.linspace(0.0, 1.0, 101)
_BAND_RESAMPLES = 200


def _roc(y: NDArray[np.int64], s: NDArray[np.float64], w: NDArray[Any]) -> NDArray[Any]:
    """TPR on the FPR grid for case weights ``w``: shape (n,) gives (101,),
    a block of bootstrap counts (c, n) gives one curve per row, (c, 101)."""
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    ws = np.atleast_2d(np.asarray(w, dtype=np.float64))[:, order]
    last = np.r_[np.flatnonzero(np.diff(ss)), ys.size - 1]  # ties move together
    tp = np.cumsum(ws * ys, axis=1)[:, last]
    fp = np.cumsum(ws * (1 - ys), axis=1)[:, last]
    start = np.zeros((ws.shape[0], 1))
    tpr = np.hstack([start, tp / np.maximum(tp[:, -1:], 1e-12)])
    fpr = np.hstack([start, fp / np.maximum(fp[:, -1:], 1e-12)])
    out: NDArray[Any] = np.array([np.interp(_GRID, f, t) for f, t in zip(fpr, tpr, strict=True)])
    return out if np.ndim(w) == 2 else out[0]


def curve_tables(
    result: ValidationResult,
    prefix: str,
    y: NDArray[np.int64],
    s: NDArray[np.float64],
    clusters: NDArray[Any] | None,
    *,
    threshold: float,
    confidence_level: float,
    seed: int,
) -> None:
    """ROC with its band, PR curve and confusion matrix for one split."""
    pred = s >= threshold
    result.values[f"{prefix}operating_point.confusion"] = {
        "tp": int((pred & (y == 1)).sum()),
        "fp": int((pred & (y == 0)).sum()),
        "fn": int((~pred & (y == 1)).sum()),
        "tn": int((~pred & (y == 0)).sum()),
    }
    n_pos = int(y.sum())
    if not 0 < n_pos < y.size:
        return
    tpr = _roc(y, s, np.ones(y.size))
    # The statistics room's resampler, stratified by class: cases, or with
    # clusters whole patients (a patient is positive if any image is).
    # Patients are numbered by first appearance: pseudonyms are salted per run.
    draws = resample_counts(
        y.size,
        n_resamples=_BAND_RESAMPLES,
        random_state=np.random.default_rng(seed),
        clusters=clusters,
        strata=y,
    )
    boot = np.concatenate([_roc(y, s, w) for w in draws])
    a = (1.0 - confidence_level) / 2
    low, high = np.quantile(boot, [a, 1 - a], axis=0)
    result.tables[f"{prefix}curves.roc"] = [
        {"fpr": float(f), "tpr": float(t), "low": float(lo), "high": float(hi)}
        for f, t, lo, hi in zip(_GRID, tpr, low, high, strict=True)
    ]
    result.values[f"{prefix}curves.roc_band"] = (
        f"pointwise {confidence_level:.0%} percentile bootstrap, {_BAND_RESAMPLES} "
        f"{'patient-clustered ' if clusters is not None else ''}resamples, seed {seed}"
    )
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(ss)), ys.size - 1]
    tp = np.cumsum(ys)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    # Interpolated precision (the best precision at this recall or above).
    best = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(recall, _GRID[1:] - 1e-12, side="left")  # float-safe ">="
    result.tables[f"{prefix}curves.pr"] = [
        {"recall": float(r), "precision": float(best[min(i, best.size - 1)])}
        for r, i in zip(_GRID[1:], at, strict=True)
    ]
    result.values[f"{prefix}curves.prevalence"] = n_pos / y.size


def failure_tables(
    result: ValidationResult,
    prefix: str,
    y: NDArray[np.int64],
    s: NDArray[np.float64],
    *,
    threshold: float,
    groups: Mapping[str, NDArray[Any]],
    uncertainty: NDArray[np.float64] | None,
    min_cell: int,
) -> None:
    """Errors (false negatives and positives) by subgroup and by uncertainty quartile."""
    pred = s >= threshold
    fn, fp = ~pred & (y == 1), pred & (y == 0)
    rows: list[dict[str, Any]] = []
    for column, values in groups.items():
        for value in sorted(set(values.tolist())):
            m = values == value
            n = int(m.sum())
            row: dict[str, Any] = {"column": column, "value": str(value), "n": n,
                                   "suppressed": n < min_cell}  # fmt: skip
            if n >= min_cell:
                row.update(
                    positives=int(y[m].sum()),
                    false_negatives=int(fn[m].sum()),
                    false_positives=int(fp[m].sum()),
                    error_rate=float((fn[m] | fp[m]).mean()),
                )
            rows.append(row)
    result.tables[f"{prefix}failure.by_group"] = rows
    if uncertainty is None or uncertainty.size < 4 * min_cell:
        return
    edges = np.quantile(uncertainty, [0.25, 0.5, 0.75])
    quartile = np.searchsorted(edges, uncertainty, side="right")
    result.tables[f"{prefix}failure.by_uncertainty"] = [
        {
            "quartile": int(q + 1),
            "n": int((quartile == q).sum()),
            "false_negatives": int(fn[quartile == q].sum()),
            "false_positives": int(fp[quartile == q].sum()),
            "error_rate": float((fn | fp)[quartile == q].mean()),
        }
        for q in range(4)
        if (quartile == q).any()
    ]


def _curves(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    for name in inputs.test_splits:
        curve_tables(
            out, inputs.prefix(name), *inputs.split_arrays(name), threshold=inputs.threshold,
            confidence_level=inputs.config.confidence_level, seed=inputs.config.seed,
        )  # fmt: skip
    return out


def _failure_uncertainty(inputs: Inputs) -> NDArray[np.float64] | None:
    """Epistemic uncertainty with MC samples, else the predictive entropy."""
    from medval.uncertainty import decompose, predictive_entropy

    p = inputs.predictions
    if p.mc_probabilities is not None:
        parts = decompose(p.mc_probabilities, measure=inputs.config.uncertainty_measure)
        return np.asarray(parts.epistemic, dtype=np.float64)
    return predictive_entropy(p.probabilities)


def _failures(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    unc = _failure_uncertainty(inputs)
    columns = [c for c in ("manufacturer", "sex", "age_band") if c in inputs.config.group_columns]
    groups = inputs.columns(columns)
    for name in inputs.test_splits:
        m = inputs.mask(name)
        y, s, _ = inputs.split_arrays(name)
        failure_tables(
            out, inputs.prefix(name), y, s, threshold=inputs.threshold,
            groups={c: v[m] for c, v in groups.items()},
            uncertainty=None if unc is None else unc[m], min_cell=inputs.config.small_cell,
        )  # fmt: skip
    return out


CURVES = Section("curves", "ROC and PR curves, confusion matrix", _curves, tasks=("binary",))
FAILURES = Section("failures", "failure analysis", _failures, needs=("cohort",), tasks=("binary",))
