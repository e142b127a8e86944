"""Binned calibration errors: ECE, MCE, class-wise ECE, debiased L2, reliability data.

Bins are right-closed, ``(lower, upper]`` (the first also holds 0), as in
Guo et al. (2017) and :func:`sklearn.calibration.calibration_curve`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError
from medval.stats import check_class_labels, check_probabilities

__all__ = [
    "BINNINGS",
    "classwise_ece",
    "debiased_l2_ce",
    "ece",
    "mce",
    "reliability_data",
]

Target = Literal["top_label", "positive"]
FloatArray = NDArray[np.float64]


def _equal_width(conf: FloatArray, n_bins: int) -> FloatArray:
    return np.linspace(0.0, 1.0, n_bins + 1)


def _equal_mass(conf: FloatArray, n_bins: int) -> FloatArray:
    # Quantile edges; tied confidences stay in one bin (some bins may be empty).
    edges = np.quantile(conf, np.linspace(0.0, 1.0, n_bins + 1))
    edges[0], edges[-1] = 0.0, 1.0
    return np.maximum.accumulate(edges)


#: Bin schemes by alias: alias -> function(confidences, n_bins) -> edges (n_bins + 1,).
BINNINGS: dict[str, Callable[[FloatArray, int], FloatArray]] = {
    "equal_width": _equal_width,
    "equal_mass": _equal_mass,
}


def _edges(conf: FloatArray, n_bins: int, binning: str) -> FloatArray:
    if binning not in BINNINGS:
        raise InputError(f"unknown binning {binning!r}; valid: {sorted(BINNINGS)}.")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise InputError(f"n_bins must be a positive integer; got {n_bins!r}.")
    return BINNINGS[binning](conf, int(n_bins))


def bin_ids(conf: FloatArray, edges: FloatArray) -> NDArray[np.intp]:
    """Index of the right-closed bin of each confidence."""
    return np.searchsorted(edges[1:-1], conf, side="left")


def confidence_outcome(
    probabilities: ArrayLike, labels: ArrayLike, target: str
) -> tuple[FloatArray, FloatArray]:
    """Confidences and 0/1 outcomes for a calibration target."""
    p = check_probabilities(probabilities)
    y = check_class_labels(labels, *p.shape)
    if target == "top_label":
        pred = p.argmax(axis=1)
        return p[np.arange(p.shape[0]), pred], (pred == y).astype(np.float64)
    if target == "positive":
        if p.shape[1] != 2:
            raise InputError(
                f"target='positive' needs binary (n, 2) probabilities; got K={p.shape[1]}. "
                "Use target='top_label' or classwise_ece for K > 2."
            )
        return p[:, 1], (y == 1).astype(np.float64)
    raise InputError(f"unknown target {target!r}; valid: ['positive', 'top_label'].")


def _bin_sums(
    conf: FloatArray, outcome: FloatArray, edges: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    ids = bin_ids(conf, edges)
    b = edges.size - 1
    counts = np.bincount(ids, minlength=b).astype(np.float64)
    s_conf = np.bincount(ids, weights=conf, minlength=b).astype(np.float64)
    s_out = np.bincount(ids, weights=outcome, minlength=b).astype(np.float64)
    return counts, s_conf, s_out


def _ece_from(conf: FloatArray, outcome: FloatArray, n_bins: int, binning: str) -> float:
    _, s_conf, s_out = _bin_sums(conf, outcome, _edges(conf, n_bins, binning))
    return float(np.abs(s_out - s_conf).sum() / conf.size)


def ece(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 15,
    binning: str = "equal_width",
    target: Target = "top_label",
) -> float:
    """Expected calibration error (Naeini et al. 2015; Guo et al. 2017).

    ``sum_b (n_b / n) |accuracy_b - confidence_b|`` over bins of the
    confidence.

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
        Rows sum to 1; K = 2 for binary tasks.
    labels : array of int, shape (n,)
    n_bins : int, default 15
    binning : {"equal_width", "equal_mass"}, default "equal_width"
        Bin scheme (see :data:`BINNINGS`). Report it with the value.
    target : {"top_label", "positive"}, default "top_label"
        ``"top_label"``: confidence of the predicted class against
        correctness. ``"positive"``: P(class 1) against ``labels == 1``
        (binary only).

    Returns
    -------
    float
        In [0, 1]. Biased upward on small test sets (Kumar et al. 2019):
        also report :func:`ece_ci` or :func:`debiased_l2_ce`.

    Raises
    ------
    InputError
        On invalid probabilities/labels, an unknown ``binning`` or
        ``target``, or ``n_bins < 1``.
    """
    conf, outcome = confidence_outcome(probabilities, labels, target)
    return _ece_from(conf, outcome, n_bins, binning)


def mce(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 15,
    binning: str = "equal_width",
    target: Target = "top_label",
) -> float:
    """Maximum calibration error (Naeini et al. 2015): the largest bin gap.

    Same parameters as :func:`ece`; empty bins are skipped.

    Returns
    -------
    float
        ``max_b |accuracy_b - confidence_b|`` over non-empty bins.
    """
    conf, outcome = confidence_outcome(probabilities, labels, target)
    counts, s_conf, s_out = _bin_sums(conf, outcome, _edges(conf, n_bins, binning))
    full = counts > 0
    return float(np.max(np.abs(s_out[full] - s_conf[full]) / counts[full]))


def classwise_ece(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 15,
    binning: str = "equal_width",
) -> float:
    """Class-wise ECE (Kull et al. 2019; Nixon et al. 2019).

    The mean over classes k of the ECE of ``p[:, k]`` against
    ``labels == k``.

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)
    n_bins : int, default 15
    binning : {"equal_width", "equal_mass"}, default "equal_width"

    Returns
    -------
    float
    """
    p = check_probabilities(probabilities)
    y = check_class_labels(labels, *p.shape)
    per_class = [
        _ece_from(p[:, k], (y == k).astype(np.float64), n_bins, binning) for k in range(p.shape[1])
    ]
    return float(np.mean(per_class))


def debiased_l2_ce(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 15,
    binning: str = "equal_mass",
    target: Target = "top_label",
    squared: bool = False,
) -> float:
    """Debiased L2 calibration error (Kumar, Liang and Ma 2019).

    The plug-in ``sum_b (n_b/n) (confidence_b - accuracy_b)^2`` is biased
    upward by the binomial noise of each bin's accuracy; each bin's term is
    corrected by the unbiased ``a_b (1 - a_b) / (n_b - 1)`` (bins with one
    case keep the plug-in term).

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)
    n_bins : int, default 15
    binning : {"equal_mass", "equal_width"}, default "equal_mass"
        Kumar et al. use equal-mass bins.
    target : {"top_label", "positive"}, default "top_label"
    squared : bool, default False
        Return the debiased squared error itself (can be slightly negative)
        instead of ``sqrt(max(., 0))``.

    Returns
    -------
    float
    """
    conf, outcome = confidence_outcome(probabilities, labels, target)
    counts, s_conf, s_out = _bin_sums(conf, outcome, _edges(conf, n_bins, binning))
    full = counts > 0
    c, s_c, s_o = counts[full], s_conf[full], s_out[full]
    acc, mean_conf = s_o / c, s_c / c
    correction = np.where(c > 1, acc * (1.0 - acc) / np.maximum(c - 1.0, 1.0), 0.0)
    sq = float(np.sum(c / conf.size * ((mean_conf - acc) ** 2 - correction)))
    return sq if squared else float(np.sqrt(max(sq, 0.0)))


def reliability_data(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 15,
    binning: str = "equal_width",
    target: Target = "top_label",
) -> dict[str, Any]:
    """Data of a reliability diagram (DeGroot and Fienberg 1983; Guo et al. 2017).

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)
    n_bins : int, default 15
    binning : {"equal_width", "equal_mass"}, default "equal_width"
    target : {"top_label", "positive"}, default "top_label"
        ``"positive"`` gives the binary diagram of P(class 1).

    Returns
    -------
    dict
        ``bin_lower``, ``bin_upper`` (n_bins,), ``count`` (n_bins,) int,
        ``mean_confidence``, ``observed_frequency`` and ``gap``
        (observed - confidence), NaN for empty bins; plus ``n``,
        ``n_bins``, ``binning``, ``target`` and ``ece``.
    """
    conf, outcome = confidence_outcome(probabilities, labels, target)
    edges = _edges(conf, n_bins, binning)
    counts, s_conf, s_out = _bin_sums(conf, outcome, edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(counts > 0, s_conf / counts, np.nan)
        freq = np.where(counts > 0, s_out / counts, np.nan)
    return {
        "bin_lower": edges[:-1].copy(),
        "bin_upper": edges[1:].copy(),
        "count": counts.astype(np.int64),
        "mean_confidence": mean_conf,
        "observed_frequency": freq,
        "gap": freq - mean_conf,
        "n": int(conf.size),
        "n_bins": int(n_bins),
        "binning": binning,
        "target": target,
        "ece": float(np.abs(s_out - s_conf).sum() / conf.size),
    }
