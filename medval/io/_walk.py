"""Walking a DICOM folder: the sorted file list, one record per file, in order.

Each file is read once: its bytes are hashed for the data manifest and its
header is scanned (:func:`medval.io._scan.scan_one`). Records come out in
sorted path order whether the scan runs in this process or across workers.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import hashlib
import importlib
import itertools
import math
import os
import pathlib
import stat
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
    files: list[tuple[str, pathlib.Path]],
    salt: bytes,
    workers: int | None,
    progress: bool,
    *,
    pool: Any = None,
) -> Iterator[Record]:
    """Scan records in sorted path order, serially, across worker processes or on ``pool``."""
    bar = None
    if progress:
        tqdm = importlib.import_module("tqdm.auto").tqdm
        bar = tqdm(total=len(files), desc="Reading DICOM headers", unit="file")
    try:
        if pool is None and (workers is None or workers == 1 or len(files) < 2 * _CHUNK_MIN):
            cache: dict[str, str | None] = {}
            for rel, path in files:
                yield _scan_file(rel, path, salt, cache)
                if bar is not None:
                    bar.update(1)
            return
        # Several chunks per worker balance the load; map() keeps their order.
        n = int(getattr(pool, "workers", None) or workers or 1)
        size = max(_CHUNK_MIN, math.ceil(len(files) / (n * 8)))
        chunks = [files[i : i + size] for i in range(0, len(files), size)]
        with contextlib.ExitStack() as stack:
            runner = pool or stack.enter_context(
                concurrent.futures.ProcessPoolExecutor(max_workers=workers)
            )
            for chunk_records in runner.map(_scan_chunk, chunks, itertools.repeat(salt)):
                yield from chunk_records
                if bar is not None:
                    bar.update(len(chunk_records))
    finally:
        if bar is not None:
            bar.close()


def _special(mode: int) -> str:
    kind = (
        "named pipe" if stat.S_ISFIFO(mode)
        else "socket" if stat.S_ISSOCK(mode)
        else "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "special file"
    )  # fmt: skip
    return f"not a regular file ({kind})"


def _link(path: pathlib.Path) -> tuple[bool, str | None]:
    """A symbolic link: (True, None) when it names a regular file, else (False, why not)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return False, "symbolic link loop"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return False, "broken symbolic link"
        return False, f"unreadable link: {short_message(exc)}"
    if stat.S_ISREG(mode):
        return True, None
    if stat.S_ISDIR(mode):
        return False, "link to a folder, not followed"
    return False, _special(mode)


def list_files(
    root: pathlib.Path,
) -> tuple[list[tuple[str, pathlib.Path]], list[tuple[str, str]]]:
    """Every regular file under ``root``, and every other entry that is not scanned.

    Returns
    -------
    files : list of (str, pathlib.Path)
        (POSIX relative path, path) of every regular file, or link to one,
        sorted by relative path.
    skipped : list of (str, str)
        (POSIX relative path, reason) of what cannot be a DICOM file and so
        becomes an exclusion rather than vanishing: a symbolic link loop, a
        broken link, a link to a folder (not followed, as the walk stays
        inside ``root``), a named pipe, socket or device, a folder that
        cannot be listed, and a folder named like a file (``x.dcm``; its
        contents are still scanned). Sorted by relative path.
    """
    files: list[tuple[str, pathlib.Path]] = []
    skipped: list[tuple[str, str]] = []
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            rel = folder.relative_to(root).as_posix()
            skipped.append((rel, f"unreadable folder: {short_message(exc)}"))
            continue
        for entry in entries:
            path = pathlib.Path(entry.path)
            rel = path.relative_to(root).as_posix()
            try:
                if entry.is_symlink():
                    regular, why = _link(path)
                elif entry.is_dir(follow_symlinks=False):
                    if entry.name.lower().endswith(".dcm"):
                        skipped.append((rel, "folder named like a DICOM file"))
                    folders.append(path)
                    continue
                else:
                    mode = entry.stat(follow_symlinks=False).st_mode
                    regular, why = stat.S_ISREG(mode), _special(mode)
            except OSError as exc:  # removed while listed
                regular, why = False, f"unreadable: {short_message(exc)}"
            if regular:
                files.append((rel, path))
            else:
                skipped.append((rel, why or "not a regular file"))
    return sorted(files), sorted(skipped)
