"""A regression model's precomputed predictions: case_id, prediction[, variance | sigma]."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medval._errors import DataError
from medval._targets import RegressionPredictions
from medval._text import short_repr

__all__ = ["read_regression_predictions"]

_SPREAD = ("variance", "sigma")


def _number(where: str, line: int, field: str, text: str | None, *, positive: bool) -> float:
    try:
        value = float(text or "")
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (positive and value <= 0):
        what = "a finite number > 0" if positive else "a finite number"
        raise DataError(f"{where} row {line}: {field} {short_repr(text)} is not {what}.")
    return value


def read_regression_predictions(
    path: str | Path, case_ids: Sequence[str], *, unit: str = "", what: str = "model.predictions"
) -> tuple[RegressionPredictions, int]:
    """Read precomputed regression predictions for ``case_ids`` (and count the other rows).

    Parameters
    ----------
    path : path to a UTF-8 CSV
        Columns ``case_id`` and ``prediction``; optionally ``variance`` or
        ``sigma`` (the model's predicted spread, > 0). Other columns are ignored.
    case_ids : sequence of str
        The evaluated cases; each needs a row.
    unit : str
        The target's unit.

    Returns
    -------
    (RegressionPredictions, int)
        The predictions in the order of ``case_ids``, and the number of
        rows naming no evaluated case.

    Raises
    ------
    DataError
        A missing or unreadable file, missing columns, both ``variance`` and
        ``sigma``, a duplicate or missing case, or a value that is not a
        finite number (a spread <= 0); naming the file and the row.
    """
    p = Path(path)
    where = f"{what} {p.name!r}"
    rows: dict[str, tuple[float, float | None]] = {}
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = [c.strip() for c in reader.fieldnames or []]
            if "case_id" not in cols or "prediction" not in cols:
                raise DataError(
                    f"{where}: a regression model's predictions need columns case_id and "
                    f"prediction (optionally variance or sigma); has {short_repr(cols, 200)}."
                )
            spread = [c for c in _SPREAD if c in cols]
            if len(spread) > 1:
                raise DataError(f"{where}: give variance or sigma, not both.")
            reader.fieldnames = cols
            for line, row in enumerate(reader, start=2):
                cid = (row["case_id"] or "").strip()
                if cid in rows:
                    raise DataError(f"{where} row {line}: duplicate case_id {short_repr(cid)}.")
                value = _number(where, line, "prediction", row["prediction"], positive=False)
                s = None
                if spread:
                    s = _number(where, line, spread[0], row[spread[0]], positive=True)
                    s = s if spread[0] == "variance" else s * s
                rows[cid] = (value, s)
    except FileNotFoundError as exc:
        raise DataError(f"{what} file {p.name!r} does not exist.") from exc
    except IsADirectoryError as exc:
        raise DataError(f"{what} {p.name!r} is a folder; give the predictions CSV file.") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text.") from exc
    except csv.Error as exc:
        raise DataError(f"{where}: not a readable CSV ({exc}).") from exc
    missing = [c for c in case_ids if c not in rows]
    if missing:
        raise DataError(
            f"{where} lacks {len(missing)} of the {len(case_ids)} evaluated cases (e.g. "
            f"{short_repr(missing[:3], 120)}); case_id must be the labels table's."
        )
    values = np.asarray([rows[c][0] for c in case_ids], dtype=np.float64)
    spreads = [rows[c][1] for c in case_ids]
    variances = None if not case_ids or spreads[0] is None else np.asarray(spreads, dtype=float)
    preds = RegressionPredictions(np.asarray(case_ids), values, variances=variances, unit=unit)
    return preds, len(rows) - len(case_ids)
