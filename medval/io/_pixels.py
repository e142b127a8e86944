"""Pixel data checked at scan time, without decoding it.

A file is excluded when its geometry tags are missing, its transfer syntax
has no installed decoder, or its pixel data is shorter than the geometry
(or the element's own length) says.
"""

from __future__ import annotations

import math
from typing import Any

from medval.io._decoders import decoder_problem
from medval.io._row import tag_int, tag_text

__all__ = ["PIXEL_KEYWORDS", "pixel_check", "pixel_problem"]

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


def pixel_check(
    ds: Any,
    length: int | None,
    tell: int | None,
    size: int,
    tsyntax: Any,
    cache: dict[str, str | None],
) -> str | None:
    """Missing geometry, missing decoder or truncated pixel data, or None."""
    for keyword in ("Rows", "Columns"):
        if tag_int(ds, keyword) is None:
            return f"missing required tag {keyword}"
    if tsyntax is not None and getattr(tsyntax, "is_compressed", False):
        key = str(tsyntax)
        if key not in cache:
            cache[key] = decoder_problem(tsyntax)
        return cache[key]
    if length is None or length == _UNDEFINED_LENGTH:
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
