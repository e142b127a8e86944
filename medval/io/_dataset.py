"""A torch Dataset over DICOM files: pixels through the preprocessing pipeline to a tensor."""

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
from medval.io._preprocess import FRAME_POLICIES, Frame, Pipeline
from medval.io._scan import describe_error, short_message

__all__ = ["DicomDataset", "FramePolicy", "ImageError", "read_frame", "read_image"]

FramePolicy = Literal["middle", "first", "error"]
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601


def _frames_of(ds: Any) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


class ImageError(DataError):
    """A file that cannot be read, decoded or preprocessed.

    ``reason`` is the exclusion reason (``"cannot be decoded: ValueError:
    ..."``): it names no path, so it may go into a result.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def read_image(
    path: str | pathlib.Path, *, frame_policy: FramePolicy = "middle", name: str | None = None
) -> Frame:
    """One 2-D frame of a DICOM file in modality units, with what the pipeline needs.

    Parameters
    ----------
    path : str or path-like
        The DICOM file.
    frame_policy : {"middle", "first", "error"}, default "middle"
        Which frame of a multi-frame image to take (only that frame is
        decoded); ``"error"`` refuses multi-frame images.
    name : str, optional
        How messages name the file (e.g. its path relative to the DICOM
        root); default its file name. Messages never hold the full path:
        folder names can carry PHI.

    Returns
    -------
    Frame
        ``pixels``: ``pixel * RescaleSlope + RescaleIntercept`` (the linear
        modality LUT), float64 (H, W); colour images reduced to BT.601
        luminance. ``monochrome1``, the stored value range in modality units
        and the file's first WindowCenter/WindowWidth.

    Raises
    ------
    DataError
        If the file cannot be read or decoded (an ``ImageError`` whose
        ``reason`` is the exclusion reason); the message names the file and
        the fix (e.g. the decoder package to ``pip install``).
    """
    from pydicom import dcmread

    file = pathlib.Path(path)
    shown = repr(name if name is not None else file.name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(file)
    except Exception as exc:
        why = describe_error(exc)
        raise ImageError(
            f"DICOM file {shown} cannot be read ({why}); re-export it or drop it from the "
            "labels table.",
            f"cannot be read: {why}",
        ) from exc
    try:
        return _frame(ds, shown, frame_policy)
    except ImageError:
        raise
    except Exception as exc:  # a header value the conversion cannot take (a 2-valued slope)
        why = describe_error(exc)
        raise ImageError(
            f"DICOM file {shown}: pixel data cannot be converted ({why}); check its header.",
            f"cannot be decoded: {why}",
        ) from exc


def _frame(ds: Any, shown: str, frame_policy: FramePolicy) -> Frame:
    """:func:`read_image` after the file is read: decode one frame, apply the modality LUT."""
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    problem = decoder_problem(tsyntax)
    if problem:
        raise ImageError(f"DICOM file {shown}: {problem}.", f"cannot be decoded: {problem}")
    n_frames = _frames_of(ds)
    if n_frames > 1 and frame_policy == "error":
        raise ImageError(
            f"DICOM file {shown} has {n_frames} frames and frame_policy='error'; pass "
            "frame_policy='middle' or 'first', or export single frames.",
            f"cannot be decoded: {n_frames} frames and frame_policy 'error'",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns per odd file (padding, syntax)
            if n_frames > 1:  # decode only the frame taken
                ds.pixel_array_options(index=n_frames // 2 if frame_policy == "middle" else 0)
            arr = np.asarray(ds.pixel_array)
    except Exception as exc:
        why = describe_error(exc)
        raise ImageError(
            f"DICOM file {shown}: pixel data cannot be decoded ({why}); check that the file "
            "is complete, or install a pydicom decoder plugin (pip install pylibjpeg "
            "pylibjpeg-libjpeg pylibjpeg-openjpeg).",
            f"cannot be decoded: {why}",
        ) from exc
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples > 1:
        arr = arr[..., :3].astype(np.float64) @ _LUMA
    if arr.ndim != 2:
        raise ImageError(
            f"DICOM file {shown}: expected a 2-D frame, got pixel shape {arr.shape}.",
            f"cannot be decoded: a 2-D frame expected, pixel shape {arr.shape}",
        )
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    # In place: one float64 copy of the frame (what the scan's max_pixel_bytes counts).
    out: NDArray[np.float64] = arr.astype(np.float64)
    out *= slope
    out += intercept
    monochrome1 = samples == 1 and str(ds.get("PhotometricInterpretation", "")).strip() == (
        "MONOCHROME1"
    )
    return Frame(
        out, monochrome1, _stored_range(ds, slope, intercept), _file_window(ds), _voi_table(ds)
    )


def _voi_table(ds: Any) -> tuple[float, NDArray[np.float64]] | None:
    """The first VOILUTSequence item as (first input value, entries on [0, 1]), if usable.

    LUTDescriptor is (entries, first input value, bits per entry); 0 entries
    means 65536, and the first value is signed when the pixels are.
    """
    seq = ds.get("VOILUTSequence")
    if not seq:
        return None
    item = seq[0]
    try:
        n, first, bits = (int(v) for v in item.LUTDescriptor)
        raw = item.LUTData
    except (AttributeError, TypeError, ValueError):
        return None
    n = n or 65536
    if int(ds.get("PixelRepresentation", 0) or 0) == 1 and first >= 2**15:
        first -= 2**16
    if isinstance(raw, bytes):
        table = np.frombuffer(raw, dtype="<u2" if bits > 8 else np.uint8).astype(np.float64)
    else:
        table = np.asarray(list(raw) if not np.isscalar(raw) else [raw], dtype=np.float64)
    if table.size < n or not 1 <= bits <= 16:
        return None
    return float(first), table[:n] / float(2**bits - 1)


def _stored_range(ds: Any, slope: float, intercept: float) -> tuple[float, float] | None:
    """The range BitsStored and PixelRepresentation allow, in modality units."""
    try:
        bits = int(ds.get("BitsStored"))
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    except (TypeError, ValueError):
        return None
    if not 1 <= bits <= 32:
        return None
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    a, b = lo * slope + intercept, hi * slope + intercept
    return (min(a, b), max(a, b))


def _first(value: Any) -> float:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0]
    return float(value)


def _file_window(ds: Any) -> tuple[float, float] | None:
    """The first WindowCenter/WindowWidth pair, if the file has a usable one."""
    try:
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    except (TypeError, ValueError, IndexError):
        return None
    return (center, width) if width > 0 else None


def read_frame(
    path: str | pathlib.Path, *, frame_policy: FramePolicy = "middle"
) -> tuple[NDArray[np.float64], bool]:
    """One 2-D frame in modality units and whether it is MONOCHROME1 (see :func:`read_image`)."""
    frame = read_image(path, frame_policy=frame_policy)
    return frame.pixels, frame.monochrome1


class DicomDataset(Dataset[dict[str, Any]]):
    """DICOM images as ``{"image": (C, H, W) tensor, "case_id": str}``.

    Each file is decoded (:func:`read_image`: one frame, modality LUT) and
    run through ``pipeline`` (:class:`~medval.io.Pipeline`: MONOCHROME1
    inversion, then its steps), then ``transform``. The shorthand
    ``window``/``size`` builds :meth:`Pipeline.legacy`: the window linearly
    onto [0, 1] with clipping, then a bilinear antialiased resize; with
    neither a window nor a pipeline, per-image min-max onto [0, 1], recorded
    as an implicit step with a warning (:attr:`Pipeline.warnings`).

    Parameters
    ----------
    paths : sequence of path-like
        One DICOM file per case.
    case_ids : sequence of str
        Same length as ``paths``.
    pipeline : Pipeline, optional
        The preprocessing; not together with ``window`` or ``size``.
    window : (float, float) or None, default None
        Window center and width in modality units; width > 0.
    size : int or (int, int) or None, default None
        Output (H, W); an int means square.
    transform : callable or None, default None
        Applied last to the tensor.
    frame_policy : {"middle", "first", "error"}, default "middle"
        Frame taken from multi-frame images (with ``pipeline``: its own).
    names : sequence of str, optional
        How messages name each file (e.g. its path relative to the DICOM
        root, ``CohortData.files``); default the file names.

    Raises
    ------
    InputError
        On mismatched lengths or bad options (at construction).
    DataError
        From ``__getitem__`` when a file cannot be read or decoded, or a
        step fails on it (an ``ImageError``: the message names the file by
        ``names``, its ``reason`` is the exclusion reason).
    """

    def __init__(
        self,
        paths: Sequence[str | pathlib.Path],
        case_ids: Sequence[str],
        *,
        pipeline: Pipeline | None = None,
        window: tuple[float, float] | None = None,
        size: int | tuple[int, int] | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        frame_policy: FramePolicy = "middle",
        names: Sequence[str] | None = None,
    ) -> None:
        if len(paths) != len(case_ids) or (names is not None and len(names) != len(paths)):
            given = "" if names is None else f" and names {len(names)}"
            raise InputError(
                f"paths and case_ids must have the same length; got {len(paths)} and "
                f"{len(case_ids)}{given}."
            )
        if frame_policy not in FRAME_POLICIES:
            raise InputError(
                f"frame_policy must be one of {list(FRAME_POLICIES)}; got {frame_policy!r}."
            )
        if pipeline is not None and (window is not None or size is not None):
            raise InputError(
                "give pipeline= or the shorthand window=/size=, not both (add a Window and a "
                "Resize step to the pipeline)."
            )
        if isinstance(size, int):
            size = (size, size)
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise InputError(f"size must be a positive int or (H, W); got {size!r}.")
        if pipeline is None:
            pipeline = Pipeline.legacy(window, size, frame_policy=frame_policy)
        self.paths = [pathlib.Path(p) for p in paths]
        self.case_ids = [str(c) for c in case_ids]
        self.names = [p.name for p in self.paths] if names is None else [str(n) for n in names]
        self.pipeline = pipeline
        self.transform = transform

    @property
    def frame_policy(self) -> FramePolicy:
        policy: FramePolicy = self.pipeline.frame_policy  # type: ignore[assignment]
        return policy

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        name = self.names[index]
        frame = read_image(self.paths[index], frame_policy=self.frame_policy, name=name)
        try:
            y = self.pipeline.apply(frame)
        except Exception as exc:  # a step that cannot take this file's frame
            why = describe_error(exc)
            raise ImageError(
                f"DICOM file {name!r}: preprocessing failed: {short_message(exc, None)}",
                f"cannot be preprocessed: {why}",
            ) from exc
        image = torch.from_numpy(np.ascontiguousarray(y))
        if self.transform is not None:
            image = self.transform(image)
        return {"image": image, "case_id": self.case_ids[index]}
