"""DICOM header ingestion and tabular drift: medval against plain pydicom / scipy.

Part 1 times :func:`medval.io.read_dicom_cohort` (serial and ``workers=2``)
on ~5,000 demo files against a plain ``pydicom.dcmread(path,
stop_before_pixels=True)`` loop. medval also reads and SHA-256-hashes every
byte of every file for the data manifest, so a "plain + hash" loop is shown
too. Files are generated before timing; the page cache is warmed first.

Part 2 times :func:`medval.shift.drift_report` (evidently) on 200,000 rows
(100,000 reference + 100,000 current) x 15 columns against a direct scipy
loop (``ks_2samp`` / ``chi2_contingency`` per column), and profiles what
dominates.

Run: ``python benchmarks/bench_dicom.py [--quick]``.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import pathlib
import pstats
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _peak_mib(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def _table(title: str, rows: list[tuple[str, float, float, str]]) -> None:
    print(f"\n{title}")
    print(f"{'method':<34}{'time (s)':>10}{'ratio':>9}{'peak MiB':>10}")
    base = rows[0][1]
    for name, t, _, mem in rows:
        print(f"{name:<34}{t:>10.3f}{base / t:>8.2f}x{mem:>10}")


def bench_ingestion(quick: bool, repeats: int) -> None:
    import pydicom

    from medval.demo import write_cohort
    from medval.io import read_dicom_cohort

    patients = (60, 60, 40) if quick else (1000, 1000, 520)  # about 5,000 files
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_cohort(tmp, seed=0, n_patients=patients)
        gen = time.perf_counter() - t0
        root = pathlib.Path(tmp) / "dicom"
        files = sorted(p for p in root.rglob("*") if p.is_file())
        print(f"generated {len(files)} files in {gen:.1f} s (not timed)")
        for p in files:  # warm the page cache
            p.read_bytes()

        def plain() -> int:
            n = 0
            for p in files:
                try:
                    pydicom.dcmread(p, stop_before_pixels=True)
                    n += 1
                except Exception:
                    pass
            return n

        def plain_hash() -> int:
            n = 0
            for p in files:
                data = p.read_bytes()
                hashlib.sha256(data).hexdigest()
                try:
                    pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
                    n += 1
                except Exception:
                    pass
            return n

        runs = {
            "pydicom dcmread loop (anchor)": plain,
            "pydicom loop + sha256 of bytes": plain_hash,
            "medval read_dicom_cohort": lambda: read_dicom_cohort(root, salt="bench"),
            "medval read_dicom_cohort workers=2": lambda: read_dicom_cohort(
                root, salt="bench", workers=2
            ),
        }
        rows = []
        for name, fn in runs.items():
            t, _ = _best(fn, repeats)
            mem = f"{_peak_mib(fn):.1f}" + ("*" if "workers" in name else "")
            rows.append((name, t, 0.0, mem))
        _table(f"Header ingestion, {len(files)} files (best of {repeats})", rows)
        base = rows[0][1]
        for name, t, _, _ in rows[1:]:
            print(f"  {name}: {len(files) / t:,.0f} files/s, {base / t:.2f}x the anchor")
        print("  * main process only; worker processes are not traced")


def _drift_frames(n: int, seed: int) -> tuple[Any, Any]:
    import pandas as pd

    rng = np.random.default_rng(seed)

    def frame(shift: float) -> Any:
        return pd.DataFrame(
            {
                "kvp": rng.choice([100.0, 120.0, 140.0], n),
                "slice_thickness": rng.choice([1.0, 2.5, 5.0], n),
                "pixel_spacing": rng.normal(0.7 + shift, 0.05, n),
                "magnetic_field_strength": rng.choice([1.5, 3.0], n),
                "rows": rng.choice([512, 1024], n),
                "columns": rng.choice([512, 1024], n),
                "max_probability": rng.uniform(0.5, 1.0, n),
                "entropy": rng.uniform(0.0, 0.7, n),
                "epistemic": rng.exponential(0.01 + shift / 10, n),
                "label": rng.integers(0, 2, n),
                "manufacturer": rng.choice(["A", "B", "C", "D"], n),
                "model_name": rng.choice([f"m{i}" for i in range(12)], n),
                "sex": rng.choice(["F", "M", "O"], n),
                "age_band": rng.choice(["18-39", "40-59", "60-74", "75-89", "90+"], n),
                "convolution_kernel": rng.choice(["B30", "B45", "STD", "SOFT"], n),
            }
        )

    return frame(0.0), frame(0.02)


def bench_drift(quick: bool, repeats: int) -> None:
    from scipy.stats import chi2_contingency, ks_2samp

    from medval.shift import drift_report

    half = 5_000 if quick else 100_000
    ref, cur = _drift_frames(half, seed=0)
    t0 = time.perf_counter()
    import evidently  # noqa: F401

    imp = time.perf_counter() - t0
    drift_report(ref.iloc[:100], cur.iloc[:100])  # first-call registration and caches

    def direct() -> int:
        n = 0
        for c in ref.columns:
            if ref[c].dtype.kind in "if":
                p = ks_2samp(ref[c], cur[c]).pvalue
            else:
                counts = (
                    ref[c]
                    .value_counts()
                    .to_frame("r")
                    .join(cur[c].value_counts().rename("c"), how="outer")
                )
                p = chi2_contingency(counts.fillna(0).to_numpy().T, correction=False).pvalue
            n += p < 0.05 / ref.shape[1]
        return n

    rows = []
    for name, fn in {
        "scipy per-column loop (anchor)": direct,
        "medval drift_report (evidently)": lambda: drift_report(ref, cur),
    }.items():
        t, _ = _best(fn, repeats)
        rows.append((name, t, 0.0, f"{_peak_mib(fn):.1f}"))
    _table(f"Drift, {2 * half:,} rows x {ref.shape[1]} columns (best of {repeats})", rows)
    print(f"  evidently import (once per process): {imp:.2f} s")
    prof = cProfile.Profile()
    prof.enable()
    drift_report(ref, cur)
    prof.disable()
    stats = pstats.Stats(prof)
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    for (file, _, func), (_, _, tt, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in file:
            key = file.split("site-packages/")[1].split("/")[0]
            if key == "evidently" and ("visualizations" in file or "plot" in func.lower()):
                key = "evidently (plot data)"
        elif file == "~":
            key = f"builtins ({func.split(' of ')[0][:40]})"
        else:
            key = "python stdlib / medval"
        groups[key] = groups.get(key, 0.0) + tt
    print("  where drift_report spends its time (self time, cProfile):")
    for key, tt in sorted(groups.items(), key=lambda kv: -kv[1])[:8]:
        print(f"    {key:<46}{tt:>7.2f} s  {100 * tt / total:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    warnings.simplefilter("ignore")  # scipy's exact-KS fallback notes, evidently deprecations
    bench_ingestion(args.quick, repeats)
    bench_drift(args.quick, repeats)


if __name__ == "__main__":
    main()
