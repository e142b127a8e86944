"""The join that turns a DICOM scan and a labels table into a Cohort.

Each labels row is matched to the scanned files by its key (see
:mod:`medval.io._labels`): a path, a case id read from the file name, or a
salted DICOM identifier. Rows that match no file are kept as
:class:`UnmatchedLabel` and files that no row matches become exclusions, so
the cohort flow can list both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from medval._errors import DataError, InputError
from medval._types import check_cohort
from medval.io._dicom import (
    MAX_PIXEL_BYTES,
    SCAN_COLUMNS,
    CohortScan,
    Exclusion,
    manifest_digest,
    read_dicom_cohort,
    summarise_deid,
)
from medval.io._labels import LABEL_KEYS, CohortData, UnmatchedLabel, read_labels
from medval.io._phi import resolve_salt

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CASE_ID_RULES", "build_cohort", "case_name", "load_cohort"]

#: How a file's case id is read from its path when labels are keyed by case_id.
CASE_ID_RULES: tuple[str, ...] = ("stem", "path")
_SUFFIXES = (".dcm", ".dicom", ".dic")
_SHOW = 5


def case_name(rel: str, rule: str = "stem") -> str:
    """The case id a file stands for: its name (``"stem"``) or relative path (``"path"``).

    A ``.dcm``, ``.dicom`` or ``.dic`` suffix (any case) is dropped; other
    dots are kept, so a file named after its UID keeps the whole UID.
    """
    text = rel if rule == "path" else rel.rsplit("/", 1)[-1]
    lower = text.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix):
            return text[: -len(suffix)]
    return text


def _check_rule(rule: str) -> None:
    if rule not in CASE_ID_RULES:
        raise InputError(f"case_id_from must be one of {list(CASE_ID_RULES)}; got {rule!r}.")


def _labels_digest(labels_frame: Any) -> str:
    sha = labels_frame.attrs.get("sha256")
    if isinstance(sha, str):
        return sha
    text = labels_frame[["case_id", "key", "label", "split"]].to_csv(index=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _candidates(scan: CohortScan, key: str, rule: str) -> dict[str, list[str]]:
    """Key value -> the scanned files (relative paths, in order) it names."""
    files = sorted([*scan.paths, *(e.file for e in scan.exclusions)])
    out: dict[str, list[str]] = {}
    hidden = LABEL_KEYS[key][1]
    for rel in files:
        if hidden is not None:
            value = scan.join_keys.get(rel, {}).get(hidden)
        else:
            value = rel if key == "file" else case_name(rel, rule)
        if value is not None:
            out.setdefault(value, []).append(rel)
    return out


def _match(
    labels_frame: Any, scan: CohortScan, key: str, rule: str, where: str
) -> tuple[dict[int, list[str]], list[UnmatchedLabel]]:
    """Labels row position -> its files; and the rows that matched none."""
    found = _candidates(scan, key, rule)
    image_level = LABEL_KEYS[key][0] == "image"
    matched: dict[int, list[str]] = {}
    unmatched: list[UnmatchedLabel] = []
    shown = key in ("file", "case_id")
    pairs = zip(labels_frame["key"], labels_frame["line"], strict=True)
    for pos, (value, line) in enumerate(pairs):
        files = found.get(str(value), [])
        if not files:
            unmatched.append(UnmatchedLabel(int(line), key, str(value) if shown else None))
            continue
        if image_level and len(files) > 1:
            fix = (
                'set [data] case_id_from = "path" and give relative paths without .dcm'
                if key == "case_id"
                else "remove the duplicate copies"
            )
            raise DataError(
                f"{where}: row {int(line)}'s {key} matches {len(files)} files "
                f"({', '.join(files[:_SHOW])}); an image-level label must name one image: {fix}."
            )
        matched[pos] = files
    if not matched and len(labels_frame):
        listed = "; ".join(
            f"row {u.line}" + (f": {u.value!r}" if u.value is not None else "")
            for u in unmatched[:_SHOW]
        )
        hint = {
            "file": "paths must be relative to the DICOM folder, with '/' separators",
            "case_id": f"case ids are read from file names by case_id_from = {rule!r} "
            f"(e.g. {case_name('dir/case_0001.dcm', rule)!r} for dir/case_0001.dcm)",
        }.get(key, f"the {key} values must be those in the DICOM headers")
        raise DataError(
            f"{where}: none of its {len(labels_frame)} rows matches a file under the DICOM "
            f"folder by {key!r} ({listed}{' ...' if len(unmatched) > _SHOW else ''}); {hint}."
        )
    return matched, unmatched


def build_cohort(
    scan: CohortScan, labels_frame: pd.DataFrame, *, case_id_from: str = "stem"
) -> CohortData:
    """Join a DICOM scan with its labels table into a Cohort.

    Parameters
    ----------
    scan : CohortScan
        From :func:`read_dicom_cohort`.
    labels_frame : pandas.DataFrame
        From :func:`read_labels` (its ``attrs["key"]`` names the key;
        ``file`` when absent).
    case_id_from : {"stem", "path"}, default "stem"
        With a ``case_id`` key: match the file name, or the path relative
        to the DICOM folder, each without a ``.dcm`` suffix.

    Returns
    -------
    CohortData
        Labelled, readable files become cohort rows (for labels above the
        image level, one row per image, id ``"<unit id>/<n>"``, carrying its
        unit's label and split). Labelled files the scan excluded, and
        scanned files without a labels row, become exclusions; labels rows
        that match no file are listed in ``unmatched_labels``.

    Raises
    ------
    DataError
        If no labels row matches a file, or an image-level key names more
        than one file.
    """
    import pandas as pd

    _check_rule(case_id_from)
    key = str(labels_frame.attrs.get("key", "file"))
    unit = LABEL_KEYS[key][0]
    where = f"labels table {labels_frame.attrs.get('source', '<frame>')!r}"
    if "key" not in labels_frame:
        labels_frame = labels_frame.assign(key=labels_frame["file"])
    if "line" not in labels_frame:
        labels_frame = labels_frame.assign(line=range(2, len(labels_frame) + 2))
    matched, unmatched = _match(labels_frame, scan, key, case_id_from, where)
    ids, files, labels, splits, unit_of = [], [], [], [], {}
    owner: dict[str, str] = {}
    rows = labels_frame.reset_index(drop=True)
    for pos, rels in matched.items():
        row = rows.iloc[pos]
        for j, rel in enumerate(rels, start=1):
            cid = str(row["case_id"]) if unit == "image" else f"{row['case_id']}/{j}"
            owner[rel] = cid
            if rel not in scan.paths:
                continue
            ids.append(cid)
            files.append(rel)
            labels.append(row["label"])
            splits.append(str(row["split"]) if "split" in row else "all")
            if unit != "image":
                unit_of[cid] = str(row["case_id"])
    exclusions = [dataclasses.replace(e, case_id=owner.get(e.file)) for e in scan.exclusions]
    exclusions += [
        Exclusion(rel, "no row in labels table") for rel in scan.paths if rel not in owner
    ]
    exclusions.sort(key=lambda e: e.file)
    cohort = scan.frame.loc[files, list(SCAN_COLUMNS)].copy()
    cohort.index = pd.Index(ids, name="case_id", dtype=object)
    numeric = labels_frame["label"].dtype.kind == "f"  # regression targets
    cohort["label"] = np.asarray(labels, dtype=np.float64 if numeric else np.int64)
    cohort["split"] = splits
    return CohortData(
        cohort=check_cohort(cohort),
        paths={cid: scan.paths[f] for cid, f in zip(ids, files, strict=True)},
        files=dict(zip(ids, files, strict=True)),
        file_sha256={
            cid: scan.file_sha256[f]
            for cid, f in zip(ids, files, strict=True)
            if f in scan.file_sha256
        },
        exclusions=tuple(exclusions),
        n_files=scan.n_files,
        manifest_sha256=manifest_digest(
            scan.file_sha256, [f"#labels\t{_labels_digest(labels_frame)}\n"]
        ),
        deid_summary=summarise_deid(scan.deid_by_file[f] for f in files),
        label_key=key,
        unit=unit,
        unit_of=unit_of,
        unmatched_labels=tuple(unmatched),
    )


def load_cohort(
    dicom_dir: str | pathlib.Path,
    labels_csv: str | pathlib.Path,
    *,
    class_names: Sequence[str] | None,
    value_range: tuple[float, float] | None = None,
    salt: str | bytes | None = None,
    progress: bool = False,
    workers: int | None = None,
    key: str | None = None,
    case_id_from: str = "stem",
    max_pixel_bytes: int = MAX_PIXEL_BYTES,
    pool: Any = None,
) -> CohortData:
    """Read a labels CSV, scan its DICOM folder and join them.

    The labels table is read first so that its errors show before a long
    scan. ``workers`` is the number of processes reading DICOM headers
    (:func:`read_dicom_cohort`; the result is the same). ``key`` names the
    labels table's key column (default: found from its header),
    ``case_id_from`` how a ``case_id`` key is read from file paths,
    ``max_pixel_bytes`` the most a file may take to decode and ``pool`` an
    executor for the header scan (a Ray cluster's, :class:`medval.engine.RayPool`); ``class_names``
    None reads numeric labels (a regression target, within ``value_range``). See
    :func:`read_labels`, :func:`read_dicom_cohort` and :func:`build_cohort`
    for parameters and errors.
    """
    _check_rule(case_id_from)
    salt_bytes = resolve_salt(salt)
    labels = read_labels(
        labels_csv, class_names=class_names, value_range=value_range, key=key, salt=salt_bytes
    )
    scan = read_dicom_cohort(
        dicom_dir,
        salt=salt_bytes,
        progress=progress,
        workers=workers,
        max_pixel_bytes=max_pixel_bytes,
        pool=pool,
    )
    return build_cohort(scan, labels, case_id_from=case_id_from)
