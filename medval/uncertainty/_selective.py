"""Selective prediction: refer the most uncertain cases to a radiologist.

A referral policy is a threshold: refer every case with uncertainty
``>= threshold``. Tied cases are referred together, so the achievable
referral fractions are those of the distinct uncertainty values; curves
report the fraction actually referred next to the one requested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError
from medval.stats import auroc

__all__ = [
    "aurc",
    "compare_uncertainty_measures",
    "recommended_referral_fraction",
    "referral_curve",
    "uncertainty_error_auroc",
]

FloatArray = NDArray[np.float64]
_SUM_TOLERANCE = 1e-3


def _check(
    probabilities: ArrayLike, labels: ArrayLike, uncertainty: ArrayLike
) -> tuple[FloatArray, NDArray[np.int64], FloatArray]:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2 or p.shape[0] == 0:
        raise InputError(f"probabilities must have shape (n, K), n >= 1, K >= 2; got {p.shape}.")
    if not np.all(np.isfinite(p)) or np.any(np.abs(p.sum(axis=1) - 1.0) > _SUM_TOLERANCE):
        raise InputError("probabilities must be finite and their rows must sum to 1.")
    y = np.asarray(labels)
    if y.shape != (p.shape[0],) or y.dtype.kind not in "iub":
        raise InputError(
            f"labels must be integer class indices of shape ({p.shape[0]},); "
            f"got shape {y.shape}, dtype {y.dtype}."
        )
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise InputError(f"labels must lie in 0..{p.shape[1] - 1}.")
    u = np.asarray(uncertainty, dtype=np.float64)
    if u.shape != (p.shape[0],):
        raise InputError(f"uncertainty must have shape ({p.shape[0]},); got {u.shape}.")
    if not np.all(np.isfinite(u)):
        raise InputError("uncertainty contains NaN or infinite values.")
    return p, y.astype(np.int64), u


def _policies(u: FloatArray) -> tuple[NDArray[np.intp], NDArray[np.intp], FloatArray]:
    """Order (most uncertain first), n referred and threshold of each policy."""
    order = np.argsort(-u, kind="stable")
    us = u[order]
    ends = np.flatnonzero(np.append(us[1:] != us[:-1], True))
    n_referred = np.concatenate([[0], ends + 1]).astype(np.intp)
    thresholds = np.concatenate([[np.inf], us[ends]])
    return order, n_referred, thresholds


def _retained_sums(
    x: FloatArray, order: NDArray[np.intp], n_referred: NDArray[np.intp]
) -> FloatArray:
    cum = np.concatenate([[0.0], np.cumsum(x[order])])
    return np.asarray(x.sum() - cum[n_referred], dtype=np.float64)


def _auroc(scores: FloatArray, positive: NDArray[np.bool_]) -> float:
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return auroc(positive.astype(np.int64), scores)


def _predicted(p: FloatArray, positive_class: int, threshold: float | None) -> NDArray[np.int64]:
    """Predicted classes: the most probable, or binary at an operating threshold."""
    if threshold is None:
        return np.asarray(p.argmax(axis=1), dtype=np.int64)
    if p.shape[1] != 2 or positive_class not in (0, 1):
        raise InputError(
            f"threshold= needs a binary task and positive_class 0 or 1; got K={p.shape[1]}, "
            f"positive_class={positive_class}."
        )
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"threshold must lie in [0, 1]; got {threshold}.")
    positive = p[:, positive_class] >= threshold
    return np.where(positive, positive_class, 1 - positive_class).astype(np.int64)


def referral_curve(
    probabilities: ArrayLike,
    labels: ArrayLike,
    uncertainty: ArrayLike,
    *,
    fractions: Sequence[float] | None = None,
    positive_class: int = 1,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Performance on the retained cases as the most uncertain are referred.

    The referral (selective-prediction) curve of Leibig et al. (2017): for
    each requested fraction f, the threshold policy referring the largest
    fraction <= f.

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)
    uncertainty : array of float, shape (n,)
        Higher means less certain (epistemic, aleatoric, total, conformal
        set size, ...).
    fractions : sequence of float in [0, 1), optional
        Requested referral fractions; default 0, 0.05, ..., 0.9.
    positive_class : int, default 1
        For binary tasks: the class whose sensitivity is reported.
    threshold : float, optional
        For binary tasks: call a case positive when its probability of
        ``positive_class`` is ``>= threshold`` (the operating point).
        Default: the most probable class.

    Returns
    -------
    dict
        Arrays of shape (len(fractions),): ``requested_fraction``,
        ``referred_fraction``, ``threshold`` (refer if ``u >= threshold``),
        ``n_retained``, ``accuracy``; for K = 2 also ``sensitivity``,
        ``specificity`` and ``auroc`` of the retained cases (NaN where not
        defined, and for K > 2); plus ``n``.
    """
    p, y, u = _check(probabilities, labels, uncertainty)
    f = np.arange(0.0, 0.95, 0.05) if fractions is None else np.asarray(fractions, dtype=float)
    if f.ndim != 1 or f.size == 0 or np.any((f < 0.0) | (f >= 1.0)):
        raise InputError("fractions must be a non-empty sequence of numbers in [0, 1).")
    n = y.size
    order, n_ref, thr = _policies(u)
    pick = np.searchsorted(n_ref, np.floor(f * n + 1e-9), side="right") - 1
    chosen = n_ref[pick]
    correct = (_predicted(p, positive_class, threshold) == y).astype(np.float64)
    n_ret = n - chosen
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = _retained_sums(correct, order, chosen) / n_ret
    sens = np.full(f.size, np.nan)
    spec = np.full(f.size, np.nan)
    auc = np.full(f.size, np.nan)
    if p.shape[1] == 2:
        pos = (y == positive_class).astype(np.float64)
        tp = pos * correct
        tn = (1.0 - pos) * correct
        with np.errstate(invalid="ignore", divide="ignore"):
            sens = _retained_sums(tp, order, chosen) / _retained_sums(pos, order, chosen)
            spec = _retained_sums(tn, order, chosen) / _retained_sums(1.0 - pos, order, chosen)
        for i, k in enumerate(chosen):
            keep = order[k:]
            auc[i] = _auroc(p[keep, positive_class], y[keep] == positive_class)
    return {
        "requested_fraction": f,
        "referred_fraction": chosen / n,
        "threshold": thr[pick],
        "n_retained": n_ret.astype(np.int64),
        "accuracy": acc,
        "sensitivity": sens,
        "specificity": spec,
        "auroc": auc,
        "n": int(n),
    }


