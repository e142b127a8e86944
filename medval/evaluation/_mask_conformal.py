"""Conformal guarantees for masks: risk control of the per-image FNR, morphological margins.

Both are calibrated on the calibration split and checked on every evaluated
split, overall and per group (scanner, site, sex, age band), with the price
they cost (added volume, false-positive volume).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval import conformal, stats
from medval.evaluation._section import Part, Section
from medval.evaluation._segment import mean_estimate
from medval.evaluation._segment_inputs import SegmentationInputs

__all__ = ["SECTION"]


def _group_columns(inputs: SegmentationInputs) -> dict[str, NDArray[Any]]:
    cols: dict[str, NDArray[Any]] = {}
    for name in inputs.config.group_columns:
        v = inputs.column(name)
        if v is not None:
            cols[name] = v
    return cols


def _risk(inputs: SegmentationInputs, s: str, out: Part) -> None:
    cfg = inputs.config
    c = inputs.cases
    cal = inputs.mask(inputs.calibration_split or "")
    target = 1.0 - cfg.mask_risk_level
    crc = conformal.MaskRiskControl(confidence_level=cfg.mask_risk_level, healthy=cfg.mask_healthy)
    crc.calibrate(c.histograms[s][cal])
    key = f"segmentation.{s}.risk"
    out.values[f"{key}.threshold"] = float(crc.threshold_)
    out.values[f"{key}.target_fnr"] = target
    out.values[f"{key}.healthy"] = cfg.mask_healthy
    out.values[f"{key}.n_calibration"] = int(cal.sum())
    healthy = c.histograms[s][:, 0, :].sum(axis=1) == 0
    out.values[f"{key}.n_healthy_calibration"] = int((cal & healthy).sum())
    groups = _group_columns(inputs)
    for split in inputs.test_splits:
        m = inputs.mask(split)
        pre = inputs.prefix(split)
        counted = m if cfg.mask_healthy == "include" else m & ~healthy
        fnr = np.zeros(c.n_cases)
        fnr[m] = crc.risk(c.histograms[s][m])
        est = mean_estimate(inputs, fnr, counted, "fnr")
        out.estimates[f"{pre}{key}.fnr"] = _lower_is_better(est)
        out.values[f"{pre}{key}.n_healthy"] = int((m & healthy).sum())
        price = crc.price(c.histograms[s][m], voxel_volume_ml=c.voxel_volume_ml[m])
        for name in ("volume_ml", "fp_volume_ml", "added_volume_ml", "added_fp_volume_ml"):
            values = price[name]
            full = np.zeros(c.n_cases)
            full[m] = values
            out.estimates[f"{pre}{key}.{name}"] = _lower_is_better(
                mean_estimate(inputs, full, m, name)
            )
        rows = []
        for col, values in groups.items():
            for g in sorted(set(values[counted].tolist())):
                gm = counted & (values == g)
                e = mean_estimate(inputs, fnr, gm, "fnr")
                rows.append({"column": col, "group": g, "n": int(gm.sum()), "fnr": e.value,
                             "low": e.low, "high": e.high, "target": target,
                             "holds": None if e.value is None
                             else bool(e.value <= target)})  # fmt: skip
        out.tables[f"{pre}{key}.by_group"] = rows


def _lower_is_better(e: Any) -> Any:
    import dataclasses

    return dataclasses.replace(e, higher_is_better=False)


def _margins(inputs: SegmentationInputs, s: str, out: Part) -> None:
    cfg = inputs.config
    c = inputs.cases
    cal = inputs.mask(inputs.calibration_split or "")
    mm = conformal.MorphologicalMargin(
        confidence_level=cfg.mask_risk_level, healthy=cfg.mask_healthy,
        max_steps=cfg.margin_max_steps,
    )  # fmt: skip
    healthy = c.histograms[s][:, 0, :].sum(axis=1) == 0
    mm.calibrate(c.steps[s][cal], reference_present=~healthy[cal])
    key = f"segmentation.{s}.margin"
    k = float(mm.k_hat_)
    out.values[f"{key}.steps"] = k if np.isfinite(k) else None
    out.values[f"{key}.target_coverage"] = cfg.mask_risk_level
    if not np.isfinite(k):
        out.values[f"{key}.reason"] = "; ".join(str(r) for r in mm.reasons_.values()) or (
            "no finite number of dilations within segmentation.margin_max_steps"
        )
    groups = _group_columns(inputs)
    for split in inputs.test_splits:
        m = inputs.mask(split)
        pre = inputs.prefix(split)
        counted = m if cfg.mask_healthy == "include" else m & ~healthy
        covered = np.zeros(c.n_cases, dtype=bool)
        covered[m] = mm.covered(c.steps[s][m])
        n = int(counted.sum())
        if n:
            out.estimates[f"{pre}{key}.coverage"] = stats.proportion_ci(
                int(covered[counted].sum()), n, method="clopper-pearson",
                confidence_level=cfg.confidence_level,
            )  # fmt: skip
        if np.isfinite(k):
            added = c.added[s][:, :, int(k)] * c.voxel_volume_ml[:, None]
            for name, column in (
                ("added_ml", added.sum(axis=1)),
                ("false_positive_ml", added[:, 1]),
            ):
                out.estimates[f"{pre}{key}.{name}"] = _lower_is_better(
                    mean_estimate(inputs, column, m, name)
                )
        rows = []
        for col, values in groups.items():
            for g in sorted(set(values[counted].tolist())):
                gm = counted & (values == g)
                e = stats.proportion_ci(int(covered[gm].sum()), int(gm.sum()),
                                        method="clopper-pearson",
                                        confidence_level=cfg.confidence_level)  # fmt: skip
                rows.append({"column": col, "group": g, "n": int(gm.sum()),
                             "coverage": e.value, "low": e.low, "high": e.high,
                             "target": cfg.mask_risk_level,
                             "holds": None if e.value is None
                             else bool(e.value >= cfg.mask_risk_level)})  # fmt: skip
        out.tables[f"{pre}{key}.by_group"] = rows


def _run(inputs: SegmentationInputs, earlier: Part) -> Part:
    out = Part()
    for s in inputs.cases.structures:
        _risk(inputs, s, out)
        _margins(inputs, s, out)
    return out


SECTION = Section(
    "mask_conformal",
    "conformal risk control and morphological margins of the masks",
    _run,
    needs=("calibration",),
    tasks=("segmentation",),
)
