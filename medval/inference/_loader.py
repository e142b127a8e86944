"""The DataLoader of an inference run: decoding in worker processes, pinned batches on CUDA."""

from __future__ import annotations

import os
from typing import Any

import torch

from medval._errors import InputError
from medval.inference._passes import resolve_device

__all__ = ["MAX_AUTO_WORKERS", "loader_workers", "make_loader"]

#: ``workers="auto"`` on CUDA uses at most this many decoding processes.
MAX_AUTO_WORKERS = 8


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def loader_workers(workers: int | str, device: str | torch.device | None) -> int:
    """Decoding processes: ``"auto"`` is 0 off CUDA, ``min(8, usable cores)`` on CUDA.

    On the CPU the model needs the cores the workers would take, so the
    images are decoded in the run's own process; on CUDA the workers decode
    while the GPU computes.

    Raises
    ------
    InputError
        Anything but ``"auto"`` or an integer >= 0.
    """
    if workers == "auto":
        return min(MAX_AUTO_WORKERS, _cpu_count()) if resolve_device(device).type == "cuda" else 0
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InputError(f'workers must be "auto" or an integer >= 0; got {workers!r}.')
    return workers


def make_loader(
    dataset: Any,
    *,
    batch_size: int,
    device: str | torch.device | None = None,
    workers: int | str = "auto",
) -> torch.utils.data.DataLoader[Any]:
    """A DataLoader for :func:`medval.predict`: in order, pinned on CUDA, decoding in workers.

    ``pin_memory`` is on for CUDA devices, so :func:`~medval.predict`'s
    ``non_blocking`` copies overlap the next batch's transfer with compute;
    ``persistent_workers`` is off (one pass over the data). Nothing random
    happens in decoding, so the workers need no seeding, and the batches (and
    so the predictions) are the same for any number of workers.

    Parameters
    ----------
    dataset : torch Dataset
        E.g. :class:`medval.io.DicomDataset`; never shuffled (case ids are
        matched by position).
    batch_size : int
        >= 1 (see :func:`~medval.inference.auto_batch_size`).
    device : str or torch.device, optional
        Default: CUDA when available.
    workers : int or "auto", default "auto"
        See :func:`loader_workers`.

    Raises
    ------
    InputError
        A batch size < 1 or bad ``workers``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    cuda = resolve_device(device).type == "cuda"
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=loader_workers(workers, device),
        pin_memory=cuda,
        persistent_workers=False,
    )
