"""Benchmark: segmentation metrics of medval against MONAI and a naive path, same run.

HD95 part: one CT-sized volume (default 512 x 512 x 300 voxels, spacing
(1.0, 0.78, 0.78) mm as (z, y, x)) holding a liver-sized structure (an
irregular ellipsoid of about 1.5 litres) and a prediction that is a perturbed,
shifted copy of it. Three ways to the symmetric HD95 (max of the two directed
95th percentiles between boundary-voxel centres):

* medval: ``structure_scores`` (all ten metrics, HD95 among them);
* MONAI: ``HausdorffDistanceMetric(percentile=95)`` on float tensors
  (built outside the timer);
* naive: boundary by ``binary_erosion`` and a full-volume
  ``distance_transform_edt(~boundary, sampling=spacing)`` of each mask, then
  the percentiles.

Times are the best of ``--repeat`` runs (naive: one run at full size); the
ratios are anchor time / medval time. The three HD95 values are printed.

MC part (after the HD95 part; ``benchmarks/bench_segmentation_mc.py``): peak
memory of MC-dropout voxel uncertainty (T = 20 passes over 512 x 512 x 300)
with medval's running sums against storing the T sample volumes, target
medval / anchor <= 1/10. ``--small`` runs it on 128 x 128 slices with T = 5.

    python benchmarks/bench_segmentation.py            # 512 x 512 x 300
    python benchmarks/bench_segmentation.py --small    # 128 x 128 x 80 smoke run
    python benchmarks/bench_segmentation.py --no-mc    # HD95 part only
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from medval.segmentation import structure_scores

FULL_SHAPE = (300, 512, 512)
SMALL_SHAPE = (80, 128, 128)
SPACING = (1.0, 0.78, 0.78)


def _irregular_ellipsoid(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    semi_axes_mm: NDArray[np.float64],
    centre: NDArray[np.float64],
    rng: np.random.Generator,
    roughness: float,
) -> NDArray[np.bool_]:
    """Ellipsoid whose normalised radius is perturbed by smooth noise."""
    sp = np.asarray(spacing)
    half = np.ceil(semi_axes_mm * (1 + 2 * roughness) / sp).astype(int) + 2
    lo = np.maximum(centre.astype(int) - half, 0)
    hi = np.minimum(centre.astype(int) + half, shape)
    grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    r2 = sum(
        ((g - c) * s / a) ** 2 for g, c, s, a in zip(grids, centre, sp, semi_axes_mm, strict=True)
    )
    coarse = ndimage.gaussian_filter(rng.standard_normal(np.maximum((hi - lo) // 8, 2)), 1.0)
    coarse /= coarse.std()
    zoom = [(b - a) / c for a, b, c in zip(lo, hi, coarse.shape, strict=True)]
    noise = ndimage.zoom(coarse, zoom, order=1, grid_mode=True, mode="nearest")
    box = np.asarray(
        np.sqrt(r2) + roughness * noise[tuple(slice(0, b - a) for a, b in zip(lo, hi, strict=True))]
    )
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = box < 1.0
    return mask


def make_case(
    shape: tuple[int, int, int] = FULL_SHAPE,
    spacing: tuple[float, float, float] = SPACING,
    *,
    volume_ml: float = 1500.0,
    seed: int = 0,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """A reference "liver" of about ``volume_ml`` and a perturbed, shifted prediction.

    On a smaller grid the structure is scaled down with the grid extent.
    """
    rng = np.random.default_rng(seed)
    extent = np.asarray(shape) * np.asarray(spacing)
    scale = min(1.0, float(np.min(extent / (np.asarray(FULL_SHAPE) * np.asarray(SPACING)))))
    # semi-axes ratio 0.6 : 1 : 0.6, sized to volume_ml (4/3 pi abc = V)
    unit = (volume_ml * 1000 * scale**3 / (4 / 3 * np.pi * 0.36)) ** (1 / 3)
    axes = unit * np.array([0.6, 1.0, 0.6])
    centre = np.asarray(shape) / 2.0
    reference = _irregular_ellipsoid(shape, spacing, axes, centre, rng, 0.08)
    # the prediction: its own roughness, slightly larger, shifted by (1, 3, -2) voxels
    predicted = _irregular_ellipsoid(shape, spacing, axes * 1.03, centre, rng, 0.08)
    predicted = np.roll(predicted, (1, 3, -2), axis=(0, 1, 2))
    return predicted, reference


def naive_hd95(
    predicted: NDArray[np.bool_], reference: NDArray[np.bool_], spacing: tuple[float, ...]
) -> float:
    """Full-volume EDT of each boundary's complement, read at the other boundary."""
    cross = ndimage.generate_binary_structure(predicted.ndim, 1)
    bp = predicted & ~ndimage.binary_erosion(predicted, cross, border_value=0)
    br = reference & ~ndimage.binary_erosion(reference, cross, border_value=0)
    d_pr = ndimage.distance_transform_edt(~br, sampling=spacing)[bp]
    d_rp = ndimage.distance_transform_edt(~bp, sampling=spacing)[br]
    return float(max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)))


