"""Sliding-window inference: window positions, Gaussian weights, blending, forward passes.

The scheme of nnU-Net (Isensee et al. 2021, "nnU-Net: a self-configuring
method for deep learning-based biomedical image segmentation", Nature
Methods 18) and MONAI's ``sliding_window_inference``: windows of the model's
patch size tile the frame with a given overlap, each window's output is
weighted by a Gaussian centred on the window (sigma = 1/8 of the patch size
along each axis, so the error-prone borders of a patch count little) and
the overlapping outputs are averaged with these weights. A frame smaller
than the patch along an axis is zero-padded symmetrically to the patch size
and the result cropped back.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from medval._errors import InputError
from medval.inference._masks import U64, CaseMasks, case_keys

__all__ = [
    "SIGMA_SCALE",
    "WindowRunner",
    "Windows",
    "gaussian_importance",
    "plan_windows",
    "window_starts",
]

#: Gaussian sigma as a fraction of the patch size (nnU-Net's and MONAI's 1/8).
SIGMA_SCALE = 0.125

F32 = NDArray[np.float32]
_SUM_TOL = 1e-3  # channels of output="probabilities" must sum to 1 within this
_STREAM = (0, 0)  # CaseMasks stream; the unit keys already name the case, slice and window


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start offsets of the windows along one axis of length ``size >= patch``.

    nnU-Net's rule: the fewest windows whose step is at most
    ``patch * (1 - overlap)`` (at least 1), spread evenly so the first starts
    at 0 and the last ends at ``size``.
    """
    if size <= patch:
        return [0]
    target = max(patch * (1.0 - overlap), 1.0)
    n = math.ceil((size - patch) / target) + 1
    step = (size - patch) / (n - 1)
    return sorted({round(step * i) for i in range(n)})


def gaussian_importance(patch: Sequence[int], *, sigma_scale: float = SIGMA_SCALE) -> F32:
    """Gaussian weights of shape ``patch``, maximum 1.

    ``exp(-d^2 / (2 sigma^2))`` per axis with ``d`` the distance to the
    patch centre and ``sigma = sigma_scale * patch``; the product over axes.
    The smallest weight (a corner) is above ``exp(-8 * ndim)``, so no voxel
    has weight 0 and no floor is needed (nnU-Net replaces zeros of its
    truncated filter with the smallest non-zero weight).
    """
    g = np.ones((), dtype=np.float64)
    for p in patch:
        d = np.arange(p, dtype=np.float64) - (p - 1) / 2.0
        axis = np.exp(-(d**2) / (2.0 * (sigma_scale * p) ** 2))
        g = np.multiply.outer(g, axis / axis.max())
    return g.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Windows:
    """Windows over a frame of shape ``shape``, in padded coordinates.

    ``starts`` are in canonical (lexicographic) order: outputs are blended
    in that order whatever the batching, so the sums are the same bits.
    With a single window ``importance`` and ``weight_sum`` are None: the
    output is the model's, unweighted.
    """

    shape: tuple[int, ...]
    patch: tuple[int, ...]
    pad: tuple[int, ...]  # zeros added before the frame along each axis
    starts: tuple[tuple[int, ...], ...]
    importance: F32 | None
    weight_sum: F32 | None

    @property
    def padded(self) -> tuple[int, ...]:
        return tuple(max(n, p) for n, p in zip(self.shape, self.patch, strict=True))

    def extract(self, frame: F32, start: tuple[int, ...], out: F32) -> None:
        """Copy the window at ``start`` of ``frame`` into ``out`` (``patch``), zeros outside."""
        src, dst = [], []
        for s, q, n, p in zip(start, self.pad, self.shape, self.patch, strict=True):
            lo, hi = max(s - q, 0), min(s - q + p, n)
            src.append(slice(lo, hi))
            dst.append(slice(lo - (s - q), hi - (s - q)))
        if any(d.start > 0 or d.stop < p for d, p in zip(dst, self.patch, strict=True)):
            out.fill(0.0)
        out[tuple(dst)] = frame[tuple(src)]

    def blend(self, acc: F32, p: F32, start: tuple[int, ...]) -> None:
        """Add the window output ``p`` (C, *patch) into ``acc`` (C, *padded), weighted."""
        where = (slice(None), *(slice(s, s + n) for s, n in zip(start, self.patch, strict=True)))
        if self.importance is None:
            acc[where] = p
        else:
            acc[where] += self.importance * p

    def finish(self, acc: F32) -> F32:
        """Divide ``acc`` (C, ..., *padded) by the weights in place; its view (C, ..., *shape)."""
        if self.weight_sum is not None:
            acc /= self.weight_sum
        crop: tuple[Any, ...] = (
            Ellipsis,
            *(slice(q, q + n) for q, n in zip(self.pad, self.shape, strict=True)),
        )
        cropped: F32 = acc[crop]
        return cropped


