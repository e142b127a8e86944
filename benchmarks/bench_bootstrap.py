"""Benchmark: AUROC bootstrap CI, medval vs. the usual scikit-learn loop and scipy.

Run: ``python benchmarks/bench_bootstrap.py`` (``--quick`` for a smoke size).

Part 1, n = 100,000 cases, 2,000 resamples, 95% CI of the AUROC:
  * the floors: drawing the resample indices with ``Generator.integers``
    (what a loop must draw); the random words medval draws them from (one
    32-bit word per case, ``SFC64.random_raw``), and medval's stratified
    resample counts (words + division + counting, the count path);
  * medval ``bootstrap_ci`` (percentile and BCa; one thread and all CPUs),
    which for the stratified AUROC reads the drawn ranks directly
    (``medval.stats._rank_auroc``) instead of counting every case;
  * the usual loop of ``sklearn.metrics.roc_auc_score`` over resampled
    indices (a subset of resamples timed, extrapolated linearly);
  * ``scipy.stats.bootstrap`` with a vectorised Mann-Whitney statistic
    (a subset of resamples timed, extrapolated linearly; its BCa jackknife
    would need n more statistic evaluations, estimated from their cost).
Part 2, n = 1,000,000 images of 20,000 patients: the patient-clustered BCa
bootstrap vs. the same loop resampling patients.

Peak memory is measured with tracemalloc (numpy reports its buffers to it)
in separate runs, so the timings are not slowed by tracing, with one thread
and with all CPUs (every thread holds its own block of resamples).
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from medval.stats import bootstrap_ci, delong_ci
from medval.stats._core import check_n_jobs
from medval.stats._draws import Stream
from medval.stats._resample import make_design

ALL = check_n_jobs(None)


def _time(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _peak_mib(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    return y, rng.normal(size=n) + 1.0 * y


def _draw_indices(n: int, b: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    step = max(1, (1 << 22) // (4 * n))
    for start in range(0, b, step):
        rng.integers(0, n, size=(min(step, b - start), n), dtype=np.int32)


def _draw_words(n: int, b: int, seed: int) -> None:
    stream = Stream(seed)
    step = max(1, (1 << 22) // (4 * n))
    for start in range(0, b, step):
        stream.words(min(step, b - start), n + (n & 1))


def _draw_counts(y: np.ndarray, b: int, seed: int) -> None:
    design = make_design(np.sort(y), None, stratify=True)
    stream = Stream(seed)
    step = design.chunk_size(b)
    for start in range(0, b, step):
        design.counts(stream, min(step, b - start))


def _sklearn_loop(
    y: np.ndarray, s: np.ndarray, b: int, seed: int, clusters: np.ndarray | None = None
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = y.size
    out = np.empty(b)
    if clusters is not None:
        members = np.argsort(clusters, kind="stable")
        sizes = np.bincount(clusters)
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        k = sizes.size
    for i in range(b):
        if clusters is None:
            idx = rng.integers(0, n, n)
        else:  # resample patients, take all their images (vectorised gather)
            pick = rng.integers(0, k, k)
            lens = sizes[pick]
            offsets = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
            idx = members[np.repeat(starts[pick], lens) + offsets]
        out[i] = roc_auc_score(y[idx], s[idx])
    return out


def _scipy_stat(pos: np.ndarray, neg: np.ndarray, axis: int = -1) -> np.ndarray:
    u = np.asarray(stats.mannwhitneyu(pos, neg, axis=axis).statistic, dtype=np.float64)
    out: np.ndarray = u / (pos.shape[axis] * neg.shape[axis])
    return out


def _row(name: str, seconds: float, ref: float, note: str = "") -> None:
    print(f"  {name:<58s} {seconds:9.2f} s {ref / seconds:9.1f}x  {note}")


def part1(n: int, b: int, subset: int) -> None:
    print(f"\nAUROC 95% CI, n = {n:,} cases (30% positive), {b:,} resamples; {ALL} CPU(s)")
    y, s = _data(n)
    t_sk_sub, _ = _time(lambda: _sklearn_loop(y, s, subset, 1))
    t_sk = t_sk_sub * b / subset
    print(f"  {'method':<58s} {'time':>11s} {'vs sklearn':>10s}")
    _row(f"sklearn roc_auc_score loop ({subset} timed, x{b // subset} extrapolated)", t_sk, t_sk)
    sp = stats.bootstrap(
        (s[y == 1][:10], s[y == 0][:10]), _scipy_stat, n_resamples=10, method="percentile"
    )  # warm-up
    t_sp_sub, _ = _time(
        lambda: stats.bootstrap(
            (s[y == 1], s[y == 0]),
            _scipy_stat,
            n_resamples=subset,
            batch=10,
            method="percentile",
            rng=0,
        )
    )
    t_sp = t_sp_sub * b / subset
    _row(f"scipy.stats.bootstrap percentile ({subset} timed, extrapolated)", t_sp, t_sk)
    t_stat, _ = _time(lambda: _scipy_stat(s[y == 1][None, :], s[y == 0][None, :]), repeat=3)
    t_sp_bca = t_sp + n * t_stat
    _row("scipy.stats.bootstrap BCa (+ n jackknife stats, estimated)", t_sp_bca, t_sk)
    del sp
    t_idx, _ = _time(lambda: _draw_indices(n, b, 2), repeat=3)
    _row("floor: drawing the resample indices only (integers, int32)", t_idx, t_sk)
    t_words, _ = _time(lambda: _draw_words(n, b, 2), repeat=3)
    _row("floor: medval's random words only (SFC64, 1 per case)", t_words, t_sk)
    t_cnt, _ = _time(lambda: _draw_counts(y, b, 2), repeat=3)
    _row("medval stratified counts (words + division + bincount)", t_cnt, t_sk)
    results = {}
    for method in ("percentile", "bca"):
        for jobs in sorted({1, ALL}):
            t, est = _time(
                partial(
                    bootstrap_ci,
                    "auroc",
                    y,
                    s,
                    method=method,
                    n_resamples=b,
                    random_state=0,
                    n_jobs=jobs,
                ),
                repeat=3,
            )
            results[(method, jobs)] = (t, est)
            _row(
                f"medval bootstrap_ci {method}, n_jobs={jobs}",
                t,
                t_sk,
                f"{t / t_idx:4.1f}x the index floor; CI [{est.low:.4f}, {est.high:.4f}]",
            )
    t_dl, dl = _time(lambda: delong_ci(y, s), repeat=3)
    _row("medval delong_ci (default AUROC CI)", t_dl, t_sk, f"CI [{dl.low:.4f}, {dl.high:.4f}]")
    peaks = {
        jobs: _peak_mib(
            partial(bootstrap_ci, "auroc", y, s, n_resamples=b, random_state=0, n_jobs=jobs)
        )
        for jobs in sorted({1, ALL})
    }
    peak_sk = _peak_mib(lambda: _sklearn_loop(y, s, 20, 1))
    print(
        "  peak traced memory: medval BCa "
        + ", ".join(f"{p:.0f} MiB (n_jobs={j})" for j, p in peaks.items())
        + f"; sklearn loop {peak_sk:.0f} MiB"
    )
    ratios = {key: t_sk / t for key, (t, _) in results.items()}
    print(
        "  => medval is "
        + ", ".join(f"{r:.0f}x ({m}, {j} thread(s))" for (m, j), r in ratios.items())
        + f" faster than the sklearn loop (target >= 100x: "
        f"{'met' if max(ratios.values()) >= 100 else 'NOT met'}); "
        f"{t_sp_bca / results[('bca', ALL)][0]:.0f}x faster than scipy.stats.bootstrap BCa; "
        f"one-thread BCa is {results[('bca', 1)][0] / t_idx:.2f}x the index floor and "
        f"{results[('bca', 1)][0] / t_words:.2f}x the word floor"
    )


def part2(n: int, patients: int, b: int, subset: int) -> None:
    print(
        f"\nPatient-clustered AUROC BCa CI, n = {n:,} images of {patients:,} patients, {b:,} "
        "resamples"
    )
    rng = np.random.default_rng(3)
    status = (rng.random(patients) < 0.3).astype(np.int64)
    clusters = np.sort(rng.integers(0, patients, n))
    clusters = np.unique(clusters, return_inverse=True)[1].ravel()
    y = status[clusters]
    u = rng.normal(size=patients) * np.sqrt(0.5)
    s = y + u[clusters] + rng.normal(size=n) * np.sqrt(0.5)
    t_sk_sub, _ = _time(lambda: _sklearn_loop(y, s, subset, 1, clusters))
    t_sk = t_sk_sub * b / subset
    print(f"  {'method':<58s} {'time':>11s} {'vs sklearn':>10s}")
    _row(f"sklearn loop over resampled patients ({subset} timed, extrapolated)", t_sk, t_sk)
    t_idx, _ = _time(lambda: _draw_indices(n, b, 2))
    _row("floor: drawing image-level resample indices only (int32)", t_idx, t_sk)
    for jobs in sorted({1, ALL}):
        t, est = _time(
            partial(
                bootstrap_ci,
                "auroc",
                y,
                s,
                clusters=clusters,
                n_resamples=b,
                random_state=0,
                n_jobs=jobs,
            )
        )
        _row(
            f"medval bootstrap_ci bca clustered, n_jobs={jobs}",
            t,
            t_sk,
            f"{t / t_idx:4.1f}x the index floor; CI [{est.low:.4f}, {est.high:.4f}]",
        )
    plain = bootstrap_ci("auroc", y, s, n_resamples=b, random_state=0)
    print(f"  image-level (wrong) CI for contrast: [{plain.low:.4f}, {plain.high:.4f}]")
    peaks = {
        jobs: _peak_mib(
            partial(
                bootstrap_ci,
                "auroc",
                y,
                s,
                clusters=clusters,
                n_resamples=b,
                random_state=0,
                n_jobs=jobs,
            )
        )
        for jobs in sorted({1, ALL})
    }
    print(
        "  peak traced memory: medval clustered BCa "
        + ", ".join(f"{p:.0f} MiB (n_jobs={j})" for j, p in peaks.items())
        + " (limit 1024 MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke-test sizes")
    parser.add_argument(
        "--part",
        choices=("all", "1", "2"),
        default="all",
        help="1: n = 100,000 against scikit-learn and scipy; 2: n = 1,000,000 clustered",
    )
    args = parser.parse_args()
    print(f"numpy {np.__version__}, CPUs available: {ALL} (os.cpu_count={os.cpu_count()})")
    if args.quick:
        part1(20_000, 500, 50)
        part2(100_000, 2_000, 500, 5)
    else:
        if args.part in ("all", "1"):
            part1(100_000, 2_000, 100)
        if args.part in ("all", "2"):
            part2(1_000_000, 20_000, 2_000, 10)


if __name__ == "__main__":
    main()
