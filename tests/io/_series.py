"""Helpers for the volume and mask tests: a small CT series written with pydicom."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

__all__ = ["raw_pixels", "write_series"]


def raw_pixels(n: int = 8, rows: int = 16, cols: int = 16) -> np.ndarray:
    """Stored values, distinct per slice, row and column (flips and swaps show)."""
    return (np.arange(n)[:, None, None] * 300 + np.arange(rows * cols).reshape(rows, cols)).astype(
        np.int16
    )


def write_series(
    folder: pathlib.Path,
    *,
    n: int = 8,
    rows: int = 16,
    cols: int = 16,
    row_dir: Sequence[float] = (1.0, 0.0, 0.0),
    col_dir: Sequence[float] = (0.0, 1.0, 0.0),
    origin: Sequence[float] = (-10.0, -20.0, 30.0),
    step: Sequence[float] | None = None,
    positions: np.ndarray | None = None,
    pixel_spacing: tuple[float, float] = (0.7, 0.8),
    thickness: str | None = "2.5",
    slope: str = "1",
    intercept: str = "0",
    seed: int = 0,
    per_slice: dict[int, dict[str, Any]] | None = None,
) -> list[pathlib.Path]:
    """Write ``n`` slices to files named in shuffled order; return the paths in slice order.

    Slice ``k`` is at ``positions[k]`` (default ``origin + k * step``, step
    2.5 mm along row x col) with pixels ``raw_pixels()[k]``. ``per_slice[k]``
    sets (or with None removes) keywords of slice ``k``.
    """
    row = np.asarray(row_dir, dtype=float)
    col = np.asarray(col_dir, dtype=float)
    normal = np.cross(row, col)
    if positions is None:
        vec = 2.5 * normal if step is None else np.asarray(step, dtype=float)
        positions = np.asarray(origin, dtype=float) + np.arange(n)[:, None] * vec
    pixels = raw_pixels(n, rows, cols)
    names = np.random.default_rng(seed).permutation(n)
    series, frame = generate_uid(), generate_uid()
    study = generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Doe^J", "P1", "", "F"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "1200", "1", ""
        ds.ReferringPhysicianName = ""
        ds.Modality, ds.Manufacturer, ds.SeriesNumber = "CT", "ACME", 3
        ds.InstanceNumber = n - k  # reversed: the order must come from the positions
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [f"{v:.10g}" for v in (*row, *col)]
        ds.ImagePositionPatient = [f"{v:.10g}" for v in positions[k]]
        ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
        if thickness is not None:
            ds.SliceThickness = thickness
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "HU"
        ds.PixelData = pixels[k].tobytes()
        for keyword, value in (per_slice or {}).get(k, {}).items():
            if value is None:
                delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        path = folder / f"IM{names[k]:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
