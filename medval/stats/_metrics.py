"""Point metrics and the metric registry.

Binary metrics take ``y_true`` (n,) of 0/1 and either ``y_score`` (n,), the
score of the positive class ("score" and "probability" metrics), or
``y_pred`` (n,) of 0/1 ("label" metrics). Multiclass metrics take
``y_true`` (n,) of class indices and ``y_score`` (n, K) probabilities.
An undefined metric (a single class present, no predicted positives)
raises :class:`~medval.InputError` rather than returning NaN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from medval._errors import InputError
from medval.stats._validate import (
    FloatArray,
    IntArray,
    check_binary_labels,
    check_class_labels,
    check_predictions,
    check_scores,
)

__all__ = [
    "METRICS",
    "Metric",
    "accuracy",
    "auprc",
    "auroc",
    "balanced_accuracy",
    "brier_score",
    "confusion_counts",
    "f1",
    "get_metric",
    "log_loss",
    "macro_auroc",
    "npv",
    "ovr_auroc",
    "ppv",
    "sensitivity",
    "specificity",
]

MetricKind = Literal["score", "label", "probability"]


def _binary(y_true: ArrayLike, y_score: ArrayLike) -> tuple[IntArray, FloatArray]:
    y = check_binary_labels(y_true)
    return y, check_scores(y_score, y.shape[0])


def _need_both_classes(y: IntArray, what: str) -> None:
    n1 = int(y.sum())
    if n1 == 0 or n1 == y.shape[0]:
        only = "positive" if n1 else "negative"
        raise InputError(
            f"{what} is undefined when only one class is present: all {y.shape[0]} cases "
            f"are {only}. It needs at least one positive and one negative case."
        )


def auroc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n1 n0), ties count 1/2).

    Parameters
    ----------
    y_true : array of int, shape (n,)
        0/1 labels.
    y_score : array of float, shape (n,)
        Score of the positive class; larger means more likely positive.

    Raises
    ------
    InputError
        If only one class is present, lengths differ or scores are not finite.

    References
    ----------
    Hanley & McNeil (1982), Radiology 143:29-36.
    """
    y, s = _binary(y_true, y_score)
    _need_both_classes(y, "AUROC")
    n1 = int(y.sum())
    n0 = y.shape[0] - n1
    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def auprc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Average precision: sum over thresholds of (R_k - R_{k-1}) P_k.

    The step-wise (non-interpolated) area under the precision-recall curve,
    the same definition as ``sklearn.metrics.average_precision_score``.

    Parameters
    ----------
    y_true : array of int, shape (n,)
    y_score : array of float, shape (n,)

    Raises
    ------
    InputError
        If no positive case is present.

    References
    ----------
    Zhu (2004), "Recall, precision and average precision", Univ. Waterloo.
    """
    y, s = _binary(y_true, y_score)
    if not y.any():
        raise InputError("AUPRC is undefined without positive cases; y_true has none.")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), y.shape[0] - 1]
    tp = np.cumsum(y_sorted)[last].astype(np.float64)
    fp = (last + 1) - tp
    dtp = np.diff(np.r_[0.0, tp])
    return float(np.sum(dtp * tp / (tp + fp)) / tp[-1])


def confusion_counts(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[int, int, int, int]:
    """Return ``(tp, fp, tn, fn)`` for 0/1 labels and 0/1 predictions."""
    y = check_binary_labels(y_true)
    p = check_predictions(y_pred, y.shape[0])
    tp = int(np.sum((y == 1) & (p == 1)))
    fp = int(np.sum((y == 0) & (p == 1)))
    tn = int(np.sum((y == 0) & (p == 0)))
    return tp, fp, tn, y.shape[0] - tp - fp - tn


def _ratio(num: int, den: int, what: str, fix: str) -> float:
    if den == 0:
        raise InputError(f"{what} is undefined: {fix}")
    return num / den


def sensitivity(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """True-positive rate TP / (TP + FN) (recall); needs a positive case."""
    tp, _, _, fn = confusion_counts(y_true, y_pred)
    return _ratio(tp, tp + fn, "sensitivity", "y_true has no positive case.")


def specificity(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """True-negative rate TN / (TN + FP); needs a negative case."""
    _, fp, tn, _ = confusion_counts(y_true, y_pred)
    return _ratio(tn, tn + fp, "specificity", "y_true has no negative case.")


def ppv(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Positive predictive value TP / (TP + FP) (precision)."""
    tp, fp, _, _ = confusion_counts(y_true, y_pred)
    return _ratio(tp, tp + fp, "PPV", "no case is predicted positive; lower the threshold.")


