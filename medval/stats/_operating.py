"""Operating points: choosing a threshold, sensitivity at fixed specificity.

A case is predicted positive when ``score >= threshold``. Thresholds are
chosen among the observed scores (plus one above the maximum, where every
case is negative), so they always sit between two distinct scores.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError
from medval._types import Estimate
from medval.stats._core import BootMethod, check_method, check_n_resamples, run_bootstrap
from medval.stats._resample import make_design
from medval.stats._validate import (
    FloatArray,
    IntArray,
    check_binary_labels,
    check_clusters,
    check_confidence_level,
    check_scores,
    normalise_random_state,
    too_few_for_interval,
)

__all__ = ["choose_threshold", "sensitivity_at_specificity", "specificity_at_sensitivity"]

Rule = Literal["youden", "sensitivity", "specificity"]


def _binary(y_true: ArrayLike, y_score: ArrayLike) -> tuple[IntArray, FloatArray]:
    y = check_binary_labels(y_true)
    s = check_scores(y_score, y.shape[0])
    n1 = int(y.sum())
    if n1 == 0 or n1 == y.shape[0]:
        raise InputError(
            "Choosing an operating point needs positive and negative cases; y_true has "
            f"{n1} positive of {y.shape[0]}."
        )
    return y, s


def _check_target(target: float | None, what: str) -> float:
    try:
        q = float(target)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        q = float("nan")
    if isinstance(target, bool) or not 0.0 < q <= 1.0:
        raise InputError(f"{what} must be a target in (0, 1], e.g. 0.9; got {target!r}.")
    return q


def choose_threshold(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    rule: Rule = "youden",
    target: float | None = None,
) -> float:
    """Choose a decision threshold on a calibration split.

    Parameters
    ----------
    y_true : array of int, shape (n,)
    y_score : array of float, shape (n,)
    rule : {"youden", "sensitivity", "specificity"}, default "youden"
        ``"youden"`` maximises sensitivity + specificity - 1 (ties: the
        highest threshold); ``"sensitivity"`` gives the highest threshold
        with sensitivity >= ``target``; ``"specificity"`` the lowest
        threshold with specificity >= ``target``.
    target : float, optional
        Required for the fixed-sensitivity / fixed-specificity rules.

    Returns
    -------
    float
        Threshold ``t``: predict positive when ``score >= t``.

    References
    ----------
    Youden (1950), Cancer 3:32-35.
    """
    y, s = _binary(y_true, y_score)
    cand = np.r_[np.unique(s), np.nextafter(s.max(), np.inf)]
    pos, neg = np.sort(s[y == 1]), np.sort(s[y == 0])
    sens = 1.0 - np.searchsorted(pos, cand, side="left") / pos.size
    spec = np.searchsorted(neg, cand, side="left") / neg.size
    if rule == "youden":
        j = sens + spec
        return float(cand[np.flatnonzero(j == j.max())[-1]])
    if rule == "sensitivity":
        q = _check_target(target, "target sensitivity")
        return float(cand[np.flatnonzero(sens >= q - 1e-12)[-1]])
    if rule == "specificity":
        q = _check_target(target, "target specificity")
        return float(cand[np.flatnonzero(spec >= q - 1e-12)[0]])
    raise InputError(f"Unknown rule {rule!r}; valid: youden, sensitivity, specificity.")


class _SensAtSpec:
    """Sensitivity at the lowest threshold reaching specificity >= q, per resample."""

    def __init__(self, y: IntArray, s: FloatArray, q: float) -> None:
        self.n = int(y.shape[0])
        perm = np.lexsort((s, y))
        self.perm = perm
        self.n0 = int(np.sum(y == 0))
        self.q = q
        neg, pos = s[perm[: self.n0]], s[perm[self.n0 :]]
        # positives at or below each negative's score
        self.hi = np.searchsorted(pos, neg, side="right")

    def values(self, W: NDArray[Any]) -> FloatArray:
        W = np.take(W, self.perm, axis=1)
        Wn, Wp = W[:, : self.n0], W[:, self.n0 :]
        cn = np.cumsum(Wn, axis=1)
        need = self.q * cn[:, -1] - 1e-9 * np.maximum(cn[:, -1], 1)
        k = np.argmax(cn >= need[:, None], axis=1)
        cpz = np.zeros((W.shape[0], Wp.shape[1] + 1), dtype=W.dtype)
        np.cumsum(Wp, axis=1, out=cpz[:, 1:])
        below = np.take_along_axis(cpz, self.hi[k][:, None], axis=1)[:, 0]
        total = cpz[:, -1].astype(np.float64)
        out = np.full(W.shape[0], np.nan)
        ok = (total > 0) & (cn[:, -1] > 0)
        out[ok] = 1.0 - below[ok] / total[ok]
        return out

    def point(self) -> float:
        return float(self.values(np.ones((1, self.n), dtype=np.int64))[0])

    def jackknife(self, unit: IntArray, n_units: int) -> None:
        return None


def _at_fixed(
    y_true: ArrayLike,
    y_score: ArrayLike,
    q: float,
    *,
    mirror: bool,
    confidence_level: float,
    n_resamples: int,
    method: BootMethod,
    clusters: ArrayLike | None,
    random_state: int | np.random.Generator | None,
    n_jobs: int | None,
) -> Estimate:
    cl = check_confidence_level(confidence_level)
    meth = check_method(method)
    b = check_n_resamples(n_resamples)
    y, s = _binary(y_true, y_score)
    codes = check_clusters(clusters, y.shape[0])
    rng, seed = normalise_random_state(random_state)
    if mirror:  # specificity at sensitivity == sensitivity at specificity of (1-y, -s)
        y, s = 1 - y, -s
    n = int(y.shape[0])
    ev = _SensAtSpec(y, s, q)
    value = ev.point()
    label = f"bootstrap-{meth}" + ("-clustered" if codes is not None else "")
    too_few = too_few_for_interval(n, codes)
    if too_few is not None:
        return Estimate(
            value,
            method=label,
            n=n,
            seed=seed,
            n_resamples=b,
            confidence_level=cl,
            higher_is_better=True,
            reason=too_few,
        )
    order = np.lexsort((s, y))
    design = make_design(
        y[order], None if codes is None else (codes[0][order], codes[1]), stratify=True
    )
    iv = run_bootstrap(
        _SensAtSpec(y[order], s[order], q),
        value,
        design,
        rng,
        n_resamples=b,
        method=meth,
        confidence_level=cl,
        bounds=(0.0, 1.0),
        n_jobs=n_jobs,
    )
    return Estimate(
        value,
        iv.low,
        iv.high,
        confidence_level=cl,
        method=label,
        n=n,
        seed=seed,
        n_resamples=b,
        reason=iv.reason,
        higher_is_better=True,
    )


def sensitivity_at_specificity(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    specificity: float,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    method: BootMethod = "percentile",
    clusters: ArrayLike | None = None,
    random_state: int | np.random.Generator | None = None,
    n_jobs: int | None = None,
) -> Estimate:
    """Sensitivity at the lowest threshold whose specificity is >= the target.

    The interval is a stratified (patient-clustered with ``clusters``)
    bootstrap in which the threshold is chosen again in every resample,
    so it includes the uncertainty of the threshold itself. The percentile
    method is the default: this statistic is a step function of the data,
    for which the BCa jackknife is unreliable.

    Parameters
    ----------
    y_true : array of int, shape (n,)
    y_score : array of float, shape (n,)
    specificity : float
        Target specificity in (0, 1].
    confidence_level, n_resamples, method, clusters, random_state, n_jobs
        As in :func:`bootstrap_ci`.

    References
    ----------
    Pepe (2003), *The Statistical Evaluation of Medical Tests*, sec. 5.2;
    Zhou, Obuchowski & McClish (2011), *Statistical Methods in Diagnostic
    Medicine*, sec. 4.4.
    """
    q = _check_target(specificity, "specificity")
    return _at_fixed(
        y_true,
        y_score,
        q,
        mirror=False,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        method=method,
        clusters=clusters,
        random_state=random_state,
        n_jobs=n_jobs,
    )


def specificity_at_sensitivity(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    sensitivity: float,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    method: BootMethod = "percentile",
    clusters: ArrayLike | None = None,
    random_state: int | np.random.Generator | None = None,
    n_jobs: int | None = None,
) -> Estimate:
    """Specificity at the highest threshold whose sensitivity is >= the target.

    See :func:`sensitivity_at_specificity` for the interval.
    """
    q = _check_target(sensitivity, "sensitivity")
    return _at_fixed(
        y_true,
        y_score,
        q,
        mirror=True,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        method=method,
        clusters=clusters,
        random_state=random_state,
        n_jobs=n_jobs,
    )
