"""Out-of-memory halving: a batch that does not fit runs in halves, later batches at that size.

A case's outputs do not depend on the batch it runs in (dropout masks are
keyed by case, see :mod:`medval.inference._masks`), so splitting a batch
changes no number beyond float rounding; the halvings are recorded so a run
can say they happened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from medval._errors import InputError

__all__ = ["BatchLimit", "run_in_pieces"]

T = TypeVar("T")


@dataclasses.dataclass
class BatchLimit:
    """The most cases :func:`medval.predict` runs at once, and the halvings that set it.

    Pass one as ``predict(batch_limit=...)`` to read what happened; predict
    fills it in as it runs (and then does not warn).

    Attributes
    ----------
    size : int or None
        Cases per forward pass now; ``None``: each batch whole, as the loader
        gives it.
    halvings : list of (int, int)
        Every out-of-memory halving, in order: (cases tried, cases after).
    """

    size: int | None = None
    halvings: list[tuple[int, int]] = dataclasses.field(default_factory=list)

    def halve(self, tried: int) -> int:
        """Record that ``tried`` cases did not fit; the new size, ``ceil(tried / 2)``."""
        self.size = (tried + 1) // 2
        self.halvings.append((tried, self.size))
        return self.size

    def summary(self) -> dict[str, Any]:
        """For provenance: how many halvings, from which batch size to which."""
        if not self.halvings:
            return {"out_of_memory_halvings": 0}
        return {
            "out_of_memory_halvings": len(self.halvings),
            "batch_size_before_halving": self.halvings[0][0],
            "batch_size_after_halving": self.size,
        }


def run_in_pieces(
    n: int,
    step: Callable[[int, int], T],
    limit: BatchLimit,
    *,
    on_oom: Callable[[], None],
) -> list[T]:
    """``step(lo, hi)`` over cases ``0..n-1`` in pieces of at most ``limit.size`` cases.

    A piece raising ``torch.OutOfMemoryError`` is retried in halves (the
    limit kept for later calls); ``on_oom()`` runs first, once the failed
    piece's frames are released, to undo its partial effects and free the
    cache.

    Raises
    ------
    InputError
        When a single case does not fit (the original error chained).
    """
    out: list[T] = []
    lo = 0
    while lo < n:
        size = n - lo if limit.size is None else min(limit.size, n - lo)
        try:
            out.append(step(lo, lo + size))
            lo += size
            continue
        except torch.OutOfMemoryError as exc:
            if size == 1:
                first = limit.halvings[0][0] if limit.halvings else 1
                raise InputError(
                    "out of memory on a single case (batches were halved from "
                    f"{first} cases down to 1): one case, with its MC-dropout samples and "
                    "augmentations, does not fit on the device. Free the memory other "
                    "processes hold, lower model.mc_samples, use model.precision = "
                    '"bfloat16", or run on the CPU (model.device = "cpu").'
                ) from exc
        # Out of the except block: the failed piece's tensors are no longer referenced.
        limit.halve(size)
        on_oom()
    return out
