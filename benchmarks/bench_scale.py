"""Benchmark: statistics at ten million cases without a cluster (issue 18).

Run: ``python benchmarks/bench_scale.py --part statistics`` (``--quick`` for a
smoke size; ``--keep DIR`` to keep the generated Parquet parts).

Part ``statistics``:

* generates 10^7 synthetic cases of 10^6 patients (1 + Poisson(9) images per
  patient, a patient effect on the score so that images of one patient are
  correlated, image labels within diseased patients, four sites of unequal
  size, string patient keys) into 20 Parquet parts cut at fixed row counts,
  so that some patients span two parts; the generation is timed apart;
* in a fresh process (two threads), streams the parts into a cell table
  (``ScoreCells.from_parquet``) and computes, from one set of 2,000
  patient-clustered resamples, the AUROC, sensitivity and specificity at
  the threshold 0.5, the ECE (15 bins), the mean predicted probability, the
  observed rate and O/E, each with a 95% percentile interval
  (``cell_bootstrap``); reports the wall time and the peak resident memory
  (``ru_maxrss`` of that process);
* the anchor: the in-memory path at 10^6 cases of 10^5 patients (the same
  generator, ten times smaller) in a fresh process: ``bootstrap_ci`` for the
  AUROC, sensitivity and specificity (percentile, clusters, 2,000 resamples)
  and ``calibration.ece_ci`` (clusters, unstratified, 2,000 resamples), with the ratio of
  the two wall times (the anchor has ten times fewer cases);
* the cell engine on the anchor's cases (``ScoreCells.from_arrays``), for
  intervals to compare on the same data;
* a check in a fresh process: the exact rank AUROC of all 10^7 cases
  (``sklearn.metrics.roc_auc_score``) against the binned one and its bound.

The part ``engine`` (``--part engine``, needs ``medval[ray]``): header scan and
inference throughput on about 5,000 demo files, in process and on Ray with 1
and 2 workers (``bench_engine.py``). ``--part all`` runs both.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

STATISTICS = (
    "auroc",
    "sensitivity",
    "specificity",
    "ece",
    "mean_predicted",
    "observed_rate",
    "observed_expected_ratio",
)
THRESHOLD = 0.5
N_RESAMPLES = 2000
THREADS = 2
SITES = np.array(["site-a", "site-b", "site-c", "site-d"])


def synthetic(n_patients: int, seed: int) -> dict[str, Any]:
    """Cases of ``n_patients`` patients, rows ordered by patient."""
    rng = np.random.default_rng(seed)
    images = 1 + rng.poisson(9.0, size=n_patients)
    n = int(images.sum())
    patient = np.repeat(np.arange(n_patients), images)
    diseased = rng.random(n_patients) < 0.3
    site = rng.choice(4, size=n_patients, p=[0.4, 0.3, 0.2, 0.1])
    effect = rng.normal(0.0, 0.8, size=n_patients) + np.array([0.0, 0.2, -0.2, 0.4])[site]
    label = (diseased[patient] & (rng.random(n) < 0.7)).astype(np.int8)
    logit = -1.5 + 2.0 * label + effect[patient] + rng.normal(size=n)
    score = (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    keys = np.char.add("p", np.char.mod("%016x", rng.integers(0, 2**63, size=n_patients)))
    return {"score": score, "label": label, "patient": patient, "site": site, "keys": keys}


def write_parts(data: dict[str, Any], folder: Path, parts: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = data["score"].shape[0]
    cuts = np.linspace(0, n, parts + 1).astype(np.int64)
    keys = pa.array(data["keys"])
    sites = pa.array(SITES)
    for j in range(parts):
        lo, hi = cuts[j], cuts[j + 1]
        table = pa.table(
            {
                "patient_key": keys.take(pa.array(data["patient"][lo:hi])),
                "site": sites.take(pa.array(data["site"][data["patient"][lo:hi]])),
                "label": pa.array(data["label"][lo:hi]),
                "score": pa.array(data["score"][lo:hi]),
            }
        )
        pq.write_table(table, folder / f"part-{j:03d}.parquet")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_stream(folder: str) -> dict[str, Any]:
    from medval.stats import ScoreCells, cell_bootstrap

    t0 = time.perf_counter()
    cells = ScoreCells.from_parquet(
        folder, score="score", label="label", patient="patient_key", group="site"
    )
    t1 = time.perf_counter()
    res = cell_bootstrap(
        cells, STATISTICS, threshold=THRESHOLD, n_resamples=N_RESAMPLES, random_state=0,
        n_jobs=THREADS,
    )  # fmt: skip
    t2 = time.perf_counter()
    return {
        "build_s": t1 - t0,
        "bootstrap_s": t2 - t1,
        "total_s": t2 - t0,
        "peak_mib": _peak_mib(),
        "n_cases": cells.n_cases,
        "n_patients": cells.n_patients,
        "auroc_bound": res.auroc_binning_bound,
        "estimates": {k: [e.value, e.low, e.high] for k, e in res.estimates.items()},
    }


def child_anchor(n_patients: int) -> dict[str, Any]:
    from medval.calibration import ece_ci
    from medval.stats import bootstrap_ci

    d = synthetic(n_patients, seed=1)
    y, s, pat = d["label"].astype(np.int64), d["score"].astype(np.float64), d["patient"]
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    for name in ("auroc", "sensitivity", "specificity"):
        e = bootstrap_ci(
            name, y, s, threshold=None if name == "auroc" else THRESHOLD, method="percentile",
            n_resamples=N_RESAMPLES, clusters=pat, random_state=0, n_jobs=THREADS,
        )  # fmt: skip
        out[name] = [e.value, e.low, e.high]
    e = ece_ci(
        np.c_[1.0 - s, s], y, target="positive", clusters=pat, n_resamples=N_RESAMPLES,
        random_state=0,
    )  # fmt: skip
    out["ece"] = [e.value, e.low, e.high]
    t1 = time.perf_counter()
    peak = _peak_mib()
    # the cell engine on the same cases, in memory
    from medval.stats import ScoreCells, cell_bootstrap

    cells = ScoreCells.from_arrays(s, y, patients=pat)
    res = cell_bootstrap(
        cells, ["auroc", "sensitivity", "specificity"], threshold=THRESHOLD,
        n_resamples=N_RESAMPLES, random_state=0, n_jobs=THREADS,
    )  # fmt: skip
    t2 = time.perf_counter()
    # ece_ci resamples patients unstratified: so does this run
    flat = cell_bootstrap(
        cells, "ece", stratify=False, n_resamples=N_RESAMPLES, random_state=0, n_jobs=THREADS
    )
    return {
        "total_s": t1 - t0,
        "peak_mib": peak,
        "n_cases": int(y.size),
        "estimates": out,
        "cells_s": t2 - t1,
        "cells": {
            k: [e.value, e.low, e.high]
            for k, e in [*res.estimates.items(), *flat.estimates.items()]
        },
    }


def child_exact(folder: str) -> dict[str, Any]:
    import pyarrow.parquet as pq
    from sklearn.metrics import roc_auc_score

    from medval.stats import ScoreCells, auroc_binning_bound, cell_statistics

    table = pq.read_table(folder, columns=["score", "label"])
    s = table.column("score").to_numpy().astype(np.float64)
    y = table.column("label").to_numpy()
    exact = float(roc_auc_score(y, s))
    cells = ScoreCells.from_arrays(s, y)
    binned = cell_statistics(cells, "auroc")["auroc"]
    assert binned is not None
    return {"exact": exact, "binned": binned, "difference": binned - exact,
            "bound": auroc_binning_bound(cells)}  # fmt: skip


def _run_child(args: list[str]) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _show(name: str, est: dict[str, list[float]]) -> None:
    for k, (v, lo, hi) in est.items():
        print(f"    {name:7s} {k:24s} {v:.5f} [{lo:.5f}, {hi:.5f}]")


def statistics(quick: bool, keep: str | None) -> None:
    n_patients = 10_000 if quick else 1_000_000
    anchor_patients = n_patients // 10
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        data = synthetic(n_patients, seed=0)
        n = data["score"].shape[0]
        write_parts(data, folder, parts=20)
        del data
        gen = time.perf_counter() - t
        print(f"generated {n:,} cases of {n_patients:,} patients in 20 parts: {gen:.1f} s")
        stream = _run_child(["stream", str(folder)])
        print(
            f"cells, streamed: build {stream['build_s']:.1f} s + bootstrap "
            f"{stream['bootstrap_s']:.1f} s = {stream['total_s']:.1f} s, peak RSS "
            f"{stream['peak_mib']:.0f} MiB ({THREADS} threads, {N_RESAMPLES} resamples)"
        )
        _show("cells", stream["estimates"])
        exact = _run_child(["exact", str(folder)])
        print(
            f"AUROC binned {exact['binned']:.9f} vs exact {exact['exact']:.9f}: difference "
            f"{exact['difference']:.2e}, bound {exact['bound']:.2e}"
        )
    anchor = _run_child(["anchor", str(anchor_patients)])
    print(
        f"anchor, in memory at {anchor['n_cases']:,} cases of {anchor_patients:,} patients: "
        f"{anchor['total_s']:.1f} s, peak RSS {anchor['peak_mib']:.0f} MiB"
    )
    _show("anchor", anchor["estimates"])
    print(
        f"  the cells on the anchor's cases (from arrays; AUROC, sensitivity, specificity: "
        f"{anchor['cells_s']:.1f} s; ECE unstratified like ece_ci):"
    )
    _show("cells", anchor["cells"])
    ratio = anchor["total_s"] / stream["total_s"]
    print(
        f"ratio: the cell path at {n:,} cases takes {1 / ratio:.2f}x the time of the "
        f"in-memory path at {anchor['n_cases']:,} ({ratio:.1f}x faster per run, "
        f"{10 * ratio:.0f}x per case)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["statistics", "engine", "all"], default="statistics")
    parser.add_argument("--quick", action="store_true", help="smoke size (10^5 cases)")
    parser.add_argument("--keep", help="folder to write (and keep) the Parquet parts in")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, arg = args.child
        run = {"stream": child_stream, "exact": child_exact}
        result = child_anchor(int(arg)) if kind == "anchor" else run[kind](arg)
        print(json.dumps(result))
        return
    if args.part in ("statistics", "all"):
        statistics(args.quick, args.keep)
    if args.part in ("engine", "all"):
        import bench_engine

        bench_engine.engine(args.quick)


if __name__ == "__main__":
    main()
