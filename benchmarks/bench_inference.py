"""Inference throughput: medval.predict against a plain PyTorch loop over the same DataLoader.

The demo's classifier (shipped weights) on the demo's synthetic CT DICOMs
(``medval.demo.write_cohort``), windowed and resized as the demo's spec
(``--size`` upsizes the images to give the device more work). Every row is
end to end: DICOM decoding, preprocessing, copy to the device, the model,
probabilities on the host; images per second, best of the repeats (the
rows timed in turn, so a spike of load on a shared machine hits all alike).

Rows:
  * plain loop, default loader: ``DataLoader(dataset, batch_size=B)`` and
    ``sigmoid(model(x.to(dev)))`` (the demo net has one logit; for K logits
    this is ``model(x).softmax(1)``), the recipe most scripts use;
  * plain loop, medval's loader: the same loop over
    ``inference.make_loader`` (decoding workers, pinned memory on CUDA);
  * medval.predict over medval's loader, float32, then in mixed precision
    (bfloat16 on the CPU; float16 and bfloat16 on CUDA);
  * MC dropout, T = 10: medval (per-case masks, head caching) against the
    plain recipe (dropout in train mode, T forward passes per batch).
Ratios: medval / plain over the same loader (medval's own overhead),
medval / the plain default (what the loader and precision buy), MC medval /
MC plain. On a machine without CUDA the GPU rows say "not run".

Run: python benchmarks/bench_inference.py [--quick] [--device cpu|cuda] [--size 224]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from medval import demo, inference, io


def cohort(root: Path, patients: tuple[int, int, int], size: int) -> io.DicomDataset:
    """The demo's DICOM files as a dataset: window 40/400, resized to ``size``."""
    info = demo.write_cohort(root, seed=0, n_patients=patients)
    labels = pd.read_csv(root / "labels.csv")
    return io.DicomDataset(
        [root / "dicom" / f for f in labels["file"]],
        labels["case_id"].tolist(),
        pipeline=io.Pipeline.legacy(info.window, (size, size)),
    )


def plain_loop(model: nn.Module, loader: Iterable[Any], dev: torch.device, t: int) -> np.ndarray:
    """The usual script: eval mode (dropout on for MC), a loop, sigmoid of the logit."""
    model.eval()
    if t:
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.train()
    out = []
    with torch.inference_mode():
        for batch in loader:
            x = batch["image"].to(dev, non_blocking=True)
            if t:
                p = torch.stack([torch.sigmoid(model(x)) for _ in range(t)])
            else:
                p = torch.sigmoid(model(x))
            out.append(p.cpu())
    model.eval()
    return torch.cat(out, dim=-2).numpy()


def timed(
    rows: dict[str, Callable[[], object]], dev: torch.device, repeats: int
) -> dict[str, float]:
    """Seconds of each row's fastest run, the rows taken in turn (a load spike hits all alike)."""
    for fn in rows.values():
        fn()  # warm-up
    seconds = dict.fromkeys(rows, float("inf"))
    for _ in range(repeats):
        for name, fn in rows.items():
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            seconds[name] = min(seconds[name], time.perf_counter() - t0)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", type=int, default=64, help="image side (the demo's: 64)")
    ap.add_argument("--batch", default="auto", help='batch size, or "auto" (measured on CUDA)')
    ap.add_argument("--workers", default="auto", help='decoding workers, or "auto"')
    ap.add_argument("--samples", type=int, default=10, help="MC-dropout samples T")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per row (default 3)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here; GPU: not run.")
    patients = (10, 10, 5) if args.quick else (150, 150, 100)
    repeats = args.repeats or (1 if args.quick else 3)
    workers = args.workers if args.workers == "auto" else int(args.workers)
    model = demo.make_model()
    model.load_state_dict(torch.load(demo.shipped_weights(), weights_only=True))
    model.to(dev).eval()
    with tempfile.TemporaryDirectory() as tmp:
        dataset = cohort(Path(tmp) / "cohort", patients, args.size)
        n = len(dataset)
        sample = torch.stack([dataset[i]["image"] for i in range(4)])
        if args.batch == "auto":
            batch = inference.auto_batch_size(model, sample, device=dev)
        else:
            batch = int(args.batch)
        loader = inference.make_loader(dataset, batch_size=batch, device=dev, workers=workers)
        default = torch.utils.data.DataLoader(dataset, batch_size=batch)
        print(f"device={dev} images={n} size={args.size}x{args.size} batch={batch} "
              f"workers={loader.num_workers} pinned={loader.pin_memory} "
              f"threads={torch.get_num_threads()} cores={os.cpu_count()} "
              f"T={args.samples}")  # fmt: skip
        lows = ["bfloat16"] if dev.type == "cpu" else ["float16", "bfloat16"]
        if dev.type == "cuda" and not torch.cuda.is_bf16_supported():
            lows.remove("bfloat16")
        t = args.samples
        ref = plain_loop(model, default, dev, 0)
        p32 = inference.predict(model, loader, device=dev)
        gap = np.abs(p32.probabilities[:, 1] - ref[:, 0]).max()
        moved = {
            low: float(np.abs(inference.predict(model, loader, device=dev, precision=low)
                              .probabilities - p32.probabilities).max())
            for low in lows
        }  # fmt: skip
        work: dict[str, Callable[[], object]] = {
            "plain loop, default loader": lambda: plain_loop(model, default, dev, 0),
            "plain loop, medval loader": lambda: plain_loop(model, loader, dev, 0),
            "medval.predict float32": lambda: inference.predict(model, loader, device=dev),
        }
        for low in lows:
            work[f"medval.predict {low}"] = lambda low=low: inference.predict(  # type: ignore[misc]
                model, loader, device=dev, precision=low
            )
        work[f"MC T={t}: plain loop (T passes)"] = lambda: plain_loop(model, loader, dev, t)
        work[f"MC T={t}: medval.predict"] = lambda: inference.predict(
            model, loader, device=dev, mc_samples=t
        )
        rows = timed(work, dev, repeats)
    print(f"{'row':<38} {'seconds':>8} {'images/s':>10}")
    for name, sec in rows.items():
        print(f"{name:<38} {sec:8.3f} {n / sec:10.0f}")
    base, same = rows["plain loop, default loader"], rows["plain loop, medval loader"]
    f32 = rows["medval.predict float32"]
    print(f"-> medval float32 / plain loop, same loader: {same / f32:.2f}x the images/s "
          f"(probabilities agree to {gap:.1e})")  # fmt: skip
    print(f"-> medval float32 / plain loop, default loader: {base / f32:.2f}x")
    for low in lows:
        sec = rows[f"medval.predict {low}"]
        print(f"-> medval {low} / plain loop, default loader: {base / sec:.2f}x "
              f"(largest probability change from float32: {moved[low]:.1e})")  # fmt: skip
    mc_plain = rows[f"MC T={t}: plain loop (T passes)"]
    mc_medval = rows[f"MC T={t}: medval.predict"]
    print(f"-> MC dropout T={t}: medval / plain loop: {mc_plain / mc_medval:.2f}x the images/s")
    if dev.type != "cuda":
        print("GPU: not run (no CUDA device)" if not torch.cuda.is_available() else
              "GPU: not run (--device cpu; pass --device cuda)")  # fmt: skip


if __name__ == "__main__":
    main()
