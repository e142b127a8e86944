"""MC-dropout voxel uncertainty: memory of medval's running sums against storing the T samples.

Task: a 512 x 512 x 300 volume (z = 300), T = 20 MC-dropout passes of a tiny
2D U-Net-like model (4-8 channels, Dropout2d, 2 classes), slice by slice.
Both variants return the same thing, what medval's segmentation run keeps:
the deterministic ``probabilities`` (C float32 volumes) and the ``entropy``,
``aleatoric`` and ``epistemic`` maps in ``map_dtype`` (float16 by default).

  * "medval": ``inference.segment(..., mc_samples=T)`` (no ``mc_mean``):
    running float64 sums of p_t and H(p_t) per slab of slices, maps
    written slab by slab.
  * "anchor" (store, then compute): the same passes (same model, same
    dropout masks) written into a (T, C, z, y, x) float32 array, then the
    three maps computed from it. The anchor is given a careful compute step
    (z blocks, float64 temporaries per block), so its peak is the T samples
    plus the results; the one-liner ``entr(stack).sum(1).mean(0)`` would
    add one to two more stacks.

How memory is measured. Each run is a fresh subprocess (this file with
``--worker``). Peak RSS: the peak resident size ``VmHWM`` after the call,
reset to the resident size just before it (``/proc/self/clear_refs``, "5"),
minus that resident size (imports, model, input volume and one warm-up
forward already there; if the reset is refused, ``ru_maxrss``, valid only
when nothing larger came before); it includes torch's CPU tensors (activations,
model outputs), which tracemalloc does not see (Linux only). numpy peak:
``tracemalloc`` started just before the call (numpy reports its array
buffers to it), in the same run. Analytic, in bytes per voxel of V = z*y*x:
the results are 4C (probabilities) + 3 * 2 (float16 maps; 3 * 4 in float32);
the anchor holds T * 4C more (the samples; a lower bound for the anchor:
its pass buffers and compute temporaries are not counted, so the ratio is
not flattered); medval one slab's sums and temporaries (batch_size slices,
~(8C + 2) float32 values a voxel).

The full-size run takes T * z forward passes; on a shared 2-core machine
the tiny U-Net takes ~0.1-0.25 s per 512 x 512 slice, so the default run
measures both variants at z = 16 (T = 20) and medval alone at z = 300 with
T = 2. medval's memory does not depend on T (the running sums are the same
arrays for any T; the z = 16 runs show T = 2 and T = 20 side by side), so
the full-size ratio is medval measured at z = 300 against the anchor's
analytic peak at z = 300, T = 20 (the z = 16 runs check the analytic model
of the anchor against its measurement). At z = 16 a slab of 4 slices is a
quarter of the volume, so the measured ratio there is higher than at z = 300.

Run: python benchmarks/bench_segmentation_mc.py [--quick] [--no-full]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medval.inference import segment
from medval.inference._segment import _entropy
from medval.inference._window import WindowRunner, plan_windows

MIB = 2**20
#: bench_mc_memory's arguments for a smoke run (seconds, not minutes)
QUICK_SIZE: dict[str, Any] = dict(y=128, x=128, mc_samples=5, z=40)
ROOT = Path(__file__).resolve().parents[1]


class TinyUNet(nn.Module):
    """One down/up level with a skip connection; Dropout2d after the bottleneck and decoder."""

    def __init__(self, width: int = 4, classes: int = 2, p: float = 0.1) -> None:
        super().__init__()
        w = width
        self.enc = nn.Sequential(nn.Conv2d(1, w, 3, padding=1), nn.ReLU())
        self.down = nn.Sequential(
            nn.MaxPool2d(2), nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.Dropout2d(p)
        )
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec = nn.Sequential(
            nn.Conv2d(3 * w, w, 3, padding=1), nn.ReLU(), nn.Dropout2d(p), nn.Conv2d(w, classes, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.enc(x)
        out: torch.Tensor = self.dec(torch.cat([e, self.up(self.down(e))], 1))
        return out


MAPS = ("entropy", "aleatoric", "epistemic")


def store_then_compute(
    model: nn.Module,
    vol: np.ndarray,
    *,
    mc_samples: int,
    batch_size: int,
    seed: int,
    case_id: str,
    map_dtype: str = "float16",
) -> dict[str, np.ndarray]:
    """The anchor: the same passes as ``segment`` stored as (T, C, z, y, x), then the maps.

    Returns what ``segment`` returns: ``probabilities`` (C, z, y, x) float32
    and the three maps (z, y, x) in ``map_dtype``.
    """
    windows = plan_windows(vol.shape[1:], None, 0.5)
    runner = WindowRunner(
        model, vol, windows, mode="2d", output="softmax", batch_size=batch_size,
        device=torch.device("cpu"),
    )  # fmt: skip
    model.eval()
    out: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for z0 in range(0, vol.shape[0], batch_size):
            region = range(z0, min(z0 + batch_size, vol.shape[0]))
            det = runner.run(region, None)
            if not out:
                c = det.shape[0]
                out["probabilities"] = np.empty((c, *vol.shape), dtype=np.float32)
                out["stack"] = np.empty((mc_samples, c, *vol.shape), dtype=np.float32)
            out["probabilities"][:, z0 : region.stop] = det
            keys = runner.keys(region, seed, case_id)
            for t in range(mc_samples):
                out["stack"][t, :, z0 : region.stop] = runner.run(region, t, keys)
    stack = out.pop("stack")
    for k in MAPS:
        out[k] = np.empty(vol.shape, dtype=map_dtype)
    for z0 in range(0, vol.shape[0], 4):  # blocks: float64 temporaries stay small
        b = slice(z0, z0 + 4)
        mean = stack[:, :, b].mean(axis=0, dtype=np.float64).astype(np.float32)
        entropy = _entropy(mean, False)
        h = np.zeros(entropy.shape)
        for t in range(mc_samples):
            h += _entropy(stack[t, :, b], False)
        out["entropy"][b] = entropy
        out["aleatoric"][b] = h / mc_samples
        out["epistemic"][b] = np.maximum(entropy - h / mc_samples, 0)
    del stack
    return out


def _status_bytes(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (peak resident size) of this process, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def _reset_peak() -> bool:
    """Reset ``VmHWM`` to the current resident size (Linux >= 4.0); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One variant, run in this (fresh) process; what it measured."""
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    model = TinyUNet().eval()
    shape = (spec["z"], spec["y"], spec["x"])
    vol = np.random.default_rng(0).standard_normal(size=shape, dtype=np.float32)
    with torch.inference_mode():  # torch's lazy start-up is no part of either variant
        model(torch.zeros(spec["batch_size"], 1, spec["y"], spec["x"]))
    kw = {"mc_samples": spec["T"], "batch_size": spec["batch_size"], "seed": 0, "case_id": "b"}
    kw["map_dtype"] = spec["map_dtype"]
    before = _status_bytes("VmRSS")
    reset = _reset_peak()
    tracemalloc.start()
    t0 = time.perf_counter()
    if spec["variant"] == "medval":
        res = segment(model, vol, **kw)
        assert res.mc_mean is None  # not asked for: the benchmark is what a run keeps
        arrays = {k: getattr(res, k) for k in ("probabilities", *MAPS)}
    else:
        arrays = store_then_compute(model, vol, **kw)
    seconds = time.perf_counter() - t0
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = (
        _status_bytes("VmHWM")
        if reset
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    rss = peak - before
    # a fingerprint to check that both variants computed the same numbers
    probe = {"probabilities": arrays["probabilities"][:, : spec["probe"]]}
    probe.update({k: arrays[k][: spec["probe"]] for k in MAPS})
    dtypes = sorted({str(a.dtype) for k, a in arrays.items() if k in MAPS})
    np.savez(spec["probe_file"], **probe)
    return {
        **spec,
        "seconds": seconds,
        "rss_peak_bytes": rss,
        "numpy_peak_bytes": traced,
        "map_dtypes": dtypes,
    }


def _run(
    variant: str,
    z: int,
    y: int,
    x: int,
    t: int,
    batch_size: int,
    threads: int,
    tag: str,
    map_dtype: str,
) -> dict[str, Any]:
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_seg_{os.getpid()}_{tag}.npz"
    spec = dict(variant=variant, z=z, y=y, x=x, T=t, batch_size=batch_size, probe=4)
    spec["threads"] = threads
    spec["map_dtype"] = map_dtype
    spec["probe_file"] = str(probe)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def analytic(
    z: int, y: int, x: int, t: int, c: int = 2, batch_size: int = 4, map_bytes: int = 2
) -> dict[str, float]:
    """Bytes each variant must hold at its peak (activations not counted)."""
    voxels = z * y * x
    results = (4 * c + 3 * map_bytes) * voxels  # probabilities float32, three maps
    # one slab: float64 sums of p and H (2C + 2), a pass and the outputs (2C), float64 entropy
    # temporaries (4C), in float32 values of batch_size slices
    slab = min(batch_size, z) / z * voxels * 4 * (8 * c + 2)
    samples = t * c * 4 * voxels
    return {
        "results_bytes": results,
        "samples_bytes": samples,
        "anchor_bytes": samples + results,
        "medval_bytes": results + slab,
        "ratio": (results + slab) / (samples + results),
        "ratio_beyond_results": slab / samples,
    }


def bench_mc_memory(
    *,
    z: int = 300,
    y: int = 512,
    x: int = 512,
    mc_samples: int = 20,
    measure_z: int = 16,
    batch_size: int = 4,
    full: bool = True,
    full_samples: int = 2,
    threads: int = 1,
    map_dtype: str = "float16",
) -> dict[str, Any]:
    """Measure both variants at ``measure_z`` slices and medval at ``z`` (``full_samples`` passes).

    Returns a dict: ``analytic`` (at z, mc_samples) and
    ``analytic_measured_size``; ``measured`` (one dict per run: seconds,
    rss_peak_bytes, numpy_peak_bytes); the measured ratios medval / anchor
    at ``measure_z``; with ``full``, ``full_rss_ratio`` and
    ``full_numpy_ratio``: medval measured at ``z`` over the anchor's
    analytic peak there (medval's memory does not depend on T); the largest
    difference between the two variants' results (the same passes and the
    same arithmetic, so 0 or float rounding). ``threads``: torch threads per
    run (1: on a shared machine OpenMP's spinning threads made 2 threads ~7x
    slower than 1).
    """
    common = (y, x)
    runs = {
        "medval": _run(
            "medval", measure_z, *common, mc_samples, batch_size, threads, "m", map_dtype
        ),
        "anchor": _run(
            "anchor", measure_z, *common, mc_samples, batch_size, threads, "a", map_dtype
        ),
        f"medval_T{full_samples}": _run(
            "medval", measure_z, *common, full_samples, batch_size, threads, "s", map_dtype
        ),
    }
    a, m = (np.load(runs[k]["probe_file"]) for k in ("anchor", "medval"))
    diff = {k: float(np.abs(a[k].astype(np.float64) - m[k]).max()) for k in a.files}
    for r in runs.values():
        Path(r["probe_file"]).unlink(missing_ok=True)
    if full:
        runs["medval_full"] = _run(
            "medval", z, *common, full_samples, batch_size, threads, "f", map_dtype
        )
        Path(runs["medval_full"]["probe_file"]).unlink(missing_ok=True)
    map_bytes = np.dtype(map_dtype).itemsize
    full_size = analytic(z, y, x, mc_samples, batch_size=batch_size, map_bytes=map_bytes)
    at_measured = analytic(measure_z, y, x, mc_samples, batch_size=batch_size, map_bytes=map_bytes)
    mf = runs.get("medval_full")
    # torch's side (activations, allocator) does not grow with z: credit the anchor with its own
    overhead = runs["anchor"]["rss_peak_bytes"] - runs["anchor"]["numpy_peak_bytes"]
    return {
        "map_dtype": map_dtype,
        "analytic": full_size,
        "analytic_measured_size": at_measured,
        "full_rss_ratio": mf["rss_peak_bytes"] / full_size["anchor_bytes"] if mf else None,
        "full_numpy_ratio": mf["numpy_peak_bytes"] / full_size["anchor_bytes"] if mf else None,
        "full_rss_ratio_with_overhead": (
            mf["rss_peak_bytes"] / (full_size["anchor_bytes"] + overhead) if mf else None
        ),
        "measured": runs,
        "rss_ratio": runs["medval"]["rss_peak_bytes"] / runs["anchor"]["rss_peak_bytes"],
        "numpy_ratio": runs["medval"]["numpy_peak_bytes"] / runs["anchor"]["numpy_peak_bytes"],
        "anchor_measured_over_analytic": runs["anchor"]["numpy_peak_bytes"]
        / at_measured["anchor_bytes"],
        "max_abs_difference": diff,
    }


def _mib(b: float) -> str:
    return f"{b / MIB:9.1f} MiB"


def print_mc_memory(out: dict[str, Any], target: float = 0.10) -> None:
    """Print what :func:`bench_mc_memory` measured."""
    an, ms = out["analytic"], out["measured"]
    mz = ms["medval"]
    full_z = ms["medval_full"]["z"] if "medval_full" in ms else None
    print(
        f"MC-dropout voxel uncertainty: {mz['y']}x{mz['x']} slices, T = {mz['T']}, "
        f"batch_size {mz['batch_size']}, maps {out['map_dtype']}, C = 2"
    )
    print(f"analytic at the full size (z = {full_z or '-'}, T = {mz['T']}):")
    for k in ("results_bytes", "samples_bytes", "anchor_bytes", "medval_bytes"):
        print(f"  {k:<16}{_mib(an[k])}")
    print(
        f"  medval / anchor {an['ratio']:.3f}; beyond the results {an['ratio_beyond_results']:.4f}"
    )
    print("measured (RSS: torch + numpy; numpy: tracemalloc):")
    for name, r in ms.items():
        per = r["seconds"] / (r["z"] * (r["T"] + 1))
        print(
            f"  {name:<12} z={r['z']:<4} T={r['T']:<3} RSS {_mib(r['rss_peak_bytes'])}  "
            f"numpy {_mib(r['numpy_peak_bytes'])}  {r['seconds']:7.1f} s ({per:.3f} s/slice-pass)"
        )
    small = out["analytic_measured_size"]
    print(
        f"  analytic at z = {mz['z']}: anchor {_mib(small['anchor_bytes'])}, "
        f"medval {_mib(small['medval_bytes'])}; anchor numpy measured / analytic "
        f"{out['anchor_measured_over_analytic']:.3f}"
    )
    print(
        f"ratio medval / anchor at z = {mz['z']} (a slab is {mz['batch_size']} of {mz['z']} "
        f"slices): RSS {out['rss_ratio']:.3f}, numpy {out['numpy_ratio']:.3f}"
    )
    if out["full_numpy_ratio"] is not None:
        ok = "meets" if max(out["full_numpy_ratio"], out["full_rss_ratio"]) <= target else "MISSES"
        print(
            f"ratio medval / anchor at the full size z = {full_z}, T = {mz['T']} (medval measured "
            f"with T = {ms['medval_full']['T']}, its memory does not depend on T; anchor "
            f"analytic): RSS {out['full_rss_ratio']:.3f}, numpy {out['full_numpy_ratio']:.3f} "
            f"({ok} the target <= {target:.2f}, set for 512 x 512 x 300, T = 20)"
        )
        print(
            "  RSS with the anchor credited its own torch-side RSS measured at "
            f"z = {mz['z']} (RSS - numpy): {out['full_rss_ratio_with_overhead']:.3f}"
        )
    diffs = ", ".join(f"{k} {v:.1e}" for k, v in out["max_abs_difference"].items())
    print(f"largest difference medval vs anchor results: {diffs}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 x 128 x 40 slices, T = 5")
    parser.add_argument("--no-full", action="store_true", help="skip the full-size medval run")
    parser.add_argument("--map-dtype", default="float16", choices=("float16", "float32"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return
    size = QUICK_SIZE if args.quick else {}
    print_mc_memory(bench_mc_memory(full=not args.no_full, map_dtype=args.map_dtype, **size))


if __name__ == "__main__":
    main()
