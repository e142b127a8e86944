"""Score bins of the cell tables: edges, slots, and where a threshold falls.

A score lands in one of ``2B + 1`` *slots* of ``B`` bins with edges
``e_0 < ... < e_B``: slot ``2k`` holds the scores exactly equal to ``e_k``,
slot ``2k + 1`` those strictly between ``e_k`` and ``e_{k+1}``. Keeping the
edges as slots of their own makes every rule that cuts at an edge exact,
whatever the ties: a threshold ``score >= e_k`` (the positive slots are
``2k`` onwards), and calibration bins closed on the right, ``(c_j, c_{j+1}]``
as in :func:`medval.calibration.ece`. Only pairs of scores inside one open
slot lose their order; tied scores in an edge slot are ties for the rank
statistics too.

The default is ``96_000 = 2**8 * 3 * 5**3`` equal-width bins on ``[0, 1]``
rather than a power of two: every multiple of 0.001 (thresholds such as
0.3 or 0.125) and every multiple of 1/15 (the 15 calibration bins of
:func:`medval.calibration.ece`) is then an edge, bit for bit, because an
edge is computed as ``k / 96000``, a correctly rounded division like the
decimal literal itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medval._errors import InputError
from medval.stats._validate import FloatArray, IntArray

__all__ = ["DEFAULT_BINS", "MAX_BINS", "ScoreBins"]

DEFAULT_BINS = 96_000
# The patient aggregates pack (slot, label) into 24 bits: 2 * (2B + 1) < 2**24.
MAX_BINS = 4_000_000


@dataclasses.dataclass(frozen=True, eq=False)
class ScoreBins:
    """Bin edges of a cell table, and the slot of each score.

    Build with :meth:`equal_width` or :meth:`from_edges`; or pass ``bins=``
    to :meth:`ScoreCells.from_arrays` (an int, or explicit edges).

    Attributes
    ----------
    edges : array of float, shape (B + 1,)
        Strictly increasing; the scores must lie in ``[edges[0], edges[-1]]``.
    uniform : bool
        Whether the edges are equal-width (then slots are found by
        arithmetic rather than by binary search).
    """

    edges: FloatArray
    uniform: bool = False

    @classmethod
    def equal_width(
        cls, n_bins: int = DEFAULT_BINS, score_range: tuple[float, float] = (0.0, 1.0)
    ) -> ScoreBins:
        """``n_bins`` equal-width bins over ``score_range`` (probabilities by default).

        Raises
        ------
        InputError
            If ``n_bins`` is not an int in ``[1, MAX_BINS]`` or the range is
            not two finite numbers, low < high.
        """
        if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
            raise InputError(f"bins must be an int (number of bins) or edges; got {n_bins!r}.")
        if not 1 <= n_bins <= MAX_BINS:
            raise InputError(
                f"bins must be between 1 and {MAX_BINS:,} equal-width bins; got {n_bins}. "
                f"The default {DEFAULT_BINS:,} bins keep the AUROC within about 1e-5 of "
                "the exact one at worst."
            )
        lo, hi = _check_range(score_range)
        k = np.arange(int(n_bins) + 1, dtype=np.float64)
        # k / n is correctly rounded: the edge k/n equals the literal of that fraction.
        edges = k / n_bins if (lo, hi) == (0.0, 1.0) else lo + (hi - lo) * (k / n_bins)
        edges[-1] = hi
        return cls(edges, uniform=True)

    @classmethod
    def from_edges(cls, edges: ArrayLike) -> ScoreBins:
        """Explicit bin edges, e.g. a grid with the thresholds of interest added.

        Raises
        ------
        InputError
            If the edges are not at least two finite, strictly increasing numbers.
        """
        e = np.asarray(edges)
        if e.dtype.kind not in "iuf" or e.ndim != 1 or e.size < 2:
            raise InputError(
                f"edges must be a 1-D array of at least 2 numbers; got dtype {e.dtype}, "
                f"shape {e.shape}."
            )
        e = e.astype(np.float64)
        if not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            raise InputError(
                "edges must be finite and strictly increasing; sort them and drop duplicates "
                "(np.unique(edges))."
            )
        if e.size - 1 > MAX_BINS:
            raise InputError(f"at most {MAX_BINS:,} bins are supported; got {e.size - 1:,}.")
        return cls(e, uniform=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", np.asarray(self.edges, dtype=np.float64))
        self.edges.flags.writeable = False

    @property
    def n_bins(self) -> int:
        """Number of bins B."""
        return int(self.edges.size - 1)

    @property
    def n_slots(self) -> int:
        """Number of slots, ``2B + 1``: the edges and the open bins between them."""
        return 2 * self.n_bins + 1

    @property
    def score_range(self) -> tuple[float, float]:
        return float(self.edges[0]), float(self.edges[-1])

    def same_as(self, other: ScoreBins) -> bool:
        """Whether both have the same edges (tables that can be added)."""
        return self.edges.shape == other.edges.shape and bool(np.all(self.edges == other.edges))

    def slot_scores(self) -> FloatArray:
        """A representative score of each slot (the edge, or the bin's middle), shape (2B+1,)."""
        mid = 0.5 * (self.edges[:-1] + self.edges[1:])
        out = np.empty(self.n_slots)
        out[0::2], out[1::2] = self.edges, mid
        return out

    def slots(self, scores: FloatArray, *, where: str = "") -> IntArray:
        """Slot of each score, shape (n,).

        Raises
        ------
        InputError
            If a score is NaN or outside ``[edges[0], edges[-1]]``.
        """
        e = self.edges
        lo, hi = e[0], e[-1]
        bad = ~((scores >= lo) & (scores <= hi))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"scores must lie in the bins' range [{lo:g}, {hi:g}]{where}; row {i} is "
                f"{float(scores[i])!r} ({int(bad.sum())} rows outside). For logits or other "
                "scores give score_range=(low, high) covering them, or explicit bins=edges."
            )
        b = self.n_bins
        if self.uniform:
            k = np.floor((scores - lo) * (b / (hi - lo))).astype(np.int64)
            np.clip(k, 0, b, out=k)
            # the product may round across an edge: settle against the edges themselves
            k -= scores < e[k]
            k += (k < b) & (scores >= e[np.minimum(k + 1, b)])
        else:
            k = np.searchsorted(e, scores, side="right").astype(np.int64) - 1
        out: IntArray = 2 * k + (scores != e[k])
        return out

    def edge_index(self, value: Any, *, what: str, fix: str) -> int:
        """Index ``k`` with ``edges[k] == value`` exactly, or an error naming the fix."""
        v = float(value)
        k = int(np.searchsorted(self.edges, v))
        if k <= self.n_bins and self.edges[k] == v:
            return k
        near = self.edges[max(k - 1, 0) : k + 1]
        raise InputError(
            f"{what} {v!r} is not a bin edge of these cells, so it would cut through a bin; "
            f"the nearest edges are {[float(x) for x in near]}. {fix}"
        )


def _check_range(score_range: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in score_range)
    except (TypeError, ValueError):
        raise InputError(
            f"score_range must be two numbers (low, high); got {score_range!r}."
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise InputError(
            f"score_range must be finite with low < high, e.g. (0, 1); got {score_range!r}."
        )
    return lo, hi
