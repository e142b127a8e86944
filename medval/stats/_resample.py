"""Resampling designs: which units are drawn, within which strata.

A design turns a random generator into blocks of resampling counts
``W`` (c, n): ``W[b, i]`` is how often case ``i`` appears in resample
``b``. Cases (or, with clusters, patients) are drawn with replacement,
exactly ``m`` draws from each stratum of ``m`` units, so class counts
(or counts of diseased / healthy patients) are fixed in every resample.
Counts are drawn as uniform integers counted with ``bincount`` per
stratum, which keeps the counting inside the cache.

References
----------
Davison & Hinkley (1997), *Bootstrap Methods and their Application*,
sec. 3.2 (stratified) and 3.8 (hierarchical / cluster resampling);
Field & Welsh (2007), J. R. Stat. Soc. B 69:369-390.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike

from medval.stats._validate import IntArray, check_clusters

__all__ = ["BLOCK_BYTES", "Design", "make_design", "resample_counts"]

# Target size of one (c, n) int64 block of counts: chunking keeps the
# peak memory bounded (~4 such blocks live at once).
BLOCK_BYTES = 1 << 22
# Strata up to this many units are counted with one bincount per block.
_SMALL_STRATUM = 4096


@dataclasses.dataclass(frozen=True)
class Design:
    """How to resample ``n`` cases.

    Attributes
    ----------
    n : int
        Number of cases.
    unit : array of int, shape (n,)
        Resampling unit of each case (the case itself, or its patient),
        numbered so that each stratum's units are contiguous.
    strata : tuple of int
        Number of units per stratum, in unit order.
    clustered : bool
        Whether units are clusters (patients) rather than cases.
    """

    n: int
    unit: IntArray
    strata: tuple[int, ...]
    clustered: bool

    @property
    def n_units(self) -> int:
        return int(sum(self.strata))

    def unit_stratum(self) -> IntArray:
        """Stratum index of each unit, shape (n_units,)."""
        return np.repeat(np.arange(len(self.strata)), self.strata).astype(np.int64)

    def chunk_size(self, n_resamples: int) -> int:
        return int(max(1, min(n_resamples, BLOCK_BYTES // (8 * max(self.n, self.n_units)))))

    def counts(self, rng: np.random.Generator, c: int) -> IntArray:
        """Draw ``c`` resamples: counts of shape (c, n), int64."""
        k = _unit_counts(rng, self.strata, c)
        if not self.clustered:
            return k
        return np.take(k, self.unit, axis=1)


def _unit_counts(rng: np.random.Generator, strata: tuple[int, ...], c: int) -> IntArray:
    total = int(sum(strata))
    out = np.empty((c, total), dtype=np.int64)
    start = 0
    for m in strata:
        dtype = np.int32 if m < 2**31 - 1 else np.int64
        idx = rng.integers(0, m, size=(c, m), dtype=dtype)
        if m <= _SMALL_STRATUM:
            # one bincount over all rows: offsets keep rows apart
            flat = (idx + (np.arange(c, dtype=np.int64) * m)[:, None]).ravel()
            out[:, start : start + m] = np.bincount(flat, minlength=c * m).reshape(c, m)
        else:
            # row by row, so that the counts being incremented stay in cache
            for r in range(c):
                out[r, start : start + m] = np.bincount(idx[r], minlength=m)
        start += m
    return out


def make_design(
    strata_label: IntArray, clusters: tuple[IntArray, int] | None, *, stratify: bool
) -> Design:
    """Build the design for cases already ordered by ``strata_label``.

    Parameters
    ----------
    strata_label : array of int, shape (n,)
        Class of each case (non-decreasing when ``clusters`` is None and
        ``stratify`` is True, so strata are contiguous).
    clusters : (codes, K) or None
        Patient code of each case. A patient's stratum is the largest
        label among its cases (its disease status).
    stratify : bool
        Keep the number of units per stratum fixed.
    """
    n = int(strata_label.shape[0])
    if clusters is None:
        if stratify:
            sizes = np.bincount(strata_label)
            strata = tuple(int(m) for m in sizes if m > 0)
        else:
            strata = (n,)
        return Design(n, np.arange(n, dtype=np.int64), strata, clustered=False)
    codes, k = clusters
    status = np.full(k, -1, dtype=np.int64)
    np.maximum.at(status, codes, strata_label)
    if not stratify:
        status[:] = 0
    order = np.argsort(status, kind="stable")
    renumber = np.empty(k, dtype=np.int64)
    renumber[order] = np.arange(k)
    sizes = np.bincount(status)
    strata = tuple(int(m) for m in sizes if m > 0)
    return Design(n, renumber[codes], strata, clustered=True)


def resample_counts(
    n: int,
    *,
    n_resamples: int,
    random_state: np.random.Generator,
    clusters: ArrayLike | None = None,
) -> Iterator[IntArray]:
    """Bootstrap resamples of ``n`` cases as blocks of counts, unstratified.

    For statistics outside :func:`bootstrap_ci` (e.g. the ECE) that need
    the same resampling design: cases, or with ``clusters`` patients with
    all their images, drawn with replacement.

    Parameters
    ----------
    n : int
        Number of cases.
    n_resamples : int
        Total number of resamples over all blocks.
    random_state : numpy.random.Generator
        Already normalised (:func:`normalise_random_state`).
    clusters : array, shape (n,), optional
        Patient key of each case. With one case per patient the counts
        are the same as without clusters, for the same generator.

    Yields
    ------
    array of int64, shape (c, n)
        ``W[b, i]``: how often case ``i`` appears in resample ``b``; the
        blocks' ``c`` add up to ``n_resamples``. Without clusters each
        row sums to ``n``; with clusters, to the number of images of the
        drawn patients.

    References
    ----------
    Davison & Hinkley (1997), *Bootstrap Methods and their Application*,
    sec. 3.8; Field & Welsh (2007), J. R. Stat. Soc. B 69:369-390.
    """
    design = make_design(np.zeros(n, dtype=np.int64), check_clusters(clusters, n), stratify=False)
    c = design.chunk_size(n_resamples)
    for start in range(0, n_resamples, c):
        yield design.counts(random_state, min(c, n_resamples - start))
