"""One file's bytes to a cohort row or an exclusion reason (the header scan).

The header is parsed from memory with only :data:`READ_KEYWORDS` kept: by
the fast reader (:mod:`medval.io._header`) when it can, else by pydicom
with the pixel data deferred. Both paths give the same answer.
"""

from __future__ import annotations

import functools
import io
import re
from typing import Any

from medval.io._header import PixelInfo, read_header
from medval.io._pixels import PIXEL_KEYWORDS, decoded_size, pixel_check, pixel_problem
from medval.io._row import (
    ACQUISITION_KEYWORDS,
    DATE_KEYWORDS,
    DEID_KEYWORDS,
    cohort_row,
    deid_values,
    tag_text,
)

__all__ = ["DECODED_SIZE", "READ_KEYWORDS", "describe_error", "scan_one", "short_message"]

# Everything the scan looks at; pydicom skips the values of all other tags.
READ_KEYWORDS = (
    "SpecificCharacterSet", "SOPClassUID", "Modality", "PatientID", "StudyInstanceUID",
    "InstitutionName", "StationName", "Manufacturer", "ManufacturerModelName",
    "SoftwareVersions", "BodyPartExamined", "KVP", "SliceThickness", "PixelSpacing",
    "ImagerPixelSpacing", "MagneticFieldStrength", "ConvolutionKernel", "Rows", "Columns",
    "PhotometricInterpretation", "PatientSex", "PatientAge", "PatientBirthDate",
    "SamplesPerPixel", "BitsAllocated", "NumberOfFrames",
    "SOPInstanceUID", "SeriesInstanceUID", "AccessionNumber",
    *ACQUISITION_KEYWORDS.values(), *DATE_KEYWORDS, *DEID_KEYWORDS, *PIXEL_KEYWORDS,
)  # fmt: skip
#: Row key holding :func:`medval.io._pixels.decoded_size` (popped by the scan's caller).
DECODED_SIZE = "_decoded_size"
_DEFER_SIZE = 1024
_MSG_LIMIT = 120
# An absolute path inside a message: POSIX or a Windows drive.
_ABSOLUTE = re.compile(r"(?<![\w.])(?:/[^\s/'\"()]+)+/?|\b[A-Za-z]:\\[^\s'\"()]*")


def short_message(exc: BaseException, limit: int | None = _MSG_LIMIT) -> str:
    """An exception as one line of at most ``limit`` characters, without any absolute path.

    An OSError is its class and errno (``"PermissionError (errno 13)"``): its
    text names the file, and folder names can carry PHI. Other messages keep
    their text with every absolute path replaced by ``<path>``.
    """
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{type(exc).__name__} (errno {exc.errno})"
    msg = _ABSOLUTE.sub("<path>", " ".join(str(exc).split())) or type(exc).__name__
    return msg if limit is None or len(msg) <= limit else msg[: limit - 3] + "..."


def describe_error(exc: BaseException) -> str:
    """``"<ErrorClass>: <short message>"``, or ``"PermissionError (errno 13)"`` for an OSError."""
    text = short_message(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return text
    return f"{type(exc).__name__}: {text}"


def _truncated_header(ds: Any, size: int) -> str | None:
    """pydicom stops silently at end of file; spot a file cut in its header."""
    meta = getattr(ds, "file_meta", None)
    group_length = None if meta is None else meta.get("FileMetaInformationGroupLength")
    if group_length is None:
        return None
    try:
        length = int(group_length)
    except (TypeError, ValueError):  # a file cut inside the group length itself
        return "file ends inside the file meta information"
    if 132 + 12 + length > size:
        return "file ends inside the file meta information"
    return None


def scan_one(
    data: bytes, salt: bytes, cache: dict[str, str | None]
) -> tuple[dict[str, Any] | None, str | None, tuple[str, str, str] | None]:
    """Parse one file's bytes: (row, None, deid) or (None, reason, None).

    The row holds, under :data:`DECODED_SIZE`, what decoding the file would
    take in memory (:func:`medval.io._pixels.decoded_size`). ``cache`` maps a
    compressed transfer syntax to its decoder problem (or None); pass the same
    dict for every file of one scan.
    """
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    fast = read_header(data, READ_KEYWORDS)
    if fast is not None:
        return _scan_values(fast[0], fast[1], len(data), salt, cache)
    try:
        ds = dcmread(io.BytesIO(data), defer_size=_DEFER_SIZE, specific_tags=list(READ_KEYWORDS))
    except InvalidDicomError:
        return None, "not a DICOM file", None
    except Exception as exc:
        return None, f"truncated or corrupt: {short_message(exc)}", None
    cut = _truncated_header(ds, len(data))
    if cut:
        return None, f"truncated or corrupt: {cut}", None
    if tag_text(ds, "SOPClassUID") is None and tag_text(ds, "Modality") is None:
        return None, "missing required tag SOPClassUID", None
    if tag_text(ds, "PatientID") is None:
        return None, "missing required tag PatientID", None
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        problem = pixel_problem(ds, len(data), tsyntax, cache)
        row = None if problem else {**cohort_row(ds, salt), DECODED_SIZE: decoded_size(ds)}
    except Exception as exc:
        return None, f"truncated or corrupt: {short_message(exc)}", None
    if problem:
        return None, problem, None
    return row, None, deid_values(ds)


@functools.cache
def _uid(value: str) -> Any:
    from pydicom.uid import UID

    return UID(value)


def _scan_values(
    values: dict[str, Any],
    pixel: PixelInfo | None,
    size: int,
    salt: bytes,
    cache: dict[str, str | None],
) -> tuple[dict[str, Any] | None, str | None, tuple[str, str, str] | None]:
    """:func:`scan_one` for header values read by the fast reader."""
    if tag_text(values, "SOPClassUID") is None and tag_text(values, "Modality") is None:
        return None, "missing required tag SOPClassUID", None
    if tag_text(values, "PatientID") is None:
        return None, "missing required tag PatientID", None
    if pixel is None:
        return None, "pixel data missing", None
    tsyntax = _uid(values["TransferSyntaxUID"])
    try:
        problem = pixel_check(values, pixel[1], pixel[2], size, tsyntax, cache)
        row = None if problem else {**cohort_row(values, salt), DECODED_SIZE: decoded_size(values)}
    except Exception as exc:
        return None, f"truncated or corrupt: {short_message(exc)}", None
    if problem:
        return None, problem, None
    return row, None, deid_values(values)
