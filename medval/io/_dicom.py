"""Scanning a DICOM folder: headers only, one row or one exclusion per file.

Each file is read once: its bytes are hashed for the data manifest and the
header is parsed from memory with the pixel data deferred, so a file whose
pixel data is truncated is caught here, at scan time, without decoding it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import importlib
import io
import itertools
import math
import pathlib
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from medval._errors import DataError, InputError
from medval._types import DICOM_COLUMNS
from medval.io._decoders import decoder_problem
from medval.io._header import PixelInfo, read_header
from medval.io._phi import age_band, pseudonym, resolve_salt, sex

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SCAN_COLUMNS", "CohortScan", "Exclusion", "read_dicom_cohort"]

#: Columns of :attr:`CohortScan.frame`, in order; all on the Cohort whitelist.
SCAN_COLUMNS: tuple[str, ...] = DICOM_COLUMNS
_FLOAT_COLUMNS = ("kvp", "slice_thickness", "pixel_spacing", "magnetic_field_strength")
_DEID_KEYWORDS = ("PatientIdentityRemoved", "BurnedInAnnotation", "DeidentificationMethod")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_DATE_KEYWORDS = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
# Everything the scan looks at; pydicom skips the values of all other tags.
_READ_KEYWORDS = (
    "SpecificCharacterSet", "SOPClassUID", "Modality", "PatientID", "StudyInstanceUID",
    "InstitutionName", "StationName", "Manufacturer", "ManufacturerModelName",
    "SoftwareVersions", "BodyPartExamined", "KVP", "SliceThickness", "PixelSpacing",
    "ImagerPixelSpacing", "MagneticFieldStrength", "ConvolutionKernel", "Rows", "Columns",
    "PhotometricInterpretation", "PatientSex", "PatientAge", "PatientBirthDate",
    "SamplesPerPixel", "BitsAllocated", "NumberOfFrames",
    *_DATE_KEYWORDS, *_DEID_KEYWORDS, *_PIXEL_KEYWORDS,
)  # fmt: skip
_DEFER_SIZE = 1024
_UNDEFINED_LENGTH = 0xFFFFFFFF
_MSG_LIMIT = 120
_CHUNK_MIN = 16  # files per worker task; below 2 chunks the scan stays serial


@dataclasses.dataclass(frozen=True)
class Exclusion:
    """A file left out of the cohort, and why.

    Attributes
    ----------
    file : str
        POSIX path relative to the DICOM root. Keep it local: folder names
        can carry PHI, so reports should show counts by ``reason``.
    reason : str
        Short, stable description (e.g. ``"not a DICOM file"``).
    case_id : str or None
        The labels-table case id, when the file has one.
    """

    file: str
    reason: str
    case_id: str | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class CohortScan:
    """The result of :func:`read_dicom_cohort`.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per readable image file, indexed by ``file`` (POSIX path
        relative to the root), columns :data:`SCAN_COLUMNS`. The index is
        internal: :func:`medval.io.build_cohort` replaces it by case ids.
    paths : dict of str to pathlib.Path
        Relative path -> absolute path, for readable files.
    exclusions : tuple of Exclusion
        Unreadable or unusable files, in path order.
    n_files : int
        Regular files scanned (rows + exclusions).
    manifest_sha256 : str
        SHA-256 over the sorted lines ``"relpath\\tsha256(file bytes)\\n"`` of
        every file scanned, excluded ones included.
    deid_summary : dict of str to dict of str to int
        Counts of PatientIdentityRemoved and BurnedInAnnotation values and
        of DeidentificationMethod ``"present"``/``"absent"`` over the rows.
    file_sha256 : dict of str to str
        Relative path -> SHA-256 of its bytes, for every file scanned.
    deid_by_file : dict of str to tuple of str
        Relative path -> the three de-identification values counted above.
    """

    frame: pd.DataFrame
    paths: dict[str, pathlib.Path]
    exclusions: tuple[Exclusion, ...]
    n_files: int
    manifest_sha256: str
    deid_summary: dict[str, dict[str, int]]
    file_sha256: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)
    deid_by_file: dict[str, tuple[str, str, str]] = dataclasses.field(
        default_factory=dict, repr=False
    )


def manifest_digest(file_sha256: dict[str, str], extra_lines: Iterable[str] = ()) -> str:
    """SHA-256 over ``"relpath\\tsha256\\n"`` lines in path order, then ``extra_lines``."""
    h = hashlib.sha256()
    for rel in sorted(file_sha256):
        h.update(f"{rel}\t{file_sha256[rel]}\n".encode())
    for line in extra_lines:
        h.update(line.encode())
    return h.hexdigest()


def summarise_deid(values: Iterable[tuple[str, str, str]]) -> dict[str, dict[str, int]]:
    """Count de-identification attribute values (see :class:`CohortScan`)."""
    summary: dict[str, dict[str, int]] = {k: {} for k in _DEID_KEYWORDS}
    for triple in values:
        for key, value in zip(_DEID_KEYWORDS, triple, strict=True):
            summary[key][value] = summary[key].get(value, 0) + 1
    return summary


@functools.cache
def _tag(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - keywords above are all in the dictionary
        raise KeyError(keyword)
    return int(tag)


def _value(ds: Any, keyword: str) -> Any:
    if isinstance(ds, dict):  # values from the fast header reader
        return ds.get(keyword)
    # Lookup by tag skips pydicom's per-call keyword resolution (hot in big scans).
    elem = ds.get(_tag(keyword))
    return None if elem is None else elem.value


def _text(ds: Any, keyword: str) -> str | None:
    """A header value as text, or None when absent, empty or unreadable."""
    try:
        value = _value(ds, keyword)
    except Exception:
        return None
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "/".join(str(v).strip() for v in value)
    else:
        text = str(value).strip()
    return text or None


def _number(ds: Any, keyword: str) -> float | None:
    try:
        value = _value(ds, keyword)
        if value is not None and not isinstance(value, (str, int, float)):
            value = value[0]  # PixelSpacing: row spacing first
        number = float(value) if value not in (None, "") else math.nan
    except Exception:
        return None
    return number if math.isfinite(number) else None


def _int(ds: Any, keyword: str, default: int | None = None) -> int | None:
    number = _number(ds, keyword)
    return default if number is None else int(number)


def _deid_values(ds: Any) -> tuple[str, str, str]:
    pir = (_text(ds, "PatientIdentityRemoved") or "absent").upper()
    bia = (_text(ds, "BurnedInAnnotation") or "absent").upper()
    method = "present" if _text(ds, "DeidentificationMethod") else "absent"
    return (
        pir if pir in {"YES", "NO"} else pir.lower() if pir == "ABSENT" else "other",
        bia if bia in {"YES", "NO"} else bia.lower() if bia == "ABSENT" else "other",
        method,
    )


def _expected_pixel_bytes(ds: Any) -> int | None:
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    bits = _int(ds, "BitsAllocated")
    if rows is None or cols is None or bits is None:
        return None
    samples = _int(ds, "SamplesPerPixel", 1) or 1
    frames = _int(ds, "NumberOfFrames", 1) or 1
    n_bits = rows * cols * samples * frames * bits
    expected = math.ceil(n_bits / 8)
    if _text(ds, "PhotometricInterpretation") == "YBR_FULL_422":
        expected = expected // 3 * 2  # chroma subsampled 2:1 horizontally
    return expected


def _pixel_problem(ds: Any, size: int, tsyntax: Any, cache: dict[str, str | None]) -> str | None:
    raw = None
    for keyword in _PIXEL_KEYWORDS:
        if keyword in ds:
            raw = ds.get_item(keyword, keep_deferred=True)
            break
    if raw is None:
        return "pixel data missing"
    length = getattr(raw, "length", None)
    return _pixel_check(ds, length, getattr(raw, "value_tell", None), size, tsyntax, cache)


def _pixel_check(
    ds: Any,
    length: int | None,
    tell: int | None,
    size: int,
    tsyntax: Any,
    cache: dict[str, str | None],
) -> str | None:
    """Missing geometry, missing decoder or truncated pixel data, or None."""
    for keyword in ("Rows", "Columns"):
        if _int(ds, keyword) is None:
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


def _row(ds: Any, salt: bytes) -> dict[str, Any]:
    institution, station = _text(ds, "InstitutionName"), _text(ds, "StationName")
    site = institution or station
    birth = _text(ds, "PatientBirthDate")
    date = next((d for d in map(lambda k: _text(ds, k), _DATE_KEYWORDS) if d), None)
    study = _text(ds, "StudyInstanceUID")
    spacing = _number(ds, "PixelSpacing")
    return {
        "patient_key": pseudonym(_text(ds, "PatientID") or "", salt=salt, prefix="pt-"),
        "study_key": None if study is None else pseudonym(study, salt=salt, prefix="st-"),
        "site_key": None if site is None else pseudonym(site, salt=salt, prefix="site-"),
        # Station names repeat across sites ("CT01"), so key them within the site.
        "station_key": None
        if station is None
        else pseudonym(f"{institution or ''}\x00{station}", salt=salt, prefix="stn-"),
        "modality": _text(ds, "Modality"),
        "manufacturer": _text(ds, "Manufacturer"),
        "model_name": _text(ds, "ManufacturerModelName"),
        "software_version": _text(ds, "SoftwareVersions"),
        "body_part": _text(ds, "BodyPartExamined"),
        "kvp": _number(ds, "KVP"),
        "slice_thickness": _number(ds, "SliceThickness"),
        "pixel_spacing": spacing if spacing is not None else _number(ds, "ImagerPixelSpacing"),
        "magnetic_field_strength": _number(ds, "MagneticFieldStrength"),
        "convolution_kernel": _text(ds, "ConvolutionKernel"),
        "rows": _int(ds, "Rows"),
        "columns": _int(ds, "Columns"),
        "photometric_interpretation": _text(ds, "PhotometricInterpretation"),
        "sex": sex(_text(ds, "PatientSex")),
        "age_band": age_band(_text(ds, "PatientAge"), birth_date=birth, study_date=date),
    }


def _short(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg if len(msg) <= _MSG_LIMIT else msg[: _MSG_LIMIT - 3] + "..."


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


def _scan_one(
    data: bytes, salt: bytes, cache: dict[str, str | None]
) -> tuple[dict[str, Any] | None, str | None, tuple[str, str, str] | None]:
    """Parse one file's bytes: (row, None, deid) or (None, reason, None)."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    fast = read_header(data, _READ_KEYWORDS)
    if fast is not None:
        return _scan_values(fast[0], fast[1], len(data), salt, cache)
    try:
        ds = dcmread(io.BytesIO(data), defer_size=_DEFER_SIZE, specific_tags=list(_READ_KEYWORDS))
    except InvalidDicomError:
        return None, "not a DICOM file", None
    except Exception as exc:
        return None, f"truncated or corrupt: {_short(exc)}", None
    cut = _truncated_header(ds, len(data))
    if cut:
        return None, f"truncated or corrupt: {cut}", None
    if _text(ds, "SOPClassUID") is None and _text(ds, "Modality") is None:
        return None, "missing required tag SOPClassUID", None
    if _text(ds, "PatientID") is None:
        return None, "missing required tag PatientID", None
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        problem = _pixel_problem(ds, len(data), tsyntax, cache)
        row = None if problem else _row(ds, salt)
    except Exception as exc:
        return None, f"truncated or corrupt: {_short(exc)}", None
    if problem:
        return None, problem, None
    return row, None, _deid_values(ds)


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
    """:func:`_scan_one` for header values read by the fast reader."""
    if _text(values, "SOPClassUID") is None and _text(values, "Modality") is None:
        return None, "missing required tag SOPClassUID", None
    if _text(values, "PatientID") is None:
        return None, "missing required tag PatientID", None
    if pixel is None:
        return None, "pixel data missing", None
    tsyntax = _uid(values["TransferSyntaxUID"])
    try:
        problem = _pixel_check(values, pixel[1], pixel[2], size, tsyntax, cache)
        row = None if problem else _row(values, salt)
    except Exception as exc:
        return None, f"truncated or corrupt: {_short(exc)}", None
    if problem:
        return None, problem, None
    return row, None, _deid_values(values)


