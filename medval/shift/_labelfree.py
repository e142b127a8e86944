"""Label-free performance estimates from calibrated confidences (CBPE)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtri

from medval._errors import InputError
from medval._types import Estimate
from medval.stats import check_confidence_level, check_threshold

__all__ = ["ASSUMPTIONS", "estimate_performance"]

#: Stated in every output of :func:`estimate_performance`.
ASSUMPTIONS: tuple[str, ...] = (
    "the probabilities are calibrated on the current data (P(y=1 | p) = p)",
    "no concept shift: only the input distribution changed, not P(y | x)",
    "cases are independent",
)


def estimate_performance(
    probabilities: ArrayLike,
    *,
    threshold: float = 0.5,
    positive_class: int = 1,
    decisions: ArrayLike | None = None,
    confidence_level: float = 0.95,
) -> dict[str, Any]:
    """Expected confusion matrix and accuracy of unlabeled cases (CBPE).

    With calibrated probabilities, the label of case ``i`` is
    Bernoulli(``p_i``), so each confusion-matrix cell has expectation
    ``E[TP] = sum_{pred=1} p_i``, ``E[FP] = sum_{pred=1} (1 - p_i)``,
    ``E[FN] = sum_{pred=0} p_i``, ``E[TN] = sum_{pred=0} (1 - p_i)``, and
    the realised accuracy is a Poisson-binomial mean whose interval
    (normal approximation) is reported.

    Parameters
    ----------
    probabilities : array of float, shape (n,) or (n, K)
        Calibrated probability of the positive class, or (n, K) class
        probabilities: with K = 2 column ``positive_class`` is positive; with
        K > 2 only the accuracy of the prediction is estimated.
    threshold : float, default 0.5
        Predicted positive when ``p >= threshold`` (binary only).
    positive_class : {0, 1}, default 1
        The positive column of (n, 2) probabilities.
    decisions : array, shape (n,), optional
        The model's own decisions, when they are not made on these
        probabilities (e.g. a threshold chosen before recalibration):
        positive calls (bool or 0/1) for binary tasks, class indices for
        K > 2. Default: ``p >= threshold``, or the arg-max for K > 2.
    confidence_level : float, default 0.95

    Returns
    -------
    dict
        ``expected_confusion`` (``tp``, ``fp``, ``fn``, ``tn``; binary),
        ``accuracy`` (Estimate dict, method ``"cbpe"``), ``sensitivity``,
        ``specificity``, ``prevalence`` (ratios of expectations; binary),
        ``n``, ``threshold`` (None when ``decisions`` are given) and
        ``assumptions`` (:data:`ASSUMPTIONS`).

    References
    ----------
    NannyML, "Confidence-based performance estimation" (CBPE), 2022;
    Guo, Pleiss, Sun & Weinberger (2017), ICML (calibration).
    """
    cl = check_confidence_level(confidence_level)
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[0] == 0:
        raise InputError(
            f"probabilities must have shape (n,) or (n, K) with n >= 1; got {p.shape}."
        )
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        raise InputError(
            "probabilities must be finite and in [0, 1]; pass calibrated probabilities, not logits."
        )
    n = int(p.shape[0])
    out: dict[str, Any] = {"n": n, "assumptions": list(ASSUMPTIONS)}
    chosen = None if decisions is None else _decisions(decisions, p)
    if p.ndim == 2 and p.shape[1] > 2:
        pick = p.argmax(axis=1) if chosen is None else chosen
        correct = p[np.arange(n), pick]
        out["threshold"] = None
    else:
        if p.ndim == 2 and positive_class not in (0, 1):
            raise InputError(
                f"positive_class must be 0 or 1 for (n, 2) probabilities; got {positive_class!r}."
            )
        q = p[:, positive_class] if p.ndim == 2 else p
        thr = check_threshold(threshold)
        pred = q >= thr if chosen is None else chosen.astype(bool)
        tp, fp = float(q[pred].sum()), float((1.0 - q[pred]).sum())
        fn, tn = float(q[~pred].sum()), float((1.0 - q[~pred]).sum())
        correct = np.where(pred, q, 1.0 - q)
        out["threshold"] = thr if chosen is None else None
        out["expected_confusion"] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
        out["sensitivity"] = tp / (tp + fn) if tp + fn > 0 else None
        out["specificity"] = tn / (tn + fp) if tn + fp > 0 else None
        out["prevalence"] = (tp + fn) / n
    acc = float(correct.mean())
    se = float(np.sqrt(np.sum(correct * (1.0 - correct)))) / n
    z = float(ndtri(0.5 + cl / 2.0))
    out["accuracy"] = Estimate(
        acc, max(0.0, acc - z * se), min(1.0, acc + z * se), confidence_level=cl,
        method="cbpe", n=n, higher_is_better=True,
    ).to_dict()  # fmt: skip
    return out


def _decisions(decisions: ArrayLike, p: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.intp]]:
    d = np.asarray(decisions)
    if d.shape != (p.shape[0],):
        raise InputError(f"decisions must have shape ({p.shape[0]},), one per case; got {d.shape}.")
    k = p.shape[1] if p.ndim == 2 else 2
    if d.dtype.kind not in "biu" or (d.size and (d.min() < 0 or d.max() >= k)):
        what = "positive calls (bool or 0/1)" if k == 2 else f"class indices 0..{k - 1}"
        raise InputError(f"decisions must be {what}; got values {np.unique(d)[:5].tolist()}.")
    return d.astype(np.intp)
