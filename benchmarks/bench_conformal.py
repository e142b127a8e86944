"""Benchmark: medval.conformal vs MAPIE's SplitConformalClassifier, same run.

Calibrate on n cases and predict sets for n cases (the same float32 matrix),
K = 10, 100, 1000, for LAC, randomised APS and randomised RAPS (both tune
RAPS on a held-out share). Time is the best of ``--repeat`` runs without
tracing; peak memory is measured in a separate run with ``tracemalloc``
(numpy reports its buffers to it), above the input arrays. ``/argsort`` is
medval's time over one ``np.argsort(P, axis=1)`` of the matrix.

    python benchmarks/bench_conformal.py            # n = 100,000
    python benchmarks/bench_conformal.py --quick    # n = 5,000
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from medval.conformal import ConformalClassifier, prefit_adapter


def make_data(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, k), dtype=np.float32) * 2.5).astype(np.float32)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    # labels from the model's own probabilities (Gumbel-max), so it is calibrated
    y = np.argmax(np.log(z + 1e-30) + rng.gumbel(size=(n, k)).astype(np.float32), axis=1)
    return z, y


def run_medval(method: str, P: np.ndarray, Y: np.ndarray) -> np.ndarray:
    clf = ConformalClassifier(method, confidence_level=0.9, random_state=0)
    return clf.calibrate(P, Y).predict_sets(P)


def run_mapie(method: str, P: np.ndarray, Y: np.ndarray) -> np.ndarray:
    # MAPIE alone (no medval input checks) on medval's prefit adapter
    from mapie.classification import SplitConformalClassifier

    m = SplitConformalClassifier(
        estimator=prefit_adapter(P.shape[1]),
        confidence_level=0.9,
        conformity_score=method,
        prefit=True,
        random_state=0,
    )
    m.conformalize(P, Y)
    ill = True if method == "lac" else "randomized"
    _, sets = m.predict_set(P, conformity_score_params={"include_last_label": ill})
    return np.asarray(sets[:, :, 0])


def best_time(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def peak_mib(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 5,000 smoke run")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--ks", type=str, default="10,100,1000")
    args = ap.parse_args()
    # MAPIE warns when a small run misses some labels at conformalization
    warnings.filterwarnings("ignore", category=UserWarning, module="mapie")
    n = args.n or (5_000 if args.quick else 100_000)
    repeat = args.repeat or (3 if args.quick else 2)
    print(f"n = {n:,} (calibrate + predict), float32, confidence 0.9, best of {repeat}")
    head = (
        f"{'method':6} {'K':>5} {'medval s':>9} {'MAPIE s':>9} {'speed-up':>8} "
        f"{'medval MiB':>10} {'MAPIE MiB':>10} {'mem ratio':>9} {'/argsort':>8} {'same sets':>9}"
    )
    print(head)
    print("-" * len(head))
    for k in (int(x) for x in args.ks.split(",")):
        P, Y = make_data(n, k)
        t_sort = best_time(lambda P=P: np.argsort(P, axis=1), repeat)
        for method in ("lac", "aps", "raps"):
            t_med = best_time(lambda m=method, P=P, Y=Y: run_medval(m, P, Y), repeat)
            m_med = peak_mib(lambda m=method, P=P, Y=Y: run_medval(m, P, Y))
            try:
                t_map = best_time(
                    lambda m=method, P=P, Y=Y: run_mapie(m, P, Y), 1 if k >= 1000 else repeat
                )
                m_map = peak_mib(lambda m=method, P=P, Y=Y: run_mapie(m, P, Y))
            except ValueError as exc:  # e.g. RAPS's stratified split with 1-case classes
                print(f"{method:6} {k:>5} {t_med:9.3f}   MAPIE failed: {str(exc)[:60]}")
                continue
            same = "n/a"
            if method == "lac":
                equal = np.array_equal(run_medval(method, P, Y), run_mapie(method, P, Y))
                same = "yes" if equal else "NO"
            print(
                f"{method:6} {k:>5} {t_med:9.3f} {t_map:9.3f} {t_map / t_med:7.1f}x "
                f"{m_med:10.1f} {m_map:10.1f} {m_med / m_map:9.3f} {t_med / t_sort:7.2f}x "
                f"{same:>9}",
                flush=True,
            )
        print(f"{'':6} {k:>5} one argsort of the ({n:,}, {k}) matrix: {t_sort:.3f} s")
        del P, Y
        gc.collect()


if __name__ == "__main__":
    main()
