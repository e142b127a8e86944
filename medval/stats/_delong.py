"""DeLong's variance of the AUROC, its interval and the paired test.

Placement values are computed from midranks (Sun & Xu 2014), so the whole
analysis costs O(n log n).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, logit, ndtr, ndtri
from scipy.stats import rankdata

from medval._errors import InputError
from medval._types import Estimate
from medval.stats._bootstrap import bootstrap_ci
from medval.stats._validate import (
    MIN_CASES,
    FloatArray,
    IntArray,
    check_binary_labels,
    check_confidence_level,
    check_scores,
)

__all__ = ["PairedTest", "auroc_ci", "delong_ci", "delong_covariance", "delong_test"]

DelongScale = Literal["logit", "auc"]
# scale -> Estimate.method; "delong-logit" is what results recorded before
# the scale option existed, so it must not change.
_SCALE_METHODS: dict[str, str] = {"logit": "delong-logit", "auc": "delong-wald"}


def _check_scale(scale: object) -> DelongScale:
    if not isinstance(scale, str) or scale not in _SCALE_METHODS:
        raise InputError(
            f"Unknown DeLong interval scale {scale!r}; valid: {', '.join(_SCALE_METHODS)}. "
            "Use 'logit' (default, stays inside (0, 1)) or 'auc' (R pROC's interval)."
        )
    return scale  # type: ignore[return-value]


def _placements(y: IntArray, scores: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """AUROCs (m,), V10 (m, n1) and V01 (m, n0) for scores of shape (m, n).

    Sun & Xu (2014): with midranks ``R`` over all cases and ``R1``/``R0``
    within each class, ``V10_i = (R_i - R1_i) / n0`` and
    ``V01_j = 1 - (R_j - R0_j) / n1``.
    """
    pos, neg = y == 1, y == 0
    n1, n0 = int(pos.sum()), int(neg.sum())
    r = rankdata(scores, axis=1)
    r1 = rankdata(scores[:, pos], axis=1)
    r0 = rankdata(scores[:, neg], axis=1)
    v10 = (r[:, pos] - r1) / n0
    v01 = 1.0 - (r[:, neg] - r0) / n1
    return v10.mean(axis=1), v10, v01


def delong_covariance(y_true: ArrayLike, scores: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """AUROCs and DeLong covariance matrix of ``m`` scores on the same cases.

    Parameters
    ----------
    y_true : array of int, shape (n,)
        0/1 labels; both classes must be present.
    scores : array of float, shape (n,) or (m, n)
        One or several score vectors.

    Returns
    -------
    aucs : array, shape (m,)
    cov : array, shape (m, m)
        ``S10 / n1 + S01 / n0`` (eq. 7 of DeLong et al.), with the sample
        covariances ``S10``, ``S01`` of the placement values.

    References
    ----------
    DeLong, DeLong & Clarke-Pearson (1988), Biometrics 44:837-845;
    Sun & Xu (2014), IEEE Signal Processing Letters 21:1389-1393.
    """
    y = check_binary_labels(y_true)
    s = np.asarray(scores)
    s2 = np.atleast_2d(s)
    s2 = np.stack([check_scores(row, y.shape[0]) for row in s2])
    n1 = int(y.sum())
    n0 = y.shape[0] - n1
    if n1 < 2 or n0 < 2:
        raise InputError(
            f"DeLong's variance needs at least 2 positive and 2 negative cases; got {n1} "
            f"positive and {n0} negative."
        )
    aucs, v10, v01 = _placements(y, s2)
    cov = np.atleast_2d(np.cov(v10)) / n1 + np.atleast_2d(np.cov(v01)) / n0
    return aucs, cov


def delong_ci(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    confidence_level: float = 0.95,
    scale: DelongScale = "logit",
) -> Estimate:
    """AUROC with DeLong's interval, on the logit or the AUC scale.

    Both are Wald intervals with DeLong's variance ``se**2``:

    - ``scale="logit"`` (default): ``logit(A) +/- z * se / (A (1 - A))``
      mapped back with the logistic function (delta method), so it stays
      inside (0, 1) and is asymmetric near 1, where the plain Wald interval
      over-shoots and under-covers.
    - ``scale="auc"``: ``A +/- z * se``, clipped to [0, 1]. This is what
      R's pROC reports (``ci.auc(roc, method="delong")``, pROC's
      ``ci_auc_delong``, which clips the same way); use it to reproduce a
      published pROC analysis.

    Parameters
    ----------
    y_true : array of int, shape (n,)
        0/1 labels.
    y_score : array of float, shape (n,)
        Higher means more likely positive.
    confidence_level : float, default 0.95
    scale : {"logit", "auc"}, default "logit"
        Scale on which the normal approximation is applied.

    Returns
    -------
    Estimate
        ``method`` is ``"delong-logit"`` or ``"delong-wald"`` (AUC scale).
        Bounds are None with a reason when the AUROC is 0 or 1 (zero
        variance) or n < 10; value is None with one class only.

    Raises
    ------
    InputError
        On an unknown ``scale``, mismatched lengths, NaN/inf scores or
        non-binary labels.

    References
    ----------
    DeLong et al. (1988), Biometrics 44:837-845; Sun & Xu (2014), IEEE
    SPL 21:1389-1393; Pepe (2003), *The Statistical Evaluation of Medical
    Tests*, sec. 5.2.3 (logit transform); Robin et al. (2011), BMC
    Bioinformatics 12:77 (pROC, AUC-scale interval).
    """
    cl = check_confidence_level(confidence_level)
    sc = _check_scale(scale)
    y = check_binary_labels(y_true)
    s = check_scores(y_score, y.shape[0])
    n, n1 = int(y.shape[0]), int(y.sum())

    def est(
        value: float | None,
        low: float | None = None,
        high: float | None = None,
        reason: str | None = None,
    ) -> Estimate:
        return Estimate(
            value,
            low,
            high,
            confidence_level=cl,
            method=_SCALE_METHODS[sc],
            n=n,
            reason=reason,
            higher_is_better=True,
        )

    if n1 == 0 or n1 == n:
        return est(None, reason="AUROC is undefined with one class only")
    if n1 < 2 or n - n1 < 2 or n < MIN_CASES:
        auc = float(_placements(y, s[None, :])[0][0])
        return est(auc, reason=f"too few cases for an interval (n={n}, positives={n1})")
    aucs, cov = delong_covariance(y, s)
    auc, var = float(aucs[0]), float(cov[0, 0])
    if var <= 0.0 or auc in (0.0, 1.0):
        return est(
            auc,
            reason=f"AUROC is {auc:g}: DeLong's variance is zero (perfect "
            "separation); use a bootstrap or more cases",
        )
    z = float(ndtri(0.5 + cl / 2.0))
    if sc == "auc":
        half = z * float(np.sqrt(var))
        return est(auc, max(0.0, auc - half), min(1.0, auc + half))
    half = z * float(np.sqrt(var)) / (auc * (1.0 - auc))
    return est(auc, float(expit(logit(auc) - half)), float(expit(logit(auc) + half)))


@dataclasses.dataclass(frozen=True)
class PairedTest:
    """A paired test of two models on the same cases.

    Attributes
    ----------
    difference : Estimate
        Metric of model A minus model B with its interval.
    statistic : float or None
        The z statistic of the difference; None when not estimable
        (``difference.reason`` says why).
    p_value : float or None
        Two-sided p-value of "no difference"; None when not estimable.
    """

    difference: Estimate
    statistic: float | None
    p_value: float | None


def delong_test(
    y_true: ArrayLike,
    score_a: ArrayLike,
    score_b: ArrayLike,
    *,
    confidence_level: float = 0.95,
) -> PairedTest:
    """DeLong's paired test of two correlated AUROCs.

    Parameters
    ----------
    y_true : array of int, shape (n,)
    score_a, score_b : array of float, shape (n,)
        Two models' scores on the same cases.
    confidence_level : float, default 0.95

    Returns
    -------
    PairedTest
        ``difference`` is AUROC(a) - AUROC(b) with a Wald interval on the
        difference scale (method ``"delong-paired"``), clipped to [-1, 1].
        This is pROC's ``roc.test`` interval (which has no scale option
        and no clip; the clip only acts when a bound passes +/-1). Not
        estimable,
        with a reason, like :func:`delong_ci`: value None with one class
        only; no interval, statistic or p-value with n < 10 or fewer than
        two cases of a class. Identical rankings (zero variance of the
        difference) give no interval, statistic 0 and p-value 1.

    Raises
    ------
    InputError
        On mismatched lengths, NaN/inf scores or non-binary labels.

    References
    ----------
    DeLong et al. (1988), Biometrics 44:837-845; Sun & Xu (2014).
    """
    cl = check_confidence_level(confidence_level)
    y = check_binary_labels(y_true)
    a = check_scores(score_a, y.shape[0], name="score_a")
    b = check_scores(score_b, y.shape[0], name="score_b")
    n, n1 = int(y.shape[0]), int(y.sum())

    def not_estimable(value: float | None, reason: str) -> Estimate:
        return Estimate(
            value,
            confidence_level=cl,
            method="delong-paired",
            n=n,
            reason=reason,
            higher_is_better=True,
        )

    if n1 == 0 or n1 == n:
        return PairedTest(not_estimable(None, "AUROC is undefined with one class only"), None, None)
    if n1 < 2 or n - n1 < 2 or n < MIN_CASES:
        aucs = _placements(y, np.stack([a, b]))[0]
        reason = f"too few cases for a paired test (n={n}, positives={n1})"
        return PairedTest(not_estimable(float(aucs[0] - aucs[1]), reason), None, None)
    aucs, cov = delong_covariance(y, np.stack([a, b]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    if var <= 1e-15:
        reason = "the two AUROCs do not vary apart (identical rankings)"
        return PairedTest(not_estimable(diff, reason), 0.0, 1.0)
    se = float(np.sqrt(var))
    z = diff / se
    q = float(ndtri(0.5 + cl / 2.0))
    est = Estimate(
        diff,
        max(-1.0, diff - q * se),
        min(1.0, diff + q * se),
        confidence_level=cl,
        method="delong-paired",
        n=n,
        higher_is_better=True,
    )
    return PairedTest(est, z, float(2.0 * ndtr(-abs(z))))


def auroc_ci(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    confidence_level: float = 0.95,
    scale: DelongScale = "logit",
    n_resamples: int = 2000,
    random_state: int | np.random.Generator | None = None,
    n_jobs: int | None = None,
) -> Estimate:
    """AUROC with the default interval: DeLong, or a patient bootstrap.

    Without ``clusters`` this is :func:`delong_ci` (O(n log n)); with
    patient keys it is the patient-clustered, stratified BCa bootstrap,
    since DeLong assumes independent cases. ``method`` records which.

    Parameters
    ----------
    y_true : array of int, shape (n,)
    y_score : array of float, shape (n,)
    clusters : array, shape (n,), optional
        Patient key of each case.
    confidence_level : float, default 0.95
    scale : {"logit", "auc"}, default "logit"
        Scale of DeLong's Wald interval (see :func:`delong_ci`); ``"auc"``
        reproduces R's pROC. Checked always, used only without
        ``clusters`` (the BCa bootstrap needs no scale).
    n_resamples, random_state, n_jobs
        Used only for the clustered bootstrap (see :func:`bootstrap_ci`).

    Returns
    -------
    Estimate
        ``method`` is ``"delong-logit"``, ``"delong-wald"`` or
        ``"bootstrap-bca-clustered"``.

    Raises
    ------
    InputError
        On an unknown ``scale`` and the input errors of :func:`delong_ci`
        and :func:`bootstrap_ci`.

    References
    ----------
    DeLong et al. (1988); Obuchowski (1997), Biometrics 53:567-578 (why
    clustered ROC data need a cluster-level variance).
    """
    sc = _check_scale(scale)
    if clusters is None:
        return delong_ci(y_true, y_score, confidence_level=confidence_level, scale=sc)
    return bootstrap_ci(
        "auroc",
        y_true,
        y_score,
        clusters=clusters,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        random_state=random_state,
        n_jobs=n_jobs,
    )
