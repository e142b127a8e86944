"""The labels table: which images (or studies, series, patients) carry which class.

A labels CSV holds one row per labelled unit: its key, its class (``label``)
and optionally its ``split`` and a de-identified ``case_id``. The key column
is one of :data:`LABEL_KEYS`:

- ``file``: the image path relative to the DICOM root;
- ``case_id``: the image's name without a ``.dcm`` suffix (or its relative
  path without suffix, with ``case_id_from="path"``);
- a DICOM identifier: ``SOPInstanceUID`` (an image), ``SeriesInstanceUID``
  (a series), ``StudyInstanceUID`` or ``AccessionNumber`` (a study),
  ``PatientID`` (a patient). Identifier values are replaced by salted keys
  as they are read and never kept; labels above the image level make the
  unit of analysis that level, image predictions being aggregated to it.

Row numbers in messages are CSV line numbers, the header being line 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medval._errors import DataError
from medval._text import one_line, short_repr
from medval.io._dicom import Exclusion
from medval.io._phi import pseudonym
from medval.io._row import JOIN_IDENTIFIERS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AGGREGATIONS",
    "LABEL_COLUMNS",
    "LABEL_KEYS",
    "CohortData",
    "UnmatchedLabel",
    "read_labels",
]

#: Columns a labels CSV keyed by file needs; ``split`` is optional.
LABEL_COLUMNS: tuple[str, ...] = ("case_id", "file", "label")
#: Key column -> (unit of analysis, hidden scan column holding its salted key).
LABEL_KEYS: dict[str, tuple[str, str | None]] = {
    "file": ("image", None),
    "case_id": ("image", None),
    "SOPInstanceUID": ("image", "join_sop"),
    "SeriesInstanceUID": ("series", "join_series"),
    "StudyInstanceUID": ("study", "join_study"),
    "AccessionNumber": ("study", "join_accession"),
    "PatientID": ("patient", "join_patient"),
}
#: Rules that turn image probabilities into one per study, series or patient.
AGGREGATIONS: tuple[str, ...] = ("mean", "max", "noisy_or", "top_k_mean")
_SHOW = 5


@dataclasses.dataclass(frozen=True)
class UnmatchedLabel:
    """A labels row that matched no scanned file.

    Attributes
    ----------
    line : int
        CSV line number.
    key : str
        The key column (see :data:`LABEL_KEYS`).
    value : str or None
        The row's key for ``file`` and ``case_id`` keys; None for DICOM
        identifiers (those are never shown).
    """

    line: int
    key: str
    value: str | None


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
    label_key : str
        The labels table's key column (:data:`LABEL_KEYS`).
    unit : str
        The level the labels are given at: ``"image"``, ``"series"``,
        ``"study"`` or ``"patient"``.
    unit_of : dict of str to str
        Image case_id -> the id of its labelled unit, when ``unit`` is not
        ``"image"`` (the cohort's rows are then images, each carrying its
        unit's label, until :func:`medval.io.aggregate_units`).
    unmatched_labels : tuple of UnmatchedLabel
        Labels rows that matched no scanned file.
    aggregation : str or None
        After :func:`medval.io.aggregate_units`: the rule that made one
        prediction per unit (e.g. ``"mean"``); the cohort's rows are units.
    n_images : int or None
        After aggregation: the images that were aggregated.
    files : dict of str to str
        case_id -> the image's POSIX path relative to the DICOM root (what
        messages and exclusions name); empty for a metadata table.
    file_sha256 : dict of str to str
        case_id -> SHA-256 of the image file's bytes (the registration's
        split digests); empty for a metadata table.
    """

    cohort: pd.DataFrame
    paths: dict[str, pathlib.Path]
    exclusions: tuple[Exclusion, ...]
    n_files: int
    manifest_sha256: str
    deid_summary: dict[str, dict[str, int]]
    split_rule: str | None = None
    label_key: str = "file"
    unit: str = "image"
    unit_of: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)
    unmatched_labels: tuple[UnmatchedLabel, ...] = ()
    aggregation: str | None = None
    n_images: int | None = None
    files: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)
    file_sha256: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)


def _rows(lines: Sequence[int]) -> str:
    return ", ".join(str(n) for n in list(lines)[:_SHOW]) + (" ..." if len(lines) > _SHOW else "")


def normalise_file(value: str) -> str:
    """A path as written in a labels table, as a POSIX path relative to the root."""
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