# (relpath, sha256, row or None, exclusion reason or None, deid values or None, resolved path)
_Record = tuple[
    str,
    str,
    "dict[str, Any] | None",
    "str | None",
    "tuple[str, str, str] | None",
    "pathlib.Path | None",
]


def _scan_file(rel: str, path: pathlib.Path, salt: bytes, cache: dict[str, str | None]) -> _Record:
    """Read one file once: hash its bytes, parse its header."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return rel, hashlib.sha256(b"").hexdigest(), None, f"unreadable: {_short(exc)}", None, None
    digest = hashlib.sha256(data).hexdigest()
    row, reason, values = _scan_one(data, salt, cache)
    if row is None or values is None:
        return rel, digest, None, reason or "unreadable", None, None
    return rel, digest, row, None, values, path.resolve()


def _scan_chunk(chunk: list[tuple[str, pathlib.Path]], salt: bytes) -> list[_Record]:
    """Worker-process entry point: scan a slice of the sorted file list in order."""
    cache: dict[str, str | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [_scan_file(rel, path, salt, cache) for rel, path in chunk]


def _records(
    files: list[tuple[str, pathlib.Path]], salt: bytes, workers: int | None, progress: bool
) -> Iterator[_Record]:
    """Scan records in sorted path order, serially or across worker processes."""
    bar = None
    if progress:
        tqdm = importlib.import_module("tqdm.auto").tqdm
        bar = tqdm(total=len(files), desc="Reading DICOM headers", unit="file")
    try:
        if workers is None or workers == 1 or len(files) < 2 * _CHUNK_MIN:
            cache: dict[str, str | None] = {}
            for rel, path in files:
                yield _scan_file(rel, path, salt, cache)
                if bar is not None:
                    bar.update(1)
            return
        # Several chunks per worker balance the load; map() keeps their order.
        size = max(_CHUNK_MIN, math.ceil(len(files) / (workers * 8)))
        chunks = [files[i : i + size] for i in range(0, len(files), size)]
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
            for chunk_records in pool.map(_scan_chunk, chunks, itertools.repeat(salt)):
                yield from chunk_records
                if bar is not None:
                    bar.update(len(chunk_records))
    finally:
        if bar is not None:
            bar.close()


def _list_files(root: pathlib.Path) -> list[tuple[str, pathlib.Path]]:
    files = [(p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file()]
    return sorted(files)


def read_dicom_cohort(
    root: str | pathlib.Path,
    *,
    salt: str | bytes | None = None,
    progress: bool = False,
    workers: int | None = None,
) -> CohortScan:
    """Scan every file under a DICOM folder and read its de-identified header.

    Parameters
    ----------
    root : str or path-like
        Folder scanned recursively, in sorted path order.
    salt : str or bytes or None, default None
        Salt for the pseudonymous keys; see :func:`medval.io.resolve_salt`.
    progress : bool, default False
        Show a tqdm progress bar on stderr.
    workers : int or None, default None
        Read headers in this many processes (``concurrent.futures``), in
        chunks of the sorted file list. ``None`` or 1 reads in this process.
        The result is identical either way.

    Returns
    -------
    CohortScan
        Rows for usable image files; an :class:`Exclusion` for each other
        file. One bad file never aborts the scan.

    Raises
    ------
    DataError
        If ``root`` is not a folder or holds no files.
    InputError
        If ``workers`` is not None or a positive int.
    """
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InputError(f"workers must be None or a positive int (e.g. 2); got {workers!r}.")
    root_path = pathlib.Path(root).expanduser()
    if not root_path.is_dir():
        what = "is a file, not a folder" if root_path.exists() else "does not exist"
        raise DataError(
            f"DICOM folder {str(root_path)!r} {what}; pass the folder that holds the .dcm files."
        )
    files = _list_files(root_path)
    if not files:
        raise DataError(f"DICOM folder {str(root_path)!r} holds no files; check the path.")
    salt_bytes = resolve_salt(salt)
    rows: list[dict[str, Any]] = []
    index: list[str] = []
    paths: dict[str, pathlib.Path] = {}
    exclusions: list[Exclusion] = []
    hashes: dict[str, str] = {}
    deid: dict[str, tuple[str, str, str]] = {}
    with warnings.catch_warnings():
        # pydicom warns per odd header value; thousands of files would flood the log.
        warnings.simplefilter("ignore")
        for rel, digest, row, reason, values, resolved in _records(
            files, salt_bytes, workers, progress
        ):
            hashes[rel] = digest
            if row is None or values is None or resolved is None:
                exclusions.append(Exclusion(rel, reason or "unreadable"))
                continue
            rows.append(row)
            index.append(rel)
            paths[rel] = resolved
            deid[rel] = values
    return CohortScan(
        frame=_frame(rows, index),
        paths=paths,
        exclusions=tuple(exclusions),
        n_files=len(files),
        manifest_sha256=manifest_digest(hashes),
        deid_summary=summarise_deid(deid.values()),
        file_sha256=hashes,
        deid_by_file=deid,
    )


def _frame(rows: list[dict[str, Any]], index: list[str]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame.from_records(rows, columns=list(SCAN_COLUMNS))
    frame.index = pd.Index(index, name="file", dtype=object)
    for col in _FLOAT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("rows", "columns"):
        frame[col] = frame[col].astype("int64")
    return frame
