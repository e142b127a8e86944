"""The stratified bootstrap AUROC straight from the drawn ranks.

With the cases sorted by class and, within a class, by score, a
stratified resample draws ``m_0`` negatives and ``m_1`` positives, each
a uniform rank within its class. Its AUROC counts the pairs (drawn
positive, drawn negative) in score order, ties one half:

    AUROC = sum_j (C[lo_j] + C[hi_j]) / (2 m_0 m_1)

over the drawn positives ``j``, where ``C[k]`` is the number of drawn
negatives among the ``k`` lowest-scored and ``lo_j`` / ``hi_j`` are the
numbers of negatives scored below / at most the score of ``j``. So only
one class (the larger, ``A``) is counted, with one ``bincount`` and one
cumulative sum; the other class (``B``) looks ``C`` up at its drawn
ranks and adds up: no count vector of ``B``, no (resamples, n) block,
and a few passes over each resample's draws. Only the counts per run of
equal labels in score order matter to the value, which is why the
lookup by rank is exact.

The draws are read from the same :class:`~medval.stats._draws.Stream`
words, in the same layout, as :meth:`Design.counts
<medval.stats._resample.Design.counts>` reads them: for the same stream
the replicates equal those of the count path, resample by resample.

References
----------
Mann & Whitney (1947), Ann. Math. Stat. 18:50-60; Bamber (1975), J. Math.
Psychol. 12:387-415 (AUROC as the Mann-Whitney statistic); Davison &
Hinkley (1997), *Bootstrap Methods and their Application*, sec. 3.2
(stratified resampling).
"""

from __future__ import annotations

from typing import TypeGuard

import numpy as np

from medval.stats._draws import Stream, draw_units, rejection_limit, word_width
from medval.stats._resample import Design
from medval.stats._validate import FloatArray
from medval.stats._weighted import AurocEvaluator

__all__ = ["MIN_CASES", "RankAuroc"]

# Below this many cases the count path, vectorised over many resamples at
# once, is the faster (the rank path pays a few numpy calls per resample).
MIN_CASES = 1000


class RankAuroc:
    """Stratified-bootstrap AUROC replicates from the drawn ranks.

    Parameters
    ----------
    ev : AurocEvaluator
        Built on cases already sorted by class, then score (its ``perm``
        is None), with both classes present.

    Attributes
    ----------
    n : int
        Number of cases.
    width : int
        Random words one resample reads.
    min_thread_cases : int
        Threads pay off from this many cases on: a resample makes about
        ten numpy calls, each releasing and retaking the GIL, and with
        fewer cases the threads spend their time handing it over.
    """

    min_thread_cases = 1 << 16

    def __init__(self, ev: AurocEvaluator) -> None:
        if ev.perm is not None or min(ev.n0, ev.n1) < 1:
            raise ValueError("RankAuroc needs class-blocked, score-sorted cases of both classes")
        self.n = ev.n
        self._n0, self._n1 = ev.n0, ev.n1
        self.width = word_width((ev.n0, ev.n1))
        # Count the larger class (A), look the smaller one (B) up: the lookup
        # table is as long as B, the counting pass as long as A.
        self._count_positives = ev.n1 > ev.n0
        if self._count_positives:
            self._a, self._b = (ev.n0, ev.n1), (0, ev.n0)
            self._lo, self._hi = ev.plo, ev.phi
        else:
            self._a, self._b = (0, ev.n0), (ev.n0, ev.n1)
            self._lo, self._hi = ev.lo, ev.hi
        self._ties = ev.ties

    @staticmethod
    def applies(ev: object, design: Design) -> TypeGuard[AurocEvaluator]:
        """Whether ``design`` resamples ``ev``'s cases within their classes,
        and there are enough of them for the rank path to be the faster."""
        return (
            isinstance(ev, AurocEvaluator)
            and ev.perm is None
            and not (design.clustered or design.permuted)
            and design.strata == (ev.n0, ev.n1)
            and design.n >= MIN_CASES
        )

    def block_rows(self) -> int:
        """Resamples per block: any number (the work is done resample by
        resample, in buffers allocated once per block)."""
        return 1 << 30

    def block_bytes(self, rows: int) -> int:
        """Memory of a block: one resample's words, drawn units and tables."""
        return self.n * 48

    def values(self, stream: Stream, c: int) -> FloatArray:
        """AUROC of the next ``c`` resamples of ``stream``, shape (c,)."""
        (a0, m_a), (b0, m_b) = self._a, self._b
        limit_b = rejection_limit(m_b)
        drawn_a = np.empty(m_a, dtype=np.intp)
        drawn_b = np.empty(m_b, dtype=np.intp)
        below = np.zeros(m_a + 1, dtype=np.int64)
        # one more entry: rejected draws of B (clipped onto it) add nothing
        table = np.zeros(m_b + 1, dtype=np.int64)
        picked = np.empty(m_b, dtype=np.int64)
        half = 2 if self._ties else 1
        out = np.empty(c)
        for r in range(c):
            words = stream.row(self.width)
            draw_units(words[a0 : a0 + m_a], m_a, out=drawn_a)
            draw_units(words[b0 : b0 + m_b], m_b, out=drawn_b)
            counts = np.bincount(drawn_a, minlength=m_a)
            rejected_a = int(counts[m_a:].sum()) if counts.size > m_a else 0
            rejected_b = int(np.count_nonzero(words[b0 : b0 + m_b] >= limit_b))
            redrawn_a, redrawn_b = self._redraw(stream, rejected_a, rejected_b)
            for unit in redrawn_a:
                counts[unit] += 1
            np.cumsum(counts[:m_a], out=below[1:])
            np.take(below, self._lo, out=table[:m_b])
            if self._ties:
                np.add(table[:m_b], np.take(below, self._hi, out=picked), out=table[:m_b])
            np.take(table, drawn_b, mode="clip", out=picked)
            pairs = int(picked.sum()) + sum(int(table[unit]) for unit in redrawn_b)
            if self._count_positives:  # pairs counted from the negatives' side
                pairs = half * m_a * m_b - pairs
            out[r] = pairs / (half * self._n0 * self._n1)
        return out

    def _redraw(
        self, stream: Stream, rejected_a: int, rejected_b: int
    ) -> tuple[list[int], list[int]]:
        """Redraws of A's and B's rejected words, read in stratum order."""
        if rejected_a == 0 and rejected_b == 0:
            return [], []
        (_, m_a), (_, m_b) = self._a, self._b
        if self._count_positives:  # stratum 0 (negatives) is B
            highs = np.repeat(np.array([m_b, m_a]), [rejected_b, rejected_a])
            redrawn = stream.redraw(highs).tolist()
            return redrawn[rejected_b:], redrawn[:rejected_b]
        highs = np.repeat(np.array([m_a, m_b]), [rejected_a, rejected_b])
        redrawn = stream.redraw(highs).tolist()
        return redrawn[:rejected_a], redrawn[rejected_a:]
