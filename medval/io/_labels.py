"""The labels table and the join that turns a DICOM scan into a Cohort.

The labels CSV names each case (``case_id``, chosen by the user and already
de-identified), its image (``file``, relative to the DICOM root), its class
(``label``) and optionally its ``split``. Row numbers in messages are CSV
line numbers, the header being line 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medval._errors import DataError
from medval._types import check_cohort
from medval.io._dicom import (
    SCAN_COLUMNS,
    CohortScan,
    Exclusion,
    manifest_digest,
    read_dicom_cohort,
    summarise_deid,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LABEL_COLUMNS", "CohortData", "build_cohort", "load_cohort", "read_labels"]

#: Required columns of a labels CSV; ``split`` is optional.
LABEL_COLUMNS: tuple[str, ...] = ("case_id", "file", "label")
_SHOW = 5


@dataclasses.dataclass(frozen=True, eq=False)
class CohortData:
    """A Cohort ready for evaluation, and where its images are.

    Attributes
    ----------
    cohort : pandas.DataFrame
        Indexed by ``case_id`` in labels-table order; the de-identified scan
        columns plus ``label`` (int class index) and ``split`` (str,
        ``"all"`` when the table has none). Passes
        :func:`medval._types.check_cohort`.
    paths : dict of str to pathlib.Path
        case_id -> image file. Never put paths in a result or report.
    exclusions : tuple of Exclusion
        Every scanned file not in the cohort, once each, with its reason
        (and ``case_id`` when the labels table names it).
    n_files : int
        Files scanned under the DICOM root.
    manifest_sha256 : str
        SHA-256 over every scanned file's path and hash, then the labels
        file's hash.
    deid_summary : dict of str to dict of str to int
        De-identification attribute counts over the cohort's files.
    split_rule : str or None
        How the splits were assigned when medval assigned them
        (:func:`medval.io.assign_splits`); None when the labels gave them.
    """

    cohort: pd.DataFrame
    paths: dict[str, pathlib.Path]
    exclusions: tuple[Exclusion, ...]
    n_files: int
    manifest_sha256: str
    deid_summary: dict[str, dict[str, int]]
    split_rule: str | None = None


def _rows(lines: Sequence[int]) -> str:
    return ", ".join(str(n) for n in list(lines)[:_SHOW]) + (" ..." if len(lines) > _SHOW else "")


def _normalise_file(value: str) -> str:
    text = value.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


def _label_index(value: str, class_names: Sequence[str]) -> int | None:
    text = value.strip()
    if text in class_names:
        return list(class_names).index(text)
    if text.isdigit() and int(text) < len(class_names):
        return int(text)
    return None


def read_labels(path: str | pathlib.Path, *, class_names: Sequence[str]) -> pd.DataFrame:
    """Read and check a labels CSV.

    Parameters
    ----------
    path : str or path-like
        CSV with columns ``case_id``, ``file``, ``label`` and optionally
        ``split``; other columns are ignored.
    class_names : sequence of str
        The K declared classes. A label is a class name or an index 0..K-1.

    Returns
    -------
    pandas.DataFrame
        Columns ``case_id``, ``file`` (normalised POSIX path), ``label``
        (int), ``split`` (str) and ``line`` (CSV line number); ``attrs``
        holds ``source`` (the path) and ``sha256`` (of the file bytes).

    Raises
    ------
    DataError
        If the file is missing or unreadable, a required column is missing,
        a case_id is empty or repeated, a file is listed twice, or a label is
        not a declared class. The message names the file, the rows, the
        field, the bad value and the fix.
    """
    import pandas as pd

    src = pathlib.Path(path).expanduser()
    if not src.is_file():
        what = "is a folder, not a CSV file" if src.exists() else "does not exist"
        raise DataError(f"labels table {str(src)!r} {what}; pass the path of the labels CSV.")
    classes = [str(c) for c in class_names]
    if len(classes) < 2:
        raise DataError(f"class_names must name at least 2 classes; got {classes}.")
    data = src.read_bytes()
    try:
        raw = pd.read_csv(
            src, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8-sig"
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(
            f"labels table {str(src)!r} is not a readable UTF-8 CSV ({exc}); save it as CSV."
        ) from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in LABEL_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(
            f"labels table {str(src)!r} lacks required column(s) {missing}; found "
            f"{list(raw.columns)}. The header must name case_id, file, label (split optional)."
        )
    raw["line"] = range(2, len(raw) + 2)
    blank = raw[list(LABEL_COLUMNS)].apply(lambda c: c.str.strip() == "").all(axis=1)
    raw = raw[~blank]
    frame = pd.DataFrame(
        {
            "case_id": raw["case_id"].str.strip(),
            "file": raw["file"].map(_normalise_file),
            "split": raw["split"].str.strip().replace("", "all") if "split" in raw else "all",
            "line": raw["line"].astype("int64"),
        }
    )
    _check_labels_frame(src, frame, raw["label"], classes)
    frame["label"] = [_label_index(v, classes) for v in raw["label"]]
    frame = frame[["case_id", "file", "label", "split", "line"]].reset_index(drop=True)
    frame["label"] = frame["label"].astype("int64")
    frame.attrs["source"] = str(src)
    frame.attrs["sha256"] = hashlib.sha256(data).hexdigest()
    return frame


def _check_labels_frame(src: pathlib.Path, frame: Any, labels: Any, classes: list[str]) -> None:
    where = f"labels table {str(src)!r}"
    empty = frame.loc[frame["case_id"] == "", "line"].tolist()
    if empty:
        raise DataError(
            f"{where}: empty case_id on row(s) {_rows(empty)}; give every row a de-identified id."
        )
    for field in ("case_id", "file"):
        dup = frame[frame[field].duplicated(keep=False)]
        if len(dup):
            shown = [
                f"{v!r} (rows {_rows(g['line'].tolist())})"
                for v, g in list(dup.groupby(field, sort=False))[:_SHOW]
            ]
            fix = "each case needs its own id" if field == "case_id" else "list each image once"
            raise DataError(f"{where}: duplicate {field} values: {'; '.join(shown)}; {fix}.")
    empty_files = frame.loc[frame["file"] == "", "line"].tolist()
    if empty_files:
        raise DataError(
            f"{where}: empty file on row(s) {_rows(empty_files)}; give the image path "
            "relative to the DICOM folder."
        )
    bad = [
        (int(line), value)
        for line, value in zip(frame["line"], labels, strict=True)
        if _label_index(str(value), classes) is None
    ]
    if bad:
        listed = ", ".join(f"row {line}: {value!r}" for line, value in bad[:_SHOW])
        raise DataError(
            f"{where}: field 'label' has value(s) outside the declared classes ({listed}"
            f"{' ...' if len(bad) > _SHOW else ''}); allowed: {classes} or indices "
            f"0..{len(classes) - 1}. Fix the table or the declared class_names."
        )


def _labels_digest(labels_frame: Any) -> str:
    sha = labels_frame.attrs.get("sha256")
    if isinstance(sha, str):
        return sha
    text = labels_frame[["case_id", "file", "label", "split"]].to_csv(index=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_cohort(scan: CohortScan, labels_frame: pd.DataFrame) -> CohortData:
    """Join a DICOM scan with its labels table into a Cohort.

    Parameters
    ----------
    scan : CohortScan
        From :func:`read_dicom_cohort`.
    labels_frame : pandas.DataFrame
        From :func:`read_labels`.

    Returns
    -------
    CohortData
        Labelled, readable files become cohort rows. Labelled files the scan
        excluded, and scanned files without a labels row, become exclusions.

    Raises
    ------
    DataError
        If labels rows name files that were not found under the DICOM root.
    """
    import pandas as pd

    where = f"labels table {labels_frame.attrs.get('source', '<frame>')!r}"
    excluded = {e.file: e for e in scan.exclusions}
    known = set(scan.paths) | set(excluded)
    lines = (
        labels_frame["line"]
        if "line" in labels_frame
        else pd.Series(range(2, len(labels_frame) + 2), index=labels_frame.index)
    )
    unknown = [
        (str(cid), str(f), int(line))
        for cid, f, line in zip(labels_frame["case_id"], labels_frame["file"], lines, strict=True)
        if str(f) not in known
    ]
    if unknown:
        shown = "; ".join(f"row {ln}: case_id {c!r}, file {f!r}" for c, f, ln in unknown[:_SHOW])
        raise DataError(
            f"{where}: {len(unknown)} unknown case id(s) whose file is not under the DICOM "
            f"folder ({shown}{' ...' if len(unknown) > _SHOW else ''}). Paths must be relative "
            "to the DICOM folder, with '/' separators; fix the paths or the folder."
        )
    by_file = dict(zip(labels_frame["file"].astype(str), labels_frame["case_id"].astype(str),
                       strict=True))  # fmt: skip
    exclusions = [dataclasses.replace(e, case_id=by_file.get(e.file)) for e in scan.exclusions]
    exclusions += [
        Exclusion(rel, "no row in labels table") for rel in scan.paths if rel not in by_file
    ]
    exclusions.sort(key=lambda e: e.file)
    usable = labels_frame[labels_frame["file"].isin(list(scan.paths))]
    cohort = scan.frame.loc[usable["file"].tolist(), list(SCAN_COLUMNS)].copy()
    cohort.index = pd.Index(usable["case_id"].astype(str).tolist(), name="case_id")
    cohort["label"] = usable["label"].astype("int64").to_numpy()
    cohort["split"] = usable["split"].astype(str).to_numpy() if "split" in usable else "all"
    files = usable["file"].astype(str).tolist()
    return CohortData(
        cohort=check_cohort(cohort),
        paths={cid: scan.paths[f] for cid, f in zip(cohort.index, files, strict=True)},
        exclusions=tuple(exclusions),
        n_files=scan.n_files,
        manifest_sha256=manifest_digest(
            scan.file_sha256, [f"#labels\t{_labels_digest(labels_frame)}\n"]
        ),
        deid_summary=summarise_deid(scan.deid_by_file[f] for f in files),
    )


def load_cohort(
    dicom_dir: str | pathlib.Path,
    labels_csv: str | pathlib.Path,
    *,
    class_names: Sequence[str],
    salt: str | bytes | None = None,
    progress: bool = False,
    workers: int | None = None,
) -> CohortData:
    """Read a labels CSV, scan its DICOM folder and join them.

    The labels table is read first so that its errors show before a long
    scan. ``workers`` is the number of processes reading DICOM headers
    (:func:`read_dicom_cohort`; the result is the same). See
    :func:`read_labels`, :func:`read_dicom_cohort` and :func:`build_cohort`
    for parameters and errors.
    """
    labels = read_labels(labels_csv, class_names=class_names)
    scan = read_dicom_cohort(dicom_dir, salt=salt, progress=progress, workers=workers)
    return build_cohort(scan, labels)