def npv(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Negative predictive value TN / (TN + FN)."""
    _, _, tn, fn = confusion_counts(y_true, y_pred)
    return _ratio(tn, tn + fn, "NPV", "no case is predicted negative; raise the threshold.")


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of correct predictions (TP + TN) / n."""
    tp, fp, tn, fn = confusion_counts(y_true, y_pred)
    return _ratio(tp + tn, tp + fp + tn + fn, "accuracy", "there are no cases.")


def balanced_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean of sensitivity and specificity; needs both classes."""
    return 0.5 * (sensitivity(y_true, y_pred) + specificity(y_true, y_pred))


def f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """F1 score 2 TP / (2 TP + FP + FN)."""
    tp, fp, _, fn = confusion_counts(y_true, y_pred)
    return _ratio(
        2 * tp, 2 * tp + fp + fn, "F1", "there is no positive case and no predicted positive."
    )


_EPS = float(np.finfo(np.float64).eps)


def _check_probability(s: FloatArray) -> None:
    if s.size and (s.min() < 0.0 or s.max() > 1.0):
        raise InputError(
            f"y_score must be probabilities in [0, 1]; got values in [{s.min():.4g}, "
            f"{s.max():.4g}]. Convert logits with a sigmoid/softmax first."
        )


def brier_score(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Mean squared error of the positive-class probability (Brier 1950).

    Lower is better. ``y_score`` (n,) in [0, 1].

    References
    ----------
    Brier (1950), Monthly Weather Review 78:1-3.
    """
    y, s = _binary(y_true, y_score)
    _check_probability(s)
    return float(np.mean((s - y) ** 2))


def log_loss(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Mean negative log-likelihood of the positive-class probability.

    Probabilities are clipped to ``[eps, 1 - eps]`` (float64 machine
    epsilon), as scikit-learn does. Lower is better.

    References
    ----------
    Good (1952), J. R. Stat. Soc. B 14:107-114.
    """
    y, s = _binary(y_true, y_score)
    _check_probability(s)
    return float(np.mean(binary_log_losses(y, s)))


def binary_log_losses(y: IntArray, s: FloatArray) -> FloatArray:
    """Per-case log loss ``-log p(y_i)`` with clipping (internal)."""
    p = np.clip(s, _EPS, 1.0 - _EPS)
    out: FloatArray = -np.where(y == 1, np.log(p), np.log1p(-p))
    return out


def _multiclass(y_true: ArrayLike, y_score: ArrayLike) -> tuple[IntArray, FloatArray]:
    s = np.asarray(y_score, dtype=np.float64)
    y = np.asarray(y_true)
    if s.ndim != 2 or s.shape[1] < 2:
        raise InputError(f"y_score must have shape (n, K) with K >= 2; got {s.shape}.")
    labels = check_class_labels(
        y, s.shape[0], s.shape[1], name="y_true", against=f"y_score {s.shape}"
    )
    if not np.all(np.isfinite(s)):
        raise InputError("y_score contains NaN or infinite values; fix or drop those cases.")
    return labels, s


def ovr_auroc(y_true: ArrayLike, y_score: ArrayLike) -> FloatArray:
    """One-vs-rest AUROC of each class, shape (K,).

    Raises
    ------
    InputError
        If some class has no case (its one-vs-rest AUROC is undefined).
    """
    y, s = _multiclass(y_true, y_score)
    missing = np.setdiff1d(np.arange(s.shape[1]), y)
    if missing.size:
        raise InputError(
            f"one-vs-rest AUROC is undefined for classes {missing.tolist()}: no case has "
            "that label. Drop the class or gather cases of it."
        )
    return np.array([auroc(y == k, s[:, k]) for k in range(s.shape[1])])


def macro_auroc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Unweighted mean of the one-vs-rest AUROCs (Hand & Till's 'OvR macro').

    Equals ``roc_auc_score(y, p, multi_class='ovr', average='macro')``.

    References
    ----------
    Provost & Domingos (2000), CeDER Working Paper IS-00-04.
    """
    return float(np.mean(ovr_auroc(y_true, y_score)))


@dataclasses.dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes
    ----------
    name : str
        Canonical name (the key used in ``result.json``).
    higher_is_better : bool
        Direction a gate compares in.
    kind : {"score", "label", "probability"}
        What the second argument is: a continuous score, 0/1 predictions
        (or a score with ``threshold=`` in :func:`bootstrap_ci`), or a
        probability in [0, 1].
    func : callable
        ``func(y_true, y_score_or_pred) -> float``.
    multiclass : bool
        Whether ``y_score`` is (n, K) rather than (n,).
    """

    name: str
    higher_is_better: bool
    kind: MetricKind
    func: Callable[[ArrayLike, ArrayLike], float]
    multiclass: bool = False

    def __call__(self, y_true: ArrayLike, y_score: ArrayLike) -> float:
        return self.func(y_true, y_score)


_DEFS = [
    (Metric("auroc", True, "score", auroc), ("auroc", "auc", "roc_auc")),
    (Metric("auprc", True, "score", auprc), ("auprc", "average_precision", "ap")),
    (
        Metric("sensitivity", True, "label", sensitivity),
        ("sensitivity", "recall", "tpr", "sens"),
    ),
    (Metric("specificity", True, "label", specificity), ("specificity", "tnr", "spec")),
    (Metric("ppv", True, "label", ppv), ("ppv", "precision")),
    (Metric("npv", True, "label", npv), ("npv",)),
    (Metric("accuracy", True, "label", accuracy), ("accuracy", "acc")),
    (Metric("balanced_accuracy", True, "label", balanced_accuracy), ("balanced_accuracy",)),
    (Metric("f1", True, "label", f1), ("f1", "f1_score")),
    (Metric("brier", False, "probability", brier_score), ("brier", "brier_score")),
    (Metric("log_loss", False, "probability", log_loss), ("log_loss", "nll", "cross_entropy")),
    (
        Metric("macro_auroc", True, "score", macro_auroc, multiclass=True),
        ("macro_auroc", "auroc_ovr_macro"),
    ),
]

#: Alias -> :class:`Metric`.
METRICS: dict[str, Metric] = {alias: m for m, aliases in _DEFS for alias in aliases}


def get_metric(metric: str | Metric) -> Metric:
    """Look a metric up by alias (case-insensitive).

    Raises
    ------
    InputError
        If the alias is unknown; the message lists the valid ones.
    """
    if isinstance(metric, Metric):
        return metric
    key = str(metric).strip().lower().replace("-", "_")
    try:
        return METRICS[key]
    except KeyError:
        raise InputError(
            f"Unknown metric {metric!r}; valid aliases: {', '.join(sorted(METRICS))}."
        ) from None
