"""Walking a DICOM folder: the sorted file list, one record per file, in order.

Each file is read once: its bytes are hashed for the data manifest and its
header is scanned (:func:`medval.io._scan.scan_one`). Records come out in
sorted path order whether the scan runs in this process or across workers.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib
import itertools
import math
import pathlib
import warnings
from collections.abc import Iterator
from typing import Any

from medval.io._scan import scan_one, short_message

__all__ = ["Record", "list_files", "records"]

_CHUNK_MIN = 16  # files per worker task; below 2 chunks the scan stays serial

#: (relpath, sha256, row or None, exclusion reason or None, deid values or None, resolved path)
Record = tuple[
    str,
    str,
    "dict[str, Any] | None",
    "str | None",
    "tuple[str, str, str] | None",
    "pathlib.Path | None",
]


def _scan_file(rel: str, path: pathlib.Path, salt: bytes, cache: dict[str, str | None]) -> Record:
    """Read one file once: hash its bytes, parse its header."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        why = f"unreadable: {short_message(exc)}"
        return rel, hashlib.sha256(b"").hexdigest(), None, why, None, None
    digest = hashlib.sha256(data).hexdigest()
    row, reason, values = scan_one(data, salt, cache)
    if row is None or values is None:
        return rel, digest, None, reason or "unreadable", None, None
    return rel, digest, row, None, values, path.resolve()


def _scan_chunk(chunk: list[tuple[str, pathlib.Path]], salt: bytes) -> list[Record]:
    """Worker-process entry point: scan a slice of the sorted file list in order."""
    cache: dict[str, str | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [_scan_file(rel, path, salt, cache) for rel, path in chunk]


def records(
    files: list[tuple[str, pathlib.Path]], salt: bytes, workers: int | None, progress: bool
) -> Iterator[Record]:
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


def list_files(root: pathlib.Path) -> list[tuple[str, pathlib.Path]]:
    """Every regular file under ``root`` as (POSIX relative path, path), sorted."""
    files = [(p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file()]
    return sorted(files)
