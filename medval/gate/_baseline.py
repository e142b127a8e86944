"""Release gate inputs: a baseline's predictions and the non-inferiority test.

``predictions.csv`` (written by every ``medval validate``) holds ``case_id``,
``split``, ``label`` and ``probability`` (of the positive class); a released
model's file, copied out of its run folder, is the baseline of the next
candidate, on the same cases. A baseline whose scores equal the candidate's
on every case is the candidate itself: the comparison is refused (an
``error`` verdict), never passed.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medval._errors import DataError
from medval._text import short_repr
from medval.gate._judge import ANALYSIS_ERRORS

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from medval._result import ValidationResult
    from medval._types import Estimate

__all__ = [
    "noninferiority_section",
    "read_baseline_scores",
    "read_prediction_scores",
    "read_predictions_csv",
    "write_predictions_csv",
]

PREDICTION_COLUMNS = ("case_id", "split", "label", "probability")
#: ``result.values`` key: True when the baseline's scores equal the candidate's.
IDENTICAL_KEY = "reference.identical"
#: Scores closer than this on every case are the same scores (CSV round trips are exact).
_SAME_SCORES_ATOL = 1e-12


def write_predictions_csv(
    path: str | Path,
    case_ids: Sequence[str],
    splits: Sequence[str],
    labels: Sequence[int],
    probability: Sequence[float],
) -> Path:
    """Write ``case_id, split, label, probability`` rows (positive-class probability)."""
    p = Path(path)
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(PREDICTION_COLUMNS)
        for row in zip(case_ids, splits, labels, probability, strict=True):
            w.writerow([str(row[0]), str(row[1]), int(row[2]), repr(float(row[3]))])
    return p


def read_prediction_scores(
    path: str | Path, *, what: str = "baseline predictions"
) -> dict[str, float]:
    """Every row of a predictions CSV: case id -> positive-class probability.

    Parameters
    ----------
    path : path to a CSV with columns ``case_id`` and ``probability``
        (other columns are ignored). UTF-8, with or without a byte-order mark.
    what : str, default "baseline predictions"
        Names the file in messages (the spec key, e.g. ``"model.predictions"``).

    Returns
    -------
    dict of str to float
        In file order.

    Raises
    ------
    DataError
        A missing file, a folder, unreadable or non-UTF-8 bytes, a malformed
        CSV (a field over the csv module's 131,072 characters), missing
        columns, a duplicate case, or a probability outside [0, 1] or not a
        number; naming the file and the row.
    """
    p = Path(path)
    where = f"{what} {p.name!r}"
    reader: csv.DictReader[str] | None = None
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = [c.strip() for c in reader.fieldnames or []]
            if "case_id" not in cols or "probability" not in cols:
                raise DataError(
                    f"{where}: needs columns case_id and probability (positive class); "
                    f"has {short_repr(cols, 200)}."
                )
            reader.fieldnames = cols
            scores: dict[str, float] = {}
            for line, row in enumerate(reader, start=2):
                cid = row["case_id"]
                if cid in scores:
                    raise DataError(f"{where} row {line}: duplicate case_id {short_repr(cid)}.")
                try:
                    value = float(row["probability"])
                except (TypeError, ValueError):
                    value = math.nan
                if not 0.0 <= value <= 1.0:
                    raise DataError(
                        f"{where} row {line}: probability "
                        f"{short_repr(row['probability'])} is not a number in [0, 1]."
                    )
                scores[cid] = value
    except FileNotFoundError as exc:
        raise DataError(f"{what} file {p} does not exist.") from exc
    except IsADirectoryError as exc:
        raise DataError(f"{what} {str(p)!r} is a folder; give the predictions CSV file.") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text.") from exc
    except csv.Error as exc:
        at = "" if reader is None else f" line {reader.line_num + 1}"  # the line it failed on
        raise DataError(f"{where}{at}: not a readable CSV ({exc}).") from exc
    except OSError as exc:
        raise DataError(f"{where} cannot be read: {exc.strerror or exc}.") from exc
    return scores


def read_baseline_scores(
    path: str | Path, case_ids: Sequence[str], *, what: str = "baseline predictions"
) -> NDArray[np.float64]:
    """The baseline's positive-class probabilities, in the order of ``case_ids``.

    Also reads a model's precomputed predictions (``model.predictions``);
    ``what`` names the file in error messages.

    Parameters
    ----------
    path : path to a CSV with columns ``case_id`` and ``probability``
        (other columns are ignored; extra cases are ignored: the caller
        counts them, see :func:`read_prediction_scores`).
    case_ids : sequence of str, shape (n,)
        The candidate's cases.

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    DataError
        As :func:`read_prediction_scores`; and candidate cases the baseline
        lacks (every one: its case ids are not the cohort's).
    """
    import numpy as np

    p = Path(path)
    scores = read_prediction_scores(p, what=what)
    missing = [c for c in case_ids if c not in scores]
    if missing and len(missing) == len(case_ids) and scores:
        raise DataError(
            f"{what} {p.name!r}: none of its {len(scores)} rows names one of the "
            f"{len(case_ids)} evaluated cases (its case ids, e.g. "
            f"{short_repr(list(scores)[:3], 120)}; the cases, e.g. "
            f"{short_repr(list(case_ids)[:3], 120)}); case_id must be the labels table's."
        )
    if missing:
        raise DataError(
            f"{what} {p.name} lack {len(missing)} of the {len(case_ids)} cases "
            f"(e.g. {missing[:3]}); the comparison must be paired on the same cases."
        )
    return np.asarray([scores[c] for c in case_ids], dtype=np.float64)


def noninferiority_section(
    result: ValidationResult,
    y_true: NDArray[Any],
    score_candidate: NDArray[np.float64],
    score_baseline: NDArray[np.float64],
    *,
    margin: float,
    metric: str = "auroc",
    clusters: NDArray[Any] | None = None,
    threshold: float | None = None,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    random_state: int = 0,
    baseline_name: str = "baseline",
    split: str | None = None,
) -> None:
    """Paired non-inferiority of a candidate against a baseline, into ``result``.

    Calls :func:`medval.stats.compare` and stores the difference (candidate
    minus baseline, positive = better) as the Estimate
    ``noninferiority.<metric>.difference`` and ``verdict``, ``p_value``,
    ``margin``, ``method``, ``baseline``, ``split`` as values under the same
    prefix. An exception in the comparison is recorded under
    ``values["analysis.errors"]`` so that the gate reports ``error``.

    When the metric sees the very same input from both models (for AUROC
    and AUPRC identical rankings, e.g. a recalibrated model; for label
    metrics identical decisions at ``threshold``), every paired resample
    gives a difference of exactly 0: the bootstrap is degenerate and the
    difference is recorded as 0 [0, 0] (method ``"identical-ranking"`` or
    ``"identical-decisions"``) rather than left not estimable.

    Scores equal on every case (within 1e-12) are another matter: the
    baseline is the candidate itself (its own ``predictions.csv``, or the
    same model file), and non-inferiority to itself proves nothing. The
    difference is recorded as 0 [0, 0] (method ``"identical-scores"``),
    ``values["reference.identical"]`` as True and the comparison under
    ``values["analysis.errors"]``, so the criterion is an ``error`` whatever
    its severity (fail closed). ``reference.identical`` is False otherwise.

    References
    ----------
    Piaggio et al. (2012), JAMA 308:2594-2604 (CONSORT extension for
    non-inferiority trials: the verdict from the CI against the margin).
    """
    from medval import stats

    prefix = f"noninferiority.{metric}"
    result.values[f"{prefix}.margin"] = float(margin)
    result.values[f"{prefix}.baseline"] = baseline_name
    result.values[f"{prefix}.split"] = split
    try:
        cmp = stats.compare(
            metric,
            y_true,
            score_candidate,
            score_baseline,
            margin=margin,
            threshold=threshold,
            clusters=clusters,
            confidence_level=confidence_level,
            n_resamples=n_resamples,
            random_state=random_state,
        )
    except Exception as exc:  # fail closed: the criterion becomes an error
        errors = dict(result.values.get(ANALYSIS_ERRORS) or {})
        errors[prefix] = f"{type(exc).__name__}: {exc}"
        result.values[ANALYSIS_ERRORS] = errors
        return
    identical = _same_scores(score_candidate, score_baseline)
    result.values[IDENTICAL_KEY] = identical
    if identical:
        if cmp.difference.value is not None:
            _record_identical(result, prefix, "identical-scores", margin, cmp.difference)
        result.values[f"{prefix}.method"] = "identical-scores"
        result.values[f"{prefix}.verdict"] = "not compared: the baseline is the candidate"
        errors = dict(result.values.get(ANALYSIS_ERRORS) or {})
        errors[prefix] = (
            f"the baseline ({baseline_name}) gives the candidate's own scores on every one of "
            f"the {len(score_candidate)} cases: the baseline is the candidate itself (e.g. its "
            "predictions.csv read back from this run's output folder, or the same model "
            "file), and non-inferiority to itself proves nothing. Give the released model's "
            "predictions or model file"
        )
        result.values[ANALYSIS_ERRORS] = errors
        return
    same = _same_metric_input(
        stats.get_metric(metric).kind, score_candidate, score_baseline, threshold
    )
    if same is not None and cmp.difference.value is not None and cmp.difference.low is None:
        _record_identical(result, prefix, same, margin, cmp.difference)
        return
    result.estimates[f"{prefix}.difference"] = cmp.difference
    result.values[f"{prefix}.verdict"] = cmp.verdict
    result.values[f"{prefix}.p_value"] = cmp.p_value
    result.values[f"{prefix}.method"] = cmp.method


def _same_scores(a: NDArray[np.float64], b: NDArray[np.float64]) -> bool:
    """Whether two score vectors are the same on every case (within 1e-12)."""
    import numpy as np

    x, z = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool(x.shape == z.shape and x.size and np.allclose(x, z, rtol=0, atol=_SAME_SCORES_ATOL))


def _same_metric_input(
    kind: str,
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    threshold: float | None,
) -> str | None:
    """The method name when both models give the metric the same input, else None."""
    import numpy as np

    x, z = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != z.shape:
        return None  # compare() reports the mismatch
    if kind == "score":
        # AUROC and AUPRC depend on the ordering (ties included) only.
        rank_x = np.unique(x, return_inverse=True)[1].ravel()
        rank_z = np.unique(z, return_inverse=True)[1].ravel()
        return "identical-ranking" if np.array_equal(rank_x, rank_z) else None
    if kind == "label" and threshold is not None:
        return "identical-decisions" if np.array_equal(x >= threshold, z >= threshold) else None
    return None


def _record_identical(
    result: ValidationResult, prefix: str, method: str, margin: float, degenerate: Estimate
) -> None:
    result.estimates[f"{prefix}.difference"] = dataclasses.replace(
        degenerate, value=0.0, low=0.0, high=0.0, method=method, reason=None
    )
    result.values[f"{prefix}.verdict"] = "non-inferior" if margin > 0 else "inconclusive"
    result.values[f"{prefix}.p_value"] = None
    result.values[f"{prefix}.method"] = method


def read_predictions_csv(
    path: str | Path, *, class_names: Sequence[str], positive_class: str
) -> Any:
    """A binary :class:`~medval.Predictions` from a ``predictions.csv``.

    The positive-class ``probability`` becomes the two-column matrix
    ``[1 - p, p]`` (ordered as ``class_names``); MC samples are not stored.

    Raises
    ------
    DataError
        Missing file, columns or a malformed row.
    """
    import numpy as np

    from medval._types import Predictions

    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError as exc:
        raise DataError(f"predictions file {p} does not exist.") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"predictions file {p.name!r} is not a readable UTF-8 CSV ({exc})."
        ) from exc
    if not rows or any(c not in rows[0] for c in PREDICTION_COLUMNS):
        raise DataError(f"{p.name}: needs columns {list(PREDICTION_COLUMNS)}.")
    try:
        prob = np.asarray([float(r["probability"]) for r in rows], dtype=np.float64)
        labels = np.asarray([int(r["label"]) for r in rows], dtype=np.int64)
    except ValueError as exc:
        raise DataError(f"{p.name}: malformed probability or label ({exc}).") from exc
    pos = list(class_names).index(positive_class)
    matrix = np.stack([1.0 - prob, prob], axis=1) if pos == 1 else np.stack([prob, 1.0 - prob], 1)
    return Predictions(
        case_ids=np.asarray([r["case_id"] for r in rows], dtype=np.str_),
        probabilities=matrix,
        labels=labels,
        class_names=tuple(class_names),
    )
