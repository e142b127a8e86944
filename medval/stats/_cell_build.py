"""Building cell tables batch by batch: from arrays or streamed from Parquet.

One :class:`CellBuilder` takes batches of (score, label, patient, group) and
keeps, in memory that does not grow with the batch size,

* the histogram: cases and sums of scores per (group, slot, label) cell,
  added to with ``bincount`` per batch;
* with patients, the per-patient aggregate: how many of each patient's
  cases fall in each cell, as sorted 64-bit keys ``patient << 32 | group
  << 24 | slot * 2 + label`` with counts, compacted (sorted and reduced)
  whenever the pending keys pass a bound. Its size is the number of
  distinct (patient, cell) pairs, never more than the number of cases.

Patients and groups are numbered in order of first appearance, which is
the order of the rows (files in the order given, rows in file order); a
patient whose rows span batches or files is one patient.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from medval._errors import InputError, MissingDependencyError
from medval.stats._cell_bins import ScoreBins
from medval.stats._validate import FloatArray, IntArray, check_binary_labels, check_scores

__all__ = ["MAX_GROUPS", "Built", "CellBuilder", "encode_first_appearance", "parquet_batches"]

MAX_GROUPS = 255
# Pending (patient, cell) keys are compacted past this many (32 MiB of int64).
_COMPACT_KEYS = 1 << 22
_MAX_PATIENTS = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Built:
    """What a builder made: the parts of a :class:`ScoreCells`."""

    groups: tuple[str, ...]  # subgroup names, sorted; () without subgroups
    counts: IntArray  # (G, S, 2) cases per (group, slot, label)
    sums: FloatArray  # (G, S, 2) sums of scores
    patient_keys: np.ndarray[Any, Any] | None  # (K,) in order of first appearance
    matrix: sparse.csr_matrix | None  # (K, G * S * 2) cases per patient and cell


def encode_first_appearance(
    values: np.ndarray[Any, Any], *, name: str
) -> tuple[list[Any], IntArray]:
    """Distinct values in order of first appearance, and each row's index into them."""
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise InputError(f"{name} contains NaN; every case needs a {name} key.")
    if values.dtype.kind == "O" and any(v is None for v in values):
        raise InputError(f"{name} contains None; every case needs a {name} key.")
    uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return uniq[order].tolist(), rank[np.asarray(inverse).ravel()]


class _Encoder:
    """Global codes for keys met batch by batch, in order of first appearance."""

    def __init__(self) -> None:
        self.codes: dict[Any, int] = {}

    def encode(self, uniques: Sequence[Any], local: IntArray) -> IntArray:
        d = self.codes
        lut = np.fromiter((d.setdefault(k, len(d)) for k in uniques), np.int64, len(uniques))
        out: IntArray = lut[local]
        return out


class CellBuilder:
    """Accumulates cells over batches; :meth:`finish` returns the table's parts.

    Parameters
    ----------
    bins : ScoreBins
    patients : bool
        Whether batches carry patient keys (needed for the patient-clustered
        bootstrap).
    grouped : bool
        Whether batches carry subgroup keys.
    """

    def __init__(self, bins: ScoreBins, *, patients: bool, grouped: bool) -> None:
        self.bins, self.with_patients, self.grouped = bins, patients, grouped
        self._groups, self._patients = _Encoder(), _Encoder()
        s = bins.n_slots
        self._counts = np.zeros((1, s, 2), dtype=np.int64)
        self._sums = np.zeros((1, s, 2), dtype=np.float64)
        self._keys = np.empty(0, dtype=np.int64)
        self._key_counts = np.empty(0, dtype=np.int64)
        self._pending: list[IntArray] = []
        self._n_pending = 0

    def add(
        self,
        scores: Any,
        labels: Any,
        *,
        patients: tuple[Sequence[Any], IntArray] | None = None,
        groups: tuple[Sequence[Any], IntArray] | None = None,
        where: str = "",
    ) -> None:
        """Add one batch: scores, 0/1 labels, and (distinct keys, row codes) pairs."""
        y = check_binary_labels(labels, name="labels")
        s = check_scores(scores, y.shape[0], name="scores")
        slot = self.bins.slots(s, where=where)
        n = y.shape[0]
        if self.grouped:
            if groups is None:
                raise InputError("this table has subgroups; every batch needs group keys.")
            g = self._groups.encode([str(v) for v in groups[0]], groups[1])
            if len(self._groups.codes) > MAX_GROUPS:
                raise InputError(
                    f"at most {MAX_GROUPS} subgroups are supported; got more{where}. Group by a "
                    "coarser key (site, scanner model), not by patient or image."
                )
        else:
            g = np.zeros(n, dtype=np.int64)
        n_groups, s_count = max(len(self._groups.codes), 1), self.bins.n_slots
        if n_groups > self._counts.shape[0]:
            extra = n_groups - self._counts.shape[0]
            self._counts = np.concatenate([self._counts, np.zeros((extra, s_count, 2), np.int64)])
            self._sums = np.concatenate([self._sums, np.zeros((extra, s_count, 2))])
        flat = (g * s_count + slot) * 2 + y
        size = n_groups * s_count * 2
        self._counts += np.bincount(flat, minlength=size).reshape(n_groups, s_count, 2)
        self._sums += np.bincount(flat, weights=s, minlength=size).reshape(n_groups, s_count, 2)
        if self.with_patients:
            if patients is None:
                raise InputError("this table keeps patients; every batch needs patient keys.")
            p = self._patients.encode(patients[0], patients[1])
            if len(self._patients.codes) > _MAX_PATIENTS:
                raise InputError(f"at most {_MAX_PATIENTS:,} patients are supported.")
            self._pending.append((p << 32) | (g << 24) | (slot * 2 + y))
            self._n_pending += n
            if self._n_pending >= _COMPACT_KEYS:
                self._compact()

    def _compact(self) -> None:
        """Sort and reduce the pending keys into the kept (key, count) pairs."""
        if not self._pending:
            return
        new = np.concatenate(self._pending)
        self._pending, self._n_pending = [], 0
        new.sort()
        keys, counts = _runs(new)
        del new
        if self._keys.size:
            keys = np.concatenate([self._keys, keys])
            counts = np.concatenate([self._key_counts, counts])
            order = np.argsort(keys, kind="stable")  # two sorted runs: a linear merge
            keys, counts = keys[order], counts[order]
            del order
            first = _run_starts(keys)
            keys, counts = keys[first], np.add.reduceat(counts, first)
        self._keys, self._key_counts = keys, counts

    def finish(self) -> Built:
        """Group names (sorted), counts and sums (G, S, 2), patient keys and matrix."""
        names = list(self._groups.codes) if self.grouped else []
        order = (
            np.argsort(np.array(names, dtype=object), kind="stable") if names else np.zeros(1, int)
        )
        counts, sums = self._counts[order], self._sums[order]
        groups = tuple(names[i] for i in order) if names else ()
        if not self.with_patients:
            return Built(groups, counts, sums, None, None)
        self._compact()
        keys, n_keys = self._keys, len(self._patients.codes)
        remap = np.empty(order.size, dtype=np.int64)
        remap[order] = np.arange(order.size)
        if np.any(self._key_counts > np.iinfo(np.int32).max):
            raise InputError("a patient has more than 2**31 cases in one cell; not supported.")
        # keys are sorted by patient: the CSR row pointers are the run boundaries
        shape = (n_keys, counts.shape[0] * self.bins.n_slots * 2)
        index = np.int32 if max(shape[1], keys.size) < 2**31 else np.int64
        indptr = np.searchsorted(keys >> 32, np.arange(n_keys + 1)).astype(index)
        cols = remap[(keys >> 24) & 0xFF] * (self.bins.n_slots * 2) + (keys & 0xFFFFFF)
        matrix = sparse.csr_matrix(
            (self._key_counts.astype(np.int32), cols.astype(index), indptr), shape=shape
        )
        del cols
        if not np.all(remap == np.arange(remap.size)):
            matrix.has_sorted_indices = False
            matrix.sort_indices()
        patient_keys = _key_array(list(self._patients.codes))
        self._keys = self._key_counts = np.empty(0, dtype=np.int64)
        return Built(groups, counts, sums, patient_keys, matrix)


