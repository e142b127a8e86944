"""Benchmark: patient-clustered bootstrap of regression error metrics vs a scikit-learn loop.

Run: ``python benchmarks/bench_regression.py`` (``--quick`` for a smoke size).

n = 100,000 cases of 30,000 patients, 2,000 resamples, 95% intervals of the
MAE, RMSE and median absolute error (and the bias):
  * the floor: medval's clustered resample counts alone
    (``stats.resample_counts``), which every method below needs in some form;
  * medval ``regression.error_metrics(clusters=...)``: weighted sums as one
    matrix product per block of resamples, the weighted median by one
    cumulative sum and one binary search per block;
  * the anchor: the usual loop, one resample at a time (patients drawn,
    their cases gathered into an index array), calling scikit-learn's
    ``mean_absolute_error``, ``root_mean_squared_error`` and
    ``median_absolute_error`` on the indexed arrays. A subset of the
    resamples is timed and the time scaled linearly to the full number.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import (
    mean_absolute_error,
    median_absolute_error,
    root_mean_squared_error,
)

from medval.regression import error_metrics
from medval.stats import resample_counts


def _time(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _data(n: int, patients: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Bone-age-like values (months): a patient effect shared by their cases."""
    rng = np.random.default_rng(seed)
    pid = rng.integers(0, patients, n)
    y = rng.uniform(12.0, 216.0, n)
    pred = y + 1.5 + rng.normal(0.0, 5.0, patients)[pid] + rng.standard_t(5, n) * 6.0
    return y, pred, pid


def _sklearn_loop(
    y: np.ndarray, pred: np.ndarray, pid: np.ndarray, b: int, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    members = np.argsort(pid, kind="stable")
    sizes = np.bincount(pid)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    k = sizes.size
    out = np.empty((b, 3))
    for i in range(b):
        pick = rng.integers(0, k, k)
        lens = sizes[pick]
        offsets = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        idx = members[np.repeat(starts[pick], lens) + offsets]
        yt, yp = y[idx], pred[idx]
        out[i] = (
            mean_absolute_error(yt, yp),
            root_mean_squared_error(yt, yp),
            median_absolute_error(yt, yp),
        )
    return out


def _counts_only(n: int, pid: np.ndarray, b: int) -> None:
    for _ in resample_counts(n, n_resamples=b, random_state=np.random.default_rng(1), clusters=pid):
        pass


def run(n: int, patients: int, b: int, subset: int) -> None:
    print(
        f"\nPatient-clustered 95% CIs of MAE, RMSE, median AE (and bias): n = {n:,} cases of "
        f"{patients:,} patients, {b:,} resamples; {os.cpu_count()} CPU(s)"
    )
    y, pred, pid = _data(n, patients)
    t_sub, _ = _time(lambda: _sklearn_loop(y, pred, pid, subset, 1))
    t_sk = t_sub * b / subset
    print(f"  {'method':<64s} {'time':>9s} {'vs sklearn':>10s}")
    print(
        f"  {f'sklearn loop ({subset} resamples timed, x{b / subset:g} scaled)':<64s} "
        f"{t_sk:9.2f}s {1.0:9.1f}x  ({t_sub:.2f} s measured)"
    )
    t_cnt, _ = _time(lambda: _counts_only(n, pid, b))
    label = "floor: medval clustered resample counts only"
    print(f"  {label:<64s} {t_cnt:9.2f}s {t_sk / t_cnt:9.1f}x")
    t_mv, est = _time(lambda: error_metrics(y, pred, clusters=pid, n_resamples=b, random_state=0))
    print(
        f"  {'medval regression.error_metrics(clusters=...)':<64s} {t_mv:9.2f}s {t_sk / t_mv:9.1f}x"
    )
    for name, e in est.items():
        print(f"      {name:<10s} {e}")
    print(
        f"  => medval is {t_sk / t_mv:.0f}x faster than the scikit-learn loop "
        f"({t_mv / t_cnt:.1f}x the time of drawing the resamples alone)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke-test sizes")
    args = parser.parse_args()
    print(f"numpy {np.__version__}, CPUs: {os.cpu_count()}")
    if args.quick:
        run(10_000, 3_000, 200, 20)
    else:
        run(100_000, 30_000, 2_000, 50)


if __name__ == "__main__":
    main()
