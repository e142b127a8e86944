"""The percentile bootstrap shared by the regression statistics.

Cases, or with ``clusters`` patients with all their cases, are drawn with
replacement by :func:`medval.stats.resample_counts`, which yields blocks
of counts ``W`` (c, n); a statistic is computed for a whole block at once
(a weighted sum is ``W @ values``). The interval is the percentile
interval of the resampled statistic.

References
----------
Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13;
Field & Welsh (2007), "Bootstrapping clustered data", J. R. Stat. Soc. B
69:369-390; Davison & Hinkley (1997), *Bootstrap Methods and their
Application*, sec. 3.8.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._types import Estimate
from medval.regression._checks import FloatArray, IntArray, check_n_resamples
from medval.stats import (
    check_clusters,
    check_confidence_level,
    normalise_random_state,
    resample_counts,
    too_few_for_interval,
)

__all__ = ["Resampling", "weighted_median", "weighted_sums"]

Statistic = Callable[[IntArray], FloatArray]


@dataclasses.dataclass(frozen=True, eq=False)
class Resampling:
    """How one call resamples: level, number of resamples, generator, patient keys.

    One generator serves every interval of a call (bins, groups), so a
    seed fixes them all; ``seed`` is what each Estimate records.
    """

    confidence_level: float
    n_resamples: int
    rng: np.random.Generator
    seed: int | None
    clusters: NDArray[Any] | None

    @classmethod
    def make(
        cls,
        n: int,
        *,
        confidence_level: float,
        n_resamples: int,
        random_state: int | np.random.Generator | None,
        clusters: ArrayLike | None,
    ) -> Resampling:
        """Check the options of a call with ``n`` cases (clusters of shape (n,))."""
        cl = check_confidence_level(confidence_level)
        b = check_n_resamples(n_resamples)
        check_clusters(clusters, n)
        rng, seed = normalise_random_state(random_state)
        keys = None if clusters is None else np.asarray(clusters)
        return cls(cl, b, rng, seed, keys)

    @property
    def clustered(self) -> bool:
        return self.clusters is not None

    @property
    def method(self) -> str:
        return "bootstrap-percentile" + ("-clustered" if self.clustered else "")

    def subset(self, mask: NDArray[np.bool_]) -> Resampling:
        """The same resampling for the cases in ``mask`` (their patients only)."""
        keys = None if self.clusters is None else self.clusters[mask]
        return dataclasses.replace(self, clusters=keys)

    def too_few(self, n: int) -> str | None:
        """Why ``n`` cases (of these patients) are too few for a bootstrap interval."""
        return too_few_for_interval(n, check_clusters(self.clusters, n))

    def statistics(self, n: int, statistic: Statistic) -> FloatArray:
        """``statistic`` on every resample: shape (n_resamples, k).

        ``statistic(W)`` maps a block of counts (c, n) to values (c, k).
        """
        blocks = [
            statistic(w)
            for w in resample_counts(
                n, n_resamples=self.n_resamples, random_state=self.rng, clusters=self.clusters
            )
        ]
        return np.concatenate(blocks, axis=0)

    def estimate(
        self,
        value: float | None,
        resampled: FloatArray | None,
        *,
        n: int,
        higher_is_better: bool | None,
        reason: str | None = None,
    ) -> Estimate:
        """An Estimate with the percentile interval of ``resampled`` (shape (B,)).

        ``resampled=None`` gives no bounds; ``reason`` then says why.
        """
        low = high = None
        if value is None:
            reason = reason or "the point estimate is undefined"
        elif resampled is not None:
            bad = int(np.count_nonzero(~np.isfinite(resampled)))
            if bad:
                reason = f"the statistic is undefined in {bad} of {resampled.size} resamples"
            else:
                tail = (1.0 - self.confidence_level) / 2.0
                low, high = (float(q) for q in np.quantile(resampled, [tail, 1.0 - tail]))
        return Estimate(
            value=value,
            low=low,
            high=high,
            confidence_level=self.confidence_level,
            method=self.method,
            n=int(n),
            seed=self.seed,
            n_resamples=self.n_resamples,
            reason=reason if low is None else None,
            higher_is_better=higher_is_better,
        )

    def closed_form(
        self,
        value: float,
        half_width: float | None,
        *,
        method: str,
        n: int,
        higher_is_better: bool | None,
        reason: str | None = None,
    ) -> Estimate:
        """An Estimate ``value ± half_width`` from a closed form (no resamples)."""
        ok = half_width is not None and bool(np.isfinite(half_width))
        return Estimate(
            value=value,
            low=value - half_width if ok and half_width is not None else None,
            high=value + half_width if ok and half_width is not None else None,
            confidence_level=self.confidence_level,
            method=method,
            n=int(n),
            seed=None,
            n_resamples=None,
            reason=None if ok else reason or "the interval is undefined",
            higher_is_better=higher_is_better,
        )


def weighted_sums(counts: IntArray, columns_t: FloatArray) -> FloatArray:
    """``counts @ columns_t.T``: per-resample sums, shape (c, k), from columns (k, n).

    Columns as rows (k, n), contiguous, make the product one pass over the
    counts; it is faster than ``counts @ columns`` for the few columns used here.
    """
    out: FloatArray = (columns_t @ counts.astype(np.float64).T).T
    return out


def _median_positions(cum: IntArray, m: IntArray) -> tuple[IntArray, IntArray]:
    """Where the 0-based ranks ``(m - 1) // 2`` and ``m // 2`` fall in each row of ``cum``.

    ``cum`` (c, w) holds cumulative counts per row, ascending; rows are
    offset so that one binary search serves them all.
    """
    c, width = cum.shape
    offset = np.concatenate([[0], np.cumsum(cum[:-1, -1])])
    flat = (cum + offset[:, None]).ravel()
    base = np.arange(c, dtype=np.int64) * width
    lo = np.searchsorted(flat, (m - 1) // 2 + offset, side="right") - base
    hi = np.searchsorted(flat, m // 2 + offset, side="right") - base
    return lo, hi


def weighted_median(sorted_values: FloatArray, counts: IntArray) -> FloatArray:
    """Median of each resample, as ``numpy.median`` of the resampled values.

    Parameters
    ----------
    sorted_values : array of float, shape (n,)
        The values in ascending order.
    counts : array of int, shape (c, n)
        How often each (sorted) value is drawn in each resample; every row
        draws at least one.

    Returns
    -------
    array of float, shape (c,)
        The middle value of each resample, or the mean of the two middle
        values when it holds an even number of cases.

    Notes
    -----
    A resample's median lies close to the sample's, so the counts are
    summed below a band around the middle position and accumulated only
    within it; rows whose median falls outside the band (rare: large
    clusters) are accumulated in full.
    """
    c, n = counts.shape
    half = min(n, max(256, int(16.0 * np.sqrt(n))))
    start, stop = max(0, n // 2 - half), min(n, n // 2 + half)
    below = counts[:, :start].sum(axis=1)
    band = np.cumsum(counts[:, start:stop], axis=1)
    m = below + band[:, -1] + counts[:, stop:].sum(axis=1)
    # ranks (m - 1) // 2 and m // 2, counted from the band's start
    inside = (below <= (m - 1) // 2) & (m // 2 < below + band[:, -1])
    lo = np.empty(c, dtype=np.int64)
    hi = np.empty(c, dtype=np.int64)
    if inside.any():
        lo_in, hi_in = _median_positions(band[inside], m[inside] - 2 * below[inside])
        lo[inside], hi[inside] = lo_in + start, hi_in + start
    if not inside.all():
        out = ~inside
        lo[out], hi[out] = _median_positions(np.cumsum(counts[out], axis=1), m[out])
    result: FloatArray = (sorted_values[lo] + sorted_values[hi]) / 2.0
    return result