def _run_starts(sorted_keys: IntArray) -> IntArray:
    flags = np.empty(sorted_keys.size, dtype=bool)
    flags[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=flags[1:])
    out: IntArray = np.flatnonzero(flags)
    return out


def _runs(sorted_keys: IntArray) -> tuple[IntArray, IntArray]:
    """Distinct keys of a sorted array and how often each occurs."""
    starts = _run_starts(sorted_keys)
    counts = np.diff(starts, append=sorted_keys.size)
    return sorted_keys[starts], counts


def _key_array(keys: list[Any]) -> np.ndarray[Any, Any]:
    if keys and all(isinstance(k, (int, np.integer)) for k in keys):
        return np.array(keys, dtype=np.int64)
    out = np.empty(len(keys), dtype=object)
    out[:] = keys
    return out


def parquet_files(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The Parquet files of ``source``: a file, a folder (its ``*.parquet``, sorted), or a list."""
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*.parquet"))
            if not found:
                raise InputError(f"folder {p} holds no *.parquet files; point at the parts.")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"Parquet source {p} does not exist; check the path.")
    if not files:
        raise InputError("no Parquet files given; pass a file, a folder or a list of parts.")
    return files


def parquet_batches(
    files: Sequence[Path], columns: dict[str, str | None], batch_rows: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, {role: column})`` per record batch, reading only the named columns.

    Patient and group columns come dictionary-encoded: ``(distinct keys in
    order of first appearance, row codes)``.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is installed with pandas' extras
        raise MissingDependencyError(
            "streaming cells from Parquet needs pyarrow: pip install pyarrow"
        ) from exc
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InputError(f"batch_rows must be a positive int; got {batch_rows!r}.")
    wanted = {role: col for role, col in columns.items() if col is not None}
    for path in files:
        pf = pq.ParquetFile(path)
        missing = sorted(set(wanted.values()) - set(pf.schema_arrow.names))
        if missing:
            raise InputError(
                f"{path.name} has no column {missing}; its columns are {pf.schema_arrow.names}. "
                "Name the columns with score=, label=, patient=, group=."
            )
        row = 0
        for batch in pf.iter_batches(batch_size=batch_rows, columns=sorted(set(wanted.values()))):
            where = f" (file {path.name}, rows {row}..{row + batch.num_rows - 1})"
            out: dict[str, Any] = {}
            for role, col in wanted.items():
                arr = batch.column(col)
                if arr.null_count:
                    raise InputError(
                        f"column {col!r} has {arr.null_count} missing values{where}; every "
                        "case needs a score, a label and its keys."
                    )
                if role in ("patient", "group"):
                    enc = arr.dictionary_encode()
                    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
                    out[role] = (enc.dictionary.to_pylist(), codes)
                elif pa.types.is_boolean(arr.type):
                    out[role] = arr.to_numpy(zero_copy_only=False).astype(np.int64)
                else:
                    out[role] = arr.to_numpy(zero_copy_only=False)
            row += batch.num_rows
            yield where, out
