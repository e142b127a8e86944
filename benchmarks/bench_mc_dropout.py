"""MC dropout speed: medval (batched, head caching) against the naive loop of T passes.

Two models, both ResNet-style CNNs with BatchNorm:
  * "head": dropout only before the final layer (head caching applies);
  * "deep": dropout after every residual block (only the stem is cached;
    batched, i.e. T folded into the batch, against a loop of T passes).
Times are relative to one deterministic pass over the same batch (best of
the repeats, after a warm-up). On CPU, medval's default folds at most 256
rows per pass (``mc_chunk``), which for a batch of 256 is a loop.

medval draws its dropout masks per case (keyed by seed and case id, so the
samples do not depend on batching). The "torch RNG" rows run the same
predict() with the sampler it had before: dropout modules in train mode,
masks from torch's generator (kept here, for this comparison only).

Run: python benchmarks/bench_mc_dropout.py [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import torch
from torch import nn

from medval.inference import _passes, predict
from medval.inference._head import set_dropout
from medval.inference._masks import U64
from medval.inference._sampler import Sampler


class TorchRngSampler(Sampler):
    """The sampler before per-case masks: dropout in train mode, torch's generator."""

    def _sample(
        self, forward: Callable[[int], Any], b: int, keys: U64, stream: tuple[int, ...]
    ) -> torch.Tensor:
        set_dropout(self.model, True)
        try:
            return self._chunks(lambda _first, count: forward(count), b)
        finally:
            set_dropout(self.model, False)


def torch_rng_sampler() -> contextlib.AbstractContextManager[Any]:
    """predict() with :class:`TorchRngSampler` inside."""
    return mock.patch.object(_passes, "Sampler", TorchRngSampler)


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, p_drop: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )
        self.drop = nn.Dropout2d(p_drop) if p_drop > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return self.drop(torch.relu(self.bn2(self.conv2(h)) + self.skip(x)))


class ResNetish(nn.Module):
    def __init__(self, deep_dropout: bool, width: int = 16, k: int = 2) -> None:
        super().__init__()
        p = 0.1 if deep_dropout else 0.0
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.layers = nn.Sequential(
            Block(width, width, 1, p),
            Block(width, 2 * width, 2, p),
            Block(2 * width, 4 * width, 2, p),
            Block(4 * width, 4 * width, 1, p),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * width, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.layers(self.stem(x))))


def naive_loop(model: nn.Module, x: torch.Tensor, t: int) -> torch.Tensor:
    """The usual recipe: model.train() on dropout only, T full passes."""
    model.eval()
    for m in model.modules():
        if isinstance(m, (nn.Dropout, nn.Dropout2d)):
            m.train()
    with torch.inference_mode():
        out = torch.stack([torch.softmax(model(x), 1) for _ in range(t)])
    model.eval()
    return out


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_model(kind: str, x: torch.Tensor, t: int, dev: torch.device, repeats: int) -> None:
    """Print one model's rows of the table and its headline ratio."""
    model = ResNetish(deep_dropout=kind == "deep").to(dev).eval()

    def one() -> None:
        with torch.inference_mode():
            model(x)

    def medval(**kw: Any) -> Callable[[], object]:
        return lambda: predict(model, [x], mc_samples=t, device=dev, **kw)

    def torch_rng(**kw: Any) -> Callable[[], object]:
        def run() -> object:
            with torch_rng_sampler():
                return predict(model, [x], mc_samples=t, device=dev, **kw)

        return run

    base = timed(one, dev, repeats)
    rows = {"one deterministic pass": base}
    rows["naive loop (T passes)"] = timed(lambda: naive_loop(model, x, t), dev, repeats)
    configs: dict[str, dict[str, Any]] = {"": {}, " head=False": {"head": False}}
    if kind == "deep":
        configs[" head=False chunk=1"] = {"head": False, "mc_chunk": 1}
        configs[" head=False chunk=T"] = {"head": False, "mc_chunk": t}
    ratio: dict[str, float] = {}  # per-case masks / torch RNG, by configuration
    for label, kw in configs.items():
        # alternated, best of the repeats: a background spike hits both alike
        new, old = float("inf"), float("inf")
        for _ in range(2):
            new = min(new, timed(medval(**kw), dev, repeats))
            old = min(old, timed(torch_rng(**kw), dev, repeats))
        rows[f"medval{label or '.predict'}"] = new
        rows[f"torch RNG{label or ' sampler'}"] = old
        ratio[label.strip() or "default"] = new / old
    # Measured again at the end: a background spike during the first timing
    # must not inflate every ratio.
    base = rows["one deterministic pass"] = min(base, timed(one, dev, repeats))
    for name, sec in rows.items():
        print(f"{kind:<6} {name:<28} {sec:8.3f} {sec / base:10.2f}")
    ratios = ", ".join(f"{label} {r:.2f}" for label, r in ratio.items())
    print(f"{kind:<6} -> per-case masks / torch RNG sampler: {ratios} (target <= 1.2, head cached)")
    if kind == "head":
        print(
            f"head   -> medval (head caching) / one pass = {rows['medval.predict'] / base:.2f} "
            f"(target <= 1.5); naive loop / one pass = {rows['naive loop (T passes)'] / base:.2f}"
        )
    else:
        loop = rows["medval head=False chunk=1"]
        print(
            f"deep   -> batched (T folded into the batch) / loop = "
            f"{rows['medval head=False chunk=T'] / loop:.2f}; default medval / naive loop = "
            f"{rows['medval.predict'] / rows['naive loop (T passes)']:.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", type=int, default=None, help="image side (default 32; GPU 64)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=None, help="timings per method (default 5)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    size = args.size or (16 if args.quick else (64 if dev.type == "cuda" else 32))
    batch = 32 if args.quick else args.batch
    t = 5 if args.quick else args.samples
    repeats = args.repeats or (1 if args.quick else 5)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    x = torch.randn(batch, 1, size, size, generator=torch.Generator().manual_seed(0)).to(dev)
    print(f"device={dev} batch={batch} image={size}x{size} T={t} threads={torch.get_num_threads()}")
    print(f"{'model':<6} {'method':<28} {'time s':>8} {'x one pass':>10}")
    for kind in ("head", "deep"):
        bench_model(kind, x, t, dev, repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak resident memory: {peak:.0f} MiB"
        + (
            f"; peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
            if dev.type == "cuda"
            else ""
        )
    )


if __name__ == "__main__":
    main()
