"""Paired comparison of two models on the same cases, with non-inferiority."""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr, ndtri

from medval._errors import InputError
from medval._types import Estimate
from medval.stats._bootstrap import prepare
from medval.stats._core import (
    BootMethod,
    Interval,
    JointEvaluator,
    check_method,
    check_n_resamples,
    run_bootstrap,
)
from medval.stats._delong import delong_covariance
from medval.stats._metrics import get_metric
from medval.stats._resample import make_design
from medval.stats._validate import (
    MIN_CASES,
    check_clusters,
    check_confidence_level,
    normalise_random_state,
    too_few_for_interval,
)

__all__ = ["Comparison", "Verdict", "compare"]

Verdict = Literal["superior", "non-inferior", "inferior", "inconclusive"]


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Candidate versus baseline on the same cases.

    Attributes
    ----------
    difference : Estimate
        Candidate minus baseline, signed so that positive is better
        (baseline minus candidate for lower-is-better metrics such as the
        Brier score).
    p_value : float or None
        One-sided p-value of H0 "candidate is worse by at least ``margin``"
        (None when the interval is not estimable).
    verdict : {"superior", "non-inferior", "inferior", "inconclusive"}
        From the two-sided interval at ``confidence_level``: superior if its
        lower bound is > 0, non-inferior if > -margin, inferior if its upper
        bound is < -margin, else inconclusive.
    margin : float
        Pre-declared non-inferiority margin (>= 0, in metric units).
    method : str
        ``"delong-paired"`` or ``"bootstrap-<method>[-clustered]-paired"``.
    metric : str
    """

    difference: Estimate
    p_value: float | None
    verdict: Verdict
    margin: float
    method: str
    metric: str

    @property
    def passed(self) -> bool:
        """True for "superior" or "non-inferior" (what a release gate asks)."""
        return self.verdict in ("superior", "non-inferior")


def _verdict(low: float | None, high: float | None, margin: float) -> Verdict:
    if low is None or high is None:
        return "inconclusive"
    if low > 0.0:
        return "superior"
    if low > -margin:
        return "non-inferior"
    if high < -margin:
        return "inferior"
    return "inconclusive"


def _bootstrap_p(iv: Interval, theta: float, margin: float, method: BootMethod) -> float:
    """The one-sided level at which the lower bound equals -margin.

    Inverting the interval keeps the p-value consistent with the verdict:
    ``p < (1 - confidence_level) / 2`` exactly when the lower bound > -margin.
    """
    reps = iv.replicates[np.isfinite(iv.replicates)]
    b = reps.size
    if method == "basic":
        reps = 2.0 * theta - reps
    q0 = (np.count_nonzero(reps < -margin) + np.count_nonzero(reps <= -margin)) / (2.0 * b)
    q = float(np.clip(q0, 1.0 / (2 * b), 1.0 - 1.0 / (2 * b)))
    if method != "bca" or iv.z0 is None or iv.acceleration is None:
        return q
    z0, a = iv.z0, iv.acceleration
    w = float(ndtri(q)) - z0
    return float(ndtr(w / (1.0 + a * w) - z0))


def compare(
    metric: str,
    y_true: ArrayLike,
    score_candidate: ArrayLike,
    score_baseline: ArrayLike,
    *,
    margin: float,
    threshold: float | tuple[float, float] | None = None,
    clusters: ArrayLike | None = None,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    method: BootMethod = "bca",
    random_state: int | np.random.Generator | None = None,
    n_jobs: int | None = None,
) -> Comparison:
    """Paired comparison and non-inferiority test of two models.

    AUROC without clusters uses DeLong's paired variance (Wald interval of
    the difference, normal p-value) when it is estimable (n >= 10, two
    cases per class, non-zero variance). Every other case uses a paired,
    stratified bootstrap (patient-clustered with ``clusters``): both models
    are evaluated on the very same resamples.

    Parameters
    ----------
    metric : str
        Alias from :data:`METRICS`.
    y_true : array of int, shape (n,)
    score_candidate, score_baseline : array, shape (n,) (or (n, K))
        The two models' scores (0/1 predictions for label metrics unless
        ``threshold`` is given).
    margin : float
        Non-inferiority margin >= 0, in the metric's units, declared before
        looking at the data.
    threshold : float or (float, float), optional
        Decision threshold(s) for label metrics: one for both models or
        (candidate, baseline).
    clusters : array, shape (n,), optional
        Patient keys.
    confidence_level : float, default 0.95
        Two-sided; the non-inferiority test is one-sided at
        ``(1 - confidence_level) / 2``.
    n_resamples, method, random_state, n_jobs
        As in :func:`bootstrap_ci`.

    Returns
    -------
    Comparison

    References
    ----------
    DeLong et al. (1988), Biometrics 44:837-845; Efron (1987), JASA
    82:171-185; Field & Welsh (2007); Piaggio et al. (2012), JAMA
    308:2594-2604 (CONSORT for non-inferiority: verdicts from the CI).
    """
    m = get_metric(metric)
    cl = check_confidence_level(confidence_level)
    meth = check_method(method)
    b = check_n_resamples(n_resamples)
    if isinstance(margin, bool) or not np.isfinite(float(margin)) or float(margin) < 0:
        raise InputError(f"margin must be a finite number >= 0 in {m.name} units; got {margin!r}.")
    delta = float(margin)
    t_c, t_b = threshold if isinstance(threshold, tuple) else (threshold, threshold)
    pc = prepare(m, y_true, score_candidate, threshold=t_c)
    pb = prepare(m, y_true, score_baseline, threshold=t_b)
    n = int(pc.y.shape[0])
    if pb.y.shape[0] != n:
        raise InputError(f"score_baseline has {pb.y.shape[0]} cases; expected {n}.")
    codes = check_clusters(clusters, n)
    sign = 1.0 if m.higher_is_better else -1.0

    n1 = int(pc.y.sum())
    if (
        m.name == "auroc"
        and codes is None
        and pc.value is not None
        and pb.value is not None
        and min(n1, n - n1) >= 2  # DeLong's variance needs two cases per class
    ):
        aucs, cov = delong_covariance(pc.y, np.stack([pc.x, pb.x]).astype(np.float64))
        diff = float(aucs[0] - aucs[1])
        se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1], 0.0)))
        if se > 0.0 and n >= MIN_CASES:
            z = float(ndtri(0.5 + cl / 2.0))
            est = Estimate(
                diff,
                max(-1.0, diff - z * se),
                min(1.0, diff + z * se),
                confidence_level=cl,
                method="delong-paired",
                n=n,
                higher_is_better=True,
            )
            p = float(ndtr(-(diff + delta) / se))
            return Comparison(
                est, p, _verdict(est.low, est.high, delta), delta, "delong-paired", m.name
            )

    rng, seed = normalise_random_state(random_state)
    label = f"bootstrap-{meth}" + ("-clustered" if codes is not None else "") + "-paired"

    def result(value: float | None, iv: Interval | None, reason: str | None) -> Comparison:
        low = None if iv is None else iv.low
        high = None if iv is None else iv.high
        est = Estimate(
            value,
            low,
            high,
            confidence_level=cl,
            method=label,
            n=n,
            seed=seed,
            n_resamples=b,
            reason=reason,
            higher_is_better=True,
        )
        p = None
        if iv is not None and low is not None and value is not None:
            p = _bootstrap_p(iv, value, delta, meth)
        return Comparison(est, p, _verdict(low, high, delta), delta, label, m.name)

    if pc.value is None or pb.value is None:
        return result(None, None, pc.reason or pb.reason)
    value = sign * (pc.value - pb.value)
    too_few = too_few_for_interval(n, codes)
    if too_few is not None:
        return result(value, None, too_few)
    order = np.lexsort((pc.order_key, pc.y))
    design = make_design(
        pc.y[order], None if codes is None else (codes[0][order], codes[1]), stratify=True
    )
    ev = JointEvaluator(pc.evaluator(order), pb.evaluator(order), sign)
    iv = run_bootstrap(
        ev, value, design, rng, n_resamples=b, method=meth, confidence_level=cl, n_jobs=n_jobs
    )
    return result(value, iv, iv.reason)
