"""Total = aleatoric + epistemic: entropy and variance decompositions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from medval._errors import InputError
from medval._types import Predictions

__all__ = [
    "DECOMPOSITIONS",
    "Decomposition",
    "decompose",
    "decompose_regression",
    "decompose_regression_variances",
]

FloatArray = NDArray[np.float64]
_SUM_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True, eq=False)
class Decomposition:
    """Per-case uncertainty, split into its sources.

    Attributes
    ----------
    total, aleatoric, epistemic : array of float, shape (n,)
        ``total == aleatoric + epistemic`` up to float rounding; all >= 0.
    measure : str
        ``"entropy"`` (nats), ``"variance"``, ``"regression_variance"`` or
        ``"dirichlet_entropy"`` (nats, closed form: :func:`dirichlet_decompose`).
    n_samples : int
        Number of Monte Carlo samples T behind it; 0 for a closed form.
    """

    total: FloatArray
    aleatoric: FloatArray
    epistemic: FloatArray
    measure: str
    n_samples: int

    def to_dict(self) -> dict[str, Any]:
        """Plain form: the three arrays as lists plus ``measure`` and ``n_samples``."""
        return {
            "total": self.total.tolist(),
            "aleatoric": self.aleatoric.tolist(),
            "epistemic": self.epistemic.tolist(),
            "measure": self.measure,
            "n_samples": self.n_samples,
        }


def _entropy(p: FloatArray) -> FloatArray:
    return np.asarray(-special.xlogy(p, p).sum(axis=-1), dtype=np.float64)


def predictive_entropy(probabilities: ArrayLike) -> FloatArray:
    """Entropy in nats of each row of ``probabilities`` (shape (n, K)) -> shape (n,).

    The total uncertainty of a single deterministic pass; 0 for a one-hot row.
    """
    return _entropy(np.asarray(probabilities, dtype=np.float64))


def _entropy_parts(mc: FloatArray) -> tuple[FloatArray, FloatArray]:
    total = _entropy(mc.mean(axis=0))
    aleatoric = _entropy(mc).mean(axis=0)
    return total, aleatoric


def _variance_parts(mc: FloatArray) -> tuple[FloatArray, FloatArray]:
    # Law of total variance of the one-hot outcome, summed over classes:
    # pbar (1 - pbar) = E[p (1 - p)] + Var[p].
    mean = mc.mean(axis=0)
    total = np.sum(mean * (1.0 - mean), axis=-1)
    aleatoric = np.sum(mc * (1.0 - mc), axis=-1).mean(axis=0)
    return total, aleatoric


#: Decompositions by alias: alias -> function(mc (T, n, K)) -> (total, aleatoric).
DECOMPOSITIONS: dict[str, Callable[[FloatArray], tuple[FloatArray, FloatArray]]] = {
    "entropy": _entropy_parts,
    "variance": _variance_parts,
}


def _as_mc(mc_probabilities: ArrayLike | Predictions) -> FloatArray:
    if isinstance(mc_probabilities, Predictions):
        if mc_probabilities.mc_probabilities is None:
            raise InputError(
                "these Predictions hold no Monte Carlo samples; run "
                "medval.predict(..., mc_samples=T) (or an ensemble / tta=) first."
            )
        mc_probabilities = mc_probabilities.mc_probabilities
    mc = np.asarray(mc_probabilities, dtype=np.float64)
    if mc.ndim != 3 or mc.shape[2] < 2 or mc.shape[0] < 1:
        raise InputError(
            f"mc_probabilities must have shape (T, n, K) with K >= 2; got {mc.shape}. "
            "For one deterministic pass use shape (1, n, K)."
        )
    if not np.all(np.isfinite(mc)):
        raise InputError("mc_probabilities contain NaN or infinite values.")
    if mc.size and (mc.min() < 0.0 or mc.max() > 1.0):
        raise InputError(
            "mc_probabilities must lie in [0, 1]; average probabilities, never logits."
        )
    sums = mc.sum(axis=2)
    if np.any(np.abs(sums - 1.0) > _SUM_TOLERANCE):
        raise InputError("mc_probabilities rows must sum to 1 over the K classes.")
    return mc


def decompose(
    mc_probabilities: ArrayLike | Predictions, *, measure: str = "entropy"
) -> Decomposition:
    """Split predictive uncertainty into aleatoric and epistemic parts.

    With ``measure="entropy"`` (Depeweg et al. 2018; Gal 2016, ch. 3):
    total = H[mean_t p_t] (predictive entropy), aleatoric = mean_t H[p_t]
    (expected entropy), epistemic = total - aleatoric (the mutual
    information between the prediction and the model parameters). All lie
    in [0, log K] nats; epistemic is 0 when all samples agree.

    With ``measure="variance"`` (Kwon et al. 2020): per class, the variance
    of the one-hot outcome ``pbar (1 - pbar)`` = ``E[p (1 - p)]``
    (aleatoric) + ``Var_t[p]`` (epistemic), summed over classes; all in
    [0, 1 - 1/K].

    Parameters
    ----------
    mc_probabilities : array of float, shape (T, n, K), or Predictions
        Monte Carlo probabilities (MC dropout, ensemble members, TTA);
        Predictions must carry ``mc_probabilities``.
    measure : {"entropy", "variance"}, default "entropy"

    Returns
    -------
    Decomposition
        ``total``, ``aleatoric``, ``epistemic`` of shape (n,).

    Raises
    ------
    InputError
        On a wrong shape, invalid probabilities, or an unknown ``measure``.
    """
    if measure not in DECOMPOSITIONS:
        raise InputError(f"unknown measure {measure!r}; valid: {sorted(DECOMPOSITIONS)}.")
    mc = _as_mc(mc_probabilities)
    total, aleatoric = DECOMPOSITIONS[measure](mc)
    # Rounding can make aleatoric exceed total by ~1e-16 when samples agree.
    aleatoric = np.minimum(aleatoric, total)
    # Samples that agree exactly carry no epistemic uncertainty, exactly.
    agree = np.all(mc == mc[:1], axis=(0, 2))
    aleatoric[agree] = total[agree]
    epistemic = total - aleatoric
    return Decomposition(
        total=total,
        aleatoric=aleatoric,
        epistemic=epistemic,
        measure=measure,
        n_samples=int(mc.shape[0]),
    )


def _regression_parts(mu: FloatArray, variances: FloatArray) -> Decomposition:
    aleatoric = variances.mean(axis=0)
    epistemic = mu.var(axis=0)
    # Means that agree exactly carry no epistemic uncertainty, exactly (var rounds to ~1e-32).
    epistemic[np.all(mu == mu[:1], axis=0)] = 0.0
    return Decomposition(
        total=aleatoric + epistemic,
        aleatoric=aleatoric,
        epistemic=epistemic,
        measure="regression_variance",
        n_samples=int(mu.shape[0]),
    )


def _check_regression(
    means: ArrayLike, spread: ArrayLike, name: str
) -> tuple[FloatArray, FloatArray]:
    mu = np.asarray(means, dtype=np.float64)
    s = np.asarray(spread, dtype=np.float64)
    if mu.ndim != 2 or mu.shape != s.shape or mu.shape[0] < 1:
        raise InputError(
            f"means and {name} must both have shape (T, n); got {mu.shape} and {s.shape}."
        )
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(s))):
        raise InputError(f"means or {name} contain NaN or infinite values.")
    return mu, s


def decompose_regression(means: ArrayLike, log_variances: ArrayLike) -> Decomposition:
    """Variance decomposition for heteroscedastic regression heads (Kendall and Gal 2017).

    Each of T samples predicts a mean ``mu_t`` and a log-variance
    ``s_t``: aleatoric = ``mean_t exp(s_t)``, epistemic = ``Var_t[mu_t]``
    (population variance), total = their sum (the variance of the mixture
    of the T Gaussians, by the law of total variance). ``total`` is
    computed as ``aleatoric + epistemic``, so the identity holds exactly.

    Parameters
    ----------
    means : array of float, shape (T, n)
    log_variances : array of float, shape (T, n)
        Natural log of the predicted variances.

    Returns
    -------
    Decomposition
        ``measure="regression_variance"``.

    Raises
    ------
    InputError
        On mismatched shapes, non-finite values or log-variances so large
        that the variance overflows.

    References
    ----------
    Kendall & Gal (2017), "What uncertainties do we need in Bayesian deep
    learning for computer vision?", NeurIPS, eq. 9; Depeweg et al. (2018),
    ICML (the decomposition by the law of total variance).
    """
    mu, lv = _check_regression(means, log_variances, "log_variances")
    with np.errstate(over="ignore"):
        variances = np.exp(lv)
    if not np.all(np.isfinite(variances)):
        raise InputError(
            f"log_variances up to {lv.max():.4g} overflow exp(); these are not natural-log "
            "variances (if they are variances, use decompose_regression_variances)."
        )
    return _regression_parts(mu, variances)


def decompose_regression_variances(means: ArrayLike, variances: ArrayLike) -> Decomposition:
    """:func:`decompose_regression` for heads that give variances, not log-variances.

    aleatoric = ``mean_t var_t``, epistemic = ``Var_t[mu_t]`` (population
    variance), total = ``aleatoric + epistemic`` exactly.

    Parameters
    ----------
    means : array of float, shape (T, n)
    variances : array of float, shape (T, n)
        Predicted variances, ``>= 0`` (not standard deviations: square them).

    Returns
    -------
    Decomposition
        ``measure="regression_variance"``.

    Raises
    ------
    InputError
        On mismatched shapes, non-finite or negative variances.

    References
    ----------
    Kendall & Gal (2017), NeurIPS, eq. 9; Lakshminarayanan et al. (2017),
    "Simple and scalable predictive uncertainty estimation using deep
    ensembles", NeurIPS (the mixture's variance).
    """
    mu, var = _check_regression(means, variances, "variances")
    if np.any(var < 0.0):
        raise InputError(
            f"variances must be >= 0; the smallest is {var.min():.4g}. If these are "
            "log-variances, use decompose_regression."
        )
    return _regression_parts(mu, var)