def aurc(probabilities: ArrayLike, labels: ArrayLike, uncertainty: ArrayLike) -> dict[str, float]:
    """Area under the risk-coverage curve and its excess (Geifman et al. 2019).

    Cases are retained from the most certain down; the selective risk at
    coverage i/n is the error rate of the i retained cases; AURC is its mean
    over i = 1..n. Ties in ``uncertainty`` are averaged over their random
    orders (exactly, by giving each tied case its group's mean error).
    E-AURC subtracts the AURC of an oracle that ranks all errors last.

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)
    uncertainty : array of float, shape (n,)

    Returns
    -------
    dict
        ``aurc``, ``eaurc``, ``optimal_aurc`` and ``risk`` (the error rate
        at full coverage). Lower is better.
    """
    p, y, u = _check(probabilities, labels, uncertainty)
    err = (p.argmax(axis=1) != y).astype(np.float64)
    n = err.size
    _, inverse, counts = np.unique(u, return_inverse=True, return_counts=True)
    tied = np.bincount(inverse, weights=err) / counts
    coverage = np.arange(1, n + 1)
    risk = np.cumsum(tied[np.sort(inverse)]) / coverage
    oracle = np.cumsum(np.sort(err)) / coverage
    value, best = float(risk.mean()), float(oracle.mean())
    return {"aurc": value, "eaurc": value - best, "optimal_aurc": best, "risk": float(err.mean())}


def uncertainty_error_auroc(
    probabilities: ArrayLike, labels: ArrayLike, uncertainty: ArrayLike
) -> float:
    """AUROC of the uncertainty for telling errors from correct predictions.

    The probability that a misclassified case is more uncertain than a
    correct one, ties counting 1/2 (Mann-Whitney; Hendrycks and Gimpel 2017).

    Returns
    -------
    float
        0.5 is uninformative; higher is better.

    Raises
    ------
    InputError
        If every prediction is right or every one is wrong.
    """
    p, y, u = _check(probabilities, labels, uncertainty)
    err = p.argmax(axis=1) != y
    if err.all() or not err.any():
        raise InputError(
            "uncertainty_error_auroc is not estimable: "
            f"{'every' if err.all() else 'no'} prediction is wrong on these {err.size} cases."
        )
    return _auroc(u, err)


