"""Multi-frame DICOM: enhanced CT/MR frames as slices, and DICOM SEG onto a volume's grid.

Both read the functional groups of PS3.3 C.7.6.16: a frame's position,
orientation, pixel measures and rescale live in its item of
PerFrameFunctionalGroupsSequence, or, when shared by all frames, in
SharedFunctionalGroupsSequence. Only pydicom is needed (highdicom writes the
test files, never reads here).
"""

from __future__ import annotations

import dataclasses
import pathlib
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._errors import DataError
from medval.io._scan import describe_error
from medval.io._volume import (
    GRID_TOLERANCE,
    IOP_TOLERANCE,
    Slice,
    Volume,
    decode,
    floats,
    optional_float,
)

__all__ = ["SegSegments", "frame_slices", "group_item", "read_seg"]


def group_item(ds: Any, frame: int, sequence: str) -> Any:
    """The item of a functional group for one frame: per-frame first, else shared."""
    for groups, index in (
        ("PerFrameFunctionalGroupsSequence", frame),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        items = ds.get(groups)
        if items is not None and len(items) > index and sequence in items[index]:
            seq = getattr(items[index], sequence)
            if len(seq):
                return seq[0]
    return None


def frame_slices(ds: Any, name: str) -> list[Slice]:
    """The frames of an enhanced multi-frame image as slices (PS3.3 C.7.6.16)."""
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if (
        "PerFrameFunctionalGroupsSequence" not in ds
        or group_item(ds, 0, "PlanePositionSequence") is None
    ):
        raise DataError(
            f"DICOM file {name!r} has {n} frames without PerFrameFunctionalGroupsSequence/"
            "PlanePositionSequence: multi-frame images other than enhanced CT/MR are not "
            "supported yet; export the series as single-frame files."
        )
    cache: dict[str, NDArray[np.float64]] = {}

    def pixels(k: int, rescale: tuple[float, float]) -> NDArray[np.float64]:
        if "all" not in cache:
            cache["all"] = decode(ds, name, (1.0, 0.0)).reshape(n, int(ds.Rows), int(ds.Columns))
        out: NDArray[np.float64] = cache["all"][k] * rescale[0] + rescale[1]
        return out

    out = []
    for k in range(n):
        where = f"{name} frame {k + 1}"
        position = group_item(ds, k, "PlanePositionSequence")
        orientation = group_item(ds, k, "PlaneOrientationSequence")
        measures = group_item(ds, k, "PixelMeasuresSequence")
        transform = group_item(ds, k, "PixelValueTransformationSequence")
        spacing = floats(getattr(measures, "PixelSpacing", None), 2, "PixelSpacing", where)
        rescale = (
            optional_float(getattr(transform, "RescaleSlope", None)) or 1.0,
            float(getattr(transform, "RescaleIntercept", 0.0) or 0.0),
        )
        out.append(
            Slice(
                name=name,
                iop=floats(
                    getattr(orientation, "ImageOrientationPatient", None),
                    6,
                    "ImageOrientationPatient",
                    where,
                ),
                ipp=floats(
                    getattr(position, "ImagePositionPatient", None),
                    3,
                    "ImagePositionPatient",
                    where,
                ),
                pixel_spacing=(float(spacing[0]), float(spacing[1])),
                size=(int(ds.Rows), int(ds.Columns)),
                thickness=optional_float(getattr(measures, "SliceThickness", None)),
                between=optional_float(getattr(measures, "SpacingBetweenSlices", None)),
                series=None,
                pixels=lambda k=k, r=rescale: pixels(k, r),  # type: ignore[misc]
            )
        )
    return out


@dataclasses.dataclass(frozen=True)
class SegSegments:
    """The segments of a DICOM SEG on a volume's grid.

    Attributes
    ----------
    masks : numpy.ndarray of bool, shape (S, z, y, x)
        One mask per segment, in SegmentSequence order.
    numbers : tuple of int
        SegmentNumber of each.
    labels : tuple of str
        SegmentLabel of each ("" when absent).
    """

    masks: NDArray[np.bool_]
    numbers: tuple[int, ...]
    labels: tuple[str, ...]


def read_seg(path: pathlib.Path, volume: Volume, name: str) -> SegSegments:
    """Read a DICOM SEG (BINARY or FRACTIONAL) onto ``volume``'s grid.

    Each frame goes to the volume slice whose ImagePositionPatient is within
    :data:`~medval.io._volume.GRID_TOLERANCE` of the smallest voxel size of
    the frame's PlanePositionSequence position, and to the segment named by
    its SegmentIdentificationSequence; slices with no frame are empty (SEG
    writers omit empty frames). A FRACTIONAL SEG must hold only 0 and
    MaximumFractionalValue: a probability map is not a reference mask.

    Raises
    ------
    DataError
        Not a SEG, another SegmentationType, a frame that matches no slice,
        Rows/Columns, PixelSpacing or orientation unlike the volume's, an
        unknown segment number, or intermediate fractional values.
    """
    from pydicom import dcmread

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(path)
    except Exception as exc:
        raise DataError(f"mask {name!r} cannot be read as DICOM ({describe_error(exc)}).") from exc
    if str(ds.get("Modality", "")) != "SEG":
        raise DataError(
            f"mask {name!r} is DICOM of Modality {ds.get('Modality')!r}, not SEG; store the "
            "reference mask as a DICOM Segmentation (or .npy/.nii.gz)."
        )
    kind = str(ds.get("SegmentationType", ""))
    if kind not in ("BINARY", "FRACTIONAL"):
        raise DataError(
            f"mask {name!r}: SegmentationType {kind!r} is not supported; BINARY or FRACTIONAL."
        )
    _check_plane(ds, volume, name)
    numbers = [int(s.SegmentNumber) for s in ds.get("SegmentSequence", [])]
    labels = [str(s.get("SegmentLabel", "")) for s in ds.get("SegmentSequence", [])]
    n = int(ds.get("NumberOfFrames", 1) or 1)
    pixels = decode(ds, name, (1.0, 0.0)).reshape(n, int(ds.Rows), int(ds.Columns))
    if kind == "FRACTIONAL":
        top = float(ds.get("MaximumFractionalValue", 255) or 255)
        odd = pixels[(pixels != 0) & (pixels != top)]
        if odd.size:
            raise DataError(
                f"mask {name!r} is a FRACTIONAL SEG with values between 0 and {top:g} (e.g. "
                f"{odd.flat[0]:g}): a probability map is not a reference mask; threshold it "
                "and store it as a BINARY SEG."
            )
    masks = np.zeros((len(numbers), *volume.shape), dtype=bool)
    normal = volume.direction[2]
    positions = volume.slice_positions()
    tolerance = GRID_TOLERANCE * min(volume.spacing)
    for k in range(n):
        item = group_item(ds, k, "SegmentIdentificationSequence")
        number = int(getattr(item, "ReferencedSegmentNumber", -1))
        if number not in numbers:
            raise DataError(
                f"mask {name!r}: frame {k + 1} refers to segment {number}, not in its "
                f"SegmentSequence {numbers}; the SEG is corrupt."
            )
        where = f"{name} frame {k + 1}"
        plane = group_item(ds, k, "PlanePositionSequence")
        ipp = floats(getattr(plane, "ImagePositionPatient", None), 3, "ImagePositionPatient", where)
        dist = np.linalg.norm(positions - ipp, axis=1)
        z = int(np.argmin(dist))
        if dist[z] > tolerance:
            raise DataError(
                f"mask {name!r}: frame {k + 1} lies at {float(ipp @ normal):.4g} mm along the "
                f"slice normal, {dist[z]:.3g} mm from the nearest slice ({volume.files[z]!r}, "
                f"{float(positions[z] @ normal):.4g} mm), over the {tolerance:.3g} mm "
                "tolerance: the SEG was made on another series or grid; use the SEG of this "
                "series."
            )
        masks[numbers.index(number), z] |= pixels[k] != 0
    return SegSegments(masks, tuple(numbers), tuple(labels))


def _check_plane(ds: Any, volume: Volume, name: str) -> None:
    size = (int(ds.get("Rows", 0)), int(ds.get("Columns", 0)))
    if size != volume.shape[1:]:
        raise DataError(
            f"mask {name!r}: Rows/Columns {size} differ from the series' {volume.shape[1:]}; "
            "the SEG must be on the grid of the series it annotates."
        )
    measures = group_item(ds, 0, "PixelMeasuresSequence")
    spacing = floats(getattr(measures, "PixelSpacing", None), 2, "PixelSpacing", name)
    if not np.allclose(spacing, volume.spacing[1:], rtol=1e-4, atol=0):
        raise DataError(
            f"mask {name!r}: PixelSpacing {spacing.tolist()} differs from the series' "
            f"{list(volume.spacing[1:])}; the SEG must be on the grid of the series it annotates."
        )
    orientation = group_item(ds, 0, "PlaneOrientationSequence")
    iop = getattr(orientation, "ImageOrientationPatient", None)
    if iop is not None:
        cosines = floats(iop, 6, "ImageOrientationPatient", name)
        expected = volume.direction[:2].reshape(6)
        if np.max(np.abs(cosines - expected)) > IOP_TOLERANCE:
            raise DataError(
                f"mask {name!r}: ImageOrientationPatient {cosines.tolist()} differs from the "
                f"series' {expected.tolist()}; the SEG must be on the grid of the series."
            )
