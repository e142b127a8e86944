"""One case scored once: every per-case number the segmentation sections aggregate.

:func:`score_case` turns a case's probability maps and reference mask into a
:class:`CaseRecord` of small arrays (metrics, lesions, probability histograms,
dilation counts, calibration bins, uncertainty means), so a cohort never sits
in memory: :class:`SegmentationCases` stacks the records into the table every
aggregate (means with patient-clustered intervals, FROC, the mask guarantees)
is computed from, once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval import calibration, conformal, uncertainty
from medval._errors import InputError
from medval.segmentation._lesions import LesionScores, lesion_scores
from medval.segmentation._scores import STRUCTURE_METRICS, StructureScores, structure_scores

__all__ = ["CaseRecord", "ScoringOptions", "SegmentationCases", "StructureCase", "score_case"]

UNCERTAINTY_MAPS = ("entropy", "epistemic", "aleatoric")


@dataclasses.dataclass(frozen=True)
class ScoringOptions:
    """How a case is scored (the spec's ``[segmentation]`` table; recorded in the result)."""

    structures: Mapping[str, int]
    multilabel: bool = False
    threshold: float = 0.5
    nsd_tolerance_mm: float = 2.0
    distance_cap_mm: float | None = None
    lesion_connectivity: str = "vertex"
    lesion_min_size_mm3: float = 0.0
    lesion_match: str = "iou"
    lesion_match_threshold: float = 0.1
    margin_max_steps: int = 20
    calibration_margin_mm: float = 5.0
    border_mm: float = 3.0

    def describe(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["structures"] = dict(self.structures)
        return out


@dataclasses.dataclass(frozen=True)
class StructureCase:
    """One structure of one case."""

    scores: StructureScores
    lesions: LesionScores
    histogram: NDArray[np.int64]  # (2, B): probabilities over reference / other voxels
    steps_needed: float  # dilations covering the reference (inf: never)
    added: NDArray[np.int64]  # (2, K + 1): reference / other voxels added by k dilations
    bins: NDArray[np.float64]  # (3, n_bins): voxel calibration in the foreground region
    uncertainty: Mapping[str, float] | None


@dataclasses.dataclass(frozen=True)
class CaseRecord:
    """Every number of one case, per structure."""

    case_id: str
    voxel_volume_ml: float
    shape: tuple[int, ...]
    structures: Mapping[str, StructureCase]


def _foreground(probabilities: NDArray[Any], channel: int, options: ScoringOptions) -> Any:
    """The structure's probability map and predicted mask.

    Softmax outputs over more than two channels predict the most probable
    channel; two channels and multi-label (sigmoid) outputs threshold the
    structure's probability at ``options.threshold``.
    """
    p = probabilities[channel]
    if options.multilabel or probabilities.shape[0] <= 2:
        return p, p >= options.threshold
    return p, np.argmax(probabilities, axis=0) == channel


def _reference(reference: NDArray[Any], value: int, multilabel: bool) -> NDArray[np.bool_]:
    if multilabel:
        return np.asarray(reference[value], dtype=bool)
    return np.asarray(reference == value)


def score_case(
    case_id: str,
    probabilities: ArrayLike,
    reference: ArrayLike,
    spacing: Sequence[float],
    *,
    options: ScoringOptions,
    maps: Mapping[str, ArrayLike] | None = None,
) -> CaseRecord:
    """Score one case against its reference mask.

    Parameters
    ----------
    case_id : str
    probabilities : array of float, shape (C, z, y, x) or (C, y, x)
        The deployed (deterministic) model's probabilities, channel 0 the
        background (multi-label: one independent channel per structure).
    reference : array
        A label map (z, y, x) whose values are :attr:`ScoringOptions.structures`'
        values, or with ``multilabel`` a (C, z, y, x) boolean mask.
    spacing : sequence of float
        Voxel size in mm per spatial axis.
    options : ScoringOptions
    maps : mapping, optional
        MC-dropout voxel maps ``entropy``, ``epistemic``, ``aleatoric``
        (spatial shape), summarised per structure.

    Returns
    -------
    CaseRecord
    """
    p = np.asarray(probabilities, dtype=np.float32)
    ref = np.asarray(reference)
    spatial = ref.shape[1:] if options.multilabel else ref.shape
    if p.ndim != len(spatial) + 1 or p.shape[1:] != spatial:
        raise InputError(
            f"case {case_id}: probabilities of shape {p.shape} do not fit the reference mask "
            f"{ref.shape}; expected (channels, {', '.join(map(str, spatial))})."
        )
    top = max(options.structures.values())
    if top >= p.shape[0]:
        raise InputError(
            f"case {case_id}: structure value {top} needs at least {top + 1} output channels; "
            f"the model gave {p.shape[0]}. Check [task] structures against the model's output."
        )
    voxel_ml = float(np.prod(np.asarray(spacing, dtype=np.float64))) / 1000.0
    out: dict[str, StructureCase] = {}
    for name, value in options.structures.items():
        prob, pred = _foreground(p, value, options)
        true = _reference(ref, value, options.multilabel)
        out[name] = _structure(prob, pred, true, spacing, options, maps)
    return CaseRecord(case_id, voxel_ml, tuple(int(s) for s in spatial), out)


def _structure(
    prob: NDArray[Any],
    pred: NDArray[np.bool_],
    true: NDArray[np.bool_],
    spacing: Sequence[float],
    options: ScoringOptions,
    maps: Mapping[str, ArrayLike] | None,
) -> StructureCase:
    scores = structure_scores(
        pred, true, spacing, nsd_tolerance_mm=options.nsd_tolerance_mm,
        distance_cap_mm=options.distance_cap_mm,
    )  # fmt: skip
    lesions = lesion_scores(
        prob, true, spacing, threshold=options.threshold,
        connectivity=options.lesion_connectivity, min_size_mm3=options.lesion_min_size_mm3,
        match=options.lesion_match, match_threshold=options.lesion_match_threshold,
    )  # fmt: skip
    steps = conformal.dilation_needed(pred, true, max_steps=options.margin_max_steps)
    added = conformal.added_volume(pred, true, max_steps=options.margin_max_steps)
    region = calibration.foreground_region(
        pred, true, spacing, margin_mm=options.calibration_margin_mm
    )
    bins = calibration.voxel_calibration_bins(prob, true, region)
    summary = None
    if maps is not None:
        m = {k: np.asarray(maps[k]) for k in UNCERTAINTY_MAPS}
        summary = uncertainty.case_uncertainty(
            m["entropy"], m["epistemic"], m["aleatoric"], pred, spacing,
            border_mm=options.border_mm,
        )  # fmt: skip
    return StructureCase(
        scores, lesions, conformal.probability_histograms(prob, true), float(steps),
        np.asarray(added, dtype=np.int64), np.asarray(bins, dtype=np.float64), summary,
    )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SegmentationCases:
    """The per-case table of a cohort: every aggregate reads it, nothing recomputes a case.

    Arrays are aligned with ``case_ids``; per structure: ``metrics[s][m]``
    (n,), ``empty[s]`` (n,) (:data:`medval.segmentation.EMPTY_STATES`),
    ``lesions[s]`` (n LesionScores), ``histograms[s]`` (n, 2, B),
    ``steps[s]`` (n,), ``added[s]`` (n, 2, K + 1), ``bins[s]`` (n, 3, nb),
    ``uncertainty[s]`` (key -> (n,)) or None.
    """

    case_ids: NDArray[np.str_]
    structures: tuple[str, ...]
    metrics: Mapping[str, Mapping[str, NDArray[np.float64]]]
    empty: Mapping[str, NDArray[np.str_]]
    lesions: Mapping[str, tuple[LesionScores, ...]]
    histograms: Mapping[str, NDArray[np.int64]]
    steps: Mapping[str, NDArray[np.float64]]
    added: Mapping[str, NDArray[np.int64]]
    bins: Mapping[str, NDArray[np.float64]]
    uncertainty: Mapping[str, Mapping[str, NDArray[np.float64]]] | None
    voxel_volume_ml: NDArray[np.float64]
    distance_cap_mm: NDArray[np.float64]
    options: Mapping[str, Any]

    @property
    def n_cases(self) -> int:
        return int(self.case_ids.shape[0])

    @classmethod
    def from_records(
        cls, records: Sequence[CaseRecord], *, options: ScoringOptions
    ) -> SegmentationCases:
        """Stack scored cases (at least one; every case scores the same structures)."""
        if not records:
            raise InputError("no scored cases: every case was excluded or none was given.")
        names = tuple(options.structures)
        ids = [r.case_id for r in records]
        if len(set(ids)) != len(ids):
            twice = next(c for c in ids if ids.count(c) > 1)
            raise InputError(f"case {twice!r} was scored twice; case ids must be unique.")
        for r in records:
            if tuple(r.structures) != names:
                raise InputError(
                    f"case {r.case_id!r} scored structures {list(r.structures)}, not {list(names)}."
                )

        def stack(get: Any) -> dict[str, Any]:
            return {s: np.stack([np.asarray(get(r.structures[s])) for r in records]) for s in names}

        with_maps = all(r.structures[s].uncertainty is not None for r in records for s in names)
        unc = None
        if with_maps:
            unc = {
                s: {
                    k: np.array([float(r.structures[s].uncertainty[k]) for r in records])  # type: ignore[index]
                    for k in records[0].structures[s].uncertainty or {}
                }
                for s in names
            }
        return cls(
            case_ids=np.array(ids, dtype=str),
            structures=names,
            metrics={
                s: {
                    m: np.array([r.structures[s].scores.values[m] for r in records], dtype=float)
                    for m in STRUCTURE_METRICS
                }
                for s in names
            },
            empty={s: np.array([r.structures[s].scores.empty for r in records]) for s in names},
            lesions={s: tuple(r.structures[s].lesions for r in records) for s in names},
            histograms=stack(lambda c: c.histogram),
            steps={s: np.array([r.structures[s].steps_needed for r in records]) for s in names},
            added=stack(lambda c: c.added),
            bins=stack(lambda c: c.bins),
            uncertainty=unc,
            voxel_volume_ml=np.array([r.voxel_volume_ml for r in records]),
            distance_cap_mm=np.array(
                [r.structures[names[0]].scores.distance_cap_mm for r in records]
            ),
            options=options.describe(),
        )

    def subset(self, index: ArrayLike) -> SegmentationCases:
        """The cases at ``index`` (integer positions or a boolean mask)."""
        idx = np.arange(self.n_cases)[np.asarray(index)]

        def pick(d: Mapping[str, Any]) -> dict[str, Any]:
            return {k: v[idx] for k, v in d.items()}

        return dataclasses.replace(
            self,
            case_ids=self.case_ids[idx],
            metrics={s: pick(m) for s, m in self.metrics.items()},
            empty=pick(self.empty),
            lesions={s: tuple(v[i] for i in idx) for s, v in self.lesions.items()},
            histograms=pick(self.histograms),
            steps=pick(self.steps),
            added=pick(self.added),
            bins=pick(self.bins),
            uncertainty=None
            if self.uncertainty is None
            else {s: pick(u) for s, u in self.uncertainty.items()},
            voxel_volume_ml=self.voxel_volume_ml[idx],
            distance_cap_mm=self.distance_cap_mm[idx],
        )

    def rows(self, splits: ArrayLike | None = None) -> list[dict[str, Any]]:
        """The per-case table as rows (case, structure, every metric, which mask is empty)."""
        out: list[dict[str, Any]] = []
        sp = None if splits is None else np.asarray(splits)
        for i, case in enumerate(self.case_ids.tolist()):
            for s in self.structures:
                row: dict[str, Any] = {"case_id": case, "structure": s}
                if sp is not None:
                    row["split"] = str(sp[i])
                for m in STRUCTURE_METRICS:
                    v = float(self.metrics[s][m][i])
                    row[m] = None if math.isnan(v) else v
                row["empty"] = str(self.empty[s][i])
                les = self.lesions[s][i]
                row["n_lesions"] = int(les.reference_sizes_ml.shape[0])
                row["n_detected"] = int(les.reference_detected.sum())
                row["n_false_positive_lesions"] = int((~les.predicted_matched).sum())
                out.append(row)
        return out