def plan_windows(shape: Sequence[int], patch: Sequence[int] | None, overlap: float) -> Windows:
    """The windows of ``patch`` over a frame of ``shape`` with ``overlap`` in [0, 1).

    ``patch=None`` is one window covering the frame.

    Raises
    ------
    InputError
        A patch of the wrong length or with non-positive sizes, or an
        overlap outside [0, 1).
    """
    shape = tuple(int(n) for n in shape)
    if not (isinstance(overlap, (int, float)) and 0.0 <= overlap < 1.0):
        raise InputError(
            f"overlap must be a number in [0, 1) (0.5: windows share half their size); "
            f"got {overlap!r}."
        )
    if patch is None:
        patch = shape
    try:
        size = tuple(int(p) for p in patch)
        ok = len(size) == len(shape) and all(
            p >= 1 and p == q for p, q in zip(size, patch, strict=True)
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(
            f"patch_size must be {len(shape)} positive integers (one per spatial axis of "
            f"{shape}); got {patch!r}."
        )
    padded = tuple(max(n, p) for n, p in zip(shape, size, strict=True))
    pad = tuple((m - n) // 2 for m, n in zip(padded, shape, strict=True))
    axes = [window_starts(m, p, overlap) for m, p in zip(padded, size, strict=True)]
    starts = tuple(itertools.product(*axes))
    if len(starts) == 1:
        return Windows(shape, size, pad, starts, None, None)
    g = gaussian_importance(size)
    total = np.zeros(padded, dtype=np.float32)
    for s in starts:
        total[tuple(slice(a, a + p) for a, p in zip(s, size, strict=True))] += g
    return Windows(shape, size, pad, starts, g, total)


def _shape_error(mode: str, x: tuple[int, ...], got: tuple[int, ...]) -> InputError:
    want = "(batch, classes, y, x)" if mode == "2d" else "(batch, classes, z, y, x)"
    return InputError(
        f"mode={mode!r} expects the model to return {want} with the input's spatial size: "
        f"({x[0]}, C, {', '.join(map(str, x[2:]))}) for the input {x}; got {got}. A 2D model "
        "needs mode='2d' and a 3D model mode='3d'; a classifier (batch, classes) is no "
        "segmentation model; a network whose output is smaller than its input must upsample "
        "back (pick patch_size= as a multiple of its total stride)."
    )


def _to_probabilities(row: torch.Tensor, output: str) -> torch.Tensor:
    """(C', *patch) probabilities of one window's (C, *patch) output; C = 1 -> [1 - p, p]."""
    if output == "softmax":
        p = torch.softmax(row, dim=0)
    else:
        p = torch.sigmoid(row) if output == "sigmoid" else row
    return torch.cat([1.0 - p, p]) if p.shape[0] == 1 else p


class WindowRunner:
    """Forward passes of ``model`` over the windows of a range of frames.

    Frames are the volume's slices (2D) or the volume itself (3D). A unit is
    one window of one frame; MC-dropout masks are keyed by (seed, case id,
    frame, window start), so a unit's masks do not depend on the batching.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        frames: F32,
        windows: Windows,
        *,
        mode: str,
        output: str,
        batch_size: int,
        device: torch.device,
    ) -> None:
        self.model, self.frames, self.windows = model, frames, windows
        self.mode, self.output, self.batch_size, self.device = mode, output, batch_size, device
        self.masks = CaseMasks(model)
        floats = (p.dtype for p in model.parameters() if p.is_floating_point())
        self.dtype = next(floats, torch.float32)
        self.multilabel = False
        self.checked = False
        self._acc: F32 | None = None

    def units(self, region: range) -> list[tuple[int, tuple[int, ...]]]:
        return [(f, s) for f in region for s in self.windows.starts]

    def keys(self, region: range, seed: int, case_id: str) -> U64:
        names = [
            f"{case_id}\x00slice {f} window {s}" if self.mode == "2d" else f"{case_id}\x00patch {s}"
            for f, s in self.units(region)
        ]
        return case_keys(seed, names)

    def run(self, region: range, sample: int | None, keys: U64 | None = None) -> F32:
        """Probabilities (C, z', y, x) of the region's frames: z' slices (2D) or the volume (3D).

        ``sample=None`` is the deterministic pass, else MC sample ``sample``
        with masks from ``keys`` (one per unit). The result is a view of a
        buffer the next call overwrites.
        """
        w, units, b = self.windows, self.units(region), self.batch_size
        acc: F32 | None = None
        x = np.empty((min(b, len(units)), 1, *w.patch), dtype=np.float32)
        for i in range(0, len(units), b):
            batch = units[i : i + b]
            for j, (f, s) in enumerate(batch):
                w.extract(self.frames[f], s, x[j, 0])
            xt = torch.from_numpy(x[: len(batch)]).to(self.device, self.dtype)
            if sample is None:
                out = self._forward(xt)
            else:
                assert keys is not None  # internal: run(region, t, keys)
                with self.masks.active(keys[i : i + b], _STREAM) as begin:
                    begin(sample, 1)
                    out = self._forward(xt)
            p = self._probabilities(out, xt, batch)
            if acc is None:
                acc = self._buffer((p.shape[1], len(region), *w.padded))
            for j, (f, s) in enumerate(batch):
                w.blend(acc[:, f - region.start], p[j], s)
        assert acc is not None  # a region holds at least one unit
        view = w.finish(acc)
        return view.reshape(view.shape[0], -1, *view.shape[-2:])

    def _buffer(self, shape: tuple[int, ...]) -> F32:
        if self._acc is None or self._acc.shape != shape:
            self._acc = np.zeros(shape, dtype=np.float32)
        elif self.windows.importance is not None:
            self._acc.fill(0.0)
        return self._acc

    def _forward(self, x: torch.Tensor) -> Any:
        if self.checked:
            return self.model(x)
        try:
            return self.model(x)
        except torch.cuda.OutOfMemoryError:
            raise
        except RuntimeError as exc:
            raise InputError(
                f"the model failed on its first batch, of shape {tuple(x.shape)} "
                f"(mode={self.mode!r}: (batch, 1, {'y, x' if self.mode == '2d' else 'z, y, x'})): "
                f"{exc}. A 2D model needs mode='2d' and a 3D model mode='3d'; a network that "
                "downsamples needs patch_size= a multiple of its total stride."
            ) from exc

    def _probabilities(
        self, out: Any, x: torch.Tensor, batch: list[tuple[int, tuple[int, ...]]]
    ) -> F32:
        """(b, C >= 2, *patch) float32 probabilities from the model's output."""
        if not isinstance(out, torch.Tensor):
            raise InputError(f"the model returned {type(out).__name__}; expected a tensor.")
        got = tuple(out.shape)
        if out.ndim != x.ndim or got[0] != x.shape[0] or got[2:] != tuple(x.shape[2:]):
            raise _shape_error(self.mode, tuple(x.shape), got)
        c, out = got[1], out.float().cpu()
        if self.output == "softmax" and c < 2:
            raise InputError(
                "output='softmax' needs C >= 2 channels of logits; the model returns 1. "
                "A single foreground logit is output='sigmoid'."
            )
        if self.output == "probabilities":
            ok = bool(torch.isfinite(out).all()) and float(out.min()) >= 0 and float(out.max()) <= 1
            if ok and c >= 2:
                ok = float((out.sum(dim=1) - 1).abs().max()) <= _SUM_TOL
            if not ok:
                raise InputError(
                    "output='probabilities' needs values in [0, 1] that sum to 1 over the "
                    f"channels (or one foreground channel); the model's output for "
                    f"{self._where(batch[0])} does not. For logits use output='softmax' "
                    "(or 'sigmoid' for independent channels)."
                )
        self.multilabel = self.output == "sigmoid" and c > 1
        arr: F32 = np.empty((got[0], max(c, 2), *got[2:]), dtype=np.float32)
        for j, row in enumerate(out):  # row by row: torch rounds softmax per batch size
            arr[j] = _to_probabilities(row, self.output).numpy()
        if not np.isfinite(arr).all():
            bad = int(np.argwhere(~np.isfinite(arr))[0][0])
            raise InputError(
                f"the model output for {self._where(batch[bad])} is not finite (NaN or inf). "
                "Check the input's preprocessing and the model's weights."
            )
        self.checked = True
        return arr

    def _where(self, unit: tuple[int, tuple[int, ...]]) -> str:
        f, s = unit
        return f"slice {f}, window at {s}" if self.mode == "2d" else f"the patch at {s}"
