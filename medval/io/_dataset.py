"""A torch Dataset over DICOM files: pixels to a normalised (1, H, W) tensor."""

from __future__ import annotations

import pathlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from medval._errors import DataError, InputError
from medval.io._decoders import decoder_problem

__all__ = ["DicomDataset", "FramePolicy", "normalise", "read_frame"]

FramePolicy = Literal["middle", "first", "error"]
_FRAME_POLICIES = ("middle", "first", "error")
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601


def _frames_of(ds: Any) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def read_frame(
    path: str | pathlib.Path, *, frame_policy: FramePolicy = "middle"
) -> tuple[NDArray[np.float64], bool]:
    """One 2-D frame of a DICOM file in modality units (rescale applied).

    Parameters
    ----------
    path : str or path-like
        The DICOM file.
    frame_policy : {"middle", "first", "error"}, default "middle"
        Which frame of a multi-frame image to take; ``"error"`` refuses
        multi-frame images.

    Returns
    -------
    frame : numpy.ndarray of float64, shape (H, W)
        ``pixel * RescaleSlope + RescaleIntercept`` (the linear modality
        LUT); colour images are reduced to BT.601 luminance.
    monochrome1 : bool
        Whether the image is MONOCHROME1 (high values display dark).

    Raises
    ------
    DataError
        If the file cannot be read or decoded; the message names the file
        and the fix (e.g. the decoder package to ``pip install``).
    """
    from pydicom import dcmread

    file = pathlib.Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(file)
    except Exception as exc:
        raise DataError(
            f"DICOM file {str(file)!r} cannot be read ({exc}); re-export it or drop it from "
            "the labels table."
        ) from exc
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    problem = decoder_problem(tsyntax)
    if problem:
        raise DataError(f"DICOM file {str(file)!r}: {problem}.")
    n_frames = _frames_of(ds)
    if n_frames > 1 and frame_policy == "error":
        raise DataError(
            f"DICOM file {str(file)!r} has {n_frames} frames and frame_policy='error'; pass "
            "frame_policy='middle' or 'first', or export single frames."
        )
    try:
        arr = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise DataError(
            f"DICOM file {str(file)!r}: pixel data cannot be decoded ({exc}); check that the "
            "file is complete, or install a pydicom decoder plugin (pip install pylibjpeg "
            "pylibjpeg-libjpeg pylibjpeg-openjpeg)."
        ) from exc
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if n_frames > 1:
        arr = arr[n_frames // 2 if frame_policy == "middle" else 0]
    if samples > 1:
        arr = arr[..., :3].astype(np.float64) @ _LUMA
    if arr.ndim != 2:
        raise DataError(
            f"DICOM file {str(file)!r}: expected a 2-D frame, got pixel shape {arr.shape}."
        )
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    out: NDArray[np.float64] = arr.astype(np.float64) * slope + intercept
    return out, str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"


def normalise(
    arr: NDArray[Any], *, window: tuple[float, float] | None, invert: bool
) -> NDArray[np.float32]:
    """Map modality values to [0, 1]: a window (center, width) or per-image min-max.

    MONOCHROME1 inversion (``1 - x``) happens after the mapping, so window
    values stay in modality units (e.g. Hounsfield units).
    """
    x = np.asarray(arr, dtype=np.float64)
    if window is not None:
        center, width = window
        low = center - width / 2.0
        y = np.clip((x - low) / width, 0.0, 1.0)
    else:
        lo, hi = float(x.min()), float(x.max())
        y = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    if invert:
        y = 1.0 - y
    return y.astype(np.float32)


class DicomDataset(Dataset[dict[str, Any]]):
    """DICOM images as ``{"image": (1, H, W) float32 tensor, "case_id": str}``.

    Pipeline: pixel data -> RescaleSlope/RescaleIntercept -> window
    ``(center, width)`` linearly onto [0, 1] with clipping, or per-image
    min-max when ``window`` is None -> MONOCHROME1 inversion -> bilinear
    antialiased resize to ``size`` -> ``transform``.

    Parameters
    ----------
    paths : sequence of path-like
        One DICOM file per case.
    case_ids : sequence of str
        Same length as ``paths``.
    window : (float, float) or None, default None
        Window center and width in modality units; width > 0.
    size : int or (int, int) or None, default None
        Output (H, W); an int means square.
    transform : callable or None, default None
        Applied last to the (1, H, W) tensor.
    frame_policy : {"middle", "first", "error"}, default "middle"
        Frame taken from multi-frame images.

    Raises
    ------
    InputError
        On mismatched lengths or bad options (at construction).
    DataError
        From ``__getitem__`` when a file cannot be read or decoded.
    """

    def __init__(
        self,
        paths: Sequence[str | pathlib.Path],
        case_ids: Sequence[str],
        *,
        window: tuple[float, float] | None = None,
        size: int | tuple[int, int] | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        frame_policy: FramePolicy = "middle",
    ) -> None:
        if len(paths) != len(case_ids):
            raise InputError(
                f"paths and case_ids must have the same length; got {len(paths)} and "
                f"{len(case_ids)}."
            )
        if window is not None and (len(window) != 2 or not float(window[1]) > 0.0):
            raise InputError(f"window must be (center, width) with width > 0; got {window!r}.")
        if frame_policy not in _FRAME_POLICIES:
            raise InputError(
                f"frame_policy must be one of {list(_FRAME_POLICIES)}; got {frame_policy!r}."
            )
        if isinstance(size, int):
            size = (size, size)
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise InputError(f"size must be a positive int or (H, W); got {size!r}.")
        self.paths = [pathlib.Path(p) for p in paths]
        self.case_ids = [str(c) for c in case_ids]
        self.window = None if window is None else (float(window[0]), float(window[1]))
        self.size = size
        self.transform = transform
        self.frame_policy: FramePolicy = frame_policy

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        arr, monochrome1 = read_frame(self.paths[index], frame_policy=self.frame_policy)
        y = normalise(arr, window=self.window, invert=monochrome1)
        image = torch.from_numpy(np.ascontiguousarray(y))[None]
        if self.size is not None and tuple(image.shape[-2:]) != self.size:
            image = torch.nn.functional.interpolate(
                image[None], size=self.size, mode="bilinear", antialias=True, align_corners=False
            )[0]
        if self.transform is not None:
            image = self.transform(image)
        return {"image": image, "case_id": self.case_ids[index]}
