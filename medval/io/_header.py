"""A fast reader for the few header fields the cohort scan needs.

pydicom builds a full ``Dataset`` and converts every element it touches;
for a scan of thousands of files that is most of the time. This reader
walks the bytes of the common case (Part 10 file, explicit VR little
endian, natively or in an encapsulated syntax), keeps only the wanted
elements, and stops at the pixel data. Anything else (implicit VR, big
endian, deflate, another character set, a malformed or cut element)
returns None, and the caller parses the file with pydicom as before, so
the fast path never changes a result (tested file by file against pydicom).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable
from typing import Any

__all__ = ["PixelInfo", "read_header"]

_LONG_VRS = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
_TEXT_SINGLE = frozenset((b"LT", b"ST", b"UT"))
_BINARY = frozenset(
    (b"AT", b"FD", b"FL", b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SL", b"SQ", b"SS", b"SV")
).union((b"UN", b"UV"))
_FLOATS = frozenset((b"FD", b"FL"))
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_NOT_EXPLICIT_LE = frozenset(("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95"))
_CODECS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
_MAX_DEPTH = 16

#: (pixel keyword, value length as declared, offset of the value) or None.
PixelInfo = tuple[str, int, int]


class _FallbackError(Exception):
    """The bytes leave the fast path: parse the file with pydicom instead."""


@functools.cache
def _wanted(keywords: tuple[str, ...]) -> dict[int, str]:
    from pydicom.datadict import tag_for_keyword

    out: dict[int, str] = {}
    for kw in keywords:
        tag = tag_for_keyword(kw)
        if tag is not None and int(tag) not in _PIXEL_TAGS:
            out[int(tag)] = kw
    return out


def _element(data: bytes, pos: int) -> tuple[int, bytes, int, int]:
    """(tag, VR, value length, value offset) of the explicit-VR element at ``pos``."""
    if pos + 8 > len(data):
        raise _FallbackError
    group, elem = struct.unpack_from("<HH", data, pos)
    tag = (group << 16) | elem
    if group == 0xFFFE:  # item and delimiters carry no VR
        return tag, b"", struct.unpack_from("<I", data, pos + 4)[0], pos + 8
    vr = data[pos + 4 : pos + 6]
    if not (vr.isalpha() and vr.isupper()):
        raise _FallbackError
    if vr in _LONG_VRS:
        if pos + 12 > len(data):
            raise _FallbackError
        return tag, vr, struct.unpack_from("<I", data, pos + 8)[0], pos + 12
    return tag, vr, struct.unpack_from("<H", data, pos + 6)[0], pos + 8


def _skip_sequence(data: bytes, pos: int, depth: int) -> int:
    """Position after an undefined-length sequence's delimiter."""
    if depth > _MAX_DEPTH:
        raise _FallbackError
    while True:
        tag, _, length, vpos = _element(data, pos)
        if tag == _SEQ_END:
            return vpos
        if tag != _ITEM:
            raise _FallbackError
        pos = _walk(data, vpos, {}, {}, depth + 1) if length == _UNDEFINED else vpos + length


def _walk(data: bytes, pos: int, wanted: dict[int, str], out: dict[str, Any], depth: int) -> int:
    """Read elements from ``pos``; at depth 0 stop at pixel data, else at an item's end."""
    n = len(data)
    while pos < n:
        tag, vr, length, vpos = _element(data, pos)
        if depth == 0 and tag in _PIXEL_TAGS:
            out["_pixel"] = (_PIXEL_TAGS[tag], length, vpos)
            return n
        if depth and tag == _ITEM_END:
            return vpos
        if length == _UNDEFINED:
            if vr != b"SQ":
                raise _FallbackError
            pos = _skip_sequence(data, vpos, depth)
            continue
        end = vpos + length
        if end > n:
            raise _FallbackError
        if depth == 0 and tag in wanted:
            out[wanted[tag]] = (vr, data[vpos:end])
        pos = end
    if depth:
        raise _FallbackError  # an item without its end
    return n


def _value(vr: bytes, raw: bytes, codec: str) -> Any:
    if vr == b"US":
        return struct.unpack_from("<H", raw)[0] if len(raw) >= 2 else None
    if vr == b"UL":
        return struct.unpack_from("<I", raw)[0] if len(raw) >= 4 else None
    if vr in _FLOATS:  # CTDIvol (FD); pydicom gives a float, or a list of them
        size = 8 if vr == b"FD" else 4
        if len(raw) % size:
            raise _FallbackError  # pydicom decides what a cut value means
        numbers = list(struct.unpack(f"<{len(raw) // size}{'d' if size == 8 else 'f'}", raw))
        return None if not numbers else numbers[0] if len(numbers) == 1 else numbers
    if vr in _BINARY:
        raise _FallbackError  # not a field the scan reads as text
    text = raw.decode(codec).rstrip("\x00 ")
    if vr in _TEXT_SINGLE or "\\" not in text:
        return text
    return text.split("\\")


def read_header(
    data: bytes, keywords: Iterable[str]
) -> tuple[dict[str, Any], PixelInfo | None] | None:
    """The wanted header values of a Part 10 file, or None to use pydicom.

    Parameters
    ----------
    data : bytes
        The whole file.
    keywords : iterable of str
        DICOM keywords to read (pixel data keywords are located, not read).

    Returns
    -------
    (values, pixel) or None
        ``values`` maps keyword to text (a list of str when multi-valued),
        int (US/UL) or float (FD/FL, a list when multi-valued), plus
        ``"TransferSyntaxUID"``; ``pixel`` locates the pixel data element.
        None when the file is outside the fast path.
    """
    if len(data) < 144 or data[128:132] != b"DICM":
        return None
    try:
        meta: dict[str, Any] = {}
        tag, vr, length, vpos = _element(data, 132)
        if tag != 0x00020000 or vr != b"UL" or length != 4:
            return None
        meta_end = vpos + 4 + struct.unpack_from("<I", data, vpos)[0]
        if meta_end > len(data):
            return None
        pos = vpos + 4
        while pos < meta_end:
            tag, vr, length, vpos = _element(data, pos)
            if length == _UNDEFINED or vpos + length > meta_end:
                return None
            if tag == 0x00020010:
                meta["ts"] = data[vpos : vpos + length].decode("latin-1").rstrip("\x00 ")
            pos = vpos + length
        ts = meta.get("ts", "")
        if ts in _NOT_EXPLICIT_LE or not (
            ts == _EXPLICIT_LE or ts.startswith(("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5"))
        ):
            return None
        found: dict[str, Any] = {}
        _walk(data, meta_end, _wanted(tuple(keywords)), found, 0)
        pixel = found.pop("_pixel", None)
        charset = found.get("SpecificCharacterSet")
        name = "" if charset is None else charset[1].decode("latin-1").strip("\x00 ")
        codec = _CODECS.get(name)
        if codec is None:
            return None
        values = {kw: _value(vr, raw, codec) for kw, (vr, raw) in found.items()}
    except (_FallbackError, UnicodeDecodeError, struct.error):
        return None
    values["TransferSyntaxUID"] = ts
    return values, pixel
