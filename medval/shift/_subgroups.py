"""Subgroup performance tables: each subgroup, its interval, and its gap to the rest.

For every value of a grouping column (manufacturer, site, sex, age band, an
intersection of two columns, see :func:`intersect`) the table holds the case,
patient and event counts, each metric with the statistics engine's interval
(:func:`medval.stats.auroc_ci`, :func:`medval.stats.threshold_metric_ci`),
and the difference *subgroup minus the rest of the cohort* with a Wald
interval and a two-sided p-value, adjusted over the subgroups of the column
(Holm or Benjamini-Hochberg).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr, ndtri

from medval._errors import InputError
from medval._types import Estimate
from medval.stats import (
    auroc,
    auroc_ci,
    benjamini_hochberg,
    check_binary_labels,
    check_clusters,
    check_confidence_level,
    check_scores,
    check_threshold,
    clustered_auroc_variance,
    clustered_proportion_variance,
    holm,
    normalise_random_state,
    threshold_metric_ci,
)

__all__ = ["SUBGROUP_METRICS", "intersect", "subgroup_keys", "subgroup_table"]

#: Metrics a subgroup table can hold (AUROC and proportions at the threshold).
SUBGROUP_METRICS: tuple[str, ...] = (
    "auroc",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "accuracy",
)
_ADJUST = {"holm": holm, "bh": benjamini_hochberg}
MISSING = "(missing)"
#: Joins intersection names and values: ``"manufacturer×sex"``.  # noqa: RUF003
SEP = "\u00d7"

FloatArray = NDArray[np.float64]


def intersect(groups: Mapping[str, ArrayLike], first: str, second: str) -> tuple[str, NDArray[Any]]:
    """Build an intersection column, e.g. ``manufacturer`` and ``sex``.

    Parameters
    ----------
    groups : mapping of str to array, shape (n,)
    first, second : str
        Two keys of ``groups``.

    Returns
    -------
    name : str
        The two names joined by :data:`SEP` (U+00D7, the multiplication sign).
    values : array of str, shape (n,)
        The two values joined by :data:`SEP` per case; missing values read
        ``"(missing)"``.
    """
    for key in (first, second):
        if key not in groups:
            raise InputError(f"intersect: no grouping column {key!r}; have {sorted(groups)}.")
    a, b = _labels(groups[first]), _labels(groups[second])
    if a.shape != b.shape:
        raise InputError(f"intersect: {first!r} and {second!r} differ in length.")
    return f"{first}{SEP}{second}", np.array([f"{x}{SEP}{y}" for x, y in zip(a, b, strict=True)])


def _labels(values: ArrayLike) -> NDArray[Any]:
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise InputError(f"a grouping column must be 1-D of shape (n,); got shape {arr.shape}.")
    out = np.empty(arr.shape[0], dtype=object)
    for i, v in enumerate(arr):
        missing = v is None or (isinstance(v, float) and np.isnan(v)) or str(v) in ("", "nan")
        out[i] = MISSING if missing else str(v)
    return out


def _proportion_variance(
    hit: NDArray[np.bool_], den: NDArray[np.bool_], codes: Any
) -> tuple[float, float]:
    """Proportion and its cluster-robust variance, per case or per patient."""
    if int(den.sum()) < 2:
        return float("nan"), float("nan")
    x = (hit & den).astype(float)
    m = den.astype(float)
    if codes is None:
        return clustered_proportion_variance(x[den], m[den])
    k = int(codes.max()) + 1
    x, m = (
        np.bincount(codes, weights=x, minlength=k),
        np.bincount(codes, weights=m, minlength=k),
    )
    keep = m > 0
    return clustered_proportion_variance(x[keep], m[keep])


def _point_and_var(
    metric: str, y: NDArray[np.int64], s: FloatArray, thr: float, codes: Any
) -> tuple[float, float]:
    if metric == "auroc":
        if y.min(initial=1) == y.max(initial=0) or y.size < 4:
            return float("nan"), float("nan")
        c = codes if codes is not None else np.arange(y.size)
        return auroc(y, s), clustered_auroc_variance(y, s, c)
    pred = s >= thr
    den, hit = {
        "sensitivity": (y == 1, pred),
        "specificity": (y == 0, ~pred),
        "ppv": (pred, y == 1),
        "npv": (~pred, y == 0),
        "accuracy": (np.ones(y.size, dtype=bool), pred == (y == 1)),
    }[metric]
    return _proportion_variance(hit & den, den, codes)


def _difference(
    metric: str, y: Any, s: Any, thr: float, codes: Any, mask: Any, cl: float
) -> tuple[Estimate, float | None]:
    """Subgroup minus rest: Wald interval and z-test of two independent estimates."""
    a, va = _point_and_var(metric, y[mask], s[mask], thr, None if codes is None else codes[mask])
    b, vb = _point_and_var(metric, y[~mask], s[~mask], thr, None if codes is None else codes[~mask])
    method = "wald-unpaired-" + ("delong" if metric == "auroc" else "binomial")
    method += "-clustered" if codes is not None else ""
    n = int(mask.sum())
    common: dict[str, Any] = {
        "confidence_level": cl,
        "method": method,
        "n": n,
        "higher_is_better": True,
    }
    if not (np.isfinite(a) and np.isfinite(b)):
        return Estimate(
            None, reason=f"{metric} is undefined in the subgroup or the rest", **common
        ), None
    diff = a - b
    var = va + vb
    if not np.isfinite(var) or var <= 1e-15:
        return Estimate(
            diff, reason="variance of the difference is zero or not estimable", **common
        ), None
    se = float(np.sqrt(var))
    q = float(ndtri(0.5 + cl / 2.0))
    est = Estimate(diff, max(-1.0, diff - q * se), min(1.0, diff + q * se), **common)
    return est, float(2.0 * ndtr(-abs(diff / se)))


def subgroup_table(
    y_true: ArrayLike,
    y_score: ArrayLike,
    groups: Mapping[str, ArrayLike],
    *,
    threshold: float,
    clusters: ArrayLike | None = None,
    metrics: Sequence[str] = ("auroc", "sensitivity", "specificity"),
    min_events: int = 100,
    min_non_events: int = 100,
    min_cell: int = 11,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    random_state: int | np.random.Generator | None = 0,
    adjust: str = "holm",
) -> dict[str, list[dict[str, Any]]]:
    """Performance per subgroup, with intervals and the gap to the rest.

    Parameters
    ----------
    y_true : array of int, shape (n,)
        0/1 labels.
    y_score : array of float, shape (n,)
        Score of the positive class; positive when ``score >= threshold``.
    groups : mapping of str to array, shape (n,)
        Grouping columns by name (``"manufacturer"``, ``"sex"``, an
        intersection built with :func:`intersect`). Missing values form the
        subgroup ``"(missing)"``.
    threshold : float
        Operating threshold for the thresholded metrics.
    clusters : array, shape (n,), optional
        Patient key per case: intervals are then patient-clustered and
        ``patients`` counts distinct keys.
    metrics : sequence of str, default ("auroc", "sensitivity", "specificity")
        From :data:`SUBGROUP_METRICS`.
    min_events, min_non_events : int, default 100
        Below either count a row is flagged ``underpowered`` (the AUROC
        interval is wide); the numbers are still reported.
    min_cell : int, default 11
        Rows with fewer cases are ``suppressed``: no metric is computed, so
        a report cannot reveal a tiny group.
    confidence_level : float, default 0.95
    n_resamples, random_state
        For the patient-clustered bootstrap of the AUROC interval.
    adjust : {"holm", "bh"}, default "holm"
        Multiplicity adjustment of the difference p-values, over the
        non-suppressed subgroups of one column, per metric.

    Returns
    -------
    dict of str to list of dict
        ``{column: rows}``; put ``rows`` in
        ``ValidationResult.tables[f"subgroup.{column}"]``. Each row holds
        ``column``, ``value``, ``n``, ``patients``, ``events``,
        ``non_events``, ``suppressed``, ``underpowered`` and ``metrics``:
        ``{metric: {"estimate": Estimate dict, "difference": Estimate
        dict, "p_value", "p_adjusted", "best", "worst"}}``.

    Notes
    -----
    *Difference method.* The subgroup and the rest of the cohort are
    disjoint, so their estimates are treated as independent:
    ``d = m_g - m_rest``, ``var = var_g + var_rest``, Wald interval and
    z-test. The AUROC variance is DeLong's, or Obuchowski's clustered form
    with ``clusters``; a proportion's variance is binomial, or the
    cluster-robust ratio-estimator variance with ``clusters``. Independence
    holds when the column is constant within a patient (sex, site); it is
    approximate otherwise. ``best``/``worst`` mark the extreme estimable
    values among non-suppressed rows of a column.

    References
    ----------
    DeLong et al. (1988), Biometrics 44:837-845; Obuchowski (1997),
    Biometrics 53:567-578; Rao & Scott (1992), Biometrics 48:577-585;
    Holm (1979); Benjamini & Hochberg (1995), JRSS-B 57:289-300.
    """
    cl = check_confidence_level(confidence_level)
    y = check_binary_labels(y_true)
    s = check_scores(y_score, y.shape[0])
    codes_k = check_clusters(clusters, y.shape[0])
    codes = None if codes_k is None else codes_k[0]
    if adjust not in _ADJUST:
        raise InputError(f"Unknown adjust {adjust!r}; valid: {sorted(_ADJUST)}.")
    bad = [m for m in metrics if m not in SUBGROUP_METRICS]
    if bad or not metrics:
        raise InputError(f"Unknown subgroup metrics {bad}; valid: {list(SUBGROUP_METRICS)}.")
    if not groups:
        raise InputError("groups is empty; pass e.g. {'manufacturer': cohort['manufacturer']}.")
    if min_cell < 1:
        raise InputError(f"min_cell must be at least 1; got {min_cell}.")
    thr = check_threshold(threshold)
    rng, seed = normalise_random_state(random_state)
    # An int seed is passed on as such, so every subgroup's Estimate records it.
    draw: int | np.random.Generator = rng if seed is None else seed
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, column in groups.items():
        labels = _labels(column)
        if labels.shape[0] != y.shape[0]:
            raise InputError(
                f"grouping column {name!r} has {labels.shape[0]} values; expected one per case "
                f"({y.shape[0]}). Align it with the predictions."
            )
        tables[name] = _column_rows(
            name, labels, y, s, thr, clusters, codes, tuple(metrics),
            (min_events, min_non_events, min_cell), cl, n_resamples, draw, _ADJUST[adjust],
        )  # fmt: skip
    return tables


def _column_rows(
    name: str,
    labels: NDArray[Any],
    y: NDArray[np.int64],
    s: FloatArray,
    thr: float,
    clusters: ArrayLike | None,
    codes: Any,
    metrics: tuple[str, ...],
    limits: tuple[int, int, int],
    cl: float,
    n_resamples: int,
    rng: int | np.random.Generator,
    adjust_fn: Any,
) -> list[dict[str, Any]]:
    min_events, min_non_events, min_cell = limits
    rows: list[dict[str, Any]] = []
    pvals: dict[str, list[tuple[int, float]]] = {m: [] for m in metrics}
    cl_arr = None if clusters is None else np.asarray(clusters)
    for value in sorted(set(labels.tolist())):
        mask = labels == value
        n, events = int(mask.sum()), int(y[mask].sum())
        patients = n if codes is None else int(np.unique(codes[mask]).size)
        row: dict[str, Any] = {
            "column": name, "value": value, "n": n, "patients": patients, "events": events,
            "non_events": n - events, "suppressed": n < min_cell,
            "underpowered": events < min_events or n - events < min_non_events, "metrics": {},
        }  # fmt: skip
        for metric in metrics:
            entry: dict[str, Any] = {
                "p_value": None,
                "p_adjusted": None,
                "best": False,
                "worst": False,
            }
            if row["suppressed"]:
                reason = f"suppressed: fewer than {min_cell} cases"
                entry["estimate"] = Estimate(
                    None, method="suppressed", n=n, reason=reason
                ).to_dict()
                entry["difference"] = entry["estimate"]
            else:
                sub_c = None if cl_arr is None else cl_arr[mask]
                if metric == "auroc":
                    est = auroc_ci(y[mask], s[mask], clusters=sub_c, confidence_level=cl,
                                   n_resamples=n_resamples, random_state=rng)  # fmt: skip
                else:
                    est = threshold_metric_ci(metric, y[mask], s[mask], threshold=thr,
                                              clusters=sub_c, confidence_level=cl)  # fmt: skip
                diff, p = _difference(metric, y, s, thr, codes, mask, cl)
                entry["estimate"], entry["difference"], entry["p_value"] = (
                    est.to_dict(),
                    diff.to_dict(),
                    p,
                )
                if p is not None:
                    pvals[metric].append((len(rows), p))
            row["metrics"][metric] = entry
        rows.append(row)
    for metric in metrics:
        if pvals[metric]:
            adj = adjust_fn([p for _, p in pvals[metric]])
            for (i, _), a in zip(pvals[metric], adj, strict=True):
                rows[i]["metrics"][metric]["p_adjusted"] = float(a)
        ranked = [(r["metrics"][metric]["estimate"].get("value"), i) for i, r in enumerate(rows)]
        ranked = [(v, i) for v, i in ranked if v is not None and not rows[i]["suppressed"]]
        if len(ranked) >= 2:
            rows[max(ranked)[1]]["metrics"][metric]["best"] = True
            rows[min(ranked)[1]]["metrics"][metric]["worst"] = True
    return rows


def subgroup_keys(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
) -> dict[str, Estimate]:
    """Result keys ``subgroup.<column>=<value>.<metric>`` for a subgroup table.

    Parameters
    ----------
    rows : list of dict, or dict of str to list of dict
        Rows of one column, or the whole output of :func:`subgroup_table`.

    Returns
    -------
    dict of str to Estimate
        Suppressed rows give an Estimate with value None and a reason, so a
        gate on such a subgroup fails closed rather than passing silently.
    """
    all_rows = [r for rs in rows.values() for r in rs] if isinstance(rows, Mapping) else list(rows)
    out: dict[str, Estimate] = {}
    for row in all_rows:
        for metric, entry in row["metrics"].items():
            key = f"subgroup.{row['column']}={row['value']}.{metric}"
            out[key] = Estimate.from_dict({"value": None, **entry["estimate"]})
    return out
