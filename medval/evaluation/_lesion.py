"""Lesion-level detection: sensitivity, false positives per scan, FROC, detection by size."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval.evaluation._section import Part, Section
from medval.evaluation._segment_inputs import SegmentationInputs
from medval.segmentation import LesionScores, case_statistic_ci, detection_by_size, froc

__all__ = ["SECTION"]

MAX_CURVE_POINTS = 200


def _weighted(cases: Sequence[LesionScores], w: NDArray[np.int64]) -> list[LesionScores]:
    return [c for c, k in zip(cases, w.tolist(), strict=True) for _ in range(k)]


def _counts(cases: Sequence[LesionScores]) -> NDArray[np.float64]:
    """Per case: reference lesions, detected, false-positive lesions, sum of lesion Dice."""
    return np.array(
        [
            [
                c.reference_sizes_ml.size,
                int(c.reference_detected.sum()),
                int((~c.predicted_matched).sum()),
                float(c.reference_dice.sum()),
            ]
            for c in cases
        ],
        dtype=np.float64,
    ).reshape(len(cases), 4)


def _ratio(counts: NDArray[np.float64], num: int, den: int | None) -> Any:
    def stat(w: NDArray[np.int64]) -> float:
        top = float(w @ counts[:, num])
        bottom = float(w.sum()) if den is None else float(w @ counts[:, den])
        return top / bottom if bottom > 0 else float("nan")

    return stat


def _curve(f: Any) -> list[dict[str, float]]:
    """The FROC curve's points, at most MAX_CURVE_POINTS of them (evenly thinned)."""
    n = f.fp_per_scan.size
    keep: list[int] = (
        np.unique(np.linspace(0, n - 1, min(n, MAX_CURVE_POINTS)).astype(int)).tolist() if n else []
    )
    return [
        {
            "fp_per_scan": float(f.fp_per_scan[i]),
            "sensitivity": float(f.sensitivity[i]),
            "threshold": float(f.thresholds[i]),
        }
        for i in keep
    ]


def _run(inputs: SegmentationInputs, earlier: Part) -> Part:
    out = Part()
    cfg = inputs.config
    c = inputs.cases
    for split in inputs.test_splits:
        m = inputs.mask(split)
        pre = inputs.prefix(split)
        opts = inputs.interval_options(m)
        for s in c.structures:
            cases = [c.lesions[s][i] for i in np.flatnonzero(m)]
            counts = _counts(cases)
            key = f"{pre}segmentation.{s}.lesions"
            n_lesions = int(counts[:, 0].sum())
            out.values[f"{key}.n_lesions"] = n_lesions
            out.values[f"{key}.n_scans"] = len(cases)
            out.estimates[f"{key}.fp_per_scan"] = case_statistic_ci(
                _ratio(counts, 2, None), len(cases), higher_is_better=False, **opts
            )
            if n_lesions == 0:
                out.values[f"{key}.reason"] = "no reference lesion in this split"
                continue
            out.estimates[f"{key}.sensitivity"] = case_statistic_ci(
                _ratio(counts, 1, 0), len(cases), higher_is_better=True, **opts
            )
            out.estimates[f"{key}.dice"] = case_statistic_ci(
                _ratio(counts, 3, 0), len(cases), higher_is_better=True, **opts
            )
            curve = froc(cases)
            out.estimates[f"{key}.froc_score"] = case_statistic_ci(
                functools.partial(_weighted_froc, cases), len(cases),
                higher_is_better=True, **opts,
            )  # fmt: skip
            out.values[f"{key}.froc_sensitivity_at"] = {
                f"{r:g}": float(v)
                for r, v in zip(curve.fp_rates, curve.sensitivity_at, strict=True)
            }
            out.tables[f"{key}.froc"] = _curve(curve)
            out.tables[f"{key}.by_size"] = [
                {k: _finite(v) for k, v in row.items()}
                for row in detection_by_size(cases, bands_ml=cfg.lesion_size_bands_ml)
            ]
    return out


def _finite(v: Any) -> Any:
    """A band's open end or an empty band's sensitivity: None in the result, not inf or NaN."""
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _weighted_froc(cases: Sequence[LesionScores], w: NDArray[np.int64]) -> float:
    return _froc_or_nan(_weighted(cases, w))


def _froc_or_nan(cases: Sequence[LesionScores]) -> float:
    if not any(c.reference_sizes_ml.size for c in cases):
        return float("nan")
    return float(froc(cases).score)


SECTION = Section("lesions", "lesion detection and FROC", _run, tasks=("segmentation",))
