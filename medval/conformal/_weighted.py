"""Weighted conformal classification under covariate shift (Tibshirani et al. 2019)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from medval._errors import InputError, NotCalibratedError
from medval.conformal._checks import check_labels, check_probabilities
from medval.conformal._quantile import effective_sample_size, weighted_quantile_threshold
from medval.conformal._scores import Regularization, get_score
from medval.stats import normalise_random_state

__all__ = [
    "WeightedConformalClassifier",
    "domain_likelihood_ratios",
    "likelihood_ratios_from_domain_probs",
]


def likelihood_ratios_from_domain_probs(
    p_target: ArrayLike, n_calibration: int, n_target: int, *, clip: float = 1e-6
) -> NDArray[np.float64]:
    """Likelihood ratios ``dP_target/dP_cal`` from a domain classifier.

    A classifier trained to tell target cases (label 1) from calibration
    cases (label 0) gives ``P(target | x)``; by Bayes,
    ``w(x) = p / (1 - p) * n_cal / n_target`` (Tibshirani et al. 2019, sec. 3;
    the prior odds correct for unequal sample sizes).

    Parameters
    ----------
    p_target : array of float, shape (n,)
        Domain classifier's probability that each case is from the target.
    n_calibration, n_target : int
        Sizes of the two samples the domain classifier was trained on.
    clip : float, default 1e-6
        Probabilities are clipped to ``[clip, 1 - clip]``.

    Returns
    -------
    array of float64, shape (n,)
    """
    p = np.asarray(p_target, dtype=np.float64)
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise InputError("p_target must be probabilities in [0, 1].")
    if n_calibration <= 0 or n_target <= 0:
        raise InputError("n_calibration and n_target must be positive sample sizes.")
    p = np.clip(p, clip, 1 - clip)
    return p / (1 - p) * (n_calibration / n_target)


def _features(x: ArrayLike, what: str) -> NDArray[np.float64]:
    f = np.asarray(x, dtype=np.float64)
    if f.ndim == 1:
        f = f[:, None]
    if f.ndim != 2 or f.shape[0] == 0:
        raise InputError(f"{what} must have shape (n, d) with n >= 1; got {f.shape}.")
    if not np.all(np.isfinite(f)):
        raise InputError(f"{what} contain NaN or infinite values.")
    return f


def _fit_logistic(z: NDArray[np.float64], d: NDArray[np.float64], l2: float) -> NDArray[np.float64]:
    """L2-penalised logistic regression (unpenalised intercept), by L-BFGS."""
    design = np.column_stack([np.ones(z.shape[0]), z])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0

    def loss(beta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        eta = design @ beta
        value = float(np.sum(np.logaddexp(0.0, eta) - d * eta) + 0.5 * np.dot(penalty * beta, beta))
        grad = design.T @ (special.expit(eta) - d) + penalty * beta
        return value, grad

    # Converged to the (unique, strictly convex) optimum rather than stopped
    # early: an early stop amplifies 1e-7 input noise from another CPU's
    # kernels into 1e-4 changes of the weights.
    res = optimize.minimize(
        loss,
        np.zeros(design.shape[1]),
        jac=True,
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000},
    )
    return np.asarray(res.x, dtype=np.float64)


def domain_likelihood_ratios(
    calibration_features: ArrayLike,
    target_features: ArrayLike,
    *,
    n_folds: int = 5,
    l2: float = 1.0,
    clip: float = 1e-6,
    random_state: int | np.random.Generator | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Likelihood ratios ``dP_target/dP_cal`` from a cross-fitted domain classifier.

    An L2-penalised logistic regression on standardised features (e.g. the
    model's embeddings) learns to tell target cases (a new scanner, a new
    site) from calibration cases; each case's ``P(target | x)`` comes from
    the fold that did not see it, and is turned into ``w(x)`` with
    :func:`likelihood_ratios_from_domain_probs` (Tibshirani, Barber, Candès
    & Ramdas 2019, sec. 3). The weighted guarantee holds only as far as these
    estimated ratios are right; check the effective sample size
    (:func:`medval.conformal.effective_sample_size`) before trusting it.

    Parameters
    ----------
    calibration_features : array of float, shape (n, d)
    target_features : array of float, shape (m, d)
    n_folds : int, default 5
        Cross-fitting folds (stratified by domain).
    l2 : float, default 1.0
        Ridge penalty on the standardised coefficients.
    clip : float, default 1e-6
        Domain probabilities are clipped to ``[clip, 1 - clip]``.
    random_state : int, Generator or None
        Fold assignment.

    Returns
    -------
    calibration_weights : array of float64, shape (n,)
    target_weights : array of float64, shape (m,)

    Raises
    ------
    InputError
        Mismatched feature dimensions, NaN, fewer cases than folds per domain.
    """
    xc = _features(calibration_features, "calibration_features")
    xt = _features(target_features, "target_features")
    if xc.shape[1] != xt.shape[1]:
        raise InputError(
            f"calibration_features have {xc.shape[1]} columns but target_features have "
            f"{xt.shape[1]}; use the same features (e.g. the same embedding layer) for both."
        )
    if int(n_folds) != n_folds or n_folds < 2:
        raise InputError(f"n_folds must be an integer >= 2; got {n_folds!r}.")
    nc, nt = xc.shape[0], xt.shape[0]
    if min(nc, nt) < n_folds:
        raise InputError(
            f"each domain needs at least n_folds={n_folds} cases; got {nc} calibration and "
            f"{nt} target cases."
        )
    if not (np.isfinite(l2) and l2 >= 0):
        raise InputError(f"l2 must be a finite number >= 0; got {l2!r}.")
    x = np.vstack([xc, xt])
    sd = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    d = np.r_[np.zeros(nc), np.ones(nt)]
    rng = normalise_random_state(random_state)[0]
    fold = np.r_[rng.permutation(nc) % n_folds, rng.permutation(nt) % n_folds]
    p = np.empty(nc + nt)
    for f in range(int(n_folds)):
        out = fold == f
        beta = _fit_logistic(z[~out], d[~out], float(l2))
        p[out] = special.expit(beta[0] + z[out] @ beta[1:])
    w = likelihood_ratios_from_domain_probs(p, nc, nt, clip=clip)
    return w[:nc], w[nc:]


