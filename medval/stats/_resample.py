"""Resampling designs: which units are drawn, within which strata.

A design turns a random :class:`~medval.stats._draws.Stream` into blocks
of resampling counts ``W`` (c, n): ``W[b, i]`` is how often case ``i``
appears in resample ``b``. Cases (or, with clusters, patients) are drawn
with replacement, exactly ``m`` draws from each stratum of ``m`` units,
so class counts (or counts of diseased / healthy patients) are fixed in
every resample. Each resample reads its own words from the stream
(:mod:`medval.stats._draws`), so the counts do not depend on the block
size; they are counted with ``bincount`` per stratum, which keeps the
counting inside the cache.

This is the one resampler of the package: :func:`bootstrap_ci`, the
paired comparisons and operating points use :func:`make_design`; the
statistics outside them (the ECE interval, the ROC curve's band) use
:func:`resample_counts`.

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

from medval.stats._draws import Stream, draw_units, word_width
from medval.stats._validate import IntArray, check_clusters, check_strata

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
    permuted : bool, default False
        Whether unclustered cases are numbered out of their order (cases
        not sorted by stratum), so that counts are gathered through
        ``unit`` like a patient's.
    """

    n: int
    unit: IntArray
    strata: tuple[int, ...]
    clustered: bool
    permuted: bool = False

    @property
    def n_units(self) -> int:
        return int(sum(self.strata))

    @property
    def width(self) -> int:
        """Random words one resample reads (:func:`~medval.stats._draws.word_width`)."""
        return word_width(self.strata)

    def unit_stratum(self) -> IntArray:
        """Stratum index of each unit, shape (n_units,)."""
        return np.repeat(np.arange(len(self.strata)), self.strata).astype(np.int64)

    def chunk_size(self, n_resamples: int) -> int:
        return int(max(1, min(n_resamples, BLOCK_BYTES // (8 * max(self.n, self.n_units)))))

    def counts(self, stream: Stream, c: int) -> IntArray:
        """Draw the next ``c`` resamples of ``stream``: counts (c, n), int64."""
        k = _unit_counts(stream, c, self.strata)
        if not (self.clustered or self.permuted):
            return k
        return np.take(k, self.unit, axis=1)


def _unit_counts(stream: Stream, c: int, strata: tuple[int, ...]) -> IntArray:
    """Counts (c, n_units) of the units the next ``c`` resamples draw."""
    out = np.empty((c, int(sum(strata))), dtype=np.int64)
    rejected = np.zeros((c, len(strata)), dtype=np.int64)
    width = word_width(strata)
    if max(strata) > _SMALL_STRATUM:
        # resample by resample: the counts being incremented stay in cache,
        # and no temporary is larger than one resample's words
        for r in range(c):
            words = stream.row(width)
            start = 0
            for s, m in enumerate(strata):
                # rejected words land in bins m and above
                both = np.bincount(draw_units(words[start : start + m], m), minlength=m)
                out[r, start : start + m] = both[:m]
                rejected[r, s] = both[m:].sum()
                start += m
    else:
        words = stream.words(c, width)
        start = 0
        for s, m in enumerate(strata):
            idx = draw_units(words[:, start : start + m], m)
            # one bincount over all rows: offsets keep rows apart, and each
            # row's extra bin m collects its rejected words
            np.minimum(idx, m, out=idx)
            flat = (idx + (np.arange(c, dtype=np.int64) * (m + 1))[:, None]).ravel()
            both = np.bincount(flat, minlength=c * (m + 1)).reshape(c, m + 1)
            out[:, start : start + m] = both[:, :m]
            rejected[:, s] = both[:, m]
            start += m
    _add_redraws(out, rejected, stream, strata)
    return out


def _add_redraws(
    out: IntArray, rejected: IntArray, stream: Stream, strata: tuple[int, ...]
) -> None:
    """Count the redraws of rejected words, resample by resample, stratum by
    stratum (the order the stream reads them in)."""
    sizes = np.asarray(strata, dtype=np.int64)
    offsets = np.cumsum(sizes) - sizes
    for r in np.flatnonzero(rejected.any(axis=1)):
        stratum = np.repeat(np.arange(sizes.size), rejected[r])
        np.add.at(out[r], offsets[stratum] + stream.redraw(sizes[stratum]), 1)


def make_design(
    strata_label: IntArray, clusters: tuple[IntArray, int] | None, *, stratify: bool
) -> Design:
    """Build the resampling design of ``n`` cases.

    Parameters
    ----------
    strata_label : array of int, shape (n,)
        Stratum (class) of each case, a non-negative int. The hot paths
        pass cases already sorted by it, so that strata are contiguous
        and counts need no gather; unsorted labels are allowed.
    clusters : (codes, K) or None
        Patient code of each case. A patient's stratum is the largest
        label among its cases: with 0/1 labels a patient is diseased
        (stratum 1) when any of their images is positive.
    stratify : bool
        Keep the number of units per stratum fixed.
    """
    n = int(strata_label.shape[0])
    if clusters is None:
        if not stratify:
            return Design(n, np.arange(n, dtype=np.int64), (n,), clustered=False)
        sizes = np.bincount(strata_label)
        strata = tuple(int(m) for m in sizes if m > 0)
        if n < 2 or bool(np.all(strata_label[1:] >= strata_label[:-1])):
            return Design(n, np.arange(n, dtype=np.int64), strata, clustered=False)
        # unsorted: number cases stratum by stratum, in their order within it
        unit = np.empty(n, dtype=np.int64)
        unit[np.argsort(strata_label, kind="stable")] = np.arange(n)
        return Design(n, unit, strata, clustered=False, permuted=True)
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
    strata: ArrayLike | None = None,
) -> Iterator[IntArray]:
    """Bootstrap resamples of ``n`` cases as blocks of counts.

    For statistics outside :func:`bootstrap_ci` (the ECE interval, the
    ROC curve's band) that need the same resampling design: cases, or
    with ``clusters`` patients with all their images, drawn with
    replacement; with ``strata``, drawn within each stratum.

    Parameters
    ----------
    n : int
        Number of cases.
    n_resamples : int
        Total number of resamples over all blocks.
    random_state : numpy.random.Generator
        Already normalised (:func:`normalise_random_state`); one draw
        from it seeds the resamples' :class:`~medval.stats._draws.Stream`.
    clusters : array, shape (n,), optional
        Patient key of each case. With one case per patient the counts
        are the same as without clusters, for the same generator (and the
        same ``strata``).
    strata : array, shape (n,), optional
        Stratum of each case (e.g. the 0/1 label); unstratified when
        None. Every resample draws as many units from each stratum as it
        holds: its number of cases, or with ``clusters`` its number of
        patients. With ``clusters``, a patient's stratum is the largest
        value among their cases' (in sorted order): with 0/1 labels, a
        patient is positive when any of their images is positive, so a
        patient with mixed labels is resampled among the positive ones.
        Strata are numbered by sorted value and cases keep their order
        within a stratum, so the counts do not depend on how the case
        order interleaves strata.

    Yields
    ------
    array of int64, shape (c, n)
        ``W[b, i]``: how often case ``i`` appears in resample ``b``; the
        blocks' ``c`` add up to ``n_resamples``. Without clusters each
        row sums to ``n`` (each stratum's cases to its size); with
        clusters, to the number of images of the drawn patients. The
        resamples do not depend on how they are split into blocks.

    Raises
    ------
    InputError
        On ``clusters`` or ``strata`` of the wrong shape or holding
        missing values.

    References
    ----------
    Davison & Hinkley (1997), *Bootstrap Methods and their Application*,
    sec. 3.2 (stratified) and 3.8 (clustered); Field & Welsh (2007),
    J. R. Stat. Soc. B 69:369-390.
    """
    codes = check_clusters(clusters, n)
    if strata is None:
        design = make_design(np.zeros(n, dtype=np.int64), codes, stratify=False)
    else:
        design = make_design(check_strata(strata, n), codes, stratify=True)
    stream = Stream.from_generator(random_state)
    c = design.chunk_size(n_resamples)
    for start in range(0, n_resamples, c):
        yield design.counts(stream, min(c, n_resamples - start))
