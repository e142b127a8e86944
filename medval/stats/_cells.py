"""Cell tables: cases counted per (subgroup, score slot, label), and per patient.

A binary classifier's rank and threshold metrics (AUROC, sensitivity,
specificity, PPV, NPV) depend on the cases only through how many of each
label fall at each score; binned calibration needs, besides, the sum of
the scores in each bin. A :class:`ScoreCells` keeps exactly that, at a fine
score resolution (see :mod:`medval.stats._cell_bins` for the slots), so
that ten million cases take a few megabytes, tables of shards add, and the
statistics and their bootstrap (:func:`cell_bootstrap`) run on counts.

With patient keys the table also keeps the per-patient aggregate (how many
of each patient's cases fall in each cell, a sparse matrix): a
patient-clustered bootstrap resample is then this matrix times the
patients' draw counts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse

from medval._errors import InputError
from medval.stats._cell_bins import DEFAULT_BINS, ScoreBins
from medval.stats._cell_build import (
    Built,
    CellBuilder,
    encode_first_appearance,
    parquet_batches,
    parquet_files,
)
from medval.stats._validate import FloatArray, IntArray, check_binary_labels

__all__ = ["PatientCells", "ScoreCells"]

Source = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


@dataclasses.dataclass(frozen=True, eq=False)
class PatientCells:
    """Per-patient aggregate of a cell table.

    Attributes
    ----------
    keys : array, shape (K,)
        Patient keys (int64, or objects such as str), in order of first
        appearance.
    matrix : scipy.sparse.csr_matrix of int32, shape (K, G * S * 2)
        ``matrix[p, (g * S + slot) * 2 + label]``: cases of patient ``p`` in
        that cell (S slots per group, G groups, 1 without subgroups).
    """

    keys: np.ndarray[Any, Any]
    matrix: sparse.csr_matrix

    @property
    def n_patients(self) -> int:
        return int(self.keys.shape[0])


@dataclasses.dataclass(frozen=True, eq=False)
class ScoreCells:
    """Cases of a binary classifier counted per (subgroup, score slot, label).

    Build with :meth:`from_arrays` or :meth:`from_parquet`; add tables of
    shards with ``+`` (or :meth:`merge`): counts add exactly, patients
    met in several shards are merged by key.

    Attributes
    ----------
    bins : ScoreBins
        The score bins; slot ``2k`` is the edge ``bins.edges[k]``, slot
        ``2k + 1`` the open bin after it.
    groups : tuple of str
        Subgroup names, sorted; empty when the table has no subgroups.
    counts : array of int64, shape (G, S, 2)
        Cases per (group, slot, label), S = ``bins.n_slots``, G =
        ``max(len(groups), 1)``.
    score_sums : array of float64, shape (G, S, 2)
        Sum of the scores of those cases (for calibration).
    patients : PatientCells or None
        The per-patient aggregate, when the table was built with patient keys.

    References
    ----------
    Hanley & McNeil (1982), "The meaning and use of the area under a ROC
    curve", Radiology 143:29-36 (AUROC from a table of counts per rating);
    Field & Welsh (2007), "Bootstrapping clustered data", J. R. Stat. Soc.
    B 69:369-390.
    """

    bins: ScoreBins
    groups: tuple[str, ...]
    counts: IntArray
    score_sums: FloatArray
    patients: PatientCells | None = None

    def __post_init__(self) -> None:
        shape = (max(len(self.groups), 1), self.bins.n_slots, 2)
        if self.counts.shape != shape or self.score_sums.shape != shape:
            raise InputError(
                f"counts and score_sums must have shape {shape} (groups, slots, labels); got "
                f"{self.counts.shape} and {self.score_sums.shape}."
            )
        p = self.patients
        if p is not None and p.matrix.shape != (p.n_patients, shape[0] * shape[1] * 2):
            raise InputError(
                f"the patient matrix must have shape ({p.n_patients}, {shape[0] * shape[1] * 2}); "
                f"got {p.matrix.shape}."
            )

    @property
    def n_cases(self) -> int:
        return int(self.counts.sum())

    @property
    def n_patients(self) -> int | None:
        return None if self.patients is None else self.patients.n_patients

    @classmethod
    def from_arrays(
        cls,
        scores: ArrayLike,
        labels: ArrayLike,
        *,
        patients: ArrayLike | None = None,
        groups: ArrayLike | None = None,
        bins: int | ArrayLike | ScoreBins = DEFAULT_BINS,
        score_range: tuple[float, float] = (0.0, 1.0),
    ) -> ScoreCells:
        """Cell table of cases held in memory.

        Parameters
        ----------
        scores : array of float, shape (n,)
            Positive-class score, in ``score_range``.
        labels : array of int, shape (n,)
            0/1 labels.
        patients : array, shape (n,), optional
            Patient key of each case (int or str); needed for the
            patient-clustered bootstrap.
        groups : array, shape (n,), optional
            Subgroup of each case (site, scanner, sex...); names are their ``str``.
        bins : int, array of float or ScoreBins, default 96000
            Number of equal-width bins over ``score_range``, or explicit
            edges (e.g. a grid with the thresholds of interest added), or
            the bins of another table (to build shards that add).
        score_range : (float, float), default (0, 1)
            Range of the equal-width bins; scores outside it are refused.

        Raises
        ------
        InputError
            On non-binary labels, NaN or out-of-range scores, keys of the
            wrong shape or holding missing values, or invalid bins.
        """
        score_bins = _make_bins(bins, score_range)
        y = check_binary_labels(labels, name="labels")
        n = y.shape[0]
        builder = CellBuilder(score_bins, patients=patients is not None, grouped=groups is not None)
        keys = {"patients": patients, "groups": groups}
        encoded: dict[str, tuple[list[Any], IntArray] | None] = {}
        for name, value in keys.items():
            if value is None:
                encoded[name] = None
                continue
            v = np.asarray(value)
            if v.ndim != 1 or v.shape[0] != n:
                raise InputError(
                    f"{name} must hold one key per case, shape ({n},); got shape {v.shape}."
                )
            encoded[name] = encode_first_appearance(v, name=name.rstrip("s"))
        builder.add(scores, y, patients=encoded["patients"], groups=encoded["groups"])
        return cls._from_built(score_bins, builder.finish())

    @classmethod
    def from_parquet(
        cls,
        source: Source,
        *,
        score: str,
        label: str,
        patient: str | None = None,
        group: str | None = None,
        bins: int | ArrayLike | ScoreBins = DEFAULT_BINS,
        score_range: tuple[float, float] = (0.0, 1.0),
        batch_rows: int = 1 << 20,
    ) -> ScoreCells:
        """Cell table streamed from Parquet files, one record batch at a time.

        Only the named columns are read (``pyarrow.parquet.ParquetFile.iter_batches``);
        the memory held is the table itself (a few MiB at the default bins)
        plus one batch plus, with ``patient``, the per-patient aggregate: 16
        bytes per distinct (patient, cell) pair while building (the pending
        keys are compacted every 4 Mi cases), 8 in the finished table, and
        the patient keys themselves. At 10^7 cases of 10^6 patients the
        process peaks near 1 GiB (``benchmarks/bench_scale.py``).

        Parameters
        ----------
        source : path, folder or sequence of paths
            A Parquet file, a folder (its ``*.parquet`` files, in sorted
            order), or a list of files. A patient whose rows span files is
            one patient.
        score, label : str
            Column names of the positive-class score and the 0/1 (or bool) label.
        patient, group : str, optional
            Column names of the patient key and the subgroup.
        bins, score_range
            As in :meth:`from_arrays`.
        batch_rows : int, default 1048576
            Rows per record batch.

        Raises
        ------
        InputError
            On missing files or columns (the message lists the columns),
            missing values, and everything :meth:`from_arrays` refuses; the
            message names the file and rows.
        """
        score_bins = _make_bins(bins, score_range)
        files = parquet_files(source)
        builder = CellBuilder(score_bins, patients=patient is not None, grouped=group is not None)
        columns = {"score": score, "label": label, "patient": patient, "group": group}
        for where, batch in parquet_batches(files, columns, batch_rows):
            builder.add(
                batch["score"],
                batch["label"],
                patients=batch.get("patient"),
                groups=batch.get("group"),
                where=where,
            )
        return cls._from_built(score_bins, builder.finish())

    @classmethod
    def _from_built(cls, bins: ScoreBins, built: Built) -> ScoreCells:
        patients = None
        if built.patient_keys is not None and built.matrix is not None:
            patients = PatientCells(built.patient_keys, built.matrix)
        return cls(bins, built.groups, built.counts, built.sums, patients)

    def merge(self, other: ScoreCells) -> ScoreCells:
        """The table of both shards' cases: counts add; patients merge by key.

        Raises
        ------
        InputError
            If the bins differ, one table has subgroups and the other not,
            or one keeps patients and the other not.
        """
        if not isinstance(other, ScoreCells):
            raise InputError(f"only ScoreCells add to ScoreCells; got {type(other).__name__}.")
        if not self.bins.same_as(other.bins):
            raise InputError(
                "the two tables have different bins; build every shard with the same bins= "
                "and score_range= so that their cells line up."
            )
        if bool(self.groups) != bool(other.groups):
            raise InputError(
                "one table has subgroups and the other not; build every shard with the same "
                "group column."
            )
        if (self.patients is None) != (other.patients is None):
            raise InputError(
                "one table keeps patients and the other not; build every shard with the same "
                "patient column (or neither)."
            )
        groups = tuple(sorted(set(self.groups) | set(other.groups)))
        shape = (max(len(groups), 1), self.bins.n_slots, 2)
        counts, sums = np.zeros(shape, dtype=np.int64), np.zeros(shape)
        luts = [_group_lut(t.groups, groups) for t in (self, other)]
        for t, lut in zip((self, other), luts, strict=True):
            counts[lut] += t.counts  # lut holds distinct groups
            sums[lut] += t.score_sums
        patients = None
        if self.patients is not None and other.patients is not None:
            patients = _merge_patients(
                (self.patients, other.patients), luts, shape[0], self.bins.n_slots
            )
        return ScoreCells(self.bins, groups, counts, sums, patients)

    def __add__(self, other: ScoreCells) -> ScoreCells:
        return self.merge(other)


def _make_bins(bins: int | ArrayLike | ScoreBins, score_range: tuple[float, float]) -> ScoreBins:
    if isinstance(bins, ScoreBins):
        return bins
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        return ScoreBins.equal_width(int(bins), score_range)
    if np.ndim(bins) == 1:
        return ScoreBins.from_edges(bins)
    raise InputError(f"bins must be an int (number of bins) or a 1-D array of edges; got {bins!r}.")


def _group_lut(names: tuple[str, ...], union: tuple[str, ...]) -> IntArray:
    if not names:
        return np.zeros(1, dtype=np.int64)
    index = {g: i for i, g in enumerate(union)}
    return np.array([index[g] for g in names], dtype=np.int64)


def _merge_patients(
    parts: tuple[PatientCells, PatientCells], luts: list[IntArray], n_groups: int, n_slots: int
) -> PatientCells:
    """Stack both patient matrices on the union of keys (first appearance, left first)."""
    codes: dict[Any, int] = {}
    rows, cols, data = [], [], []
    width = n_slots * 2
    for part, lut in zip(parts, luts, strict=True):
        row_lut = np.fromiter(
            (codes.setdefault(k, len(codes)) for k in part.keys.tolist()), np.int64, part.n_patients
        )
        coo = part.matrix.tocoo()
        rows.append(row_lut[coo.row])
        cols.append(lut[coo.col // width] * width + coo.col % width)
        data.append(coo.data)
    keys = np.empty(len(codes), dtype=object)
    keys[:] = list(codes)
    if all(p.keys.dtype.kind in "iu" for p in parts):
        keys = keys.astype(np.int64)
    matrix = sparse.csr_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(codes), n_groups * width),
        dtype=np.int32,
    )
    matrix.sum_duplicates()
    return PatientCells(keys, matrix)
