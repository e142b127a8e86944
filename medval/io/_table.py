"""A Cohort from a metadata table (CSV or Parquet), for users without DICOM files.

The table plays the part of the DICOM headers plus the labels: one row per
case. Identifiers are pseudonymised and ages banded here, exactly as for
DICOM; a column that is neither a known identifier, a whitelisted field nor
bookkeeping is an error (it could carry PHI, and nothing is dropped silently).
"""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medval._errors import DataError, MissingDependencyError
from medval._text import one_line, short_repr
from medval._types import DICOM_COLUMNS, check_cohort
from medval.io._labels import CohortData, numeric_labels
from medval.io._phi import age_band, pseudonym, resolve_salt, sex

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TABLE_COLUMNS", "read_cohort_table"]

# Raw identifier column -> (cohort column, pseudonym prefix).
_IDENTIFIERS = {
    "patient_id": ("patient_key", "pt-"),
    "study_id": ("study_key", "st-"),
    "site": ("site_key", "site-"),
    "station": ("station_key", "stn-"),
}
_KEYS = {"patient_key", "study_key", "site_key", "station_key"}
_FIELDS = tuple(c for c in DICOM_COLUMNS if c not in _KEYS and c not in ("sex", "age_band"))
_NUMERIC = {"kvp", "slice_thickness", "pixel_spacing", "magnetic_field_strength", "rows", "columns"}
#: Columns a metadata table may hold (``case_id`` and ``label`` are required).
TABLE_COLUMNS: tuple[str, ...] = (
    "case_id", "label", "split", *_IDENTIFIERS, *_FIELDS, "sex", "age", "patient_age",
)  # fmt: skip
_SHOW = 5


