"""Conformal guarantees for masks: risk control of the per-image FNR, morphological margins.

Both are calibrated on the calibration split (marginally, or with
``segmentation.mondrian`` per group: one threshold and one margin per scanner)
and checked on every evaluated split, overall and per group (scanner, site,
sex, age band), with the price they cost (volume, false-positive volume). A
test case whose group has no calibration case gets the marginal threshold;
such groups are listed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval import conformal, stats
from medval._types import Estimate
from medval.evaluation._section import Part, Section
from medval.evaluation._segment import mean_estimate
from medval.evaluation._segment_inputs import SegmentationInputs

__all__ = ["SECTION"]

PRICE = ("volume_ml", "fp_volume_ml", "added_volume_ml", "added_fp_volume_ml")


def _group_columns(inputs: SegmentationInputs) -> dict[str, NDArray[Any]]:
    return {c: v for c in inputs.config.group_columns if (v := inputs.column(c)) is not None}


def _lower_is_better(e: Estimate) -> Estimate:
    return dataclasses.replace(e, higher_is_better=False)


@dataclasses.dataclass(frozen=True)
class _Groups:
    """The Mondrian column, the groups seen in calibration, and who falls back."""

    values: NDArray[Any] | None
    seen: frozenset[str]

    def split(self, m: NDArray[np.bool_]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """(cases of m with a calibrated group, the others: marginal threshold)."""
        if self.values is None:
            return m, np.zeros_like(m)
        known = np.isin(self.values, list(self.seen))
        return m & known, m & ~known


def _mondrian(inputs: SegmentationInputs, cal: NDArray[np.bool_]) -> _Groups:
    col = inputs.config.mask_mondrian
    values = None if col is None else inputs.column(col)
    if values is None:
        return _Groups(None, frozenset())
    return _Groups(values, frozenset(values[cal].tolist()))


def _per_case(
    full: NDArray[np.float64], m: NDArray[np.bool_], g: _Groups, by_group: Any, marginal: Any
) -> NDArray[np.float64]:
    """Fill ``full[m]`` from the group-calibrated and the marginal objects."""
    known, unknown = g.split(m)
    if known.any():
        full[known] = by_group(known, None if g.values is None else g.values[known])
    if unknown.any():
        full[unknown] = marginal(unknown)
    return full


def _by_group_rows(
    inputs: SegmentationInputs, counted: NDArray[np.bool_], cell: Any
) -> list[dict[str, Any]]:
    rows = []
    for col, values in _group_columns(inputs).items():
        for g in sorted(set(values[counted].tolist())):
            rows.append({"column": col, "group": g, **cell(counted & (values == g))})
    return rows


def _risk(inputs: SegmentationInputs, s: str, out: Part) -> None:
    cfg = inputs.config
    c = inputs.cases
    h = c.histograms[s]
    cal = inputs.mask(inputs.calibration_split or "")
    target = 1.0 - cfg.mask_risk_level
    opts: dict[str, Any] = {"confidence_level": cfg.mask_risk_level, "healthy": cfg.mask_healthy}
    marginal = conformal.MaskRiskControl(**opts).calibrate(h[cal])
    g = _mondrian(inputs, cal)
    grouped = marginal
    key = f"segmentation.{s}.risk"
    if g.values is not None:
        grouped = conformal.MaskRiskControl(**opts).calibrate(h[cal], groups=g.values[cal])
        out.values[f"{key}.thresholds"] = {str(k): float(v) for k, v in grouped.thresholds_.items()}
        out.values[f"{key}.mondrian"] = cfg.mask_mondrian
        if grouped.fallbacks_:
            out.values[f"{key}.fallbacks"] = {str(k): str(v) for k, v in grouped.fallbacks_.items()}
    out.values[f"{key}.threshold"] = float(marginal.threshold_)
    out.values[f"{key}.target_fnr"] = target
    out.values[f"{key}.healthy"] = cfg.mask_healthy
    out.values[f"{key}.n_calibration"] = int(cal.sum())
    healthy = h[:, 0, :].sum(axis=1) == 0
    out.values[f"{key}.n_healthy_calibration"] = int((cal & healthy).sum())
    vv = c.voxel_volume_ml
    for split in inputs.test_splits:
        m = inputs.mask(split)
        pre = inputs.prefix(split)
        counted = m if cfg.mask_healthy == "include" else m & ~healthy
        fnr = _per_case(
            np.zeros(c.n_cases), m, g,
            lambda k, gv: grouped.risk(h[k], groups=gv),
            lambda k: marginal.risk(h[k]),
        )  # fmt: skip
        out.estimates[f"{pre}{key}.fnr"] = _lower_is_better(
            mean_estimate(inputs, fnr, counted, "fnr")
        )
        out.values[f"{pre}{key}.n_healthy"] = int((m & healthy).sum())
        _, unknown = g.split(m)
        if unknown.any() and g.values is not None:
            out.values[f"{pre}{key}.uncalibrated_groups"] = sorted(set(g.values[unknown].tolist()))
        for name in PRICE:
            values = _per_case(
                np.zeros(c.n_cases), m, g,
                lambda k, gv, n=name: grouped.price(h[k], groups=gv, voxel_volume_ml=vv[k])[n],
                lambda k, n=name: marginal.price(h[k], voxel_volume_ml=vv[k])[n],
            )  # fmt: skip
            out.estimates[f"{pre}{key}.{name}"] = _lower_is_better(
                mean_estimate(inputs, values, m, name)
            )

        def cell(gm: NDArray[np.bool_], fnr: NDArray[np.float64] = fnr) -> dict[str, Any]:
            e = mean_estimate(inputs, fnr, gm, "fnr")
            return {"n": int(gm.sum()), "fnr": e.value, "low": e.low, "high": e.high,
                    "target": target,
                    "holds": None if e.value is None else bool(e.value <= target)}  # fmt: skip

        out.tables[f"{pre}{key}.by_group"] = _by_group_rows(inputs, counted, cell)


def _margins(inputs: SegmentationInputs, s: str, out: Part) -> None:
    cfg = inputs.config
    c = inputs.cases
    steps = c.steps[s]
    cal = inputs.mask(inputs.calibration_split or "")
    healthy = c.histograms[s][:, 0, :].sum(axis=1) == 0
    opts: dict[str, Any] = {"confidence_level": cfg.mask_risk_level, "healthy": cfg.mask_healthy,
            "max_steps": cfg.margin_max_steps}  # fmt: skip
    marginal = conformal.MorphologicalMargin(**opts)
    marginal.calibrate(steps[cal], reference_present=~healthy[cal])
    g = _mondrian(inputs, cal)
    grouped = marginal
    key = f"segmentation.{s}.margin"
    if g.values is not None:
        grouped = conformal.MorphologicalMargin(**opts)
        grouped.calibrate(steps[cal], groups=g.values[cal], reference_present=~healthy[cal])
        out.values[f"{key}.steps_by_group"] = {
            str(k): (float(v) if np.isfinite(v) else None) for k, v in grouped.k_hats_.items()
        }
    k = float(marginal.k_hat_)
    out.values[f"{key}.steps"] = k if np.isfinite(k) else None
    out.values[f"{key}.target_coverage"] = cfg.mask_risk_level
    if not np.isfinite(k):
        out.values[f"{key}.reason"] = "; ".join(str(r) for r in marginal.reasons_.values()) or (
            "no finite number of dilations within segmentation.margin_max_steps"
        )
    added = c.added[s] * c.voxel_volume_ml[:, None, None]  # (n, 2, K + 1) in ml
    for split in inputs.test_splits:
        m = inputs.mask(split)
        pre = inputs.prefix(split)
        counted = m if cfg.mask_healthy == "include" else m & ~healthy
        covered = _per_case(
            np.zeros(c.n_cases), m, g,
            lambda i, gv: grouped.covered(steps[i], groups=gv),
            lambda i: marginal.covered(steps[i]),
        ).astype(bool)  # fmt: skip
        margin = _per_case(
            np.zeros(c.n_cases), m, g,
            lambda i, gv: grouped.margins(int(i.sum()), groups=gv),
            lambda i: marginal.margins(int(i.sum())),
        )  # fmt: skip
        if counted.any():
            out.estimates[f"{pre}{key}.coverage"] = stats.proportion_ci(
                int(covered[counted].sum()), int(counted.sum()), method="clopper-pearson",
                confidence_level=cfg.confidence_level,
            )  # fmt: skip
        finite = m & np.isfinite(margin)
        if finite.any():
            idx = np.minimum(margin[finite], cfg.margin_max_steps).astype(int)
            rows = np.flatnonzero(finite)
            for name, part in (("added_volume_ml", added[rows, :, idx].sum(axis=1)),
                               ("added_fp_volume_ml", added[rows, 1, idx])):  # fmt: skip
                full = np.zeros(c.n_cases)
                full[rows] = part
                out.estimates[f"{pre}{key}.{name}"] = _lower_is_better(
                    mean_estimate(inputs, full, finite, name)
                )

        def cell(gm: NDArray[np.bool_], covered: NDArray[np.bool_] = covered) -> dict[str, Any]:
            e = stats.proportion_ci(int(covered[gm].sum()), int(gm.sum()),
                                    method="clopper-pearson",
                                    confidence_level=cfg.confidence_level)  # fmt: skip
            return {"n": int(gm.sum()), "coverage": e.value, "low": e.low, "high": e.high,
                    "target": cfg.mask_risk_level,
                    "holds": None if e.value is None
                    else bool(e.value >= cfg.mask_risk_level)}  # fmt: skip

        out.tables[f"{pre}{key}.by_group"] = _by_group_rows(inputs, counted, cell)


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
