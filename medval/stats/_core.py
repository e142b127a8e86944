"""The bootstrap engine: replicates from random streams, then an interval.

Kept apart from the public :func:`~medval.stats.bootstrap_ci` so that paired
comparisons and operating points reuse the same resampling and the same
interval code. Resamples are read from streams of about 2**21 case
draws each (:class:`~medval.stats._draws.Stream`), seeded in order from
the caller's generator, so the replicates depend neither on the threads
nor on the blocks they are computed in. A replicator turns a
stream into metric values: count vectors and a vectorised evaluator
(any metric, any design), or for the AUROC of stratified case resampling
the drawn ranks directly (:class:`~medval.stats._rank_auroc.RankAuroc`),
which reads the same resamples.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

from medval._errors import InputError
from medval.stats._draws import Stream
from medval.stats._rank_auroc import RankAuroc
from medval.stats._resample import BLOCK_BYTES, Design
from medval.stats._validate import FloatArray, IntArray
from medval.stats._weighted import Evaluator, jackknife_by_weights

__all__ = [
    "BootMethod",
    "CountReplicator",
    "Interval",
    "Replicator",
    "check_method",
    "check_n_jobs",
    "check_n_resamples",
    "max_workers",
    "replicates",
    "replicator",
    "run_bootstrap",
]

BootMethod = Literal["percentile", "basic", "bca"]
_METHODS = ("percentile", "basic", "bca")
# Jackknife units beyond this are grouped (delete-group jackknife).
_MAX_JACKKNIFE_UNITS = 1000
# Fewer valid resamples than this share makes the interval not estimable.
_MIN_VALID_SHARE = 0.9
# Below this many drawn counts (n * n_resamples) threads do not pay off.
_MIN_PARALLEL_WORK = 1 << 23
# A stream holds about this many case draws (at least one resample): enough
# that seeding it costs little, few enough that threads share the work evenly.
_STREAM_DRAWS = 1 << 21
# Every thread holds one block of counts and the evaluator's temporaries,
# at most this many 8-byte words per count (AUPRC, the most, needs ~8);
# threads are capped so that all blocks in flight stay within the budget.
_WORDS_PER_COUNT = 10
_THREAD_MEMORY_BYTES = 768 << 20
# Leave-one-out weight rows are evaluated in blocks as small as the resamples'.
_BLOCK_CELLS = BLOCK_BYTES // 8


def check_method(method: str) -> BootMethod:
    if method not in _METHODS:
        raise InputError(f"Unknown bootstrap method {method!r}; valid: {', '.join(_METHODS)}.")
    return method  # type: ignore[return-value]


def check_n_resamples(n_resamples: int) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)):
        raise InputError(f"n_resamples must be an int; got {n_resamples!r}.")
    if n_resamples < 100:
        raise InputError(
            f"n_resamples must be at least 100 (2000 or more for a reported CI); got {n_resamples}."
        )
    return int(n_resamples)


@dataclasses.dataclass(frozen=True)
class Interval:
    """Bounds (or the reason there are none) and the replicates behind them."""

    low: float | None
    high: float | None
    reason: str | None
    replicates: FloatArray
    z0: float | None = None
    acceleration: float | None = None


class JointEvaluator:
    """``sign * (a - b)`` of two evaluators on the same resamples (paired)."""

    def __init__(self, a: Evaluator, b: Evaluator, sign: float) -> None:
        self.a, self.b, self.sign, self.n = a, b, sign, a.n

    def point(self) -> float:
        return self.sign * (self.a.point() - self.b.point())

    def values(self, W: NDArray[Any]) -> FloatArray:
        out: FloatArray = self.sign * (self.a.values(W) - self.b.values(W))
        return out

    def jackknife(self, unit: IntArray, n_units: int) -> FloatArray | None:
        ja, jb = self.a.jackknife(unit, n_units), self.b.jackknife(unit, n_units)
        if ja is None or jb is None:
            return None
        out: FloatArray = self.sign * (ja - jb)
        return out


def check_n_jobs(n_jobs: int | None) -> int:
    """Number of threads: ``None`` means every CPU this process may use."""
    if n_jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise InputError(f"n_jobs must be a positive int or None (all CPUs); got {n_jobs!r}.")
    return int(n_jobs)


def _count_block_bytes(design: Design, rows: int) -> int:
    return _WORDS_PER_COUNT * 8 * rows * max(design.n, design.n_units)


def max_workers(design: Design, step: int) -> int:
    """Most threads whose blocks of ``step`` resamples fit the memory budget."""
    return max(1, _THREAD_MEMORY_BYTES // _count_block_bytes(design, step))


class Replicator(Protocol):
    """Metric values of resamples read from a stream."""

    n: int
    width: int
    # below this many cases threads wait on the GIL more than they work
    min_thread_cases: int

    def block_rows(self) -> int: ...

    def block_bytes(self, rows: int) -> int: ...

    def values(self, stream: Stream, c: int) -> FloatArray: ...


class CountReplicator:
    """Any evaluator on count vectors drawn by ``design``."""

    min_thread_cases = 0

    def __init__(self, ev: Evaluator, design: Design) -> None:
        self.ev, self.design = ev, design
        self.n, self.width = design.n, design.width

    def block_rows(self) -> int:
        return self.design.chunk_size(1 << 30)

    def block_bytes(self, rows: int) -> int:
        return _count_block_bytes(self.design, rows)

    def values(self, stream: Stream, c: int) -> FloatArray:
        return self.ev.values(self.design.counts(stream, c))


def replicator(ev: Evaluator, design: Design) -> Replicator:
    """The fastest replicator of ``ev`` under ``design`` (same resamples)."""
    if RankAuroc.applies(ev, design):
        return RankAuroc(ev)
    return CountReplicator(ev, design)


def replicates(
    rep: Replicator,
    rng: np.random.Generator,
    n_resamples: int,
    *,
    n_jobs: int | None = None,
) -> FloatArray:
    """Metric values on ``n_resamples`` resamples, shape (n_resamples,).

    Resamples come in streams of ``max(1, _STREAM_DRAWS // n)`` each, one
    stream seeded after the other from ``rng``; a stream's resamples are
    computed in blocks that bound the memory. Streams run in threads
    (numpy releases the GIL in the heavy calls) for large problems, no
    more than fit :data:`_THREAD_MEMORY_BYTES` together. The result
    depends only on ``rng``: not on ``n_jobs``, nor on the block size.
    """
    per_stream = max(1, _STREAM_DRAWS // max(rep.n, rep.width))
    sizes = [min(per_stream, n_resamples - s) for s in range(0, n_resamples, per_stream)]
    seeds = rng.integers(0, 2**63 - 1, size=len(sizes), dtype=np.int64)
    rows = rep.block_rows()

    def run(i: int) -> FloatArray:
        stream = Stream(int(seeds[i]))
        blocks = [rep.values(stream, min(rows, sizes[i] - s)) for s in range(0, sizes[i], rows)]
        return np.concatenate(blocks)

    workers = check_n_jobs(n_jobs)
    if rep.n * n_resamples < _MIN_PARALLEL_WORK or rep.n < rep.min_thread_cases:
        workers = 1
    workers = min(workers, len(sizes), max(1, _THREAD_MEMORY_BYTES // rep.block_bytes(rows)))
    if workers == 1:
        return np.concatenate([run(i) for i in range(len(sizes))])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.concatenate(list(pool.map(run, range(len(sizes)))))


def _acceleration(ev: Evaluator, design: Design, rng: np.random.Generator) -> float | None:
    """Efron's acceleration from the (stratum-wise) jackknife.

    Matches ``scipy.stats.bootstrap`` for several independent samples:
    ``a = sum_j sum_i U_ji^3 / n_j^3 / (6 (sum_j sum_i U_ji^2 / n_j^2)^1.5)``.
    """
    unit, n_units = design.unit, design.n_units
    ustratum = design.unit_stratum()
    jv = ev.jackknife(unit, n_units)
    if jv is None:
        if n_units > _MAX_JACKKNIFE_UNITS:
            # Delete-group jackknife: random groups of units within strata;
            # the acceleration estimate is unbiased to first order.
            groups = np.empty(n_units, dtype=np.int64)
            strata_groups = []
            start, g0 = 0, 0
            for m in design.strata:
                g = max(2, round(_MAX_JACKKNIFE_UNITS * m / n_units)) if m > 1 else 1
                groups[start : start + m] = g0 + rng.permutation(m) % g
                strata_groups.append(g)
                start, g0 = start + m, g0 + g
            jv = jackknife_by_weights(ev, groups[unit], g0, max_cells=_BLOCK_CELLS)
            ustratum = np.repeat(np.arange(len(strata_groups)), strata_groups)
        else:
            jv = jackknife_by_weights(ev, unit, n_units, max_cells=_BLOCK_CELLS)
    num = den = 0.0
    for j in range(len(design.strata)):
        vals = jv[ustratum == j]
        vals = vals[np.isfinite(vals)]
        nj = vals.size
        if nj < 2:
            continue
        u = (nj - 1) * (vals.mean() - vals)
        num += float(np.sum(u**3)) / nj**3
        den += float(np.sum(u**2)) / nj**2
    if den <= 0.0:
        return None
    return float(num / (6.0 * den**1.5))


def run_bootstrap(
    ev: Evaluator,
    theta_hat: float,
    design: Design,
    rng: np.random.Generator,
    *,
    n_resamples: int,
    method: BootMethod,
    confidence_level: float,
    bounds: tuple[float, float] = (-np.inf, np.inf),
    n_jobs: int | None = None,
) -> Interval:
    """Bootstrap interval for ``ev`` (percentile, basic or BCa).

    References
    ----------
    Efron (1987), JASA 82:171-185 (BCa); Efron & Tibshirani (1993),
    *An Introduction to the Bootstrap*, eqs. 14.9-14.15 and 15.36;
    Davison & Hinkley (1997), sec. 5.2-5.3 (basic, percentile).
    """
    if len(design.strata) > 1 and min(design.strata) < 2:
        # a stratum of one unit is in every resample: its variability is lost
        what = "patient" if design.clustered else "case"
        return Interval(
            None,
            None,
            f"a class has a single {what}, which every stratified resample repeats, so "
            f"the interval would ignore its variability; it needs at least 2 {what}s per class",
            np.empty(0),
        )
    reps = replicates(replicator(ev, design), rng, n_resamples, n_jobs=n_jobs)
    finite = np.isfinite(reps)
    if finite.mean() < _MIN_VALID_SHARE:
        return Interval(
            None,
            None,
            f"the metric is undefined in {int((~finite).sum())} of {reps.size} resamples "
            "(e.g. a resample without one class); use stratify=True or more cases",
            reps,
        )
    good = reps[finite]
    if np.ptp(good) == 0.0:
        return Interval(
            None,
            None,
            f"every resample gives the same value ({good[0]:.6g}); the bootstrap distribution "
            "is degenerate (use a binomial interval for proportions)",
            reps,
        )
    half = (1.0 - confidence_level) / 2.0
    if method == "bca":
        below = np.count_nonzero(good < theta_hat) + np.count_nonzero(good <= theta_hat)
        z0 = float(ndtri(below / (2.0 * good.size)))
        if not np.isfinite(z0):
            return Interval(
                None,
                None,
                "BCa is undefined: every resample lies on one side of the estimate "
                "(bias correction is infinite); use method='percentile'",
                reps,
                z0=z0,
            )
        a = _acceleration(ev, design, rng)
        if a is None:
            return Interval(
                None, None, "BCa is undefined: the jackknife values do not vary", reps, z0=z0
            )
        z_lo, z_hi = float(ndtri(half)), float(ndtri(1.0 - half))
        q = [float(ndtr(z0 + (z0 + z) / (1.0 - a * (z0 + z)))) for z in (z_lo, z_hi)]
        low, high = np.quantile(good, q)
        return Interval(float(low), float(high), None, reps, z0=z0, acceleration=a)
    ql, qh = np.quantile(good, [half, 1.0 - half])
    if method == "basic":
        ql, qh = np.clip([2.0 * theta_hat - qh, 2.0 * theta_hat - ql], *bounds)
    return Interval(float(ql), float(qh), None, reps)