class WeightedConformalClassifier:
    """Conformal prediction sets reweighted to a shifted target population.

    Calibration scores are weighted by likelihood ratios ``w(x)`` and each
    test case by its own; the threshold is the weighted conformal quantile
    (:func:`medval.conformal.weighted_quantile_threshold`). Coverage holds
    under covariate shift when the ratios are right (Tibshirani, Barber,
    Candès & Ramdas 2019). The guarantee rests on Kish's effective sample
    size ``(sum w)^2 / sum w^2``, reported as ``effective_sample_size_``;
    ``small_ess_`` warns when it is below ``min_effective_size``.

    Parameters
    ----------
    method : {"lac", "aps", "raps", "topk"}, default "lac"
        Conformity score (RAPS needs ``lambda_reg`` and ``k_reg``).
    confidence_level : float, default 0.9
    randomized : bool, optional
        Randomised APS/RAPS scores (default for them).
    lambda_reg, k_reg : float, optional
        RAPS penalty (required for RAPS).
    min_effective_size : float, default 100
    random_state : int, Generator or None
    """

    def __init__(
        self,
        method: str = "lac",
        *,
        confidence_level: float = 0.9,
        randomized: bool | None = None,
        lambda_reg: float | None = None,
        k_reg: float | None = None,
        min_effective_size: float = 100.0,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.score = get_score(method)
        self.method = self.score.name
        self.confidence_level = float(confidence_level)
        if not 0 < self.confidence_level < 1:
            raise InputError(f"confidence_level must be in (0, 1); got {confidence_level}.")
        if randomized is None:
            randomized = self.score.randomizable
        if randomized and not self.score.randomizable:
            raise InputError("randomized=True is available for 'aps' and 'raps' only.")
        self.randomized = bool(randomized)
        self.regularization: Regularization | None = None
        if self.method == "raps":
            if lambda_reg is None or k_reg is None:
                raise InputError("Weighted RAPS needs lambda_reg and k_reg (no tuning split).")
            self.regularization = Regularization(float(lambda_reg), float(k_reg))
        self.min_effective_size = float(min_effective_size)
        self.random_state = random_state

    def calibrate(
        self, probabilities: ArrayLike, labels: ArrayLike, weights: ArrayLike
    ) -> WeightedConformalClassifier:
        """Store weighted calibration scores.

        Parameters
        ----------
        probabilities : array of float, shape (n, K)
        labels : array of int, shape (n,)
        weights : array of float, shape (n,)
            Likelihood ratios of the calibration cases.
        """
        p = check_probabilities(probabilities)
        n, k = p.shape
        y = check_labels(labels, n, k)
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise InputError(f"weights must be ({n},) finite non-negative likelihood ratios.")
        rng = normalise_random_state(self.random_state)[0]
        u = rng.random((n,)) if self.randomized else None
        self.scores_ = self.score.calibration_scores(p, y, u=u, regularization=self.regularization)
        self.weights_ = w
        self.n_classes_ = k
        self.n_calibration_ = n
        self.effective_sample_size_ = effective_sample_size(w)
        self.small_ess_ = self.effective_sample_size_ < self.min_effective_size
        self._predict_seed = int(rng.integers(np.iinfo(np.int64).max))
        return self

    def predict_sets(self, probabilities: ArrayLike, weights: ArrayLike) -> NDArray[np.bool_]:
        """Sets (m, K) for test cases with likelihood ratios ``weights`` (m,)."""
        if not hasattr(self, "scores_"):
            raise NotCalibratedError(
                "Call WeightedConformalClassifier.calibrate(probabilities, labels, weights) first."
            )
        p = check_probabilities(probabilities)
        m, k = p.shape
        if k != self.n_classes_:
            raise InputError(f"probabilities have {k} classes; calibration had {self.n_classes_}.")
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (m,):
            raise InputError(f"weights must have shape ({m},); got {w.shape}.")
        thresholds, _ = weighted_quantile_threshold(
            self.scores_,
            self.weights_,
            test_weight=w,
            confidence_level=self.confidence_level,
            min_effective_size=self.min_effective_size,
        )
        # +inf threshold = the full set; clamp so the set rules stay finite
        thresholds = np.minimum(thresholds, np.finfo(np.float64).max / 4)
        u = normalise_random_state(self._predict_seed)[0].random((m,)) if self.randomized else None
        return self.score.row_sets(p, thresholds, u=u, regularization=self.regularization)
