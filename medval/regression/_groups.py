"""Error metrics per group (scanner, site, sex, age band) and the worst group."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medval._errors import InputError
from medval.regression._checks import check_count, check_pair
from medval.regression._metrics import error_estimates
from medval.regression._resampling import Resampling

__all__ = ["MISSING_GROUP", "group_errors"]

#: The group of cases whose group value is missing (None or NaN).
MISSING_GROUP = "(missing)"


def _labels(groups: ArrayLike, n: int) -> list[str]:
    g = np.asarray(groups, dtype=object)
    if g.ndim != 1 or g.shape[0] != n:
        raise InputError(
            f"groups must hold one group value per case, shape ({n},); got shape {g.shape}. "
            "Pass a cohort column aligned with the predictions, e.g. cohort['manufacturer']."
        )
    return [MISSING_GROUP if v is None or v != v else str(v) for v in g]


def group_errors(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    min_cases: int = 10,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """MAE, bias and RMSE of ``y_pred - y_true`` in each group, and the worst group.

    Each group's intervals are those of :func:`error_metrics` on its
    cases alone (patients resampled within the group when ``clusters`` is
    given); one generator serves all groups. Groups smaller than
    ``min_cases`` get no numbers, so that a report cannot reveal a tiny
    group and no one ranks on noise.

    Parameters
    ----------
    y_true, y_pred : array of float, shape (n,)
    groups : array, shape (n,)
        Group value of each case; compared as text, missing values (None,
        NaN) form the group ``"(missing)"``.
    clusters : array, shape (n,), optional
        Patient key of each case.
    min_cases : int, default 10
        Smallest group that is estimated.
    n_resamples : int, default 2000
    confidence_level : float, default 0.95
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    (rows, worst)
        ``rows``: one dict per group, sorted by group text: ``group``,
        ``n``, and ``mae``, ``bias``, ``rmse`` (Estimate dicts), or
        instead ``reason`` for a group below ``min_cases``. ``worst``: the
        group with the highest MAE among the estimated ones (ties: the
        first in row order), None when none is estimated.

    Raises
    ------
    InputError
        On invalid arrays, groups of the wrong length or ``min_cases < 1``.

    References
    ----------
    Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13;
    Field & Welsh (2007), J. R. Stat. Soc. B 69:369-390.
    """
    t, p = check_pair(y_true, y_pred)
    labels = np.array(_labels(groups, t.size), dtype=object)
    least = check_count(min_cases, name="min_cases", minimum=1)
    rs = Resampling.make(
        t.size,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        random_state=random_state,
        clusters=clusters,
    )
    rows: list[dict[str, Any]] = []
    worst: tuple[float, str] | None = None
    for value in sorted(set(labels.tolist())):
        mask = labels == value
        n = int(mask.sum())
        if n < least:
            rows.append({"group": value, "n": n, "reason": f"only {n} cases; min_cases is {least}"})
            continue
        est = error_estimates(p[mask] - t[mask], ("mae", "bias", "rmse"), rs.subset(mask))
        rows.append({"group": value, "n": n, **{k: e.to_dict() for k, e in est.items()}})
        mae = est["mae"].value
        if mae is not None and (worst is None or mae > worst[0]):
            worst = (mae, value)
    return rows, None if worst is None else worst[1]