def _read_csv(src: pathlib.Path) -> tuple[Any, bytes]:
    import pandas as pd

    if not src.is_file():
        what = "is a folder, not a CSV file" if src.exists() else "does not exist"
        raise DataError(f"labels table {str(src)!r} {what}; pass the path of the labels CSV.")
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
    return raw, data


def _choose_key(src: pathlib.Path, columns: list[str], key: str | None) -> str:
    where = f"labels table {str(src)!r}"
    if key is not None:
        if key not in LABEL_KEYS:
            raise DataError(
                f"labels key {key!r} is not one of {list(LABEL_KEYS)}; set [data] labels_key "
                "to the column that names each labelled image, series, study or patient."
            )
        if key not in columns:
            raise DataError(
                f"{where} has no {key!r} column (the declared [data] labels_key); found "
                f"{columns}. Rename the column or declare the key the table has."
            )
        return key
    # A path first, then the finest DICOM identifier, then case_id (which
    # beside an identifier only names the unit).
    for name in ("file", *list(LABEL_KEYS)[2:], "case_id"):
        if name in columns:
            return name
    raise DataError(
        f"{where} lacks a key column; found {columns}. Name each row's image by 'file' "
        "(path relative to the DICOM folder) or 'case_id' (the file name without .dcm), or "
        f"by a DICOM identifier: {list(LABEL_KEYS)[2:]}; with a 'label' column."
    )


def numeric_labels(
    where: str, lines: Sequence[int], values: Sequence[Any], value_range: tuple[float, float] | None
) -> list[float]:
    """Regression targets as floats; a DataError names the rows that are not numbers in range."""
    out: list[float] = []
    bad: list[tuple[int, Any]] = []
    for line, value in zip(lines, values, strict=True):
        try:
            x = float(str(value).strip())
        except ValueError:
            x = math.nan
        ok = math.isfinite(x) and (value_range is None or value_range[0] <= x <= value_range[1])
        out.append(x)
        if not ok:
            bad.append((int(line), value))
    if bad:
        listed = ", ".join(f"row {line}: {short_repr(value)}" for line, value in bad[:_SHOW])
        span = "" if value_range is None else " in task.range [{:g}, {:g}]".format(*value_range)
        raise DataError(
            f"{where}: field 'label' has {len(bad)} value(s) that are not finite numbers{span} "
            f"({listed}{' ...' if len(bad) > _SHOW else ''}); give each case its measured value "
            "(a decimal point, no unit), or widen task.range if the values are right."
        )
    return out


