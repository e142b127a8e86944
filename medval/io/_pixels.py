"""Pixel data checked at scan time, without decoding it.

A file is excluded when its geometry tags are missing or impossible (Rows,
Columns or SamplesPerPixel 0, BitsAllocated neither 1 nor a multiple of 8),
its transfer syntax has no installed decoder, its pixel data is encapsulated
when the transfer syntax is native or the reverse, or its pixel data is
shorter than the geometry (or the element's own length) says.

:func:`decoded_size` is what decoding the file would take in memory, so
that a file claiming 65535 x 65535 pixels is refused before any decoder
allocates them (:func:`medval.io.read_dicom_cohort`, ``max_pixel_bytes``).
"""

from __future__ import annotations

import math
from typing import Any

from medval.io._decoders import decoder_problem
from medval.io._row import tag_int, tag_text

__all__ = ["PIXEL_KEYWORDS", "decoded_size", "pixel_check", "pixel_problem"]

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_UNDEFINED_LENGTH = 0xFFFFFFFF


def _expected_pixel_bytes(ds: Any) -> int | None:
    rows, cols = tag_int(ds, "Rows"), tag_int(ds, "Columns")
    bits = tag_int(ds, "BitsAllocated")
    if rows is None or cols is None or bits is None:
        return None
    samples = tag_int(ds, "SamplesPerPixel", 1) or 1
    frames = tag_int(ds, "NumberOfFrames", 1) or 1
    n_bits = rows * cols * samples * frames * bits
    expected = math.ceil(n_bits / 8)
    if tag_text(ds, "PhotometricInterpretation") == "YBR_FULL_422":
        expected = expected // 3 * 2  # chroma subsampled 2:1 horizontally
    return expected


def decoded_size(ds: Any) -> tuple[int, str] | None:
    """Bytes that decoding one file takes, and how they add up; None without geometry.

    The decoded pixel data (Rows x Columns x NumberOfFrames x SamplesPerPixel,
    at least one byte per sample: pydicom unpacks 1-bit data to bytes) plus
    the float64 working copy of the one frame :func:`medval.io.read_image`
    converts (a colour frame: its three samples and the luminance).
    """
    rows, cols = tag_int(ds, "Rows"), tag_int(ds, "Columns")
    bits = tag_int(ds, "BitsAllocated")
    if rows is None or cols is None or bits is None:
        return None
    samples = tag_int(ds, "SamplesPerPixel", 1) or 1
    frames = max(tag_int(ds, "NumberOfFrames", 1) or 1, 1)  # as read_image counts them
    pixels = rows * cols * samples * frames * max(math.ceil(bits / 8), 1)
    working = rows * cols * 8 * (samples + 1 if samples > 1 else 1)
    how = (
        f"{rows} x {cols} pixels x {frames} frame(s) x {samples} sample(s) x {bits} bits, "
        "and a float64 copy of one frame"
    )
    return pixels + working, how


def _geometry_problem(ds: Any) -> str | None:
    """Missing or impossible Rows, Columns, SamplesPerPixel or BitsAllocated."""
    for keyword in ("Rows", "Columns"):
        value = tag_int(ds, keyword)
        if value is None:
            return f"missing required tag {keyword}"
        if value < 1:
            return f"invalid image geometry: {keyword} is {value}"
    samples = tag_int(ds, "SamplesPerPixel")
    if samples is not None and samples < 1:
        return f"invalid image geometry: SamplesPerPixel is {samples}"
    bits = tag_int(ds, "BitsAllocated")
    if bits is not None and not (bits == 1 or (bits % 8 == 0 and 8 <= bits <= 64)):
        return f"invalid image geometry: BitsAllocated is {bits} (1 or a multiple of 8 up to 64)"
    return None


def pixel_problem(ds: Any, size: int, tsyntax: Any, cache: dict[str, str | None]) -> str | None:
    """:func:`pixel_check` for a pydicom dataset read with the pixel data deferred."""
    raw = None
    for keyword in PIXEL_KEYWORDS:
        if keyword in ds:
            raw = ds.get_item(keyword, keep_deferred=True)
            break
    if raw is None:
        return "pixel data missing"
    length = getattr(raw, "length", None)
    return pixel_check(ds, length, getattr(raw, "value_tell", None), size, tsyntax, cache)


def _name(tsyntax: Any) -> str:
    return "transfer syntax " + str(getattr(tsyntax, "name", None) or "Implicit VR Little Endian")


def pixel_check(
    ds: Any,
    length: int | None,
    tell: int | None,
    size: int,
    tsyntax: Any,
    cache: dict[str, str | None],
) -> str | None:
    """Bad geometry, missing decoder, wrong encapsulation or truncated pixel data, or None."""
    problem = _geometry_problem(ds)
    if problem:
        return problem
    if tsyntax is not None and getattr(tsyntax, "is_compressed", False):
        key = str(tsyntax)
        if key not in cache:
            cache[key] = decoder_problem(tsyntax)
        if cache[key] is None and length is not None and length != _UNDEFINED_LENGTH:
            return f"pixel data not encapsulated, as the compressed {_name(tsyntax)} requires"
        return cache[key]
    if length == _UNDEFINED_LENGTH:
        return f"pixel data of undefined length (encapsulated) in the native {_name(tsyntax)}"
    if length is None:
        return None
    found = int(length)
    deflated = tsyntax is not None and getattr(tsyntax, "is_deflated", False)
    if tell is not None and not deflated:
        found = min(found, max(size - int(tell), 0))
    expected = _expected_pixel_bytes(ds)
    if found == 0:
        return "pixel data missing"
    if expected is not None and found < expected:
        return f"pixel data truncated: expected {expected} bytes, found {found}"
    if found < length:
        return f"pixel data truncated: expected {length} bytes, found {found}"
    return None
