"""Subgroup performance for K > 2 class tasks.

For each value of a grouping column: case, patient and class counts, the
macro one-vs-rest AUROC (stratified bootstrap, patient-clustered when keys
are given) and the accuracy of the most probable class (binomial interval,
design-effect adjusted). The rows have the shape of
:func:`medval.shift.subgroup_table`'s, so reports and gates read both; the
subgroup-minus-rest difference is not estimated here (``difference`` says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medval._errors import InputError
from medval._types import Estimate
from medval.stats import bootstrap_ci, case_proportion_ci

__all__ = ["subgroup_table_multiclass"]

_NO_DIFFERENCE = "the subgroup-minus-rest difference is computed for binary tasks only"


def _entry(est: Estimate) -> dict[str, Any]:
    diff = Estimate(None, method="not computed", n=est.n, reason=_NO_DIFFERENCE)
    return {"estimate": est.to_dict(), "difference": diff.to_dict(), "p_value": None,
            "p_adjusted": None, "best": False, "worst": False}  # fmt: skip


def subgroup_table_multiclass(
    labels: ArrayLike,
    probabilities: ArrayLike,
    groups: Mapping[str, ArrayLike],
    *,
    clusters: ArrayLike | None = None,
    min_events: int = 100,
    min_cell: int = 11,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    random_state: int = 0,
) -> dict[str, list[dict[str, Any]]]:
    """Macro AUROC and accuracy per subgroup of a K > 2 class task.

    Parameters
    ----------
    labels : array of int, shape (n,)
        Class indices 0..K-1.
    probabilities : array of float, shape (n, K)
    groups : mapping of str to array, shape (n,)
        Grouping columns by name; missing values form ``"(missing)"``.
    clusters : array, shape (n,), optional
        Patient keys: intervals resample patients.
    min_events : int, default 100
        A row whose rarest class has fewer cases is flagged ``underpowered``.
    min_cell : int, default 11
        Rows with fewer cases are ``suppressed`` (no metric).
    confidence_level, n_resamples, random_state
        For the intervals; the seed is recorded in each Estimate.

    Returns
    -------
    dict of str to list of dict
        ``{column: rows}``; ``events`` is the rarest class's count and
        ``class_counts`` all of them. ``best``/``worst`` mark the extreme
        macro AUROCs among the rows that are not suppressed.
    """
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y.shape[0] or p.shape[1] < 3:
        raise InputError(
            f"probabilities must have shape (n, K >= 3) with n = {y.shape[0]}; got {p.shape}."
        )
    cl_arr = None if clusters is None else np.asarray(clusters)
    k = p.shape[1]
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, column in groups.items():
        values = np.array(
            ["(missing)" if v is None or v != v else str(v) for v in np.asarray(column, object)]
        )
        if values.shape[0] != y.shape[0]:
            raise InputError(
                f"grouping column {name!r} has {values.shape[0]} values; need {y.size}."
            )
        rows: list[dict[str, Any]] = []
        for value in sorted(set(values.tolist())):
            m = values == value
            n = int(m.sum())
            counts = np.bincount(y[m], minlength=k)
            sub_c = None if cl_arr is None else cl_arr[m]
            row: dict[str, Any] = {
                "column": name, "value": value, "n": n,
                "patients": n if sub_c is None else int(np.unique(sub_c).size),
                "events": int(counts.min()), "non_events": n - int(counts.min()),
                "class_counts": [int(c) for c in counts], "suppressed": n < min_cell,
                "underpowered": int(counts.min()) < min_events, "metrics": {},
            }  # fmt: skip
            if row["suppressed"]:
                why = f"suppressed: fewer than {min_cell} cases"
                gone = Estimate(None, method="suppressed", n=n, reason=why)
                row["metrics"] = {metric: _entry(gone) for metric in ("auroc", "accuracy")}
            else:
                if (counts > 0).all():
                    auroc = bootstrap_ci(
                        "macro_auroc",
                        y[m],
                        p[m],
                        clusters=sub_c,
                        confidence_level=confidence_level,
                        n_resamples=n_resamples,
                        random_state=random_state,
                    )
                else:
                    why = "a class is absent from this subgroup"
                    auroc = Estimate(None, method="macro OvR AUROC", n=n, reason=why)
                correct = p[m].argmax(axis=1) == y[m]
                row["metrics"] = {
                    "auroc": _entry(auroc),
                    "accuracy": _entry(
                        case_proportion_ci(
                            correct, clusters=sub_c, confidence_level=confidence_level
                        )
                    ),
                }
            rows.append(row)
        ranked = [(r["metrics"]["auroc"]["estimate"].get("value"), i) for i, r in enumerate(rows)]
        ranked = [(v, i) for v, i in ranked if v is not None and not rows[i]["suppressed"]]
        if len(ranked) >= 2:
            rows[max(ranked)[1]]["metrics"]["auroc"]["best"] = True
            rows[min(ranked)[1]]["metrics"]["auroc"]["worst"] = True
        tables[name] = rows
    return tables
