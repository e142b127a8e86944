"""Binomial intervals for proportions, plain and cluster-adjusted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtri
from scipy.stats import beta

from medval._errors import InputError
from medval._types import Estimate
from medval.stats._bootstrap import bootstrap_ci
from medval.stats._metrics import get_metric
from medval.stats._validate import (
    IntArray,
    check_binary_labels,
    check_clusters,
    check_confidence_level,
    check_scores,
    check_threshold,
)

__all__ = [
    "case_proportion_ci",
    "clustered_proportion_ci",
    "clustered_proportion_variance",
    "proportion_ci",
    "threshold_metric_ci",
]

ProportionMethod = Literal["wilson", "clopper-pearson"]
_METHODS = ("wilson", "clopper-pearson")


def _check_method(method: str) -> ProportionMethod:
    if method not in _METHODS:
        raise InputError(f"Unknown proportion method {method!r}; valid: {', '.join(_METHODS)}.")
    return method  # type: ignore[return-value]


def _bounds(x: float, n: float, method: ProportionMethod, cl: float) -> tuple[float, float]:
    """Wilson or Clopper-Pearson bounds; ``x`` and ``n`` may be non-integer."""
    a = 1.0 - cl
    if method == "wilson":
        z = float(ndtri(1.0 - a / 2.0))
        p = x / n
        den = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / den
        half = z / den * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
        low = 0.0 if x <= 0 else max(0.0, float(centre - half))
        return low, 1.0 if x >= n else min(1.0, float(centre + half))
    low = 0.0 if x <= 0 else float(beta.ppf(a / 2.0, x, n - x + 1.0))
    high = 1.0 if x >= n else float(beta.ppf(1.0 - a / 2.0, x + 1.0, n - x))
    return low, high


def proportion_ci(
    successes: int,
    n: int,
    *,
    method: ProportionMethod = "wilson",
    confidence_level: float = 0.95,
) -> Estimate:
    """Confidence interval of a binomial proportion ``successes / n``.

    Wilson's score interval is the default: close to nominal coverage and
    never degenerate at 0 % or 100 %, where a percentile bootstrap collapses
    to a point. Clopper-Pearson inverts two one-sided binomial tests and
    guarantees at least nominal coverage (it is conservative).

    Parameters
    ----------
    successes : int
        Number of successes, ``0 <= successes <= n``.
    n : int
        Number of trials, ``n >= 1``.
    method : {"wilson", "clopper-pearson"}, default "wilson"
    confidence_level : float, default 0.95

    Returns
    -------
    Estimate
        ``method`` is the interval's name.

    Raises
    ------
    InputError
        If counts are negative, non-integer, or ``successes > n``.

    References
    ----------
    Wilson (1927), JASA 22:209-212; Clopper & Pearson (1934), Biometrika
    26:404-413; Brown, Cai & DasGupta (2001), Stat. Sci. 16:101-133.
    """
    cl = check_confidence_level(confidence_level)
    meth = _check_method(method)
    for name, v in (("successes", successes), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise InputError(f"{name} must be a whole count; got {v!r}.")
        if not np.isfinite(v) or not float(v).is_integer():
            raise InputError(f"{name} must be a whole count; got {v!r}.")
    x, m = int(successes), int(n)
    if m < 1 or not 0 <= x <= m:
        raise InputError(f"Need 0 <= successes <= n and n >= 1; got successes={x}, n={m}.")
    low, high = _bounds(x, m, meth, cl)
    return Estimate(x / m, low, high, confidence_level=cl, method=meth, n=m)


def clustered_proportion_variance(
    successes_per_cluster: ArrayLike, n_per_cluster: ArrayLike
) -> tuple[float, float]:
    """Ratio-estimator proportion and its cluster-robust variance.

    ``p = sum x_k / M`` with ``M = sum m_k``, and
    ``var = K / (K - 1) * sum (x_k - p m_k)^2 / M^2`` over the K clusters.
    With one trial per cluster it is the binomial variance times
    ``K / (K - 1)``.

    Parameters
    ----------
    successes_per_cluster : array of float, shape (K,)
    n_per_cluster : array of float, shape (K,)
        Trials per cluster (clusters without trials should be dropped).

    Returns
    -------
    (p, var) : tuple of float
        ``var`` is NaN with fewer than 2 clusters; both are NaN without
        trials.

    References
    ----------
    Rao & Scott (1992), Biometrics 48:577-585; Obuchowski (1998),
    Biometrics 54:1004.
    """
    x = np.asarray(successes_per_cluster, dtype=np.float64)
    m = np.asarray(n_per_cluster, dtype=np.float64)
    total = float(m.sum())
    if total <= 0.0:
        return float("nan"), float("nan")
    p = float(x.sum() / total)
    k = x.size
    if k < 2:
        return p, float("nan")
    return p, k / (k - 1.0) * float(np.sum((x - p * m) ** 2)) / total**2


def clustered_proportion_ci(
    successes_per_cluster: ArrayLike,
    n_per_cluster: ArrayLike,
    *,
    method: ProportionMethod = "wilson",
    confidence_level: float = 0.95,
) -> Estimate:
    """Proportion over clustered trials (several images per patient).

    The ratio estimator ``p = sum x_k / sum m_k`` has the cluster-robust
    variance ``K / (K - 1) * sum (x_k - p m_k)^2 / M^2``. Its ratio to the
    binomial variance is the design effect ``deff`` (floored at 1); the
    Wilson or Clopper-Pearson interval is then computed with the effective
    sample size ``M / deff``. At p = 0 or 1 the variance cannot be
    estimated and the conservative effective size K (one trial per
    patient) is used.

    Parameters
    ----------
    successes_per_cluster : array of int, shape (K,)
    n_per_cluster : array of int, shape (K,)
        Trials per cluster (>= 1 each; at least 2 clusters).
    method : {"wilson", "clopper-pearson"}, default "wilson"
    confidence_level : float, default 0.95

    Returns
    -------
    Estimate
        ``method`` is e.g. ``"wilson-clustered"``; ``n`` is the number of
        trials.

    References
    ----------
    Rao & Scott (1992), Biometrics 48:577-585 (design-effect adjustment);
    Korn & Graubard (1998), Survey Methodology 24:193-201 (effective
    sample size in exact intervals); Obuchowski (1998), Biometrics
    54:1004 (ratio estimator for clustered sensitivity and specificity).
    """
    cl = check_confidence_level(confidence_level)
    meth = _check_method(method)
    x = np.asarray(successes_per_cluster, dtype=np.float64)
    m = np.asarray(n_per_cluster, dtype=np.float64)
    if x.ndim != 1 or x.shape != m.shape:
        raise InputError(
            f"successes_per_cluster and n_per_cluster must be 1-D of equal length; got "
            f"{x.shape} and {m.shape}."
        )
    if x.size < 2:
        raise InputError(f"A cluster-adjusted interval needs at least 2 clusters; got {x.size}.")
    if np.any(m < 1) or np.any(x < 0) or np.any(x > m):
        raise InputError("Each cluster needs 0 <= successes <= trials and trials >= 1.")
    total = float(m.sum())
    p, var = clustered_proportion_variance(x, m)
    if 0.0 < p < 1.0:
        deff = max(1.0, var / (p * (1.0 - p) / total))
        n_eff = total / deff
    else:
        n_eff = float(x.size)
    low, high = _bounds(p * n_eff, n_eff, meth, cl)
    return Estimate(p, low, high, confidence_level=cl, method=f"{meth}-clustered", n=int(total))


BoolArray = np.ndarray[tuple[int], np.dtype[np.bool_]]

# metric -> (denominator description, cases in the denominator, successes among them)
_PROPORTIONS: dict[
    str,
    tuple[
        str, Callable[[IntArray, IntArray], BoolArray], Callable[[IntArray, IntArray], BoolArray]
    ],
] = {
    "sensitivity": ("positive cases", lambda y, p: y == 1, lambda y, p: p == 1),
    "specificity": ("negative cases", lambda y, p: y == 0, lambda y, p: p == 0),
    "ppv": ("predicted positives", lambda y, p: p == 1, lambda y, p: y == 1),
    "npv": ("predicted negatives", lambda y, p: p == 0, lambda y, p: y == 0),
    "accuracy": ("cases", lambda y, p: np.ones(y.shape, dtype=bool), lambda y, p: y == p),
}


def case_proportion_ci(
    successes: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    method: ProportionMethod = "wilson",
    confidence_level: float = 0.95,
) -> Estimate:
    """Interval of the share of cases that succeed (e.g. are classified right).

    Parameters
    ----------
    successes : array of bool, shape (n,)
    clusters : array, shape (n,), optional
        Patient keys: the interval is design-effect adjusted
        (:func:`clustered_proportion_ci`); otherwise binomial
        (:func:`proportion_ci`).
    method, confidence_level
        As for :func:`proportion_ci`.
    """
    hit = np.asarray(successes, dtype=bool)
    if hit.ndim != 1:
        raise InputError(f"successes must have shape (n,); got {hit.shape}.")
    coded = check_clusters(clusters, hit.size)
    if coded is None:
        return proportion_ci(
            int(hit.sum()), int(hit.size), method=method, confidence_level=confidence_level
        )
    codes, _ = coded
    return clustered_proportion_ci(
        np.bincount(codes, weights=hit.astype(np.float64)),
        np.bincount(codes),
        method=method,
        confidence_level=confidence_level,
    )


def threshold_metric_ci(
    metric: str,
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    threshold: float,
    clusters: ArrayLike | None = None,
    confidence_level: float = 0.95,
    method: ProportionMethod = "wilson",
    n_resamples: int = 2000,
    random_state: int | np.random.Generator | None = None,
) -> Estimate:
    """A metric at a fixed threshold (positive when ``score >= threshold``).

    Sensitivity, specificity, PPV, NPV and accuracy are proportions and get
    a binomial interval (:func:`proportion_ci`), cluster-adjusted with
    ``clusters`` (:func:`clustered_proportion_ci`). Balanced accuracy and F1
    are not proportions; they get :func:`bootstrap_ci` (BCa, clustered with
    ``clusters``) using ``n_resamples`` and ``random_state``.

    Returns
    -------
    Estimate
        value None with a reason when the denominator is empty (e.g. PPV
        with no predicted positive). Binomial intervals stay valid for
        small denominators, so unlike the bootstrap there is no n >= 10
        floor; a cluster-adjusted interval needs two patients.

    Raises
    ------
    InputError
        On an unknown or non-thresholded metric, a non-finite threshold,
        mismatched lengths, NaN/inf scores or clusters of the wrong length.

    References
    ----------
    Wilson (1927); Clopper & Pearson (1934); Rao & Scott (1992).
    """
    m = get_metric(metric)
    if m.kind != "label":
        raise InputError(
            f"threshold_metric_ci takes a thresholded metric "
            f"({', '.join(sorted(_PROPORTIONS))}, balanced_accuracy, f1); got {m.name!r}."
        )
    if m.name not in _PROPORTIONS:
        return bootstrap_ci(
            m,
            y_true,
            y_score,
            threshold=threshold,
            clusters=clusters,
            confidence_level=confidence_level,
            n_resamples=n_resamples,
            random_state=random_state,
        )
    cl = check_confidence_level(confidence_level)
    meth = _check_method(method)
    y = check_binary_labels(y_true)
    s = check_scores(y_score, y.shape[0])
    codes = check_clusters(clusters, y.shape[0])
    t = check_threshold(threshold)
    pred = (s >= t).astype(np.int64)
    den_name, den_fn, hit_fn = _PROPORTIONS[m.name]
    in_den = den_fn(y, pred)
    success = hit_fn(y, pred) & in_den
    n_den = int(in_den.sum())
    label = meth if clusters is None else f"{meth}-clustered"
    if n_den == 0:
        return Estimate(
            None,
            confidence_level=cl,
            method=label,
            n=0,
            higher_is_better=True,
            reason=f"{m.name} is undefined: there are no {den_name}",
        )
    if codes is None:
        est = proportion_ci(int(success.sum()), n_den, method=meth, confidence_level=cl)
    else:
        c, k = codes
        trials = np.bincount(c[in_den], minlength=k)
        hits = np.bincount(c[success], minlength=k)
        keep = trials > 0
        if keep.sum() < 2:
            return Estimate(
                float(success.sum() / n_den),
                confidence_level=cl,
                method=label,
                n=n_den,
                higher_is_better=True,
                reason="fewer than 2 patients in the denominator",
            )
        est = clustered_proportion_ci(hits[keep], trials[keep], method=meth, confidence_level=cl)
    return Estimate(
        est.value,
        est.low,
        est.high,
        confidence_level=cl,
        method=est.method,
        n=est.n,
        higher_is_better=True,
    )
