"""Proper scores and logistic recalibration: Brier, NLL, calibration slope/intercept."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from medval._errors import InputError
from medval.calibration._binning import Target, confidence_outcome
from medval.stats import check_class_labels, check_probabilities

__all__ = ["brier", "calibration_slope_intercept", "nll"]

_EPS = 1e-12


def brier(probabilities: ArrayLike, labels: ArrayLike) -> float:
    """Brier score (Brier 1950).

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)

    Returns
    -------
    float
        For K = 2 the binary score ``mean((p1 - y)^2)`` in [0, 1]; for K > 2
        the multi-class ``mean(sum_k (p_k - 1[y = k])^2)`` in [0, 2] (the
        convention of :func:`sklearn.metrics.brier_score_loss`). Lower is
        better.
    """
    p = check_probabilities(probabilities)
    y = check_class_labels(labels, *p.shape)
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), y] = 1.0
    score = float(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    return score / 2.0 if p.shape[1] == 2 else score


def nll(probabilities: ArrayLike, labels: ArrayLike) -> float:
    """Mean negative log-likelihood (log loss) of the true class, in nats.

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)

    Returns
    -------
    float
        ``-mean(log p[i, y_i])`` with probabilities clipped at 1e-12.
        Lower is better (Good 1952).
    """
    p = check_probabilities(probabilities)
    y = check_class_labels(labels, *p.shape)
    return float(-np.mean(np.log(np.clip(p[np.arange(p.shape[0]), y], _EPS, 1.0))))


def _logistic_fit(
    z: NDArray[np.float64], o: NDArray[np.float64], fix_slope: bool
) -> NDArray[np.float64]:
    def loss(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        a, b = theta[0], 1.0 if fix_slope else theta[1]
        eta = a + b * z
        # log(1 + exp(eta)) - o * eta, stable.
        value = float(np.sum(np.logaddexp(0.0, eta) - o * eta))
        r = special.expit(eta) - o
        grad = np.array([r.sum()] if fix_slope else [r.sum(), (r * z).sum()])
        return value, grad

    x0 = np.zeros(1) if fix_slope else np.array([0.0, 1.0])
    res = optimize.minimize(loss, x0, jac=True, method="BFGS", options={"gtol": 1e-10})
    return np.asarray(res.x, dtype=np.float64)


def calibration_slope_intercept(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    target: Target = "top_label",
) -> dict[str, float]:
    """Calibration slope and intercept by logistic recalibration (Cox 1958).

    Fits ``logit P(outcome) = a + b * logit(confidence)`` by maximum
    likelihood. A calibrated model has ``b = 1, a = 0``; ``b < 1`` means
    over-confident (too extreme) predictions (Van Calster et al. 2019).

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
    labels : array of int, shape (n,)
    target : {"top_label", "positive"}, default "top_label"
        Use ``"positive"`` for binary tasks (the usual clinical form).

    Returns
    -------
    dict
        ``slope`` (b), ``intercept`` (a) and ``calibration_in_the_large``
        (``a`` refitted with ``b`` fixed at 1). Confidences are clipped to
        [1e-12, 1 - 1e-12] before the logit.

    Raises
    ------
    InputError
        If the outcome is constant (every prediction right, or every one
        wrong): the fit is not estimable.
    """
    conf, outcome = confidence_outcome(probabilities, labels, target)
    if outcome.min() == outcome.max():
        raise InputError(
            "calibration slope is not estimable: the outcome is constant "
            f"(all {'1' if outcome[0] else '0'}) on these {outcome.size} cases."
        )
    z = special.logit(np.clip(conf, _EPS, 1.0 - _EPS))
    a, b = _logistic_fit(z, outcome, fix_slope=False)
    (citl,) = _logistic_fit(z, outcome, fix_slope=True)
    return {"slope": float(b), "intercept": float(a), "calibration_in_the_large": float(citl)}
