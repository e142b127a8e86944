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
from medval.stats import check_clusters

__all__ = ["curve_tables", "failure_tables"]

_GRID = np.linspace(0.0, 1.0, 101)
_BAND_RESAMPLES = 200


def _roc(y: NDArray[np.int64], s: NDArray[np.float64], w: NDArray[np.float64]) -> NDArray[Any]:
    """TPR on the FPR grid for case weights ``w`` (bootstrap counts)."""
    order = np.argsort(-s, kind="mergesort")
    ys, ws, ss = y[order], w[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(ss)), ys.size - 1]  # ties move together
    tp = np.cumsum(ws * ys)[last]
    fp = np.cumsum(ws * (1 - ys))[last]
    tpr = np.r_[0.0, tp / max(tp[-1], 1e-12)]
    fpr = np.r_[0.0, fp / max(fp[-1], 1e-12)]
    out: NDArray[Any] = np.interp(_GRID, fpr, tpr)
    return out


def _weights(
    rng: np.random.Generator, y: NDArray[np.int64], clusters: NDArray[Any] | None
) -> NDArray[np.float64]:
    """Stratified bootstrap counts per case (per patient when clustered)."""
    # Codes by first appearance: pseudonyms are salted per run, their order is not stable.
    coded = check_clusters(clusters, y.size)
    if coded is None:
        w = np.zeros(y.size)
        for cls in (0, 1):
            idx = np.flatnonzero(y == cls)
            w[idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size))
        return w
    codes, k = coded
    sick = np.zeros(k, dtype=bool)
    np.logical_or.at(sick, codes, y.astype(bool))
    per_patient = np.zeros(sick.size)
    for status in (False, True):
        idx = np.flatnonzero(sick == status)
        if idx.size:
            per_patient[idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size))
    out: NDArray[np.float64] = per_patient[codes]
    return out


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
    rng = np.random.default_rng(seed)
    boot = np.array([_roc(y, s, _weights(rng, y, clusters)) for _ in range(_BAND_RESAMPLES)])
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
