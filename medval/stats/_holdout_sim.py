"""Simulated adaptive gating: a plain reused holdout against Thresholdout.

Reproduces the experiment of Dwork et al. (Science 2015, Fig. 1; NIPS 2015,
Sec. 5) in gate terms. Labels are independent of ``n_features`` Gaussian
features, so every classifier's true accuracy is exactly 0.5. The team owns
a training set; the test set sits behind a gate. Round ``j`` asks the gate
for the accuracy of the one-feature rule ``sign(x_j)`` and keeps feature
``j`` when the gate's answer and the training accuracy lie on the same
side of 0.5 by more than ``0.5 / sqrt(n)``. At each checkpoint ``k`` the team
builds the sign-weighted vote of its ``k`` strongest kept features and the
gate reports that candidate's accuracy. The plain gate answers with the
test-set accuracy; the reusable one answers through :class:`Thresholdout`
with the training accuracy as reference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import numpy as np
from numpy.typing import NDArray

from medval._errors import BudgetExhaustedError, InputError
from medval.stats._thresholdout import Thresholdout, _check_count
from medval.stats._validate import normalise_random_state

__all__ = ["AdaptiveGatingResult", "simulate_adaptive_gating"]

FloatArray = NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class AdaptiveGatingResult:
    """Reported accuracies at each checkpoint, over ``n_repeats`` simulated teams.

    Attributes
    ----------
    checkpoints : ndarray of shape (c,)
        Number of features in the candidate.
    plain, thresholdout, reference : ndarray of shape (n_repeats, c)
        Accuracy reported by the plain gate, answered by Thresholdout, and
        the team's training accuracy (NaN where Thresholdout refused).
    true_value : float
        The candidates' true accuracy (0.5: labels carry no signal).
    detections : ndarray of shape (n_repeats,)
        Overfitting detections spent per team.
    n_queries : int
        Queries each team sent to the gate.
    setting : dict
        n, n_features, threshold, noise_scale, budget, n_repeats, seed.
    """

    checkpoints: NDArray[np.int64]
    plain: FloatArray
    thresholdout: FloatArray
    reference: FloatArray
    true_value: float
    detections: NDArray[np.int64]
    n_queries: int
    setting: dict[str, float | int | None]

    @staticmethod
    def _mean_se(a: FloatArray) -> tuple[FloatArray, FloatArray]:
        k = np.sum(np.isfinite(a), axis=0)
        return np.nanmean(a, axis=0), np.nanstd(a, axis=0, ddof=1) / np.sqrt(k)

    def summary(self) -> dict[str, FloatArray]:
        """Mean and Monte Carlo standard error of each series, per checkpoint."""
        out: dict[str, FloatArray] = {}
        for name in ("plain", "thresholdout", "reference"):
            out[f"{name}_mean"], out[f"{name}_se"] = self._mean_se(getattr(self, name))
        out["thresholdout_max_error"] = np.nanmax(np.abs(self.thresholdout - self.true_value), 0)
        return out


def _one_team(
    rng: np.random.Generator, n: int, d: int, ks: NDArray[np.int64], mech: Thresholdout
) -> tuple[FloatArray, FloatArray, FloatArray]:
    X_train, X_test = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    y_train, y_test = rng.choice([-1.0, 1.0], n), rng.choice([-1.0, 1.0], n)
    acc_train = (np.sign(X_train) == y_train[:, None]).mean(axis=0)
    acc_test = (np.sign(X_test) == y_test[:, None]).mean(axis=0)
    answered = np.full(d, 0.5)  # a refused query validates nothing
    for j in range(d):
        try:
            answered[j] = mech.answer(acc_test[j], acc_train[j]).value
        except BudgetExhaustedError:
            break
    margin = 0.5 / math.sqrt(n)
    out = np.full((3, ks.size), np.nan)
    for arm, gate in enumerate((acc_test, answered)):
        up = (acc_train - 0.5 > margin) & (gate - 0.5 > margin)
        down = (acc_train - 0.5 < -margin) & (gate - 0.5 < -margin)
        strength = np.where(up | down, np.abs(acc_train - 0.5), -1.0)
        order = np.argsort(-strength, kind="stable")
        for i, k in enumerate(ks):
            top = order[:k]
            w = np.sign(acc_train[top] - 0.5)
            test_acc = float(np.mean(np.sign(X_test[:, top] @ w) == y_test))
            if arm == 0:
                out[0, i] = test_acc
                continue
            train_acc = float(np.mean(np.sign(X_train[:, top] @ w) == y_train))
            out[2, i] = train_acc
            with contextlib.suppress(BudgetExhaustedError):  # a refusal leaves NaN
                out[1, i] = mech.answer(test_acc, train_acc).value
    return out[0], out[1], out[2]


def simulate_adaptive_gating(
    n: int = 2000,
    n_features: int = 2000,
    *,
    checkpoints: tuple[int, ...] = (10, 20, 50, 100, 200, 300),
    threshold: float | None = None,
    noise_scale: float | None = None,
    budget: int | None = None,
    n_repeats: int = 20,
    random_state: int | np.random.Generator | None = None,
) -> AdaptiveGatingResult:
    """Simulate teams tuning a candidate against a plain and a reusable holdout.

    Parameters
    ----------
    n : int, default 2000
        Cases in the training set and in the test set (each).
    n_features : int, default 2000
        Features, each validated through the gate in one round.
    checkpoints : tuple of int
        Candidate sizes at which the gate reports accuracy.
    threshold, noise_scale : float, optional
        Thresholdout's ``T`` and ``sigma``; default ``2 / sqrt(n)`` and
        ``0.125 / sqrt(n)`` (0.045 and 0.0028 at n = 2000).
    budget : int, optional
        Detections allowed; default ``n_features // 10``.
    n_repeats : int, default 20
        Independent teams (fresh data each).
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    AdaptiveGatingResult

    References
    ----------
    Dwork et al., Science 2015;349:636, Fig. 1; NIPS 2015 (arXiv:1506.02629), Sec. 5.
    """
    n = _check_count(n, "n", minimum=10)
    d = _check_count(n_features, "n_features", minimum=1)
    ks = np.asarray(checkpoints, dtype=np.int64)
    if ks.ndim != 1 or ks.size == 0 or ks.min() < 1 or ks.max() > d:
        raise InputError(
            "checkpoints must be candidate sizes between 1 and "
            f"n_features={d}; got {checkpoints!r}."
        )
    T = 2.0 / math.sqrt(n) if threshold is None else threshold
    sigma = 0.125 / math.sqrt(n) if noise_scale is None else noise_scale
    B = max(1, d // 10) if budget is None else budget
    reps = _check_count(n_repeats, "n_repeats", minimum=2)
    rng, seed = normalise_random_state(random_state)
    plain, thr, ref = (np.full((reps, ks.size), np.nan) for _ in range(3))
    detections = np.zeros(reps, dtype=np.int64)
    for r in range(reps):
        mech = Thresholdout(T, sigma, B, random_state=rng)
        plain[r], thr[r], ref[r] = _one_team(rng, n, d, ks, mech)
        detections[r] = B - mech.budget_left_
    setting: dict[str, float | int | None] = {
        "n": n,
        "n_features": d,
        "threshold": T,
        "noise_scale": sigma,
        "budget": B,
        "n_repeats": reps,
        "seed": seed,
    }
    return AdaptiveGatingResult(ks, plain, thr, ref, 0.5, detections, d + ks.size, setting)
