"""Leakage checks: shared patients or studies across splits, duplicated pixels."""

from __future__ import annotations

import hashlib
import os
import pathlib
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medval._errors import InputError

__all__ = ["LEAKAGE_KEYS", "leakage_report", "pixel_duplicates"]

#: Keys that :func:`leakage_report` compares; all are salted pseudonyms.
LEAKAGE_KEYS: tuple[str, ...] = ("patient_key", "study_key")
_EXAMPLES = 5


def _keys(values: ArrayLike) -> set[str]:
    arr = np.asarray(values, dtype=object).ravel()
    return {str(v) for v in arr if v is not None and not (isinstance(v, float) and v != v)}


def leakage_report(
    reference_keys: Mapping[str, ArrayLike], test_keys: Mapping[str, ArrayLike]
) -> dict[str, Any]:
    """Patients or studies present in both the training/reference and the test split.

    Parameters
    ----------
    reference_keys, test_keys : mapping of str to array
        ``{"patient_key": ..., "study_key": ...}`` for each split (any of
        :data:`LEAKAGE_KEYS`; both mappings must name the same keys).

    Returns
    -------
    dict
        Per key: ``n_reference``, ``n_test`` (distinct keys), ``n_overlap``,
        ``examples`` (up to 5 overlapping pseudonymous keys, sorted); and
        ``leak``: True when any key overlaps.

    Raises
    ------
    InputError
        If a key is not in :data:`LEAKAGE_KEYS` or not in both mappings.
    """
    names = set(reference_keys) | set(test_keys)
    if not names:
        raise InputError(f"leakage_report needs at least one of {list(LEAKAGE_KEYS)}.")
    unknown = sorted(names - set(LEAKAGE_KEYS))
    if unknown:
        raise InputError(
            f"Unknown leakage keys {unknown}; valid: {list(LEAKAGE_KEYS)} (salted pseudonyms only)."
        )
    one_sided = sorted(set(reference_keys) ^ set(test_keys))
    if one_sided:
        raise InputError(f"Keys {one_sided} are given for only one split; pass them for both.")
    out: dict[str, Any] = {}
    for name in LEAKAGE_KEYS:
        if name not in names:
            continue
        ref, test = _keys(reference_keys[name]), _keys(test_keys[name])
        shared = sorted(ref & test)
        out[name] = {"n_reference": len(ref), "n_test": len(test), "n_overlap": len(shared),
                     "examples": shared[:_EXAMPLES]}  # fmt: skip
    out["leak"] = any(v["n_overlap"] > 0 for v in out.values())
    return out


def _pixel_hash(path: pathlib.Path) -> str | None:
    from pydicom import dcmread

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(
                path, specific_tags=["PixelData", "FloatPixelData", "DoubleFloatPixelData"]
            )
    except Exception:
        return None
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in ds:
            data = ds[keyword].value
            if isinstance(data, bytes) and data:
                return hashlib.sha256(data).hexdigest()
    return None


def pixel_duplicates(
    paths: Iterable[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]],
) -> list[tuple[str, ...]]:
    """Groups of DICOM files whose pixel data are byte-identical.

    Parameters
    ----------
    paths : iterable of path, or mapping of str to path
        Files to compare; with a mapping (e.g. ``CohortData.paths``, case
        id -> file) the groups name the keys, so no path reaches a report.

    Returns
    -------
    list of tuple of str
        Each group (two or more names, sorted) shares the SHA-256 of its
        PixelData bytes; groups sorted. Unreadable files and files without
        pixel data are skipped.
    """
    items = (
        [(str(k), pathlib.Path(v)) for k, v in paths.items()]
        if isinstance(paths, Mapping)
        else [(str(p), pathlib.Path(p)) for p in paths]
    )
    by_hash: dict[str, list[str]] = {}
    for name, path in items:
        digest = _pixel_hash(path)
        if digest is not None:
            by_hash.setdefault(digest, []).append(name)
    return sorted(tuple(sorted(v)) for v in by_hash.values() if len(v) > 1)
