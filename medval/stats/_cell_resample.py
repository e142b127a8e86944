"""Resampling a cell table: what is drawn, and a resample's cell counts.

A bootstrap resample of a cell table is again a cell table, so every
statistic is computed for a block of resamples at once from their counts:

* cases (unclustered): each resample's cell counts are one multinomial draw
  of ``n`` cases over the cells with the sample's cell frequencies (within
  each label with ``stratify``), which is exactly the distribution of a
  case bootstrap's cell counts (Efron & Tibshirani 1993, ch. 6);
* patients (clustered): patients are drawn with replacement (within
  disease status with ``stratify``: a patient is positive when any of
  their cases is, as in :func:`bootstrap_ci`), their draw counts tallied
  with ``bincount``, and the resample's cell counts are the per-patient
  aggregate matrix (patients x cells, sparse) times those counts, for a
  block of resamples per sparse-dense product (Davison & Hinkley 1997,
  sec. 3.8; Field & Welsh 2007).

The products run in float32, which is exact while every count stays below
2**24 (all partial sums are then integers below it); a block whose largest
count reaches it is redone in float64.

In a resample, the scores of a slot's cases are taken at the slot's mean
(per label) in the sample, so resampled calibration statistics may differ
from those of the resampled cases by at most the widest open bin (1/96000
with the default bins); point estimates use the exact sums.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from medval.stats._cell_stats import (
    CellStatistic,
    Layout,
    Tally,
    group_index,
    make_layout,
    point_tally,
    scope_counts,
)
from medval.stats._cells import ScoreCells
from medval.stats._validate import FloatArray, IntArray

__all__ = ["Scope", "Units", "make_scopes", "replicate_values"]

_FLOAT32_EXACT = float(2**24)
# Unclustered: draw cases one by one below this many cases per non-empty cell.
_CASES_PER_CELL = 20


@dataclasses.dataclass
class Scope:
    """All cases, or one subgroup: its slots, point tally and resampling map."""

    name: str | None
    layout: Layout
    point: Tally
    means: tuple[FloatArray, FloatArray]  # mean score per kept slot: negatives, positives
    n: int
    n_patients: int | None
    unit_map: sparse.csc_matrix  # (2m, units) float32: cell counts = unit_map @ unit counts
    unit_map64: sparse.csc_matrix | None = None


class Units:
    """What is resampled: patients, or cells (the unclustered case).

    Patients are numbered by disease status (the strata), in order of first
    appearance within each, as in :func:`bootstrap_ci`.
    """

    def __init__(self, cells: ScoreCells, *, clustered: bool, stratify: bool) -> None:
        self.clustered = clustered
        if clustered:
            assert cells.patients is not None
            a = cells.patients.matrix
            positive = a @ (np.arange(a.shape[1]) % 2 == 1).astype(np.int32) > 0
            status = positive.astype(np.int64) if stratify else np.zeros(a.shape[0], np.int64)
            self.order = np.argsort(status, kind="stable")
            self.trials = np.bincount(status)
            self._matrix = a
        else:
            flat = cells.counts.ravel()
            self.cells = np.flatnonzero(flat)  # the units: non-empty cells
            label = self.cells % 2 if stratify else np.zeros(self.cells.size, np.int64)
            self.strata = [np.flatnonzero(label == v) for v in np.unique(label)]
            self.freq = flat[self.cells]
            self.trials = np.array([int(self.freq[s].sum()) for s in self.strata])
        self.sizes = [int(m) for m in self.trials if m > 0]

    def unit_rows(self, select: sparse.csr_matrix) -> sparse.csr_matrix:
        """Each unit's cases in the scope's columns, shape (units, 2m), int32."""
        if self.clustered:
            out: sparse.csr_matrix = (self._matrix @ select)[self.order]
            return out
        return select[self.cells]

    @property
    def n_units(self) -> int:
        return int(sum(self.sizes)) if self.clustered else int(self.cells.size)

    def draw(self, rng: np.random.Generator, c: int) -> FloatArray:
        """Counts of each unit in ``c`` resamples, shape (units, c).

        float32 (exact: a unit is drawn at most as often as its stratum has
        draws), float64 for strata of 2**24 draws or more.
        """
        k = self.n_units
        exact32 = max(self.sizes, default=0) < _FLOAT32_EXACT
        out = np.empty((c, k), dtype=np.float32 if exact32 else np.float64)
        if self.clustered:
            starts = np.cumsum([0, *self.sizes])
            for r in range(c):
                for a, b in itertools.pairwise(starts):
                    out[r, a:b] = np.bincount(rng.integers(0, b - a, size=b - a), minlength=b - a)
        else:
            for s, t in zip(self.strata, self.trials, strict=True):
                out[:, s] = _multinomial(rng, self.freq[s], int(t), c)
        return np.ascontiguousarray(out.T)


def _multinomial(rng: np.random.Generator, freq: IntArray, n: int, c: int) -> IntArray:
    """``c`` draws of Multinomial(n, freq / n), shape (c, m).

    Few cases per cell: draw the cases (uniform indices, counted with
    ``bincount``) and sum them per cell; many: numpy's sequential binomials
    over the cells. Both are exact; the cheaper one is taken.
    """
    m = freq.size
    if n > _CASES_PER_CELL * m:
        out: IntArray = rng.multinomial(n, freq / n, size=c)
        return out
    starts = np.cumsum(freq) - freq  # first case of each cell
    rows = [np.add.reduceat(np.bincount(rng.integers(0, n, size=n), minlength=n), starts)
            for _ in range(c)]  # fmt: skip
    return np.stack(rows)


def make_scopes(
    cells: ScoreCells,
    units: Units,
    stats: Sequence[CellStatistic],
    *,
    by_group: bool,
    threshold: float | None,
    calibration_bins: int,
) -> list[Scope]:
    """All cases (and each subgroup with ``by_group``): slots, point tally, unit map."""
    names: list[str | None] = [None, *(cells.groups if by_group else ())]
    s_count = cells.bins.n_slots
    out = []
    for name in names:
        rows = group_index(cells, name)
        counts, sums = scope_counts(cells, rows)
        layout = make_layout(
            cells.bins, counts, stats, threshold=threshold, calibration_bins=calibration_bins
        )
        m = layout.kept.size
        # table column (g, slot, label) -> scope column label * m + kept position
        g, i, lab = np.meshgrid(rows, np.arange(m), np.arange(2), indexing="ij")
        src = ((g * s_count + layout.kept[i]) * 2 + lab).ravel()
        dst = (lab * m + i).ravel()
        select = sparse.csr_matrix(
            (np.ones(src.size, np.int32), (src, dst)), shape=(cells.counts.size, 2 * m)
        )
        # (2m, units), CSC: one column per unit
        mapped = units.unit_rows(select).astype(np.float32).T
        n_patients = None
        if units.clustered:
            n_patients = int(np.count_nonzero(np.diff(mapped.indptr)))
        point = point_tally(counts, sums, layout)
        k = layout.kept
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (
                np.where(counts[k, 0] > 0, sums[k, 0] / counts[k, 0], 0.0),
                np.where(counts[k, 1] > 0, sums[k, 1] / counts[k, 1], 0.0),
            )
        out.append(Scope(name, layout, point, means, int(counts.sum()), n_patients, mapped))
    return out


_lock = threading.Lock()


def _cell_counts(scope: Scope, w: FloatArray) -> FloatArray:
    """Cell counts of the resamples, shape (c, 2m): negatives' slots, then positives'."""
    y = scope.unit_map @ w
    if y.dtype == np.float32 and y.size and float(y.max()) >= _FLOAT32_EXACT:
        # float32 may have rounded: redo this block in float64
        with _lock:
            if scope.unit_map64 is None:
                scope.unit_map64 = scope.unit_map.astype(np.float64)
        y = scope.unit_map64 @ w.astype(np.float64)
    out: FloatArray = np.asarray(y.T, dtype=np.float64, order="C")
    return out


def replicate_values(
    scopes: list[Scope], stats: Sequence[CellStatistic], w: FloatArray
) -> FloatArray:
    """Statistics of the resamples with unit counts ``w`` (units, c): shape (scopes, stats, c)."""
    out = np.empty((len(scopes), len(stats), w.shape[1]))
    for i, scope in enumerate(scopes):
        y = _cell_counts(scope, w)
        m = scope.layout.kept.size
        neg, pos = y[:, :m], y[:, m:]
        tally = Tally(pos, neg, pos * scope.means[1] + neg * scope.means[0], scope.layout)
        for j, s in enumerate(stats):
            out[i, j] = s.func(tally)
    return out