def _read(src: pathlib.Path) -> pd.DataFrame:
    import pandas as pd

    if src.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(src)
        except ImportError as exc:
            raise MissingDependencyError(
                f"reading {src.name} needs a Parquet engine: pip install pyarrow "
                "(or save the table as CSV)."
            ) from exc
        return frame.astype(object).where(frame.notna(), None)
    try:
        frame = pd.read_csv(src, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(
            f"metadata table {src.name!r} is not a readable UTF-8 CSV ({exc})."
        ) from exc
    cleaned = frame.map(lambda v: None if v is None or str(v).strip() == "" else str(v).strip())
    return cleaned.astype(object).where(cleaned.notna(), None)


def _bad_rows(where: str, field: str, rows: list[tuple[int, Any]], fix: str) -> DataError:
    shown = "; ".join(f"row {r}: {short_repr(v)}" for r, v in rows[:_SHOW])
    more = " ..." if len(rows) > _SHOW else ""
    return DataError(
        f"{where}: {len(rows)} bad value(s) in column {field!r} ({shown}{more}); {fix}"
    )


def _numbers(where: str, name: str, values: Sequence[Any]) -> list[float | None]:
    out: list[float | None] = []
    bad: list[tuple[int, Any]] = []
    for i, v in enumerate(values):
        try:
            out.append(None if v is None else float(v))
        except (TypeError, ValueError):
            bad.append((i + 2, v))
            out.append(None)
    if bad:
        raise _bad_rows(where, name, bad, "give a number or leave the cell empty.")
    return out


def _ages(where: str, values: Sequence[Any]) -> list[str | None]:
    out: list[str | None] = []
    bad: list[tuple[int, Any]] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            years = float(v)
        except (TypeError, ValueError):
            bad.append((i + 2, v))
            out.append(None)
            continue
        if not 0 <= years < 150:
            bad.append((i + 2, v))
        out.append(age_band(f"{int(min(max(years, 0), 149)):03d}Y"))
    if bad:
        raise _bad_rows(where, "age", bad, "give the age in whole years (0-149).")
    return out


def read_cohort_table(
    path: str | pathlib.Path,
    *,
    class_names: Sequence[str] | None,
    value_range: tuple[float, float] | None = None,
    salt: str | bytes | None = None,
) -> CohortData:
    """Read a Cohort from a CSV or Parquet metadata table.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` or ``.parquet`` (Parquet needs pyarrow). One row per case;
        columns from :data:`TABLE_COLUMNS`: ``case_id`` and ``label``
        (class name or index) are required; ``split``; raw identifiers
        ``patient_id``, ``study_id``, ``site``, ``station`` (turned into
        salted pseudonyms and never kept); the whitelisted acquisition
        fields (``manufacturer``, ``model_name``, ``kvp``, ...); ``sex``;
        ``age`` in years or ``patient_age`` as a DICOM age string
        (``058Y``), both banded with 90+ grouped.
    class_names : sequence of str or None
        The declared classes; None: numeric labels (a regression target)
        within ``value_range`` when given.
    value_range : (low, high), optional
    salt : str or bytes, optional
        Pseudonym salt; default from ``MEDVAL_SALT`` (random when unset).

    Returns
    -------
    CohortData
        ``paths`` is empty (no image files); ``manifest_sha256`` is the
        SHA-256 of the table's bytes; ``n_files`` counts the rows.

    Raises
    ------
    DataError
        Missing file, unknown columns (listed, with the allowed ones),
        missing ``case_id``/``label``, empty or repeated case ids, labels
        outside ``class_names``, non-numeric acquisition numbers or ages;
        each message names the column and the rows.
    MissingDependencyError
        A Parquet file without pyarrow installed.
    """
    import pandas as pd

    src = pathlib.Path(path).expanduser()
    if not src.is_file():
        raise DataError(f"metadata table {str(src)!r} does not exist; pass a CSV or Parquet file.")
    where = f"metadata table {src.name!r}"
    raw = _read(src)
    raw.columns = [str(c).strip() for c in raw.columns]
    unknown = [c for c in raw.columns if c not in TABLE_COLUMNS]
    if unknown:
        raise DataError(
            f"{where} has column(s) {unknown} that medval does not read; allowed: "
            f"{list(TABLE_COLUMNS)}. Remove them (they could carry PHI) or rename them."
        )
    missing = [c for c in ("case_id", "label") if c not in raw.columns]
    if missing:
        raise DataError(f"{where} lacks required column(s) {missing}.")
    if raw.empty:
        raise DataError(f"{where} has a header but no rows; add one row per case.")
    ids = raw["case_id"]
    empty = [(i + 2, v) for i, v in enumerate(ids) if v is None]
    if empty:
        raise _bad_rows(where, "case_id", empty, "every row needs a case id.")
    dup = ids[ids.duplicated(keep=False)]
    if not dup.empty:
        rows = [(int(str(i)) + 2, v) for i, v in dup.items()]
        raise _bad_rows(where, "case_id", rows, "case ids must be unique.")
    labels: list[Any] = []
    bad: list[tuple[int, Any]] = []
    classes = [] if class_names is None else [str(c) for c in class_names]
    if class_names is None:
        lines = list(range(2, len(raw) + 2))
        labels = numeric_labels(where, lines, list(raw["label"]), value_range)
    for i, v in enumerate(raw["label"] if class_names is not None else ()):
        text = "" if v is None else str(v)
        if text in classes:
            labels.append(classes.index(text))
        elif text.isdigit() and int(text) < len(classes):
            labels.append(int(text))
        else:
            bad.append((i + 2, v))
    if bad:
        raise _bad_rows(
            where, "label", bad, f"labels must be one of {classes} or 0..{len(classes) - 1}."
        )
    key = resolve_salt(salt)
    cohort = pd.DataFrame(index=pd.Index([str(v) for v in ids], name="case_id"))
    for column, (target, prefix) in _IDENTIFIERS.items():
        if column in raw.columns:
            cohort[target] = [
                None if v is None else pseudonym(str(v), salt=key, prefix=prefix)
                for v in raw[column]
            ]
    for column in _FIELDS:
        if column in raw.columns:
            values = list(raw[column])
            cohort[column] = (
                _numbers(where, column, values)
                if column in _NUMERIC
                else [None if v is None else one_line(str(v)) for v in values]
            )
    if "sex" in raw.columns:
        cohort["sex"] = [sex(v) for v in raw["sex"]]
    if "age" in raw.columns:
        cohort["age_band"] = _ages(where, list(raw["age"]))
    elif "patient_age" in raw.columns:
        cohort["age_band"] = [age_band(None if v is None else str(v)) for v in raw["patient_age"]]
    cohort["label"] = pd.array(labels, dtype="int64" if class_names is not None else "float64")
    split = raw["split"] if "split" in raw.columns else pd.Series(["all"] * len(raw))
    cohort["split"] = [("all" if v is None else str(v)) for v in split]
    return CohortData(
        cohort=check_cohort(cohort),
        paths={},
        exclusions=(),
        n_files=len(cohort),
        manifest_sha256=hashlib.sha256(src.read_bytes()).hexdigest(),
        deid_summary={},
    )
