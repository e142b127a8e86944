"""Scanning a DICOM folder: headers only, one row or one exclusion per file.

This module holds the entry point :func:`read_dicom_cohort`, its result
types and the manifest and de-identification summaries. Each file is read
once (:mod:`medval.io._walk`): its bytes are hashed for the data manifest
and its header is parsed from memory with the pixel data deferred
(:mod:`medval.io._scan`), so a file whose pixel data is truncated is caught
here, at scan time, without decoding it (:mod:`medval.io._pixels`), and
so is a file whose pixel data would take more than ``max_pixel_bytes`` to
decode: no decoder ever allocates what a hostile header claims.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from medval._errors import DataError, InputError
from medval._types import DICOM_COLUMNS
from medval.io._phi import resolve_salt
from medval.io._row import ACQUISITION_NUMBERS, DEID_KEYWORDS, JOIN_IDENTIFIERS
from medval.io._scan import DECODED_SIZE
from medval.io._walk import list_files, records

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_PIXEL_BYTES",
    "SCAN_COLUMNS",
    "CohortScan",
    "Exclusion",
    "check_max_pixel_bytes",
    "read_dicom_cohort",
]

#: Columns of :attr:`CohortScan.frame`, in order; all on the Cohort whitelist.
SCAN_COLUMNS: tuple[str, ...] = DICOM_COLUMNS
#: Default ``max_pixel_bytes``: 2 GiB, a CT volume of 4000 slices of 512 x 512 x 16 bits.
MAX_PIXEL_BYTES = 2 * 1024**3
_FLOAT_COLUMNS = (
    "kvp", "slice_thickness", "pixel_spacing", "magnetic_field_strength", *ACQUISITION_NUMBERS,
)  # fmt: skip


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
        Entries found (rows + exclusions): regular files scanned, and the
        links, pipes, devices and folders named like files that were not.
    manifest_sha256 : str
        SHA-256 over the sorted lines ``"relpath\\tsha256(file bytes)\\n"`` of
        every file scanned, excluded ones included (entries that are not
        regular files have no bytes and are not in it).
    deid_summary : dict of str to dict of str to int
        Counts of PatientIdentityRemoved and BurnedInAnnotation values and
        of DeidentificationMethod ``"present"``/``"absent"`` over the rows.
    file_sha256 : dict of str to str
        Relative path -> SHA-256 of its bytes, for every file scanned.
    deid_by_file : dict of str to tuple of str
        Relative path -> the three de-identification values counted above.
    join_keys : dict of str to dict of str to str or None
        Relative path -> salted keys of its SOP instance, series, study,
        accession and patient identifiers (:data:`medval.io._row.JOIN_IDENTIFIERS`),
        for joining labels keyed by them. Never written anywhere.
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
    join_keys: dict[str, dict[str, str | None]] = dataclasses.field(
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
    summary: dict[str, dict[str, int]] = {k: {} for k in DEID_KEYWORDS}
    for triple in values:
        for key, value in zip(DEID_KEYWORDS, triple, strict=True):
            summary[key][value] = summary[key].get(value, 0) + 1
    return summary


def read_dicom_cohort(
    root: str | pathlib.Path,
    *,
    salt: str | bytes | None = None,
    progress: bool = False,
    workers: int | None = None,
    max_pixel_bytes: int = MAX_PIXEL_BYTES,
    pool: Any = None,
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
    max_pixel_bytes : int, default :data:`MAX_PIXEL_BYTES` (2 GiB)
        A file whose pixel data would take more bytes than this to decode
        (:func:`medval.io._pixels.decoded_size`: all frames, plus the
        float64 copy of the frame read) is excluded, naming its size.
    pool : executor, optional
        Runs the chunks instead of local processes: anything with
        ``concurrent.futures``' ``map(fn, *iterables)`` yielding results in
        order (e.g. :class:`medval.engine.RayPool`, a Ray cluster's tasks).
        Its ``workers`` attribute, if any, sizes the chunks. Same result.

    Returns
    -------
    CohortScan
        Rows for usable image files; an :class:`Exclusion` for each other
        file, and for each entry that is not a regular file (a symbolic link
        loop, a broken link, a link to a folder, a pipe, socket or device, a
        folder named ``x.dcm``; see :func:`medval.io._walk.list_files`).
        One bad file never aborts the scan.

    Raises
    ------
    DataError
        If ``root`` is not a folder or holds no files.
    InputError
        If ``workers`` is not None or a positive int, or ``max_pixel_bytes``
        is not a positive int.
    """
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InputError(f"workers must be None or a positive int (e.g. 2); got {workers!r}.")
    check_max_pixel_bytes(max_pixel_bytes)
    root_path = pathlib.Path(root).expanduser()
    if not root_path.is_dir():
        what = "is a file, not a folder" if root_path.exists() else "does not exist"
        raise DataError(
            f"DICOM folder {str(root_path)!r} {what}; pass the folder that holds the .dcm files."
        )
    files, skipped = list_files(root_path)
    if not files:
        why = (
            ""
            if not skipped
            else f" ({len(skipped)} other entries, e.g. {skipped[0][0]!r}: {skipped[0][1]})"
        )
        raise DataError(f"DICOM folder {str(root_path)!r} holds no files{why}; check the path.")
    salt_bytes = resolve_salt(salt)
    rows: list[dict[str, Any]] = []
    index: list[str] = []
    paths: dict[str, pathlib.Path] = {}
    # Links that lead nowhere, pipes, devices, a folder named x.dcm: excluded, not lost.
    exclusions = [Exclusion(rel, reason) for rel, reason in skipped]
    hashes: dict[str, str] = {}
    deid: dict[str, tuple[str, str, str]] = {}
    joins: dict[str, dict[str, str | None]] = {}
    with warnings.catch_warnings():
        # pydicom warns per odd header value; thousands of files would flood the log.
        warnings.simplefilter("ignore")
        for rel, digest, row, reason, values, resolved in records(
            files, salt_bytes, workers, progress, pool=pool
        ):
            hashes[rel] = digest
            size = None if row is None else row.pop(DECODED_SIZE, None)
            if row is not None and size is not None and size[0] > max_pixel_bytes:
                row, reason = None, _too_large(size, max_pixel_bytes)
            if row is None or values is None or resolved is None:
                exclusions.append(Exclusion(rel, reason or "unreadable"))
                continue
            joins[rel] = {c: row.pop(c, None) for c in JOIN_IDENTIFIERS}
            rows.append(row)
            index.append(rel)
            paths[rel] = resolved
            deid[rel] = values
    return CohortScan(
        frame=_frame(rows, index),
        paths=paths,
        exclusions=tuple(sorted(exclusions, key=lambda e: e.file)),
        n_files=len(files) + len(skipped),
        manifest_sha256=manifest_digest(hashes),
        deid_summary=summarise_deid(deid.values()),
        file_sha256=hashes,
        deid_by_file=deid,
        join_keys=joins,
    )


def check_max_pixel_bytes(value: object) -> int:
    """``max_pixel_bytes`` as a positive int, else InputError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(
            f"max_pixel_bytes must be a positive int (bytes; default {MAX_PIXEL_BYTES}, "
            f"2 GiB); got {value!r}."
        )
    return value


def _gib(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def _too_large(size: tuple[int, str], limit: int) -> str:
    needed, how = size
    return (
        f"pixel data too large: decoding takes {_gib(needed)} ({how}), over the "
        f"{_gib(limit)} limit; raise [data] max_pixel_bytes (now {limit}) if this machine "
        "has the memory"
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
