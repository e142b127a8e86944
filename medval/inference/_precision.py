"""Mixed precision: the autocast context of a run and the check that it moves no result.

``precision="bfloat16"`` or ``"float16"`` runs the model under
:func:`torch.autocast` on the device (Micikevicius et al. 2018, "Mixed
precision training", ICLR): matrix products and convolutions in the short
type, reductions in float32. The outputs are cast to float32 before softmax
or sigmoid, so probabilities are computed and normalised in full precision;
only the network's own arithmetic is shorter. :func:`compare_precision` says
how far that moves the probabilities from a float32 pass on the same cases.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from medval._errors import InputError

__all__ = ["PRECISIONS", "PrecisionCheck", "autocast", "check_precision", "compare_precision"]

#: ``predict(precision=...)``: the autocast type, ``"float32"`` for none.
PRECISIONS = ("float32", "bfloat16", "float16")
_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run under autocast.

    Raises
    ------
    InputError
        An unknown precision; ``"float16"`` off CUDA (CPU autocast takes
        bfloat16); bfloat16 on a GPU without it; mixed precision on a device
        other than CPU or CUDA.
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {list(PRECISIONS)}; got {precision!r}.")
    if precision == "float32":
        return
    if device.type not in ("cpu", "cuda"):
        raise InputError(
            f"precision={precision!r} runs under torch.autocast on CPU or CUDA; the device is "
            f"{device.type!r}. Use precision='float32'."
        )
    if precision == "float16" and device.type == "cpu":
        raise InputError(
            "precision='float16' needs a CUDA device (CPU autocast computes in bfloat16); "
            "use precision='bfloat16' on the CPU, or 'float32'."
        )
    if precision == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError(
            "precision='bfloat16' needs a GPU with bfloat16 support (compute capability 8.0 "
            "or later); use precision='float16' or 'float32' on this one."
        )


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The context a forward pass runs in: autocast to ``precision``, or nothing for float32."""
    check_precision(precision, device)
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


@dataclasses.dataclass(frozen=True)
class PrecisionCheck:
    """How far a mixed-precision run moved the outputs from float32 on the same cases.

    Attributes
    ----------
    precision : str
    cases : int
        Cases compared.
    max_abs_difference : float
        Largest |reduced - float32| over cases and classes (probabilities),
        or over cases divided by ``scale`` (regression values).
    decisions_changed : int or None
        Cases whose decision differs (None for regression values).
    threshold : float or None
        The positive-class threshold of the decisions; None: the most
        probable class.
    tolerance : float
    passed : bool
        ``max_abs_difference <= tolerance``.
    """

    precision: str
    cases: int
    max_abs_difference: float
    decisions_changed: int | None
    threshold: float | None
    tolerance: float
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        """For the result's provenance."""
        return dataclasses.asdict(self)


def compare_precision(
    reference: ArrayLike,
    reduced: ArrayLike,
    *,
    precision: str,
    tolerance: float,
    threshold: float | None = None,
    positive_class: int = 1,
    scale: float = 1.0,
) -> PrecisionCheck:
    """Compare a reduced-precision run's outputs with float32 ones for the same cases.

    Parameters
    ----------
    reference, reduced : array-like
        (n, K) probabilities, or (n,) regression values, in the same case
        order: float32, then the chosen precision.
    precision : str
        The reduced precision (recorded).
    tolerance : float
        Largest acceptable ``max_abs_difference``, > 0.
    threshold : float, optional
        Probabilities: decide ``p[:, positive_class] >= threshold``; None
        decides the most probable class.
    positive_class : int, default 1
    scale : float, default 1.0
        Regression values: differences are divided by it (e.g. the width of
        the target's range), so the tolerance is a fraction of it.

    Returns
    -------
    PrecisionCheck

    Raises
    ------
    InputError
        Shapes that differ or are not (n,) / (n, K) with n >= 1, non-finite
        values, a tolerance or scale <= 0.
    """
    ref = np.asarray(reference, dtype=np.float64)
    low = np.asarray(reduced, dtype=np.float64)
    if ref.shape != low.shape or ref.ndim not in (1, 2) or ref.shape[0] == 0:
        raise InputError(
            "reference and reduced must hold the same n >= 1 cases, (n,) values or (n, K) "
            f"probabilities; got shapes {ref.shape} and {low.shape}."
        )
    if not (np.isfinite(ref).all() and np.isfinite(low).all()):
        raise InputError("reference and reduced must be finite (a NaN or inf arrived).")
    if not tolerance > 0 or not scale > 0:
        raise InputError(f"tolerance and scale must be > 0; got {tolerance!r} and {scale!r}.")
    diff = float(np.max(np.abs(low - ref))) / scale
    changed: int | None = None
    if ref.ndim == 2:
        if threshold is None:
            a, b = ref.argmax(axis=1), low.argmax(axis=1)
        else:
            a, b = ref[:, positive_class] >= threshold, low[:, positive_class] >= threshold
        changed = int(np.count_nonzero(a != b))
    return PrecisionCheck(
        precision=precision,
        cases=int(ref.shape[0]),
        max_abs_difference=diff,
        decisions_changed=changed,
        threshold=None if threshold is None or ref.ndim == 1 else float(threshold),
        tolerance=float(tolerance),
        passed=diff <= tolerance,
    )