def read_labels(
    path: str | pathlib.Path,
    *,
    class_names: Sequence[str] | None,
    value_range: tuple[float, float] | None = None,
    key: str | None = None,
    salt: bytes | None = None,
) -> pd.DataFrame:
    """Read and check a labels CSV.

    Parameters
    ----------
    path : str or path-like
        CSV with a key column (see the module docstring), ``label``, and
        optionally ``split`` and ``case_id``; other columns are ignored.
    class_names : sequence of str or None
        The K declared classes. A label is a class name or an index 0..K-1.
        None: labels are numbers (a regression target, float64).
    value_range : (low, high), optional
        With numeric labels, the range a label may take (``task.range``).
    key : str, optional
        The key column, one of :data:`LABEL_KEYS`. Default: ``file`` when
        the table has it, else the finest DICOM identifier it has, else
        ``case_id``.
    salt : bytes, optional
        The scan's salt (:func:`medval.io.resolve_salt`); required for a
        DICOM identifier key, whose values are replaced by salted keys here.

    Returns
    -------
    pandas.DataFrame
        Columns ``key`` (the normalised path, the case id, or the salted
        identifier), ``case_id`` (the unit's id: the table's ``case_id``;
        else, for an identifier key, ``"<unit>-<n>"`` numbered in row
        order), ``label`` (int), ``split`` (str, ``"all"`` when absent) and
        ``line``; with a ``file`` key also ``file``. ``attrs`` holds
        ``source``, ``sha256`` (of the file bytes), ``key`` and ``unit``.

    Raises
    ------
    DataError
        If the file is missing or unreadable, the key or ``label`` column is
        missing, a key or case_id is empty or repeated, or a label is not a
        declared class. The message names the file, the rows, the field,
        the bad value and the fix.
    """
    import pandas as pd

    src = pathlib.Path(path).expanduser()
    classes = None if class_names is None else [str(c) for c in class_names]
    if classes is not None and len(classes) < 2:
        raise DataError(f"class_names must name at least 2 classes; got {classes}.")
    raw, data = _read_csv(src)
    key = _choose_key(src, list(raw.columns), key)
    unit, hidden = LABEL_KEYS[key]
    required = [*(["case_id"] if key == "file" else []), key, "label"]
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise DataError(
            f"labels table {str(src)!r} lacks required column(s) {missing}; found "
            f"{list(raw.columns)}. Keyed by {key!r}, the header must name "
            f"{', '.join(required)} (split optional)."
        )
    raw["line"] = range(2, len(raw) + 2)
    named = [c for c in ("case_id", key, "label") if c in raw.columns]
    blank = raw[named].apply(lambda c: c.str.strip() == "").all(axis=1)
    raw = raw[~blank]
    if raw.empty:
        raise DataError(
            f"labels table {str(src)!r} has a header but no rows; add one row per labelled "
            f"image (or series, study, patient): {', '.join(required)}."
        )
    values = raw[key].map(normalise_file) if key == "file" else raw[key].str.strip()
    frame = pd.DataFrame(
        {
            "key": values,
            "split": raw["split"].str.strip().replace("", "all") if "split" in raw else "all",
            "line": raw["line"].astype("int64"),
        }
    )
    if "case_id" in raw:
        frame["case_id"] = raw["case_id"].str.strip()
    _check_labels_frame(src, frame, raw["label"], classes, key)
    if hidden is not None:
        if salt is None:
            raise DataError(f"labels keyed by {key} need the scan's salt to be joined.")
        prefix = JOIN_IDENTIFIERS[hidden][1]
        # Cleaned as the scan cleans header text (io._row.tag_text), so the keys agree.
        frame["key"] = [pseudonym(one_line(v), salt=salt, prefix=prefix) for v in frame["key"]]
    if "case_id" not in frame:
        frame["case_id"] = [f"{unit}-{i:04d}" for i in range(1, len(frame) + 1)]
    if key == "file":
        frame["file"] = frame["key"]
    if classes is None:
        where = f"labels table {str(src)!r}"
        frame["label"] = numeric_labels(where, list(raw["line"]), list(raw["label"]), value_range)
    else:
        frame["label"] = [_label_index(v, classes) for v in raw["label"]]
    columns = ["key", "case_id", *(["file"] if key == "file" else []), "label", "split", "line"]
    frame = frame[columns].reset_index(drop=True)
    frame["label"] = frame["label"].astype("float64" if classes is None else "int64")
    frame.attrs.update(source=str(src), sha256=hashlib.sha256(data).hexdigest(), key=key, unit=unit)
    return frame


def _check_labels_frame(
    src: pathlib.Path, frame: Any, labels: Any, classes: list[str] | None, key: str
) -> None:
    where = f"labels table {str(src)!r}"
    if "case_id" in frame:
        empty = frame.loc[frame["case_id"] == "", "line"].tolist()
        if empty:
            raise DataError(
                f"{where}: empty case_id on row(s) {_rows(empty)}; give every row a "
                "de-identified id."
            )
    shown_values = key in ("file", "case_id")
    for field, name in (("case_id", "case_id"), ("key", key)):
        if field not in frame or (field == "key" and key == "case_id"):
            continue
        dup = frame[frame[field].duplicated(keep=False)]
        if len(dup):
            shown = [
                (f"{short_repr(v)} " if field == "case_id" or shown_values else "")
                + f"(rows {_rows(g['line'].tolist())})"
                for v, g in list(dup.groupby(field, sort=False))[:_SHOW]
            ]
            fix = "each case needs its own id" if name == "case_id" else "list each one once"
            raise DataError(f"{where}: duplicate {name} values: {'; '.join(shown)}; {fix}.")
    empty_keys = frame.loc[frame["key"] == "", "line"].tolist()
    if empty_keys:
        what = "the image path relative to the DICOM folder" if key == "file" else f"its {key}"
        raise DataError(f"{where}: empty {key} on row(s) {_rows(empty_keys)}; give {what}.")
    if classes is None:  # numeric labels are checked as they are read
        return
    bad = [
        (int(line), value)
        for line, value in zip(frame["line"], labels, strict=True)
        if _label_index(str(value), classes) is None
    ]
    if bad:
        listed = ", ".join(f"row {line}: {short_repr(value)}" for line, value in bad[:_SHOW])
        raise DataError(
            f"{where}: field 'label' has value(s) outside the declared classes ({listed}"
            f"{' ...' if len(bad) > _SHOW else ''}); allowed: {classes} or indices "
            f"0..{len(classes) - 1}. Fix the table or the declared class_names."
        )
