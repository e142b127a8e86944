"""A 3-D volume from the files of one DICOM series, with its geometry checked.

Slices are ordered along the slice normal ``n = row x col`` (from
ImageOrientationPatient) by ``ImagePositionPatient . n``, never by file name
or InstanceNumber; the slice spacing comes from those positions, never from
SliceThickness, which is the reconstructed slab width and differs from the
spacing in overlapping reconstructions (DICOM PS3.3 C.7.6.2.1.1; the same
rule as ITK's GDCMSeriesFileNames and dcm2niix).

Decisions, checked in this order:

* every slice must carry ImageOrientationPatient, ImagePositionPatient,
  PixelSpacing, Rows and Columns, with the same orientation (within
  :data:`IOP_TOLERANCE` per cosine), pixel spacing and size, and be of one
  series: otherwise :class:`~medval._errors.DataError` naming the file;
* two slices at the same position (a step under a tenth of the typical
  step) are duplicates: DataError naming both;
* a step over :data:`GAP_FACTOR` times the median step is a missing slice:
  DataError naming the slices on either side, so the caller excludes the
  case with that reason rather than measuring on a gapped grid;
* smaller non-uniformities (max and min step differ by more than
  ``uniform_tolerance`` of the median) are kept with a warning, and the mean
  step is the spacing;
* gantry tilt (the step between slice positions is not along ``n``) is kept
  unresampled with a warning giving the angle: ``spacing[0]`` is the step
  projected on ``n``, and :attr:`Volume.positions` holds the true positions.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._errors import DataError, InputError
from medval.io._decoders import decoder_problem
from medval.io._scan import describe_error

__all__ = [
    "GAP_FACTOR",
    "GRID_TOLERANCE",
    "IOP_TOLERANCE",
    "TILT_TOLERANCE_DEG",
    "Slice",
    "Volume",
    "decode",
    "floats",
    "optional_float",
    "read_series",
    "shown",
]

#: Largest difference per direction cosine between slices of one series.
IOP_TOLERANCE = 1e-4
#: A step this many times the median step (or more) means a slice is missing.
GAP_FACTOR = 1.5
#: Angles between the slice step and the normal below this are rounding, not tilt.
TILT_TOLERANCE_DEG = 0.05
#: A mask's grid matches a volume's when voxel positions agree within this
#: fraction of the smallest voxel size (NIfTI affines, DICOM SEG frame positions).
GRID_TOLERANCE = 0.1
_FIX_SERIES = "pass the files of one series only (group them by SeriesInstanceUID)"


@dataclasses.dataclass(frozen=True, eq=False)
class Volume:
    """A DICOM series as a 3-D array on its patient-space grid.

    Attributes
    ----------
    array : numpy.ndarray of float32, shape (z, y, x)
        Modality units (Hounsfield units for CT: RescaleSlope/Intercept or
        the Modality LUT applied). ``z`` runs along the slice normal, ``y``
        down the rows (the column direction), ``x`` along a row.
    spacing : (float, float, float)
        Voxel size in mm, (z, y, x): z from the slice positions projected on
        the normal; y, x from PixelSpacing (row spacing, column spacing).
    origin : (float, float, float)
        ImagePositionPatient of the first slice (LPS, mm): the centre of
        voxel (0, 0, 0).
    direction : numpy.ndarray of float64, shape (3, 3)
        As rows: the row direction (x axis), the column direction (y axis)
        and the slice normal (z axis), unit vectors in LPS.
    files : tuple of str
        One per slice, in slice order: paths relative to the ``root`` given
        to :func:`read_series` (else file names), never absolute. A
        multi-frame file appears once per frame.
    warnings : tuple of str
        What was accepted but should be known (tilt, spacing, thickness).
    positions : numpy.ndarray of float64, shape (z, 3), optional
        ImagePositionPatient of every slice; by default
        ``origin + k * spacing[0] * direction[2]`` (see :meth:`slice_positions`).
    """

    array: NDArray[np.float32]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: NDArray[np.float64]
    files: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    positions: NDArray[np.float64] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x)."""
        z, y, x = self.array.shape
        return (int(z), int(y), int(x))

    def slice_positions(self) -> NDArray[np.float64]:
        """ImagePositionPatient of every slice, shape (z, 3), LPS mm."""
        if self.positions is not None:
            return self.positions
        k = np.arange(self.array.shape[0], dtype=np.float64)[:, None]
        step = self.spacing[0] * self.direction[2]
        out: NDArray[np.float64] = np.asarray(self.origin, dtype=np.float64) + k * step
        return out

    def affine(self) -> NDArray[np.float64]:
        """(4, 4) LPS affine from voxel index (x, y, z) to patient mm.

        Columns: the row direction times the x spacing, the column direction
        times the y spacing, the mean step between slice positions (along
        the normal unless the gantry is tilted), the origin.
        """
        out = np.eye(4)
        out[:3, 0] = self.direction[0] * self.spacing[2]
        out[:3, 1] = self.direction[1] * self.spacing[1]
        pos = self.slice_positions()
        n = len(pos)
        out[:3, 2] = (pos[-1] - pos[0]) / (n - 1) if n > 1 else self.direction[2] * self.spacing[0]
        out[:3, 3] = self.origin
        return out


