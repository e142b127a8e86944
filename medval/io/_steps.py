"""Preprocessing steps: small callables on numpy float arrays (H, W) or (C, H, W).

Each step is a frozen dataclass with ``__call__(array) -> array`` and
``describe() -> dict`` (its ``op`` and every parameter); the parameters and
defaults are those ``medval.gate.PREPROCESS_STEPS`` declares for the spec
(``tests/io/test_preprocess.py`` checks that they agree). Steps compute in
float64, except :class:`Resize`, which interpolates in float32 with torch
(the interpolation the model's training pipeline most likely used).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from medval._errors import DataError, InputError

__all__ = [
    "CT_PRESETS",
    "CenterCrop",
    "Channels",
    "ClipPercentile",
    "Dtype",
    "Normalize",
    "Resize",
    "Window",
]

Array = NDArray[Any]

# The same values as medval.gate.CT_PRESETS (io does not import gate; a test compares them).
# Radiopaedia, "Windowing (CT)", https://radiopaedia.org/articles/windowing-ct.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "brain": (40.0, 80.0),
    "bone": (400.0, 1800.0),
    "abdomen": (40.0, 400.0),
}
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_METHODS = ("zscore", "minmax", "fixed", "imagenet", "none")
_MODES = {"nearest": "nearest-exact", "bilinear": "bilinear", "bicubic": "bicubic", "area": "area"}
_DTYPES = ("float32", "float64", "float16")


def describe_step(step: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"op": step.op}
    for f in dataclasses.fields(step):
        if f.compare:
            value = getattr(step, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def as_float(x: Any) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64)


def _pair(name: str, size: Any) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    ok = isinstance(size, (list, tuple)) and len(size) == 2
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size):
        raise InputError(f"{name} size must be a positive int or (height, width); got {size!r}.")
    return int(size[0]), int(size[1])


@dataclasses.dataclass(frozen=True)
class Window:
    """Clip to a VOI window and map it linearly onto [0, 1]: ``clip((x - (c - w/2)) / w, 0, 1)``.

    ``center``/``width`` in modality units (HU for CT), a ``preset`` from
    :data:`CT_PRESETS`, or ``voi_lut=True``: the file's own VOI
    transformation, its non-linear VOI LUT (VOILUTSequence) when it has one,
    else its (first) WindowCenter/WindowWidth. On a MONOCHROME1 image
    (inverted before the steps) the center is mirrored the same way, so the
    window still refers to the stored modality values.
    """

    op: ClassVar[str] = "window"
    center: float | None = None
    width: float | None = None
    preset: str | None = None
    voi_lut: bool = False

    def __post_init__(self) -> None:
        if self.preset is not None:
            if self.preset not in CT_PRESETS:
                raise InputError(f"window preset {self.preset!r} is not one of {list(CT_PRESETS)}.")
            c, w = CT_PRESETS[self.preset]
            if {self.center, self.width} - {None} and (self.center, self.width) != (c, w):
                raise InputError(f"window preset {self.preset!r} is ({c}, {w}); give a preset "
                                 "or center and width, not both.")  # fmt: skip
            object.__setattr__(self, "center", c)
            object.__setattr__(self, "width", w)
        given = (self.center is not None or self.width is not None) + bool(self.voi_lut)
        if given != 1 or (self.center is None) != (self.width is None):
            raise InputError("a window takes center and width, a preset, or voi_lut=True (one).")
        if self.width is not None and not float(self.width) > 0:
            raise InputError(f"window width must be > 0; got {self.width}.")

    def for_frame(self, frame: Any) -> Window | VoiTable:
        """The window applied to one decoded frame (its own window; mirrored for MONOCHROME1)."""
        center, width = self.center, self.width
        if self.voi_lut:
            table = getattr(frame, "voi_table", None)
            if table is not None:
                return VoiTable(table[0], table[1], frame.pivot)
            if frame.window is None:
                raise DataError(
                    "preprocess window voi_lut = true, but the file has no VOI LUT and no "
                    "WindowCenter/WindowWidth; give center and width (or a preset) instead."
                )
            center, width = frame.window
        if center is None or width is None:  # pragma: no cover - __post_init__ sets both
            raise InputError("a window needs center and width.")
        c, w = float(center), float(width)
        if frame.pivot is not None:
            c = frame.pivot - c
        return Window(center=c, width=w)

    def __call__(self, x: Array) -> Array:
        if self.center is None or self.width is None:
            raise InputError("a voi_lut window needs the file's header: use Pipeline.apply(frame).")
        low = self.center - self.width / 2.0
        return np.clip((as_float(x) - low) / self.width, 0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        return describe_step(self)


@dataclasses.dataclass(frozen=True, eq=False)
class VoiTable:
    """A file's non-linear VOI LUT on one frame (made by :meth:`Window.for_frame`).

    An input value x maps to ``table[clip(round(x) - first, 0, n - 1)]``
    (entries already on [0, 1]); on a MONOCHROME1 frame, inverted before the
    steps around ``pivot``, the LUT reads the stored values (``pivot - x``)
    and its output is inverted back, as a mirrored window is.
    """

    first: float
    table: NDArray[np.float64]
    pivot: float | None = None

    def __call__(self, x: Array) -> Array:
        v = as_float(x)
        if self.pivot is not None:
            v = self.pivot - v
        idx = np.clip(np.rint(v - self.first), 0, self.table.size - 1).astype(np.intp)
        out = self.table[idx]
        return 1.0 - out if self.pivot is not None else out


@dataclasses.dataclass(frozen=True)
class ClipPercentile:
    """Clip each image to its own ``low`` and ``high`` percentiles (numpy's linear rule)."""

    op: ClassVar[str] = "clip_percentile"
    low: float = 0.5
    high: float = 99.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high <= 100.0:
            raise InputError(f"clip_percentile needs 0 <= low < high <= 100; got "
                             f"{self.low}, {self.high}.")  # fmt: skip

    def __call__(self, x: Array) -> Array:
        v = as_float(x)
        lo, hi = np.percentile(v, [self.low, self.high])
        return np.clip(v, lo, hi)

    def describe(self) -> dict[str, Any]:
        return describe_step(self)


@dataclasses.dataclass(frozen=True)
class Normalize:
    """Intensity normalisation: zscore, minmax (per image), fixed, imagenet or none.

    ``zscore``: ``(x - mean) / sd`` over the image (sd 0: ``x - mean``);
    ``minmax``: onto [0, 1] (a constant image: 0); ``fixed``: ``(x - mean) /
    std`` with numbers or one value per channel; ``imagenet``: ``fixed`` with
    ImageNet's RGB mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225),
    for [0, 1] input with 3 channels; ``none``: unchanged (declares that no
    normalisation is wanted).
    """

    op: ClassVar[str] = "normalize"
    method: str
    mean: float | tuple[float, ...] | None = None
    std: float | tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise InputError(f"normalize method {self.method!r} is not one of {list(_METHODS)}.")
        mean, std = (tuple(v) if isinstance(v, (list, tuple)) else v for v in (self.mean, self.std))
        if self.method == "imagenet":
            mean, std = _IMAGENET
        if (self.method in ("fixed", "imagenet")) != (mean is not None and std is not None):
            raise InputError("normalize takes mean and std with method 'fixed' (only).")
        stds = std if isinstance(std, tuple) else () if std is None else (std,)
        if not all(float(s) > 0 for s in stds):
            raise InputError(f"normalize std must be > 0; got {std!r}.")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def __call__(self, x: Array) -> Array:
        v = as_float(x)
        if self.method == "zscore":
            sd = float(v.std())
            return (v - float(v.mean())) / sd if sd > 0 else v - float(v.mean())
        if self.method == "minmax":
            lo, hi = float(v.min()), float(v.max())
            return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
        if self.method == "none":
            return v
        mean, std = np.asarray(self.mean, np.float64), np.asarray(self.std, np.float64)
        if mean.ndim or std.ndim:
            k = max(mean.size, std.size)
            if v.ndim != 3 or v.shape[0] != k:
                raise DataError(
                    f"normalize {self.method} has {k} channel values but the image has shape "
                    f"{v.shape}; put a channels step (n = {k}) before it."
                )
            mean, std = mean.reshape(-1, 1, 1), std.reshape(-1, 1, 1)
        out: Array = (v - mean) / std
        return out

    def describe(self) -> dict[str, Any]:
        return describe_step(self)


@dataclasses.dataclass(frozen=True)
class Resize:
    """Resize the last two axes to ``size`` with ``torch.nn.functional.interpolate`` (float32).

    ``bilinear``/``bicubic`` (``align_corners=False``, antialiased when
    shrinking if ``antialias``), ``nearest`` (torch's ``nearest-exact``, as
    PIL) or ``area``; ``keep_aspect`` fits the image inside ``size`` and pads
    it, centred, with its minimum. An image already of that size is unchanged.
    """

    op: ClassVar[str] = "resize"
    size: tuple[int, int]
    interpolation: str = "bilinear"
    keep_aspect: bool = False
    antialias: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", _pair("resize", self.size))
        if self.interpolation not in _MODES:
            raise InputError(f"resize interpolation {self.interpolation!r} is not one of "
                             f"{list(_MODES)}.")  # fmt: skip

    def _interpolate(self, x: Array, size: tuple[int, int]) -> Array:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        batch = t[None, None] if t.ndim == 2 else t[None]
        smooth = self.interpolation in ("bilinear", "bicubic")
        out = torch.nn.functional.interpolate(
            batch, size=size, mode=_MODES[self.interpolation],
            antialias=self.antialias and smooth, align_corners=False if smooth else None,
        )  # fmt: skip
        result: Array = (out[0, 0] if t.ndim == 2 else out[0]).numpy()
        return result

    def __call__(self, x: Array) -> Array:
        arr = np.asarray(x)
        h, w = arr.shape[-2:]
        th, tw = self.size
        if (h, w) == (th, tw):
            return arr
        if not self.keep_aspect:
            return self._interpolate(arr, (th, tw))
        scale = min(th / h, tw / w)
        nh, nw = max(1, min(th, round(h * scale))), max(1, min(tw, round(w * scale)))
        inner = self._interpolate(arr, (nh, nw))
        out = np.full((*arr.shape[:-2], th, tw), inner.min(), dtype=np.float32)
        top, left = (th - nh) // 2, (tw - nw) // 2
        out[..., top : top + nh, left : left + nw] = inner
        return out

    def describe(self) -> dict[str, Any]:
        return describe_step(self)


@dataclasses.dataclass(frozen=True)
class CenterCrop:
    """The central ``size`` = (height, width); offsets ``(H - h) // 2``, ``(W - w) // 2``."""

    op: ClassVar[str] = "center_crop"
    size: tuple[int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", _pair("center_crop", self.size))

    def __call__(self, x: Array) -> Array:
        arr = np.asarray(x)
        (h, w), (th, tw) = arr.shape[-2:], self.size
        if th > h or tw > w:
            raise DataError(f"center_crop size {list(self.size)} is larger than the image "
                            f"({h}, {w}); resize before cropping.")  # fmt: skip
        top, left = (h - th) // 2, (w - tw) // 2
        out: Array = arr[..., top : top + th, left : left + tw]
        return out

    def describe(self) -> dict[str, Any]:
        return describe_step(self)


@dataclasses.dataclass(frozen=True)
class Channels:
    """Replicate one channel to ``n``: (H, W) or (1, H, W) -> (n, H, W)."""

    op: ClassVar[str] = "channels"
    n: int

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and 1 <= self.n <= 4):
            raise InputError(f"channels n must be 1 to 4; got {self.n!r}.")

    def __call__(self, x: Array) -> Array:
        arr = np.asarray(x)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[0] not in (1, self.n):
            raise DataError(f"channels n = {self.n} needs one channel; the image has shape "
                            f"{arr.shape}.")  # fmt: skip
        return np.repeat(arr, self.n, axis=0) if arr.shape[0] != self.n else arr

    def describe(self) -> dict[str, Any]:
        return describe_step(self)


@dataclasses.dataclass(frozen=True)
class Dtype:
    """Cast to ``float32``, ``float64`` or ``float16``."""

    op: ClassVar[str] = "dtype"
    name: str = "float32"

    def __post_init__(self) -> None:
        if self.name not in _DTYPES:
            raise InputError(f"dtype {self.name!r} is not one of {list(_DTYPES)}.")

    def __call__(self, x: Array) -> Array:
        return np.asarray(x).astype(self.name)

    def describe(self) -> dict[str, Any]:
        return describe_step(self)
