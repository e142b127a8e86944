"""Overlap and boundary metrics of a segmentation model: means with intervals, per group."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._types import Estimate
from medval.evaluation._section import Part, Section
from medval.evaluation._segment_inputs import SegmentationInputs
from medval.segmentation import EMPTY_STATES, HIGHER_IS_BETTER, STRUCTURE_METRICS, mean_ci

__all__ = ["SECTION", "mean_estimate"]

#: Metrics shown per group (subgroups, scanners) and drawn as distributions.
GROUP_METRICS = ("dice", "nsd", "hd95")
N_WORST = 10


def mean_estimate(
    inputs: SegmentationInputs, values: NDArray[np.float64], m: NDArray[np.bool_], metric: str
) -> Estimate:
    """The mean over the cases ``m`` with its (patient-clustered) interval."""
    cfg = inputs.config
    v = values[m]
    clusters = inputs.split_clusters(m)
    defined = ~np.isnan(v)
    if metric == "relative_volume_error" and not defined.all():
        # Undefined where the reference is empty: stated, counted, never averaged in.
        v = v[defined]
        clusters = None if clusters is None else clusters[defined]
    if v.size == 0:
        return Estimate(None, reason="no case has the reference structure", n=0)
    if clusters is not None and len(np.unique(clusters)) == len(clusters):
        clusters = None
    return mean_ci(
        v, clusters=clusters, n_resamples=cfg.n_resamples, confidence_level=cfg.confidence_level,
        random_state=cfg.seed, higher_is_better=HIGHER_IS_BETTER.get(metric),
    )  # fmt: skip


def _worst(inputs: SegmentationInputs, s: str, m: NDArray[np.bool_]) -> list[dict[str, Any]]:
    """The lowest-Dice cases, by case id (the series folder's relative path)."""
    c = inputs.cases
    idx = np.flatnonzero(m)
    dice = c.metrics[s]["dice"][idx]
    order = idx[np.lexsort((c.case_ids[idx], dice))][:N_WORST]
    return [
        {
            "case_id": str(c.case_ids[i]),
            "structure": s,
            "dice": float(c.metrics[s]["dice"][i]),
            "hd95": float(c.metrics[s]["hd95"][i]),
            "volume_reference_ml": float(c.metrics[s]["volume_reference_ml"][i]),
            "volume_predicted_ml": float(c.metrics[s]["volume_predicted_ml"][i]),
            "empty": str(c.empty[s][i]),
        }
        for i in order
    ]


def _groups(inputs: SegmentationInputs, out: Part) -> None:
    """Means per subgroup (pooled over the evaluated splits) and their distributions."""
    c = inputs.cases
    pooled = np.isin(inputs.splits, inputs.test_splits)
    rows: list[dict[str, Any]] = []
    spread: list[dict[str, Any]] = []
    for col in inputs.config.subgroup_columns:
        values = inputs.column(col)
        if values is None:
            continue
        for group in sorted(set(values[pooled].tolist())):
            m = pooled & (values == group)
            for s in c.structures:
                for metric in GROUP_METRICS:
                    est = mean_estimate(inputs, c.metrics[s][metric], m, metric)
                    out.estimates[f"subgroup.{col}={group}.segmentation.{s}.{metric}"] = est
                    rows.append({"column": col, "group": group, "structure": s,
                                 "metric": metric, "n": int(m.sum()), "value": est.value,
                                 "low": est.low, "high": est.high})  # fmt: skip
                    q = np.quantile(c.metrics[s][metric][m], [0, 0.25, 0.5, 0.75, 1])
                    spread.append({"column": col, "group": group, "structure": s,
                                   "metric": metric, "n": int(m.sum()),
                                   "min": q[0], "q1": q[1], "median": q[2], "q3": q[3],
                                   "max": q[4]})  # fmt: skip
    out.tables["segmentation.by_group"] = rows
    out.tables["segmentation.distribution"] = [
        {k: float(v) if isinstance(v, np.floating) else v for k, v in r.items()} for r in spread
    ]
    out.values["segmentation.subgroup_scope"] = list(inputs.test_splits)


def _run(inputs: SegmentationInputs, earlier: Part) -> Part:
    out = Part()
    c = inputs.cases
    out.tables["segmentation.cases"] = c.rows(inputs.splits)
    for split in inputs.test_splits:
        m = inputs.mask(split)
        pre = inputs.prefix(split)
        worst: list[dict[str, Any]] = []
        for s in c.structures:
            for metric in STRUCTURE_METRICS:
                values = c.metrics[s][metric]
                out.estimates[f"{pre}segmentation.{s}.{metric}"] = mean_estimate(
                    inputs, values, m, metric
                )
                finite = values[m][~np.isnan(values[m])]
                if finite.size:
                    out.values[f"{pre}segmentation.{s}.{metric}.median"] = float(np.median(finite))
            states = c.empty[s][m]
            out.values[f"{pre}segmentation.{s}.empty"] = {
                state: int((states == state).sum()) for state in EMPTY_STATES
            }
            out.values[f"{pre}segmentation.{s}.n_cases"] = int(m.sum())
            worst += _worst(inputs, s, m)
        out.tables[f"{pre}segmentation.worst_cases"] = worst
    _groups(inputs, out)
    out.values["segmentation.structures"] = list(c.structures)
    out.values["segmentation.settings"] = dict(c.options)
    caps = np.unique(c.distance_cap_mm)
    out.values["segmentation.distance_cap_mm"] = (
        float(caps[0]) if caps.size == 1 else [float(caps.min()), float(caps.max())]
    )
    return out


SECTION = Section(
    "segmentation", "overlap and boundary metrics per case", _run, tasks=("segmentation",)
)