def monai_hd95(predicted: Any, reference: Any, spacing: tuple[float, ...]) -> float:
    """MONAI's HausdorffDistanceMetric(percentile=95) on (1, 1, z, y, x) float tensors."""
    from monai.metrics import HausdorffDistanceMetric

    metric = HausdorffDistanceMetric(include_background=True, percentile=95)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's own deprecation notices
        out = metric(y_pred=predicted, y=reference, spacing=list(spacing))
    return float(np.asarray(out).reshape(-1)[0])


def medval_hd95(
    predicted: NDArray[np.bool_], reference: NDArray[np.bool_], spacing: tuple[float, ...]
) -> float:
    return structure_scores(predicted, reference, spacing).values["hd95"]


def best_time(fn: Callable[[], float], repeat: int) -> tuple[float, float]:
    """(best seconds, value) over ``repeat`` runs."""
    times, value = [], float("nan")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def bench_hd95(
    shape: tuple[int, int, int] = FULL_SHAPE,
    spacing: tuple[float, float, float] = SPACING,
    *,
    repeat: int = 3,
    naive_repeat: int = 1,
    seed: int = 0,
    with_monai: bool = True,
) -> dict[str, Any]:
    """Time HD95 three ways on one synthetic liver case; return times and values."""
    predicted, reference = make_case(shape, spacing, seed=seed)
    voxel_ml = float(np.prod(spacing)) / 1000
    out: dict[str, Any] = {
        "shape": shape,
        "spacing": spacing,
        "reference_ml": float(reference.sum()) * voxel_ml,
        "predicted_ml": float(predicted.sum()) * voxel_ml,
    }
    scores = structure_scores(predicted, reference, spacing)
    out["dice"] = scores.values["dice"]
    out["medval_s"], out["medval_hd95"] = best_time(
        lambda: medval_hd95(predicted, reference, spacing), repeat
    )
    if with_monai:
        import torch

        P = torch.from_numpy(predicted[None, None].astype(np.float32))
        R = torch.from_numpy(reference[None, None].astype(np.float32))
        out["monai_s"], out["monai_hd95"] = best_time(lambda: monai_hd95(P, R, spacing), repeat)
        del P, R
        gc.collect()
    out["naive_s"], out["naive_hd95"] = best_time(
        lambda: naive_hd95(predicted, reference, spacing), naive_repeat
    )
    return out


def print_hd95(res: dict[str, Any]) -> None:
    z, y, x = res["shape"]
    print(
        f"HD95, {z} x {y} x {x} voxels, spacing {res['spacing']} mm; reference "
        f"{res['reference_ml']:.0f} ml, prediction {res['predicted_ml']:.0f} ml, "
        f"Dice {res['dice']:.3f}"
    )
    head = f"{'path':34} {'seconds':>8} {'HD95 mm':>10} {'time / medval':>13}"
    print(head)
    print("-" * len(head))
    rows = [("medval structure_scores (all 10)", "medval")]
    if "monai_s" in res:
        rows.append(("MONAI HausdorffDistanceMetric(95)", "monai"))
    rows.append(("naive full-volume EDT", "naive"))
    for label, key in rows:
        t, v = res[f"{key}_s"], res[f"{key}_hd95"]
        print(f"{label:34} {t:8.3f} {v:10.4f} {t / res['medval_s']:12.1f}x")
    ref = res["naive_hd95"]
    same = all(abs(res[f"{k}_hd95"] - ref) <= 1e-4 * max(ref, 1.0) for _, k in rows)
    print(f"HD95 values agree (rel 1e-4): {'yes' if same else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--small", "--quick", action="store_true", help="128 x 128 x 80 smoke run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-monai", action="store_true", help="skip the MONAI anchor")
    ap.add_argument("--no-mc", action="store_true", help="skip the MC-dropout memory part")
    args = ap.parse_args()
    shape = SMALL_SHAPE if args.small else FULL_SHAPE
    res = bench_hd95(shape, SPACING, repeat=args.repeat, with_monai=not args.no_monai)
    print_hd95(res)
    if not args.no_mc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_segmentation_mc import QUICK_SIZE, bench_mc_memory, print_mc_memory

        print()
        print_mc_memory(bench_mc_memory(**(QUICK_SIZE if args.small else {})))


if __name__ == "__main__":
    main()
