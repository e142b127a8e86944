"""The preprocessing pipeline: decoded DICOM frame -> the array the model gets.

Fixed first, whatever the spec says: decoding (one frame, colour to
luminance), the modality LUT (``pixel * RescaleSlope + RescaleIntercept``)
and the MONOCHROME1 inversion. Then the declared steps in order
(:mod:`medval.io._steps`). When no step normalises (no window, normalize or
transform step), per-image min-max onto [0, 1] is inserted first, as before,
but as a recorded step marked ``implicit`` with a warning
(:attr:`Pipeline.warnings`), never silently. Last, the array is cast (the
last ``dtype`` step's, else float32) and a 2-D image gets its channel axis:
(1, H, W).

:meth:`Pipeline.describe` lists every step with every parameter, the fixed
and implicit ones marked ``"implicit": true``; :meth:`Pipeline.from_description`
rebuilds the same pipeline from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._errors import InputError
from medval.io._hook import Transform
from medval.io._steps import (
    CenterCrop,
    Channels,
    ClipPercentile,
    Dtype,
    Normalize,
    Resize,
    Window,
)

__all__ = ["FRAME_POLICIES", "NO_NORMALISATION", "STEP_TYPES", "Frame", "Pipeline"]

#: op -> step class.
STEP_TYPES: dict[str, type[Any]] = {
    t.op: t
    for t in (Window, ClipPercentile, Normalize, Resize, CenterCrop, Channels, Dtype, Transform)
}

FRAME_POLICIES = ("middle", "first", "error")
#: The warning of a pipeline without a normalising step.
NO_NORMALISATION = (
    "no normalisation was declared in [preprocess] (no window, normalize or transform step): "
    "medval applied per-image min-max onto [0, 1], the old default. If the model was trained "
    'on other input (e.g. z-scored), declare it: { op = "normalize", method = "zscore" }; '
    'method = "none" keeps raw modality values.'
)
_NORMALISING = (Window, Normalize, Transform)
_INVERSION = (
    "MONOCHROME1 files: x -> lo + hi - x, (lo, hi) the stored value range in modality units "
    "(BitsStored, PixelRepresentation; else the image's min and max); windows are mirrored "
    "the same way, so they keep referring to the stored values"
)


@dataclasses.dataclass(frozen=True)
class Frame:
    """One decoded 2-D frame and what the fixed steps need from its header.

    Attributes
    ----------
    pixels : ndarray of float64, shape (H, W)
        After the modality LUT (modality units, e.g. HU).
    monochrome1 : bool
        PhotometricInterpretation MONOCHROME1 (high values display dark).
    stored_range : (float, float) or None
        The stored value range (BitsStored, PixelRepresentation) in modality units.
    window : (float, float) or None
        The file's first WindowCenter/WindowWidth.
    voi_table : (float, ndarray) or None
        The file's first non-linear VOI LUT (VOILUTSequence): the first
        input value it maps and its entries scaled onto [0, 1].
    """

    pixels: NDArray[np.float64]
    monochrome1: bool = False
    stored_range: tuple[float, float] | None = None
    window: tuple[float, float] | None = None
    voi_table: tuple[float, NDArray[np.float64]] | None = None

    @property
    def pivot(self) -> float | None:
        """``lo + hi`` of the MONOCHROME1 inversion (None: not inverted)."""
        if not self.monochrome1:
            return None
        if self.stored_range is not None:
            return float(self.stored_range[0] + self.stored_range[1])
        return float(self.pixels.min() + self.pixels.max())


class Pipeline:
    """Preprocessing steps in order, with the fixed decoding steps before them.

    Parameters
    ----------
    steps : sequence of step objects
        :class:`~medval.io.Window`, :class:`~medval.io.Normalize`,
        :class:`~medval.io.Resize`, ... (``__call__(array) -> array`` and
        ``describe()``); any callable with those two methods works.
    frame_policy : {"middle", "first", "error"}, default "middle"
        The frame taken from a multi-frame image.

    Raises
    ------
    InputError
        An unknown frame policy, or a step without ``describe``.
    """

    def __init__(self, steps: Sequence[Any] = (), *, frame_policy: str = "middle") -> None:
        if frame_policy not in FRAME_POLICIES:
            raise InputError(
                f"frame_policy must be one of {list(FRAME_POLICIES)}; got {frame_policy!r}."
            )
        for i, step in enumerate(steps):
            if not (callable(step) and callable(getattr(step, "describe", None))):
                raise InputError(f"pipeline step {i} ({step!r}) needs __call__ and describe().")
        self.declared = tuple(steps)
        self.frame_policy = frame_policy
        self.implicit_minmax = not any(isinstance(s, _NORMALISING) for s in steps)
        implicit = (Normalize("minmax"),) if self.implicit_minmax else ()
        self.steps: tuple[Any, ...] = (*implicit, *steps)
        dtypes = [s.name for s in steps if isinstance(s, Dtype)]
        self.dtype = dtypes[-1] if dtypes else "float32"

    @classmethod
    def from_steps(
        cls,
        steps: Sequence[Mapping[str, Any]],
        *,
        base_dir: str | Path | None = None,
        frame_policy: str = "middle",
        key: str = "preprocess.steps",
    ) -> Pipeline:
        """Build from step descriptions (``{"op": "window", "center": 40, ...}``).

        ``medval.gate.preprocess_steps`` gives them from a spec; descriptions
        marked ``implicit`` are skipped (the pipeline adds them itself), so
        ``Pipeline.from_steps(p.describe())`` rebuilds ``p``. A transform's
        ``.py`` path is relative to ``base_dir`` (the spec's folder).
        """
        built = []
        for i, raw in enumerate(steps):
            if raw.get("implicit"):
                if raw.get("op") == "decode":
                    frame_policy = str(raw.get("frame_policy", frame_policy))
                continue
            params = {k: v for k, v in raw.items() if k != "op"}
            kind = STEP_TYPES.get(str(raw.get("op")))
            if kind is None:
                raise InputError(f"{key}[{i}]: unknown op {raw.get('op')!r}; ops: "
                                 f"{list(STEP_TYPES)}.")  # fmt: skip
            if kind is Transform:
                params.update(key=f"{key}[{i}].callable", base_dir=base_dir and Path(base_dir))
            try:
                built.append(kind(**params))
            except TypeError as exc:
                raise InputError(f"{key}[{i}] ({raw.get('op')}): {exc}.") from exc
        return cls(built, frame_policy=frame_policy)

    from_description = from_steps

    @classmethod
    def legacy(
        cls,
        window: tuple[float, float] | None = None,
        size: int | tuple[int, int] | None = None,
        *,
        frame_policy: str = "middle",
    ) -> Pipeline:
        """``window=(center, width)`` and ``size=``: a window onto [0, 1], then a bilinear resize.

        Without a window, the implicit per-image min-max (with its warning).
        """
        steps: list[Any] = []
        if window is not None:
            if len(window) != 2 or not float(window[1]) > 0.0:
                raise InputError(f"window must be (center, width) with width > 0; got {window!r}.")
            steps.append(Window(center=float(window[0]), width=float(window[1])))
        if size is not None:
            steps.append(Resize(size=size))  # type: ignore[arg-type]
        return cls(steps, frame_policy=frame_policy)

    @property
    def warnings(self) -> list[str]:
        """What a reader must know: the implicit min-max when nothing normalises."""
        return [NO_NORMALISATION] if self.implicit_minmax else []

    def describe(self) -> list[dict[str, Any]]:
        """Every step, in order, with every parameter; fixed and implicit steps marked."""
        always = {"implicit": True, "note": "always applied"}
        fixed = [
            {"op": "decode", "frame_policy": self.frame_policy, "colour": "BT.601 luminance",
             **always},
            {"op": "modality_lut", "rule": "pixel * RescaleSlope + RescaleIntercept", **always},
            {"op": "invert_monochrome1", "rule": _INVERSION, **always},
        ]  # fmt: skip
        steps = [step.describe() for step in self.steps]
        if self.implicit_minmax:
            steps[0] = {**steps[0], "implicit": True, "note": "default: no normalisation declared"}
        tail = {"op": "to_array", "dtype": self.dtype,
                "layout": "(C, H, W); (1, H, W) for a 2-D image", **always}  # fmt: skip
        return [*fixed, *steps, tail]

    def __call__(self, x: NDArray[Any]) -> NDArray[Any]:
        """The steps on an array in modality units (no header: no inversion, no voi_lut)."""
        return self._run(np.asarray(x, dtype=np.float64), None)

    def apply(self, frame: Frame) -> NDArray[Any]:
        """One decoded frame through the whole pipeline: (C, H, W) of :attr:`dtype`."""
        x = frame.pixels
        if frame.pivot is not None:
            x = frame.pivot - x
        return self._run(x, frame)

    def _run(self, x: NDArray[Any], frame: Frame | None) -> NDArray[Any]:
        for step in self.steps:
            if frame is not None and hasattr(step, "for_frame"):
                step = step.for_frame(frame)
            x = step(x)
        out = np.asarray(x).astype(self.dtype)
        if out.ndim == 2:
            out = out[None]
        if out.ndim != 3:
            raise InputError(f"preprocessing gave an array of shape {out.shape}; expected "
                             "(H, W) or (C, H, W).")  # fmt: skip
        return out

    def __repr__(self) -> str:
        ops = ", ".join(s.describe()["op"] for s in self.steps)
        return f"Pipeline([{ops}])"
