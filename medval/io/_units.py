"""Image predictions aggregated to the level the labels are given at.

When a labels table names studies, series or patients
(:data:`medval.io._labels.LABEL_KEYS`), the model still sees images; this
module turns the image predictions into one per labelled unit by a declared
rule, and the image cohort into a unit cohort, so that every statistic is
computed over the units the labels describe.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._errors import DataError, InputError
from medval._types import Predictions, check_cohort
from medval.io._labels import AGGREGATIONS, CohortData

__all__ = ["aggregate_scores", "aggregate_units"]


def aggregate_scores(values: NDArray[Any], rule: str, top_k: int = 3) -> float:
    """One unit's score from its images' scores (each in [0, 1]).

    ``mean``; ``max``; ``noisy_or`` = 1 - prod(1 - v) (the unit is positive
    if any image is, images independent); ``top_k_mean`` = the mean of the
    ``top_k`` largest (all of them when fewer).
    """
    v = np.asarray(values, dtype=np.float64)
    if rule == "mean":
        return float(v.mean())
    if rule == "max":
        return float(v.max())
    if rule == "noisy_or":
        return float(1.0 - np.prod(1.0 - v))
    if rule == "top_k_mean":
        return float(np.sort(v)[::-1][:top_k].mean())
    raise InputError(f"aggregation rule {rule!r} is not one of {list(AGGREGATIONS)}.")


def _aggregate(p: NDArray[Any], groups: list[NDArray[np.intp]], rule: str, top_k: int,
               positive_class: int) -> NDArray[np.float64]:  # fmt: skip
    """(n, K) image probabilities -> (m, K) unit probabilities."""
    k = p.shape[1]
    out = np.empty((len(groups), k), dtype=np.float64)
    for u, idx in enumerate(groups):
        if k == 2:
            q = aggregate_scores(p[idx, positive_class], rule, top_k)
            out[u, positive_class], out[u, 1 - positive_class] = q, 1.0 - q
        else:
            row = np.array([aggregate_scores(p[idx, c], rule, top_k) for c in range(k)])
            out[u] = row / row.sum() if row.sum() > 0 else np.full(k, 1.0 / k)
    return out


def _unit_frame(frame: Any, unit_of: dict[str, str], order: list[str]) -> Any:
    """One row per unit: its first image's columns; split and label must agree."""
    tagged = frame.assign(_unit=[unit_of[c] for c in frame.index])
    for column in ("split", "label"):
        varied = tagged.groupby("_unit", sort=False)[column].nunique()
        bad = varied[varied > 1].index.tolist()
        if bad:
            raise DataError(
                f"the images of unit(s) {bad[:5]} fall in more than one {column}; a study, "
                "series or patient is one case: give the split per labels row or let medval "
                "assign splits by patient."
            )
    first = tagged.groupby("_unit", sort=False).head(1).set_index("_unit")
    first.index.name = "case_id"
    return first.loc[order]


def aggregate_units(
    predictions: Predictions,
    data: CohortData,
    *,
    rule: str = "mean",
    top_k: int = 3,
    positive_class: int = 1,
) -> tuple[Predictions, CohortData]:
    """Image predictions and cohort -> one row per labelled study, series or patient.

    Parameters
    ----------
    predictions : Predictions
        The model's image predictions, case ids those of ``data.cohort``.
    data : CohortData
        From :func:`medval.io.load_cohort` with labels above the image
        level (``data.unit`` is ``"series"``, ``"study"`` or
        ``"patient"``). With image-level labels both are returned as given.
    rule : {"mean", "max", "noisy_or", "top_k_mean"}, default "mean"
        How a unit's probability comes from its images'. For two classes
        the rule applies to ``positive_class`` and the other class is its
        complement; for more, to each class, then rows are renormalised.
        MC samples are aggregated sample by sample with the same rule.
    top_k : int, default 3
        For ``top_k_mean``.
    positive_class : int, default 1

    Returns
    -------
    (Predictions, CohortData)
        Unit predictions (embeddings averaged; Dirichlet concentrations
        dropped, a unit having none) and a CohortData whose cohort has one
        row per unit (the columns of its first image in path order), with
        ``aggregation`` and ``n_images`` set; ``paths`` still name images.

    Raises
    ------
    InputError
        For an unknown rule, a bad ``top_k``, or predictions that do not
        cover the cohort's images.
    DataError
        If the images of one unit fall in different splits.
    """
    if data.unit == "image" or data.aggregation is not None:
        return predictions, data
    if rule not in AGGREGATIONS:
        raise InputError(f"aggregate must be one of {list(AGGREGATIONS)}; got {rule!r}.")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InputError(f"top_k must be a positive int; got {top_k!r}.")
    frame = data.cohort
    position = {c: i for i, c in enumerate(predictions.case_ids.tolist())}
    missing = [c for c in frame.index if c not in position]
    if missing:
        raise InputError(
            f"{len(missing)} image(s) of the cohort have no prediction (e.g. {missing[:3]}); "
            "predict on every image of data.paths before aggregating."
        )
    order = list(dict.fromkeys(data.unit_of[c] for c in frame.index))
    members: dict[str, list[int]] = {u: [] for u in order}
    for c in frame.index:
        members[data.unit_of[c]].append(position[c])
    groups = [np.asarray(members[u], dtype=np.intp) for u in order]
    units = _unit_frame(frame, data.unit_of, order)
    mc = predictions.mc_probabilities
    emb = predictions.embeddings
    unit_preds = Predictions(
        case_ids=np.asarray(order),
        probabilities=_aggregate(predictions.probabilities, groups, rule, top_k, positive_class),
        labels=None if predictions.labels is None else units["label"].to_numpy(),
        mc_probabilities=None
        if mc is None
        else np.stack([_aggregate(m, groups, rule, top_k, positive_class) for m in mc]),
        embeddings=None if emb is None else np.stack([emb[g].mean(axis=0) for g in groups]),
        class_names=predictions.class_names,
    )
    described = rule if rule != "top_k_mean" else f"top_k_mean (k={top_k})"
    return unit_preds, dataclasses.replace(
        data, cohort=check_cohort(units), aggregation=described, n_images=len(frame)
    )
