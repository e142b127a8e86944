"""Coverage diagnostics of prediction sets and calibration split checks."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from medval._errors import InputError
from medval._types import Estimate
from medval.stats import proportion_ci

__all__ = ["check_disjoint_patients", "clopper_pearson", "coverage_difference", "coverage_report"]


def clopper_pearson(successes: int, n: int, *, ci_level: float = 0.95) -> Estimate:
    """Proportion with its exact binomial interval (Clopper & Pearson 1934).

    ``low = Beta(a/2; k, n-k+1)``, ``high = Beta(1-a/2; k+1, n-k)`` quantiles
    (0 and 1 at the edges). ``n = 0`` gives a value-less Estimate with a reason.
    """
    if n == 0:
        return Estimate(
            value=None,
            confidence_level=ci_level,
            method="clopper-pearson",
            n=0,
            reason="no cases",
            higher_is_better=True,
        )
    a = 1.0 - ci_level
    low = 0.0 if successes == 0 else float(stats.beta.ppf(a / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(stats.beta.ppf(1 - a / 2, successes + 1, n - successes))
    return Estimate(
        value=successes / n,
        low=low,
        high=high,
        confidence_level=ci_level,
        method="clopper-pearson",
        n=n,
        higher_is_better=True,
    )


def coverage_difference(
    covered: int, n: int, reference_covered: int, reference_n: int, *, ci_level: float = 0.95
) -> Estimate:
    """Difference of two independent coverages with Newcombe's hybrid score interval.

    ``covered / n - reference_covered / reference_n`` (e.g. external site
    minus internal test set), with the interval built from the two Wilson
    intervals (Newcombe 1998, method 10), which stays inside [-1, 1] and
    behaves at coverages near 1.

    Raises
    ------
    InputError
        If either sample is empty or a count is out of range.
    """
    if n < 1 or reference_n < 1:
        raise InputError(
            f"coverage_difference needs cases on both sides; got n={n}, reference_n={reference_n}."
        )
    a = proportion_ci(covered, n, method="wilson", confidence_level=ci_level)
    b = proportion_ci(reference_covered, reference_n, method="wilson", confidence_level=ci_level)
    # with n >= 1 both Wilson intervals are estimable (no None)
    pa, la, ha = (float(v or 0.0) for v in (a.value, a.low, a.high))
    pb, lb, hb = (float(v or 0.0) for v in (b.value, b.low, b.high))
    d = pa - pb
    low = d - float(np.hypot(pa - la, hb - pb))
    high = d + float(np.hypot(ha - pa, pb - lb))
    return Estimate(
        value=d,
        low=max(-1.0, low),
        high=min(1.0, high),
        confidence_level=ci_level,
        method="newcombe-wilson",
        n=int(n + reference_n),
    )


def _cell(covered: NDArray[np.bool_], target: float, ci_level: float) -> dict[str, Any]:
    est = clopper_pearson(int(covered.sum()), int(covered.shape[0]), ci_level=ci_level)
    under = est.high is not None and est.high < target
    over = est.low is not None and est.low > target
    return {
        "coverage": est,
        "n": int(covered.shape[0]),
        "flag": bool(under or over),
        "direction": "under" if under else ("over" if over else None),
    }


def coverage_report(
    sets: ArrayLike,
    labels: ArrayLike,
    *,
    groups: ArrayLike | None = None,
    confidence_level: float = 0.9,
    ci_level: float = 0.95,
) -> dict[str, Any]:
    """Marginal, per-class, per-group and size-stratified coverage of prediction sets.

    Coverage is the share of cases whose set holds the true label, with an
    exact Clopper-Pearson interval. A class or group is flagged when its
    interval excludes ``confidence_level`` (``direction`` "under" is the
    clinically relevant failure). Size-stratified coverage (Angelopoulos et
    al. 2021, sec. 4) exposes sets that are only valid on average.

    Parameters
    ----------
    sets : array of bool, shape (n, K)
        Prediction sets.
    labels : array of int, shape (n,)
        True classes.
    groups : array, shape (n,), optional
        Group key per case (manufacturer, site, sex, age band).
    confidence_level : float, default 0.9
        The target coverage.
    ci_level : float, default 0.95
        Level of the intervals.

    Returns
    -------
    dict
        ``coverage`` (Estimate), ``target``, ``n``, ``mean_set_size``,
        ``singleton_rate``, ``empty_rate``, ``per_class``, ``per_group``
        and ``by_set_size`` (each ``{key: {"coverage", "n", "flag",
        "direction"}}``), ``flagged_classes``, ``flagged_groups``.
    """
    S = np.asarray(sets)
    if S.ndim != 2 or S.dtype != np.bool_:
        raise InputError(f"sets must be a boolean array (n, K); got {S.dtype} {S.shape}.")
    n, k = S.shape
    y = np.asarray(labels)
    if y.shape != (n,) or y.dtype.kind not in "iu" or (n and (y.min() < 0 or y.max() >= k)):
        raise InputError(f"labels must be integers in 0..{k - 1} with shape ({n},).")
    if not 0 < confidence_level < 1 or not 0 < ci_level < 1:
        raise InputError("confidence_level and ci_level must be in (0, 1).")
    covered = S[np.arange(n), y]
    sizes = S.sum(axis=1)
    report: dict[str, Any] = {
        "coverage": _cell(covered, confidence_level, ci_level)["coverage"],
        "target": float(confidence_level),
        "n": int(n),
        "mean_set_size": float(sizes.mean()) if n else 0.0,
        "singleton_rate": float(np.mean(sizes == 1)) if n else 0.0,
        "empty_rate": float(np.mean(sizes == 0)) if n else 0.0,
        "per_class": {
            int(c): _cell(covered[y == c], confidence_level, ci_level) for c in np.unique(y)
        },
        "by_set_size": {
            int(s): _cell(covered[sizes == s], confidence_level, ci_level) for s in np.unique(sizes)
        },
        "per_group": {},
    }
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise InputError(f"groups must have shape ({n},); got {g.shape}.")
        report["per_group"] = {
            key: _cell(covered[g == key], confidence_level, ci_level)
            for key in np.unique(g).tolist()
        }
    report["flagged_classes"] = [c for c, v in report["per_class"].items() if v["flag"]]
    report["flagged_groups"] = [c for c, v in report["per_group"].items() if v["flag"]]
    return report


def check_disjoint_patients(
    calibration_patient_keys: ArrayLike, evaluation_patient_keys: ArrayLike
) -> None:
    """Raise when a patient has cases in both the calibration and evaluated sets.

    Conformal guarantees need the calibration cases exchangeable with, and
    independent of, the evaluated ones; a patient on both sides breaks that.

    Raises
    ------
    InputError
        Listing up to five overlapping patient keys and their count.
    """
    cal = np.asarray(calibration_patient_keys).astype(str)
    ev = np.asarray(evaluation_patient_keys).astype(str)
    common = np.intersect1d(cal, ev)
    if common.size:
        raise InputError(
            f"{common.size} patient(s) have cases in both the calibration and the evaluated "
            f"sets, e.g. {common[:5].tolist()}; split by patient_key so each patient is on "
            "one side only."
        )