@dataclasses.dataclass(frozen=True)
class Slice:
    """One 2-D slice before ordering: its geometry and how to decode its pixels."""

    name: str
    iop: NDArray[np.float64]
    ipp: NDArray[np.float64]
    pixel_spacing: tuple[float, float]
    size: tuple[int, int]
    thickness: float | None
    between: float | None
    series: str | None
    pixels: Callable[[], NDArray[np.float64]]


def shown(path: pathlib.Path, root: pathlib.Path | None) -> str:
    """How messages name a file: POSIX path relative to ``root``, else its name."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.name


def read_series(
    paths: Sequence[pathlib.Path | str],
    *,
    root: pathlib.Path | str | None = None,
    uniform_tolerance: float = 0.01,
) -> Volume:
    """Read the files of one DICOM series into a :class:`Volume`.

    Parameters
    ----------
    paths : sequence of path-like
        The series' files, in any order; relative paths are taken relative
        to ``root`` when it is given. One enhanced multi-frame file
        (PerFrameFunctionalGroupsSequence with PlanePositionSequence) is a
        series of its own.
    root : path-like, optional
        The data folder: messages and :attr:`Volume.files` name files
        relative to it (else by file name only; folder names can carry PHI).
    uniform_tolerance : float, default 0.01
        Relative spread of the steps between slice positions,
        ``(max - min) / median``, above which a warning says the spacing is
        non-uniform (the mean step is used).

    Returns
    -------
    Volume

    Raises
    ------
    DataError
        A file that cannot be read or decoded, a missing or inconsistent
        geometry tag, duplicate positions, a missing slice, colour pixels, a
        single slice with neither SpacingBetweenSlices nor SliceThickness;
        the message names the file (relative to ``root``) and the fix.
    InputError
        No paths, or ``uniform_tolerance`` not a non-negative number.
    """
    if isinstance(uniform_tolerance, bool) or not (
        isinstance(uniform_tolerance, (int, float)) and uniform_tolerance >= 0
    ):
        raise InputError(f"uniform_tolerance must be a number >= 0; got {uniform_tolerance!r}.")
    if not paths:
        raise InputError("read_series needs at least one file; got an empty list.")
    root_path = None if root is None else pathlib.Path(root)
    files = [
        root_path / p if root_path is not None and not pathlib.Path(p).is_absolute() else p
        for p in map(pathlib.Path, paths)
    ]
    datasets = [(_read(f, shown(f, root_path)), shown(f, root_path)) for f in files]
    slices: list[Slice] = []
    for ds, name in datasets:
        if _is_multiframe(ds):
            if len(datasets) > 1:
                raise DataError(
                    f"DICOM file {name!r} is an enhanced multi-frame image and {len(datasets) - 1}"
                    " other file(s) were given with it; read it on its own."
                )
            from medval.io._seg import frame_slices

            slices.extend(frame_slices(ds, name))
        else:
            slices.append(_slice(ds, name))
    return _assemble(slices, float(uniform_tolerance))


def _read(path: pathlib.Path, name: str) -> Any:
    from pydicom import dcmread

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dcmread(path)
    except Exception as exc:
        raise DataError(
            f"DICOM file {name!r} cannot be read ({describe_error(exc)}); re-export the series."
        ) from exc


def _is_multiframe(ds: Any) -> bool:
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        frames = 1
    return frames > 1 or "PerFrameFunctionalGroupsSequence" in ds


def floats(value: Any, n: int, keyword: str, name: str) -> NDArray[np.float64]:
    """A multi-valued numeric tag as ``n`` finite floats, else DataError naming it."""
    if value is None or value == "":
        raise DataError(
            f"DICOM file {name!r} has no {keyword}; a volume needs it on every slice "
            "(re-export the series from the scanner or PACS)."
        )
    try:
        out = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"DICOM file {name!r}: {keyword} {value!r} is not numeric.") from exc
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        raise DataError(f"DICOM file {name!r}: {keyword} must be {n} finite numbers; got {value}.")
    return out


def optional_float(value: Any) -> float | None:
    """A positive single-valued numeric tag, or None."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out > 0 else None


