"""Benchmark: medval.conformal.ConformalRegressor vs MAPIE 1.6, same run.

Conformalize on n cases and predict intervals for n other cases (float64
model outputs of a heteroscedastic problem) with the three scores:
``absolute`` and ``normalized`` against MAPIE's ``SplitConformalRegressor``
(``"absolute"``; ``ResidualNormalisedScore`` with a prefit residual estimator
returning sigma), ``cqr`` against ``ConformalizedQuantileRegressor`` (three
prefit estimators, ``symmetric_correction=True``); then Mondrian
``absolute`` with 8 groups against MAPIE run once per group. MAPIE gets
medval's ``prefit_column`` estimators and no medval input checks. Time is
the best of ``--repeat`` runs; "max |diff|" compares the two intervals.

    python benchmarks/bench_regression_conformal.py            # n = 100,000
    python benchmarks/bench_regression_conformal.py --quick    # n = 5,000
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from medval.conformal import ConformalRegressor, prefit_column

LEVEL = 0.9
N_GROUPS = 8


def make_data(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 4, 2 * n)
    sigma = 0.3 + 0.5 * x
    y_pred = 3 * np.sin(x)
    y = y_pred + sigma * rng.standard_normal(2 * n)
    q = np.column_stack((y_pred - 1.6 * sigma, y_pred + 1.6 * sigma))
    return {"y": y, "y_pred": y_pred, "sigma": sigma, "q": q, "g": rng.integers(0, N_GROUPS, 2 * n)}


def run_medval(score: str, d: dict[str, np.ndarray], n: int, groups: bool = False) -> np.ndarray:
    cal, test = slice(0, n), slice(n, None)
    kw: dict[str, np.ndarray] = {}
    if score == "normalized":
        kw = {"sigma": d["sigma"]}
    if score == "cqr":
        kw = {"quantiles": d["q"]}
    model = ConformalRegressor(score, confidence_level=LEVEL)
    model.conformalize(
        d["y"][cal],
        d["y_pred"][cal],
        groups=d["g"][cal] if groups else None,
        **{k: v[cal] for k, v in kw.items()},
    )
    return model.predict_interval(
        d["y_pred"][test],
        groups=d["g"][test] if groups else None,
        **{k: v[test] for k, v in kw.items()},
    )


def run_mapie(score: str, d: dict[str, np.ndarray], cal: Any, test: Any) -> np.ndarray:
    from mapie.conformity_scores import ResidualNormalisedScore
    from mapie.regression import ConformalizedQuantileRegressor, SplitConformalRegressor

    y = d["y"][cal]
    if score == "cqr":
        X = np.column_stack((d["q"], d["y_pred"]))
        cqr = ConformalizedQuantileRegressor(
            estimator=[prefit_column(j) for j in range(3)], confidence_level=LEVEL, prefit=True
        )
        cqr.conformalize(X[cal], y)
        return np.asarray(cqr.predict_interval(X[test], symmetric_correction=True)[1][:, :, 0])
    X = np.column_stack((d["y_pred"], d["sigma"]))
    conformity: Any = "absolute"
    if score == "normalized":
        conformity = ResidualNormalisedScore(residual_estimator=prefit_column(1), prefit=True)
    split = SplitConformalRegressor(
        estimator=prefit_column(0), confidence_level=LEVEL, conformity_score=conformity, prefit=True
    )
    split.conformalize(X[cal], y)
    return np.asarray(split.predict_interval(X[test])[1][:, :, 0])


def run_mapie_groups(d: dict[str, np.ndarray], n: int) -> np.ndarray:
    out = np.empty((d["y"].shape[0] - n, 2))
    g_cal, g_test = d["g"][:n], d["g"][n:]
    for g in range(N_GROUPS):
        rows = np.flatnonzero(g_test == g)
        out[rows] = run_mapie("absolute", d, np.flatnonzero(g_cal == g), n + rows)
    return out


def best_time(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 5,000 smoke run")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    args = ap.parse_args()
    n = args.n or (5_000 if args.quick else 100_000)
    repeat = args.repeat or (3 if args.quick else 5)
    d = make_data(n)
    print(f"n = {n:,} calibration + {n:,} test, float64, confidence {LEVEL}, best of {repeat}")
    head = f"{'score':18} {'medval s':>9} {'MAPIE s':>9} {'speed-up':>8} {'max |diff|':>11}"
    print(head)
    print("-" * len(head))
    cal, test = slice(0, n), slice(n, None)
    rows: list[tuple[str, Callable[[], np.ndarray], Callable[[], np.ndarray]]] = [
        (s, lambda s=s: run_medval(s, d, n), lambda s=s: run_mapie(s, d, cal, test))
        for s in ("absolute", "normalized", "cqr")
    ]
    rows.append(
        (
            f"absolute, {N_GROUPS} groups",
            lambda: run_medval("absolute", d, n, groups=True),
            lambda: run_mapie_groups(d, n),
        )
    )
    for name, ours, theirs in rows:
        diff = float(np.max(np.abs(ours() - theirs())))  # also warms both up
        t_med, t_map = best_time(ours, repeat), best_time(theirs, repeat)
        print(f"{name:18} {t_med:9.4f} {t_map:9.4f} {t_map / t_med:7.1f}x {diff:11.2e}", flush=True)


if __name__ == "__main__":
    main()