def recommended_referral_fraction(
    probabilities: ArrayLike,
    labels: ArrayLike,
    uncertainty: ArrayLike,
    *,
    target_sensitivity: float = 0.95,
    positive_class: int = 1,
    max_fraction: float = 1.0,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Smallest referral fraction whose retained cases reach a target sensitivity.

    Scans every threshold policy (Leibig et al. 2017) and returns the one
    referring the fewest cases such that the sensitivity of
    ``positive_class`` on the retained cases is at least
    ``target_sensitivity``. With K > 2 classes the decision is the most
    probable class (``threshold`` needs a binary task). Fit it on a
    development split and confirm it on the test split.

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)
    uncertainty : array of float, shape (n,)
    target_sensitivity : float in (0, 1], default 0.95
    positive_class : int, default 1
    max_fraction : float in (0, 1], default 1.0
        Largest acceptable referral fraction.
    threshold : float, optional
        Operating point: positive when P(``positive_class``) ``>=
        threshold``. Default: the most probable class.

    Returns
    -------
    dict
        ``fraction``, ``threshold`` (refer if ``u >= threshold``),
        ``n_referred``, ``retained_sensitivity``; all ``None`` with a
        ``reason`` when no policy within ``max_fraction`` reaches the target.

    Raises
    ------
    InputError
        If ``threshold`` is given for K > 2 classes, or a parameter is out of range.
    """
    p, y, u = _check(probabilities, labels, uncertainty)
    if not 0 <= positive_class < p.shape[1]:
        raise InputError(
            f"positive_class must be a class index 0..{p.shape[1] - 1}; got {positive_class}."
        )
    if not 0.0 < target_sensitivity <= 1.0 or not 0.0 < max_fraction <= 1.0:
        raise InputError("target_sensitivity and max_fraction must lie in (0, 1].")
    order, n_ref, thr = _policies(u)
    pos = (y == positive_class).astype(np.float64)
    tp = pos * (_predicted(p, positive_class, threshold) == positive_class)
    ret_pos = _retained_sums(pos, order, n_ref)
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = _retained_sums(tp, order, n_ref) / ret_pos
    within = n_ref <= max_fraction * y.size + 1e-9
    ok = (ret_pos > 0) & (sens >= target_sensitivity - 1e-12) & within
    if not ok.any():
        return {
            "fraction": None,
            "threshold": None,
            "n_referred": None,
            "retained_sensitivity": None,
            "target_sensitivity": target_sensitivity,
            "reason": f"no referral of at most {max_fraction:.0%} of cases reaches a retained "
            f"sensitivity of {target_sensitivity:.0%}",
        }
    i = int(np.flatnonzero(ok)[0])
    return {
        "fraction": float(n_ref[i] / y.size),
        "threshold": float(thr[i]),
        "n_referred": int(n_ref[i]),
        "retained_sensitivity": float(sens[i]),
        "target_sensitivity": target_sensitivity,
        "reason": None,
    }


def compare_uncertainty_measures(
    probabilities: ArrayLike, labels: ArrayLike, uncertainties: Mapping[str, ArrayLike]
) -> dict[str, dict[str, float | None]]:
    """AURC, E-AURC and error-detection AUROC for each uncertainty measure.

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)
    uncertainties : mapping of str to array of shape (n,)
        E.g. ``{"epistemic": d.epistemic, "total": d.total,
        "set_size": sizes}``.

    Returns
    -------
    dict
        measure -> ``{"aurc", "eaurc", "error_auroc"}`` (``error_auroc``
        is ``None`` when not estimable).
    """
    out: dict[str, dict[str, float | None]] = {}
    for name, u in uncertainties.items():
        a = aurc(probabilities, labels, u)
        try:
            auc: float | None = uncertainty_error_auroc(probabilities, labels, u)
        except InputError:
            auc = None
        out[str(name)] = {"aurc": a["aurc"], "eaurc": a["eaurc"], "error_auroc": auc}
    return out
