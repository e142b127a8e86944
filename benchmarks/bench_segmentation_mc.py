"""MC-dropout voxel uncertainty: memory of medval's running sums against storing the T samples.

Task: a 512 x 512 x 300 volume (z = 300), T = 20 MC-dropout passes of a tiny
2D U-Net-like model (4-8 channels, Dropout2d, 2 classes), slice by slice.

  * "medval": ``inference.segment(..., mc_samples=T)``: running float64 sums
    of p_t and H(p_t) per slab of slices, results written slab by slab.
  * "anchor" (store, then compute): the same passes (same model, same
    dropout masks) written into a (T, C, z, y, x) float32 array, then mean,
    entropy, aleatoric and epistemic computed from it. The anchor is given
    a careful compute step (z blocks, float64 temporaries per block), so its
    peak is the T samples plus the results; the one-liner
    ``entr(stack).sum(1).mean(0)`` would add one to two more stacks.

How memory is measured. Each run is a fresh subprocess (this file with
``--worker``). Peak RSS: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after
the call minus the resident size just before it (``/proc/self/statm``;
imports, model, input volume and one warm-up forward already there, and no
larger transient before); it includes torch's CPU tensors (activations,
model outputs), which tracemalloc does not see (Linux only). numpy peak: ``tracemalloc``
started just before the call (numpy reports its array buffers to it), in the
same run. Analytic: float32 volumes of V = z*y*x voxels: the anchor holds
T*C sample volumes plus the (2C + 3) result volumes (probabilities and MC
mean: C each; entropy, aleatoric, epistemic: 1 each); medval holds the
result volumes plus one slab's sums (batch_size slices).

The full-size run takes T * z forward passes; on a shared 2-core machine
the tiny U-Net takes ~0.1-0.25 s per 512 x 512 slice, so the default run
measures both variants at z = 16 (T = 20) and medval alone at z = 300 with
T = 2 (its memory does not depend on T: the z = 16 runs show T = 2 and
T = 20 side by side), and gives the analytic numbers at z = 300, T = 20.

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


def store_then_compute(
    model: nn.Module, vol: np.ndarray, *, mc_samples: int, batch_size: int, seed: int, case_id: str
) -> dict[str, np.ndarray]:
    """The anchor: the same passes as ``segment`` stored as (T, C, z, y, x), then the statistics."""
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
    c = stack.shape[1]
    out["mc_mean"] = np.empty((c, *vol.shape), dtype=np.float32)
    for k in ("entropy", "aleatoric", "epistemic"):
        out[k] = np.empty(vol.shape, dtype=np.float32)
    for z0 in range(0, vol.shape[0], 4):  # blocks: float64 temporaries stay small
        b = slice(z0, z0 + 4)
        out["mc_mean"][:, b] = stack[:, :, b].mean(axis=0, dtype=np.float64)
        out["entropy"][b] = _entropy(out["mc_mean"][:, b], False)
        h = np.zeros(out["entropy"][b].shape)
        for t in range(mc_samples):
            h += _entropy(stack[t, :, b], False)
        out["aleatoric"][b] = h / mc_samples
        out["epistemic"][b] = np.maximum(out["entropy"][b] - out["aleatoric"][b], 0)
    del stack
    return out


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


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
    before = _rss_now()
    tracemalloc.start()
    t0 = time.perf_counter()
    if spec["variant"] == "medval":
        res = segment(model, vol, **kw)
        arrays = {k: getattr(res, k) for k in ("mc_mean", "entropy", "aleatoric", "epistemic")}
    else:
        arrays = store_then_compute(model, vol, **kw)
    seconds = time.perf_counter() - t0
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = _maxrss() - before
    # a fingerprint to check that both variants computed the same numbers
    probe = {k: arrays[k][:, : spec["probe"]] for k in ("mc_mean",)}
    probe.update({k: arrays[k][: spec["probe"]] for k in ("entropy", "aleatoric", "epistemic")})
    np.savez(spec["probe_file"], **probe)
    return {**spec, "seconds": seconds, "rss_peak_bytes": rss, "numpy_peak_bytes": traced}


def _run(
    variant: str, z: int, y: int, x: int, t: int, batch_size: int, threads: int, tag: str
) -> dict[str, Any]:
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_seg_{os.getpid()}_{tag}.npz"
    spec = dict(variant=variant, z=z, y=y, x=x, T=t, batch_size=batch_size, probe=4)
    spec["threads"] = threads
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


def analytic(z: int, y: int, x: int, t: int, c: int = 2, batch_size: int = 4) -> dict[str, float]:
    """Bytes each variant must hold at its peak (float32 volumes; activations not counted)."""
    v = 4 * z * y * x
    results = (2 * c + 3) * v
    # one slab: float64 sums of p and H (2C + 2), a pass and the outputs (2C), float64 entropy
    # temporaries (4C), in float32 volumes of batch_size slices
    slab = batch_size / z * v * (8 * c + 2)
    return {
        "results_bytes": results,
        "anchor_bytes": t * c * v + results,
        "medval_bytes": results + slab,
        "ratio": (results + slab) / (t * c * v + results),
        "ratio_beyond_results": slab / (t * c * v),
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
) -> dict[str, Any]:
    """Measure both variants at ``measure_z`` slices and medval at ``z`` (``full_samples`` passes).

    Returns a dict: ``analytic`` (at z, mc_samples), ``measured`` (one dict
    per run: seconds, rss_peak_bytes, numpy_peak_bytes), the measured
    ratios medval / anchor, and the largest difference between the two
    variants' results (they run the same passes, so it is float rounding).
    ``threads``: torch threads per run (1: on a shared machine OpenMP's
    spinning threads made 2 threads ~7x slower than 1).
    """
    runs = {
        "medval": _run("medval", measure_z, y, x, mc_samples, batch_size, threads, "m"),
        "anchor": _run("anchor", measure_z, y, x, mc_samples, batch_size, threads, "a"),
        f"medval_T{full_samples}": _run(
            "medval", measure_z, y, x, full_samples, batch_size, threads, "s"
        ),
    }
    a, m = (np.load(runs[k]["probe_file"]) for k in ("anchor", "medval"))
    diff = max(float(np.abs(a[k] - m[k]).max()) for k in a.files)
    for r in runs.values():
        Path(r["probe_file"]).unlink(missing_ok=True)
    if full:
        runs["medval_full"] = _run("medval", z, y, x, full_samples, batch_size, threads, "f")
        Path(runs["medval_full"]["probe_file"]).unlink(missing_ok=True)
    full_size = analytic(z, y, x, mc_samples, batch_size=batch_size)
    return {
        "analytic": full_size,
        # medval measured at the full size against the anchor's analytic peak there
        "full_numpy_ratio": (
            runs["medval_full"]["numpy_peak_bytes"] / full_size["anchor_bytes"] if full else None
        ),
        "analytic_measured_size": analytic(measure_z, y, x, mc_samples, batch_size=batch_size),
        "measured": runs,
        "rss_ratio": runs["medval"]["rss_peak_bytes"] / runs["anchor"]["rss_peak_bytes"],
        "numpy_ratio": runs["medval"]["numpy_peak_bytes"] / runs["anchor"]["numpy_peak_bytes"],
        "max_abs_difference": diff,
    }


def _mib(b: float) -> str:
    return f"{b / MIB:9.1f} MiB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 x 128 slices, T = 5")
    parser.add_argument("--no-full", action="store_true", help="skip the full-size medval run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return
    size = dict(y=128, x=128, mc_samples=5, z=40) if args.quick else {}
    out = bench_mc_memory(full=not args.no_full, **size)
    an, ms = out["analytic"], out["measured"]
    mz = ms["medval"]
    print(f"volume {mz['y']}x{mz['x']} slices, T = {mz['T']}, batch_size {mz['batch_size']}")
    print(f"analytic at the full size (z = {ms.get('medval_full', mz)['z']}):")
    for k in ("results_bytes", "anchor_bytes", "medval_bytes"):
        print(f"  {k:<16}{_mib(an[k])}")
    print(
        f"  medval / anchor {an['ratio']:.3f}; beyond the results {an['ratio_beyond_results']:.4f}"
    )
    print(f"measured at z = {mz['z']} (RSS: torch + numpy; numpy: tracemalloc):")
    for name, r in ms.items():
        per = r["seconds"] / (r["z"] * (r["T"] + 1))
        print(
            f"  {name:<12} z={r['z']:<4} T={r['T']:<3} RSS {_mib(r['rss_peak_bytes'])}  "
            f"numpy {_mib(r['numpy_peak_bytes'])}  {r['seconds']:7.1f} s ({per:.3f} s/slice-pass)"
        )
    small = out["analytic_measured_size"]
    print(
        f"  analytic at z = {mz['z']}: anchor {_mib(small['anchor_bytes'])}, "
        f"medval {_mib(small['medval_bytes'])}"
    )
    print(f"ratio medval / anchor: RSS {out['rss_ratio']:.3f}, numpy {out['numpy_ratio']:.3f}")
    if out["full_numpy_ratio"] is not None:
        print(
            f"full size: medval numpy (measured) / anchor (analytic) {out['full_numpy_ratio']:.3f}"
        )
    print(f"largest difference medval vs anchor results: {out['max_abs_difference']:.2e}")


if __name__ == "__main__":
    main()