def _slice(ds: Any, name: str) -> Slice:
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if rows is None or cols is None:
        raise DataError(f"DICOM file {name!r} has no Rows/Columns; it holds no image.")
    spacing = floats(ds.get("PixelSpacing"), 2, "PixelSpacing", name)
    return Slice(
        name=name,
        iop=floats(ds.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", name),
        ipp=floats(ds.get("ImagePositionPatient"), 3, "ImagePositionPatient", name),
        pixel_spacing=(float(spacing[0]), float(spacing[1])),
        size=(int(rows), int(cols)),
        thickness=optional_float(ds.get("SliceThickness")),
        between=optional_float(ds.get("SpacingBetweenSlices")),
        series=str(ds.get("SeriesInstanceUID", "")) or None,
        pixels=lambda: decode(ds, name, None),
    )


def decode(ds: Any, name: str, rescale: tuple[float, float] | None) -> NDArray[np.float64]:
    """All frames of ``ds`` in modality units: ``rescale`` (slope, intercept) or its LUT."""
    problem = decoder_problem(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None))
    if problem:
        raise DataError(f"DICOM file {name!r}: {problem}.")
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise DataError(
            f"DICOM file {name!r} has colour pixels (SamplesPerPixel "
            f"{ds.get('SamplesPerPixel')}); a volume needs one sample per pixel."
        )
    try:
        arr = ds.pixel_array
        if rescale is not None:
            return np.asarray(arr, dtype=np.float64) * rescale[0] + rescale[1]
        from pydicom.pixels.processing import apply_modality_lut

        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    except Exception as exc:
        raise DataError(
            f"DICOM file {name!r}: pixel data cannot be decoded ({describe_error(exc)}); "
            "re-export the series."
        ) from exc


def _normal(first: Slice) -> NDArray[np.float64]:
    row, col = first.iop[:3], first.iop[3:]
    if (
        abs(np.linalg.norm(row) - 1) > 1e-3
        or abs(np.linalg.norm(col) - 1) > 1e-3
        or abs(float(row @ col)) > 1e-3
    ):
        raise DataError(
            f"DICOM file {first.name!r}: ImageOrientationPatient {first.iop.tolist()} is not "
            "two orthogonal unit vectors; the file's geometry is corrupt."
        )
    return np.asarray(np.cross(row, col), dtype=np.float64)


def _check_consistent(slices: list[Slice]) -> None:
    first = slices[0]
    for s in slices[1:]:
        what = None
        if np.max(np.abs(s.iop - first.iop)) > IOP_TOLERANCE:
            what = f"ImageOrientationPatient {s.iop.tolist()} differs from {first.iop.tolist()}"
        elif not np.allclose(s.pixel_spacing, first.pixel_spacing, rtol=1e-4, atol=0):
            what = f"PixelSpacing {list(s.pixel_spacing)} differs from {list(first.pixel_spacing)}"
        elif s.size != first.size:
            what = f"Rows/Columns {s.size} differ from {first.size}"
        elif s.series != first.series:
            what = "SeriesInstanceUID differs"
        if what:
            raise DataError(
                f"DICOM file {s.name!r}: {what} (of {first.name!r}); a volume needs one "
                f"orientation, pixel spacing and size: {_FIX_SERIES}."
            )


