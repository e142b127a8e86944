"""Conformal risk control (Angelopoulos, Bates, Fisch, Lei & Schuster 2022)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError

__all__ = ["RiskControlResult", "conformal_risk_control", "risk_control_threshold"]


def _check_target(target: float) -> float:
    t = float(target)
    if not 0.0 < t < 1.0:
        raise InputError(f"target must be in (0, 1), e.g. 0.05 for FNR <= 5%; got {target!r}.")
    return t


def risk_control_threshold(
    losses: ArrayLike, lambdas: ArrayLike, *, target: float, max_loss: float = 1.0
) -> tuple[int, NDArray[np.float64]]:
    """Conformal risk control over a grid of parameters.

    Chooses ``lambda_hat = inf{lambda : n/(n+1) R_n(lambda) + B/(n+1) <= target}``
    for losses that are non-increasing in lambda and bounded by ``B``; then
    ``E[L_{n+1}(lambda_hat)] <= target`` for exchangeable cases
    (Angelopoulos et al. 2022, Thm. 1).

    Parameters
    ----------
    losses : array of float, shape (n, G)
        Loss of each calibration case at each grid value, in ``[0, B]``,
        non-increasing along the grid.
    lambdas : array of float, shape (G,)
        Increasing grid; its last value should give zero loss.
    target : float
        Risk level alpha in (0, 1).
    max_loss : float, default 1
        The bound B.

    Returns
    -------
    index : int
        Index of ``lambda_hat`` in ``lambdas`` (the last one when no grid
        value meets the bound).
    bound : array of float64, shape (G,)
        The adjusted risk ``n/(n+1) R_n + B/(n+1)`` at each grid value.
    """
    L = np.asarray(losses, dtype=np.float64)
    lam = np.asarray(lambdas, dtype=np.float64)
    target = _check_target(target)
    if L.ndim != 2 or lam.ndim != 1 or L.shape[1] != lam.shape[0]:
        raise InputError(
            f"losses must be (n, G) with G = len(lambdas); got {L.shape}, {lam.shape}."
        )
    if L.shape[0] == 0:
        raise InputError("losses are empty; risk control needs calibration cases.")
    if not np.all(np.isfinite(L)) or L.min() < 0 or L.max() > max_loss:
        raise InputError(f"losses must lie in [0, {max_loss:g}] (the bound B).")
    if np.any(np.diff(lam) <= 0):
        raise InputError("lambdas must be strictly increasing.")
    n = L.shape[0]
    bound = n / (n + 1) * L.mean(axis=0) + max_loss / (n + 1)
    ok = np.flatnonzero(bound <= target)
    return (int(ok[0]) if ok.size else lam.shape[0] - 1), bound


@dataclasses.dataclass(frozen=True)
class RiskControlResult:
    """A triage threshold with a conformal false-negative-rate guarantee.

    Cases with positive-class probability ``>= threshold_`` are flagged
    (referred); ``E[FNR] <= target`` over calibration draws.

    Attributes
    ----------
    threshold_ : float
        The chosen threshold (0.0 flags every case).
    target : float
        The FNR target.
    n_positives : int
        Positive calibration cases behind the guarantee.
    calibration_fnr : float
        Share of positive calibration cases missed at the threshold.
    risk_bound : float
        ``n/(n+1) * calibration_fnr + 1/(n+1)`` (<= target when feasible).
    flagged_rate : float
        Share of all calibration cases flagged.
    feasible : bool
        False when ``1/(n+1) > target``: too few positives, so every case is
        flagged.
    """

    threshold_: float
    target: float
    n_positives: int
    calibration_fnr: float
    risk_bound: float
    flagged_rate: float
    feasible: bool


def conformal_risk_control(
    scores: ArrayLike, labels: ArrayLike, *, target: float = 0.05
) -> RiskControlResult:
    """Triage threshold keeping the expected false-negative rate at most ``target``.

    Conformal risk control (Angelopoulos et al. 2022) with the loss
    ``1{p < t}`` on positive cases (B = 1): ``t_hat`` is the largest
    threshold with ``n/(n+1) FNR_n(t) + 1/(n+1) <= target``, n the number of
    positive calibration cases, so that for a new positive case exchangeable
    with them ``P(p < t_hat) <= target`` on average over calibration sets.
    In closed form: the ``(m + 1)``-th smallest positive score with
    ``m = floor(target (n + 1) - 1)``.

    Parameters
    ----------
    scores : array of float, shape (n,)
        Positive-class probability (or any score, higher = more suspicious).
    labels : array of {0, 1}, shape (n,)
        1 for positive cases.
    target : float, default 0.05
        FNR target in (0, 1).

    Returns
    -------
    RiskControlResult

    Raises
    ------
    InputError
        Mismatched shapes, non-finite scores, labels not in {0, 1}, or no
        positive case.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    target = _check_target(target)
    if s.ndim != 1 or y.shape != s.shape:
        raise InputError(f"scores and labels must both have shape (n,); got {s.shape}, {y.shape}.")
    if not np.all(np.isfinite(s)):
        raise InputError("scores contain NaN or infinite values.")
    if not np.all(np.isin(y, (0, 1))):
        raise InputError("labels must be 0 (negative) or 1 (positive) for a triage rule.")
    pos = np.sort(s[y == 1])
    n = pos.shape[0]
    if n == 0:
        raise InputError("labels have no positive case; the FNR cannot be controlled.")
    m = math.floor(target * (n + 1) - 1 + 1e-12)
    if m < 0:
        threshold = 0.0
    elif m >= n:
        threshold = float(np.inf)
    else:
        threshold = float(pos[m])
    fnr = float(np.mean(pos < threshold))
    return RiskControlResult(
        threshold_=threshold,
        target=target,
        n_positives=n,
        calibration_fnr=fnr,
        risk_bound=n / (n + 1) * fnr + 1 / (n + 1),
        flagged_rate=float(np.mean(s >= threshold)),
        feasible=m >= 0,
    )
