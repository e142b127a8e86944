"""Hostile DICOM files, each written with pydicom and excluded for its own reason.

Issue 15's corpus: files that the header scan must exclude (cut, not DICOM,
missing tags, pixel data shorter than declared, Rows or BitsAllocated 0, a
compressed transfer syntax over native pixels or native pixel data of
undefined length, 65535 x 65535 pixels in a few bytes of RLE) and files whose
header is sound but whose pixel data cannot be decoded (a corrupt JPEG or
RLE stream, a frame missing, BitsStored above BitsAllocated, a two-valued
RescaleSlope).

:func:`write_crafted` writes every file into a folder and returns what each
must be excluded with: ``CRAFTED[name].reason`` is the start of the
exclusion reason; ``stage`` says whether the header scan (``"scan"``) or the
decode check before the model (``"decode"``) catches it. Nothing here
imports medval, so the corpus stays an independent description of the input;
the files are the same on every run (fixed UIDs and noise seeds).
"""

from __future__ import annotations

import dataclasses
import io
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    MPEG2MPML,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
    generate_uid,
)

__all__ = ["CRAFTED", "Crafted", "dataset", "write_crafted"]

_SIZE = 16
_UNDEFINED = 0xFFFFFFFF


def dataset() -> Dataset:
    """A small valid CT image (16 x 16 int16) as a pydicom Dataset, ready to be broken."""
    arr = np.arange(_SIZE * _SIZE, dtype=np.int16).reshape(_SIZE, _SIZE)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["crafted", "instance"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["crafted", "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["crafted", "series"])
    ds.Modality = "CT"
    ds.PatientID = "CRAFTED-0001"
    ds.Manufacturer = "CRAFTED"
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
    ds.PixelData = arr.astype("<i2").tobytes()
    return ds


def _save(ds: Dataset, path: Path) -> bytes:
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


def _write(path: Path, edit: Callable[[Dataset], None]) -> None:
    ds = dataset()
    edit(ds)
    _save(ds, path)


def _delete(*keywords: str) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        def edit(ds: Dataset) -> None:
            for keyword in keywords:
                delattr(ds, keyword)

        _write(path, edit)

    return build


def _set(**values: object) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        def edit(ds: Dataset) -> None:
            for keyword, value in values.items():
                setattr(ds, keyword, value)

        _write(path, edit)

    return build


def _text(path: Path) -> None:
    path.write_text("patient list\nDOE^JOHN,MRN123\n", encoding="utf-8")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _cut_in_meta(path: Path) -> None:
    path.write_bytes(_save(dataset(), path)[:150])


def _cut_in_pixels(path: Path) -> None:
    path.write_bytes(_save(dataset(), path)[:-100])


def _garbage_after_preamble(path: Path) -> None:
    rng = np.random.default_rng(15)
    path.write_bytes(b"\0" * 128 + b"DICM" + rng.integers(0, 256, 400, dtype=np.uint8).tobytes())


def _short_pixels(path: Path) -> None:
    """A pixel data element shorter than Rows x Columns x 2, its own length consistent."""
    _write(path, lambda ds: setattr(ds, "PixelData", b"\0\1" * 8))


def _pixel_length_past_end(path: Path) -> None:
    """The pixel data element declares more bytes than the file holds."""
    data = bytearray(_save(dataset(), path))
    at = data.rfind(b"\xe0\x7f\x10\x00OW\0\0")
    struct.pack_into("<I", data, at + 8, _SIZE * _SIZE * 2 + 4096)
    path.write_bytes(bytes(data))


def _rle(ds: Dataset, fragment: bytes) -> None:
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([fragment])
    ds["PixelData"].VR = "OB"


def _rle_huge(path: Path) -> None:
    """RLE Lossless claiming 65535 x 65535 16-bit pixels (8 GiB decoded) in a few bytes."""

    def edit(ds: Dataset) -> None:
        ds.Rows = ds.Columns = 65535
        # Two segments of one run each: "repeat 0 129 times"; the decoder would fill 8 GiB.
        header = struct.pack("<16I", 2, 64, 66, *([0] * 13))
        _rle(ds, header + b"\x81\0\x81\0")

    _write(path, edit)


def _rle_corrupt(path: Path) -> None:
    """RLE Lossless whose header points its segments past the end of the fragment."""

    def edit(ds: Dataset) -> None:
        header = struct.pack("<16I", 2, 64, 100000, *([0] * 13))
        _rle(ds, header + b"\x00\x01" * 8)

    _write(path, edit)


def _with_transfer_syntax(data: bytes, transfer_syntax: str) -> bytes:
    """A Part 10 file's bytes with its file meta rewritten to name another transfer syntax."""
    (length,) = struct.unpack_from("<I", data, 140)
    body = data[144 + length :]
    meta = dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
    meta.TransferSyntaxUID = transfer_syntax
    buffer = DicomBytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return data[:132] + buffer.getvalue() + body


def _rle_one_segment(path: Path) -> None:
    """RLE Lossless with one segment where 16-bit samples need two."""

    def edit(ds: Dataset) -> None:
        _rle(ds, struct.pack("<16I", 1, 64, *([0] * 14)) + b"\x81\0" * 2)

    _write(path, edit)


def _rle_frames_missing(path: Path) -> None:
    """RLE Lossless declaring 3 frames and holding one: the middle frame is not there."""

    def edit(ds: Dataset) -> None:
        ds.NumberOfFrames = 3
        _rle(ds, struct.pack("<16I", 2, 64, 66, *([0] * 13)) + b"\x81\0\x81\0")

    _write(path, edit)


def _jpeg_over_native(path: Path) -> None:
    """JPEG Baseline declared, native (unencapsulated) pixel data stored."""

    def edit(ds: Dataset) -> None:
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.PixelData = bytes(range(256))

    _write(path, edit)
    path.write_bytes(_with_transfer_syntax(path.read_bytes(), JPEGBaseline8Bit))


def _jpeg_corrupt(path: Path) -> None:
    """JPEG Baseline with a stream that starts like a JPEG and then is noise."""

    def edit(ds: Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        noise = np.random.default_rng(15).integers(0, 256, 300, dtype=np.uint8).tobytes()
        ds.PixelData = encapsulate([b"\xff\xd8\xff\xdb" + noise + b"\xff\xd9"])
        ds["PixelData"].VR = "OB"

    _write(path, edit)


def _undefined_length_native(path: Path) -> None:
    """Explicit VR Little Endian with pixel data of undefined length (items, as if encapsulated)."""

    def edit(ds: Dataset) -> None:
        ds.PixelData = encapsulate([dataset().PixelData])
        ds["PixelData"].VR = "OB"

    _write(path, edit)
    data = bytearray(path.read_bytes())
    at = data.rfind(b"\xe0\x7f\x10\x00OB\0\0")
    struct.pack_into("<I", data, at + 8, _UNDEFINED)
    path.write_bytes(bytes(data) + b"\xfe\xff\xdd\xe0\0\0\0\0")  # the sequence delimiter


def _mpeg2(path: Path) -> None:
    """A video transfer syntax for which pydicom has no decoder at all."""

    def edit(ds: Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = MPEG2MPML
        ds.PixelData = encapsulate([b"\0\0\1\xb3" + b"\0" * 60])
        ds["PixelData"].VR = "OB"

    _write(path, edit)


@dataclasses.dataclass(frozen=True)
class Crafted:
    """One hostile file: how it is written and the start of its exclusion reason."""

    build: Callable[[Path], None]
    reason: str
    stage: str  # "scan" or "decode"


#: File name -> the crafted file. Decode-stage reasons start "cannot be decoded".
CRAFTED: dict[str, Crafted] = {
    # The header scan.
    "not_dicom.dcm": Crafted(_text, "not a DICOM file", "scan"),
    "empty.dcm": Crafted(_empty, "not a DICOM file", "scan"),
    "cut_in_meta.dcm": Crafted(_cut_in_meta, "truncated or corrupt", "scan"),
    "garbage_after_preamble.dcm": Crafted(
        _garbage_after_preamble, "missing required tag SOPClassUID", "scan"
    ),
    "cut_in_pixels.dcm": Crafted(_cut_in_pixels, "pixel data truncated", "scan"),
    "short_pixels.dcm": Crafted(_short_pixels, "pixel data truncated", "scan"),
    "pixel_length_past_end.dcm": Crafted(_pixel_length_past_end, "pixel data truncated", "scan"),
    "no_patient_id.dcm": Crafted(_delete("PatientID"), "missing required tag PatientID", "scan"),
    "no_sop_class.dcm": Crafted(
        _delete("SOPClassUID", "Modality"), "missing required tag SOPClassUID", "scan"
    ),
    "no_rows.dcm": Crafted(_delete("Rows"), "missing required tag Rows", "scan"),
    "no_pixel_data.dcm": Crafted(_delete("PixelData"), "pixel data missing", "scan"),
    "empty_pixel_data.dcm": Crafted(_set(PixelData=b""), "pixel data missing", "scan"),
    "three_samples_one_given.dcm": Crafted(
        _set(SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=0),
        "pixel data truncated",
        "scan",
    ),
    "mpeg2.dcm": Crafted(_mpeg2, "unsupported transfer syntax", "scan"),
    "rows_zero.dcm": Crafted(_set(Rows=0), "invalid image geometry: Rows is 0", "scan"),
    "columns_zero.dcm": Crafted(_set(Columns=0), "invalid image geometry: Columns is 0", "scan"),
    "bits_allocated_zero.dcm": Crafted(
        _set(BitsAllocated=0), "invalid image geometry: BitsAllocated is 0", "scan"
    ),
    "rle_65535.dcm": Crafted(_rle_huge, "pixel data too large", "scan"),
    "jpeg_over_native.dcm": Crafted(_jpeg_over_native, "pixel data not encapsulated", "scan"),
    "undefined_length_native.dcm": Crafted(
        _undefined_length_native, "pixel data of undefined length", "scan"
    ),
    # The decode check before the model.
    "jpeg_corrupt.dcm": Crafted(_jpeg_corrupt, "cannot be decoded", "decode"),
    "rle_corrupt.dcm": Crafted(_rle_corrupt, "cannot be decoded", "decode"),
    "rle_one_segment.dcm": Crafted(_rle_one_segment, "cannot be decoded", "decode"),
    "rle_frames_missing.dcm": Crafted(_rle_frames_missing, "cannot be decoded", "decode"),
    "bits_allocated_8.dcm": Crafted(_set(BitsAllocated=8), "cannot be decoded", "decode"),
    "rescale_slope_two_values.dcm": Crafted(
        _set(RescaleSlope=["1", "2"]), "cannot be decoded: TypeError", "decode"
    ),
}


def write_crafted(folder: Path) -> dict[str, Crafted]:
    """Write every file of :data:`CRAFTED` into ``folder`` (created); return the table."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, crafted in CRAFTED.items():
        crafted.build(folder / name)
    return CRAFTED
