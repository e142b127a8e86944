"""Batch size from memory: probe the model on a few cases, fit the rest of the free GPU memory.

Inference memory is modelled as linear in the batch: the peak growth of a
forward pass over ``b`` cases is ``fixed + b * per_case`` (weights are
already resident; activations, MC samples folded into the batch and
augmentations scale with ``b``). Two probes give both terms; the batch is
the largest that fits a safety fraction of the free memory, capped. The
arithmetic (:func:`fit_batch_size`) is pure; :func:`measure_batch_size`
feeds it CUDA's counters. Out-of-memory halving
(:class:`~medval.inference.BatchLimit`) remains the safety net.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from medval._errors import InputError
from medval.inference._passes import resolve_device

__all__ = [
    "CPU_BATCH_SIZE",
    "MAX_BATCH_SIZE",
    "MEMORY_SAFETY",
    "auto_batch_size",
    "fit_batch_size",
    "measure_batch_size",
]

#: ``batch_size = "auto"`` off CUDA: memory is not the limit there (the spec's old default).
CPU_BATCH_SIZE = 64
#: Share of the free memory a batch may plan to use (the rest: fragmentation, other processes).
MEMORY_SAFETY = 0.8
#: No more cases per batch: beyond this, decoding, not the device, limits the speed.
MAX_BATCH_SIZE = 512


def fit_batch_size(
    free_bytes: float,
    probes: Sequence[tuple[int, float]],
    *,
    safety: float = MEMORY_SAFETY,
    cap: int = MAX_BATCH_SIZE,
) -> int:
    """The largest batch whose modelled memory fits ``safety * free_bytes``, in ``[1, cap]``.

    Parameters
    ----------
    free_bytes : float
        Memory free for the run, >= 0.
    probes : sequence of (int, float)
        ``(cases, bytes)``: the peak memory growth of one forward over that
        many cases (>= 1), at least one probe.
    safety : float, default 0.8
        In (0, 1].
    cap : int, default 512
        >= 1.

    Returns
    -------
    int
        ``floor((safety * free - fixed) / per_case)`` clipped to ``[1, cap]``:
        with two probe sizes, ``per_case`` is the slope between the smallest
        and the largest and ``fixed`` its intercept (at least 0); with one,
        or a slope <= 0 (allocator rounding), ``fixed = 0`` and ``per_case``
        the largest ``bytes / cases`` (an over-estimate: a smaller batch).
        ``cap`` when nothing grows.

    Raises
    ------
    InputError
        No probe, cases < 1, negative bytes or free memory, a safety outside
        (0, 1], a cap < 1.
    """
    if not free_bytes >= 0 or not 0 < safety <= 1 or isinstance(cap, bool) or cap < 1:
        raise InputError(
            f"free_bytes must be >= 0, safety in (0, 1] and cap >= 1; got {free_bytes!r}, "
            f"{safety!r} and {cap!r}."
        )
    if not probes or any(n < 1 or not b >= 0 for n, b in probes):
        raise InputError(
            f"probes must be (cases >= 1, bytes >= 0) pairs, at least one; got {list(probes)!r}."
        )
    small, large = min(probes), max(probes)
    fixed, per_case = 0.0, max(b / n for n, b in probes)
    if large[0] > small[0]:
        slope = (large[1] - small[1]) / (large[0] - small[0])
        if slope > 0:
            per_case, fixed = slope, max(0.0, large[1] - slope * large[0])
    if per_case <= 0:
        return cap
    room = safety * free_bytes - fixed
    return int(min(cap, max(1, math.floor(room / per_case))))


def measure_batch_size(
    run: Callable[[torch.Tensor], object],
    sample: torch.Tensor,
    *,
    device: str | torch.device | None = None,
    safety: float = MEMORY_SAFETY,
    cap: int = MAX_BATCH_SIZE,
) -> int:
    """:func:`fit_batch_size` from CUDA's memory counters around ``run`` on ``sample``.

    ``run(x)`` scores a batch ``x`` exactly as the run will (same model,
    MC samples, augmentations, precision). It runs once on one case (a
    warm-up: weights on the device, kernels and workspaces chosen), then on
    ``ceil(n/2)`` and ``n`` cases of ``sample`` (n >= 1), each time measuring
    ``torch.cuda.max_memory_allocated`` above the allocation before it. The
    free memory is ``torch.cuda.mem_get_info``'s free bytes plus what
    PyTorch's allocator holds unused. Off CUDA: :data:`CPU_BATCH_SIZE`.

    Raises
    ------
    InputError
        An empty or non-tensor ``sample``.
    """
    dev = resolve_device(device)
    if not isinstance(sample, torch.Tensor) or sample.ndim == 0 or sample.shape[0] == 0:
        raise InputError("sample must be a tensor of at least one case (batch first).")
    if dev.type != "cuda":
        return CPU_BATCH_SIZE
    n = int(sample.shape[0])
    probes: list[tuple[int, float]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the run itself warns once, not the probes
        try:
            run(sample[:1])
            for k in sorted({(n + 1) // 2, n}):
                torch.cuda.synchronize(dev)
                torch.cuda.reset_peak_memory_stats(dev)
                base = torch.cuda.memory_allocated(dev)
                run(sample[:k])
                torch.cuda.synchronize(dev)
                probes.append((k, float(torch.cuda.max_memory_allocated(dev) - base)))
        except torch.OutOfMemoryError:
            pass  # the probe itself did not fit: the largest size that did (or 1)
    if len(probes) < (2 if n > 1 else 1):
        torch.cuda.empty_cache()
        return max([1, *(k for k, _ in probes)])
    free, _ = torch.cuda.mem_get_info(dev)
    unused = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
    return fit_batch_size(float(free + unused), probes, safety=safety, cap=cap)


def auto_batch_size(
    model: torch.nn.Module | Sequence[torch.nn.Module],
    sample: torch.Tensor,
    *,
    device: str | torch.device | None = None,
    safety: float = MEMORY_SAFETY,
    cap: int = MAX_BATCH_SIZE,
    **options: Any,
) -> int:
    """Cases per batch that fit the device's free memory, for :func:`medval.predict`.

    Probes ``predict(model, [x], device=device, **options)`` on ``sample``
    (a few cases, e.g. 4, stacked batch first; give the same ``options``
    as the run: ``mc_samples``, ``tta``, ``precision``, ``output``) with
    :func:`measure_batch_size`. Off CUDA: :data:`CPU_BATCH_SIZE` (64).

    Examples
    --------
    >>> x = torch.stack([dataset[i]["image"] for i in range(4)])  # doctest: +SKIP
    >>> b = auto_batch_size(model, x, device="cuda", mc_samples=20)  # doctest: +SKIP
    >>> loader = make_loader(dataset, batch_size=b, device="cuda")  # doctest: +SKIP
    """
    from medval.inference._predict import predict

    return measure_batch_size(
        lambda x: predict(model, [x], device=device, **options),
        sample,
        device=device,
        safety=safety,
        cap=cap,
    )