def _assemble(slices: list[Slice], uniform_tolerance: float) -> Volume:
    _check_consistent(slices)
    first = slices[0]
    normal = _normal(first)
    order = sorted(range(len(slices)), key=lambda i: float(slices[i].ipp @ normal))
    slices = [slices[i] for i in order]
    ipp = np.stack([s.ipp for s in slices])
    notes: list[str] = []
    if len(slices) == 1:
        dz = _single_slice_spacing(first, notes)
    else:
        dz = _slice_spacing(slices, ipp @ normal, uniform_tolerance, notes)
        _tilt(ipp, normal, dz, notes)
        if first.thickness is not None and abs(first.thickness - dz) > 0.01 * dz:
            why = "overlapping reconstruction?" if first.thickness > dz else "gaps between slices?"
            notes.append(
                f"SliceThickness {first.thickness:g} mm differs from the slice spacing "
                f"{dz:.4g} mm ({why}); the spacing from ImagePositionPatient is used"
            )
    array = np.empty((len(slices), *first.size), dtype=np.float32)
    for k, s in enumerate(slices):
        px = s.pixels()
        if px.shape != first.size:
            raise DataError(
                f"DICOM file {s.name!r}: pixel data of shape {px.shape}, expected Rows x Columns "
                f"{first.size}; re-export the file."
            )
        array[k] = px
    row, col = first.iop[:3], first.iop[3:]
    return Volume(
        array=array,
        spacing=(float(dz), first.pixel_spacing[0], first.pixel_spacing[1]),
        origin=(float(ipp[0, 0]), float(ipp[0, 1]), float(ipp[0, 2])),
        direction=np.stack([row, col, normal]),
        files=tuple(s.name for s in slices),
        warnings=tuple(notes),
        positions=ipp,
    )


def _single_slice_spacing(s: Slice, notes: list[str]) -> float:
    if s.between is not None:
        return s.between
    if s.thickness is not None:
        notes.append(
            f"a single slice: its z spacing is SliceThickness {s.thickness:g} mm (2-D case; "
            "there is no second position to measure it from)"
        )
        return s.thickness
    raise DataError(
        f"DICOM file {s.name!r} is a single slice with neither SpacingBetweenSlices nor "
        "SliceThickness; its z spacing is unknown: add the rest of the series or the tag."
    )


def _slice_spacing(
    slices: list[Slice], d: NDArray[np.float64], uniform_tolerance: float, notes: list[str]
) -> float:
    steps = np.diff(d)
    median = float(np.median(steps))
    for k, step in enumerate(steps):
        if step < max(1e-3, 0.1 * median):
            raise DataError(
                f"DICOM files {slices[k].name!r} and {slices[k + 1].name!r} are at the same "
                f"position along the slice normal ({d[k]:.4g} and {d[k + 1]:.4g} mm): duplicate "
                f"slices; remove one, or {_FIX_SERIES}."
            )
    for k, step in enumerate(steps):
        if step >= GAP_FACTOR * median:
            raise DataError(
                f"slice missing between DICOM files {slices[k].name!r} and "
                f"{slices[k + 1].name!r}: step {step:.4g} mm, about {step / median:.1f} x the "
                f"typical {median:.4g} mm; complete the series or exclude the case."
            )
    lo, hi = float(steps.min()), float(steps.max())
    mean = float((d[-1] - d[0]) / (len(d) - 1))
    if (hi - lo) / median > uniform_tolerance:
        notes.append(
            f"non-uniform slice spacing ({lo:.4g}-{hi:.4g} mm, over {uniform_tolerance:g} of "
            f"the median); the mean step {mean:.4g} mm is used"
        )
    return mean


def _tilt(
    ipp: NDArray[np.float64], normal: NDArray[np.float64], dz: float, notes: list[str]
) -> None:
    v = ipp[-1] - ipp[0]
    cos = min(abs(float(v @ normal)) / float(np.linalg.norm(v)), 1.0)
    angle = math.degrees(math.acos(cos))
    if angle > TILT_TOLERANCE_DEG:
        shift = dz * math.tan(math.radians(angle))
        notes.append(
            f"gantry tilt {angle:.1f}°: the slice positions step {angle:.1f}° off the slice "
            f"normal (each slice shifted {shift:.3g} mm in-plane); the volume is not "
            f"resampled, spacing z is the step projected on the normal ({dz:.4g} mm), so "
            "distances along z use the projected spacing; Volume.positions holds the true "
            "slice positions"
        )
