"""Batch size from memory (the arithmetic, the probe on faked CUDA counters) and the loader."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from medval import InputError
from medval.inference import (
    CPU_BATCH_SIZE,
    _loader,
    auto_batch_size,
    fit_batch_size,
    loader_workers,
    make_loader,
    measure_batch_size,
)

MiB = 2**20


def test_two_probes_separate_the_fixed_cost_from_the_per_case_memory() -> None:
    # growth(b) = 100 MiB + 10 MiB * b; 80 % of 1000 MiB leaves room for (800 - 100) / 10 cases.
    probes = [(2, 120 * MiB), (4, 140 * MiB)]
    assert fit_batch_size(1000 * MiB, probes) == 70
    assert fit_batch_size(1000 * MiB, probes, safety=0.5) == 40  # (500 - 100) / 10
    assert fit_batch_size(1000 * MiB, probes, cap=32) == 32
    assert fit_batch_size(105 * MiB, probes) == 1  # the fixed cost alone does not fit: 1


def test_one_probe_or_a_flat_slope_takes_the_largest_memory_per_case() -> None:
    # No fixed cost is known: 140 MiB / 4 cases = 35 MiB a case, floor(800 / 35) = 22.
    assert fit_batch_size(1000 * MiB, [(4, 140 * MiB)]) == math.floor(800 / 35)
    # Allocator rounding made the larger probe no bigger: the same over-estimate.
    assert fit_batch_size(1000 * MiB, [(2, 140 * MiB), (4, 140 * MiB)]) == math.floor(800 / 70)
    assert fit_batch_size(1000 * MiB, [(2, 0), (4, 0)]) == 512  # nothing grows: the cap


@pytest.mark.parametrize(
    ("free", "probes", "kw", "message"),
    [
        (-1.0, [(1, 1.0)], {}, r"free_bytes must be >= 0, safety in \(0, 1\] and cap >= 1"),
        (1.0, [(1, 1.0)], {"safety": 0.0}, r"safety in \(0, 1\]"),
        (1.0, [(1, 1.0)], {"cap": 0}, "cap >= 1"),
        (1.0, [], {}, r"probes must be \(cases >= 1, bytes >= 0\) pairs, at least one"),
        (1.0, [(0, 1.0)], {}, r"probes must be .*got \[\(0, 1\.0\)\]"),
        (1.0, [(2, -5.0)], {}, "probes must be"),
    ],
)
def test_bad_memory_figures_are_refused(
    free: float, probes: list[tuple[int, float]], kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        fit_batch_size(free, probes, **kw)


class FakeCuda:
    """CUDA's memory counters for a device with ``total`` bytes, driven by ``run``."""

    def __init__(self, total: int, fixed: int, per_case: int, weights: int) -> None:
        self.total, self.fixed, self.per_case = total, fixed, per_case
        self.allocated = self.peak = weights
        self.reserved = weights + 50 * MiB  # cached by the allocator, unused
        self.sizes: list[int] = []

    def run(self, x: torch.Tensor) -> None:
        self.sizes.append(int(x.shape[0]))
        self.peak = max(self.peak, self.allocated + self.fixed + self.per_case * x.shape[0])

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        cuda = torch.cuda
        monkeypatch.setattr(cuda, "synchronize", lambda device=None: None)
        monkeypatch.setattr(cuda, "empty_cache", lambda: None)
        monkeypatch.setattr(cuda, "memory_allocated", lambda device=None: self.allocated)
        monkeypatch.setattr(cuda, "max_memory_allocated", lambda device=None: self.peak)
        monkeypatch.setattr(cuda, "memory_reserved", lambda device=None: self.reserved)
        monkeypatch.setattr(cuda, "mem_get_info", lambda device=None: (
            self.total - self.reserved, self.total))  # fmt: skip

        def reset(device: Any = None) -> None:
            self.peak = self.allocated

        monkeypatch.setattr(cuda, "reset_peak_memory_stats", reset)


def test_the_probe_measures_the_growth_above_the_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeCuda(total=8000 * MiB, fixed=300 * MiB, per_case=20 * MiB, weights=1000 * MiB)
    gpu.install(monkeypatch)
    size = measure_batch_size(gpu.run, torch.zeros(4, 1, 8, 8), device="cuda")
    assert gpu.sizes == [1, 2, 4]  # warm-up, then ceil(4/2) and 4 cases
    # free = 8000 - 1050 driver-free + 50 cached = 7000 MiB; (0.8 * 7000 - 300) / 20 = 265.
    assert size == 265
    assert size == fit_batch_size(7000 * MiB, [(2, 340 * MiB), (4, 380 * MiB)])


def test_a_probe_that_does_not_fit_settles_for_what_did(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeCuda(total=8000 * MiB, fixed=0, per_case=20 * MiB, weights=0)
    gpu.install(monkeypatch)

    def run(x: torch.Tensor) -> None:
        if x.shape[0] > 2:
            raise torch.OutOfMemoryError("simulated")
        gpu.run(x)

    assert measure_batch_size(run, torch.zeros(4, 3), device="cuda") == 2


def test_off_cuda_auto_is_the_documented_cpu_size() -> None:
    calls: list[int] = []
    assert measure_batch_size(lambda x: calls.append(1), torch.zeros(4, 3), device="cpu") == 64
    assert calls == [] and CPU_BATCH_SIZE == 64
    assert auto_batch_size(torch.nn.Linear(3, 2), torch.zeros(4, 3), device="cpu") == 64
    with pytest.raises(InputError, match="sample must be a tensor of at least one case"):
        measure_batch_size(lambda x: None, torch.zeros(0, 3), device="cpu")


# --- the loader ------------------------------------------------------------------------------


def test_auto_workers_are_none_on_the_cpu_and_up_to_eight_on_cuda(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert loader_workers("auto", "cpu") == 0
    monkeypatch.setattr(_loader, "_cpu_count", lambda: 32)
    assert loader_workers("auto", "cuda") == 8
    monkeypatch.setattr(_loader, "_cpu_count", lambda: 3)
    assert loader_workers("auto", "cuda:1") == 3
    assert loader_workers(5, "cpu") == 5
    for bad in (-1, "many", True, 2.0):
        with pytest.raises(InputError, match=r'workers must be "auto" or an integer >= 0; got'):
            loader_workers(bad, "cpu")  # type: ignore[arg-type]


def test_the_loader_pins_on_cuda_and_keeps_the_order() -> None:
    data = torch.arange(10.0)
    cpu = make_loader(data, batch_size=4, device="cpu", workers=0)
    assert (cpu.pin_memory, cpu.num_workers, cpu.persistent_workers) == (False, 0, False)
    assert torch.cat(list(cpu)).tolist() == data.tolist()
    gpu = make_loader(data, batch_size=4, device="cuda", workers=2)
    assert (gpu.pin_memory, gpu.num_workers, gpu.persistent_workers) == (True, 2, False)
    with pytest.raises(InputError, match="batch_size must be an integer >= 1; got 0"):
        make_loader(data, batch_size=0)
