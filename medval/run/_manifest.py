"""``manifest.json``: every file of a run with its SHA-256, written last.

A folder whose files all match their digests, with no file the manifest does
not list, is the complete run that wrote it (:func:`verify_manifest`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from medval._errors import DataError
from medval._provenance import file_sha256
from medval._result import canonical_json

__all__ = ["MANIFEST", "files_below", "read_manifest", "verify_manifest", "write_manifest"]

#: The file listing every file of a run with its SHA-256 (written last).
MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "medval.manifest/1"


def files_below(folder: Path) -> list[str]:
    """Every regular file below ``folder`` (POSIX relative paths), sorted."""
    out = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in names:
            rel = (Path(root) / name).relative_to(folder).as_posix()
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


def read_manifest(folder: str | Path) -> dict[str, str]:
    """``relative path -> SHA-256`` of a run folder's ``manifest.json``.

    Raises
    ------
    DataError
        No manifest, or one that is not a medval manifest.
    """
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path.parent.name} has no {MANIFEST}: not a complete run.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a medval manifest ({exc}).") from exc
    if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
        raise DataError(f"{path} is not a medval manifest (schema {MANIFEST_SCHEMA!r}).")
    files = data.get("files")
    if not isinstance(files, dict):
        raise DataError(f"{path}: 'files' must map relative paths to SHA-256 digests.")
    return {str(k): str(v) for k, v in files.items()}


def verify_manifest(folder: str | Path) -> list[str]:
    """What is wrong with a run folder against its manifest (empty: intact).

    Each listed file must exist with its recorded SHA-256, and no other file
    may be there.

    Raises
    ------
    DataError
        No readable manifest.
    """
    root = Path(folder)
    listed = read_manifest(root)
    problems = []
    for rel, digest in sorted(listed.items()):
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif file_sha256(path) != digest:
            problems.append(f"{rel}: changed (SHA-256 differs from the manifest)")
    problems += [f"{rel}: not in the manifest" for rel in files_below(root) if rel not in listed]
    return problems


def write_manifest(folder: Path, *, before_hashing: Callable[[Path], None] | None = None) -> Path:
    """Write ``folder/manifest.json`` listing every other file below it; flushed to disk.

    ``before_hashing`` is called on each file first (the output folder flushes it).
    """
    files = {}
    for rel in files_below(folder):
        path = folder / rel
        if before_hashing is not None:
            before_hashing(path)
        files[rel] = file_sha256(path)
    manifest = folder / MANIFEST
    text = canonical_json({"schema": MANIFEST_SCHEMA, "files": files})
    with manifest.open("w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return manifest
