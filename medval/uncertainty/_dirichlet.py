"""Closed-form uncertainty of evidential (Dirichlet) classification heads."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from medval._errors import InputError
from medval._types import Predictions, check_concentrations
from medval.uncertainty._decompose import Decomposition, predictive_entropy

__all__ = ["dirichlet_decompose", "dirichlet_vacuity"]

FloatArray = NDArray[np.float64]


def _as_alpha(alpha: ArrayLike | Predictions) -> FloatArray:
    if isinstance(alpha, Predictions):
        if alpha.concentrations is None:
            raise InputError(
                "these Predictions hold no Dirichlet concentrations; build them with "
                "Predictions.from_dirichlet(...) or medval.predict(..., output='dirichlet') "
                "(one deterministic pass), or pass alpha itself."
            )
        alpha = alpha.concentrations
    return check_concentrations(alpha)


def dirichlet_decompose(alpha: ArrayLike | Predictions) -> Decomposition:
    """Split the uncertainty of a Dirichlet prediction, in closed form (nats).

    An evidential head (Sensoy, Kaplan and Kandemir 2018) predicts a
    Dirichlet ``Dir(alpha)`` over the class probabilities p, with
    ``S = sum_k alpha_k``. The entropy decomposition of :func:`decompose`
    then has exact expectations over p instead of Monte Carlo averages
    (Malinin and Gales 2018):

    - total = ``H[E p] = H[alpha / S]`` (entropy of the mean);
    - aleatoric = ``E[H(p)] = -sum_k (alpha_k / S) (psi(alpha_k + 1) - psi(S + 1))``
      (expected entropy; ``psi`` is the digamma function);
    - epistemic = total - aleatoric, the mutual information between the
      label and p, >= 0; about ``(K - 1) / (2 (S + 1))`` for large S.

    Parameters
    ----------
    alpha : array of float, shape (n, K), or Predictions
        Concentrations, finite and > 0, K >= 2; a network that outputs
        evidence e >= 0 gives ``alpha = e + 1``. Predictions must carry
        ``concentrations`` (:meth:`Predictions.from_dirichlet`).

    Returns
    -------
    Decomposition
        ``total``, ``aleatoric``, ``epistemic`` of shape (n,), each in
        [0, log K]; ``measure="dirichlet_entropy"`` and ``n_samples=0``
        (exact, no sampling). :func:`dirichlet_vacuity` gives ``K / S``.

    Raises
    ------
    InputError
        When alpha is not 2-D with K >= 2, or holds a value that is not
        finite and > 0 (the message names the row).

    References
    ----------
    Sensoy, M., Kaplan, L. and Kandemir, M. (2018). Evidential deep
    learning to quantify classification uncertainty. NeurIPS 31.
    Malinin, A. and Gales, M. (2018). Predictive uncertainty estimation via
    prior networks. NeurIPS 31 (the mutual information of a Dirichlet).
    """
    a = _as_alpha(alpha)
    s = a.sum(axis=1)
    mean = a / s[:, None]
    total = predictive_entropy(mean)
    aleatoric = special.digamma(s + 1.0) - np.sum(mean * special.digamma(a + 1.0), axis=1)
    # Rounding can push E[H] a hair outside [0, H[E p]] (Jensen: E[H] <= H[E p]).
    aleatoric = np.clip(aleatoric, 0.0, total)
    return Decomposition(
        total=total,
        aleatoric=aleatoric,
        epistemic=total - aleatoric,
        measure="dirichlet_entropy",
        n_samples=0,
    )


def dirichlet_vacuity(alpha: ArrayLike | Predictions) -> FloatArray:
    """Vacuity ``K / S`` of each Dirichlet: the evidential "I don't know" mass.

    With ``alpha = evidence + 1`` it lies in (0, 1]: 1 with no evidence
    (alpha all ones, the uniform Dirichlet), towards 0 as evidence grows
    (Sensoy, Kaplan and Kandemir 2018; Josang 2016, subjective logic).

    Parameters
    ----------
    alpha : array of float, shape (n, K), or Predictions
        As for :func:`dirichlet_decompose`.

    Returns
    -------
    array of float, shape (n,)

    Raises
    ------
    InputError
        As :func:`dirichlet_decompose`.

    References
    ----------
    Sensoy, M., Kaplan, L. and Kandemir, M. (2018). Evidential deep
    learning to quantify classification uncertainty. NeurIPS 31.
    Josang, A. (2016). Subjective Logic. Springer.
    """
    a = _as_alpha(alpha)
    return np.asarray(a.shape[1] / a.sum(axis=1), dtype=np.float64)
