"""The accuracy Thresholdout provably keeps under adaptive reuse, and its parameters.

Dwork et al. (NIPS 2015, Theorem 25) prove that with ``T = 3 tau / 4`` and
``sigma = tau / (96 ln(4m / beta))`` every answer is within ``tau`` of the
true value with probability ``1 - beta``, once ``n >= n0 = O(ln(m/beta) /
tau^2) * min(B, sqrt(B ln(ln(m/beta) / tau)))``; the constant inside
``O`` is not stated. ``thresholdout_bound`` gives a fully explicit bound of
the same kind, by the same argument (pure differential privacy route):

1. Thresholdout is ``eps = 2B / (sigma n)``-differentially private with
   respect to the holdout (their Lemma 23: sparse vector with ``B``
   above-threshold answers plus ``B`` Laplace answers, each of
   sensitivity ``1/n``), and so is the analyst's choice of every query.
2. A function chosen by an ``eps``-private algorithm satisfies
   ``P[|P[phi] - E_S[phi]| >= 2 eps] <= 6 exp(-eps^2 n)`` (Dwork et al.,
   STOC 2015; CACM 2017, Theorem 4); any ``eps' >= eps`` works too, so with
   ``eps' = max(eps, sqrt(ln(12 m / beta) / n))`` all ``m`` holdout means
   are within ``2 eps'`` of the truth with probability ``1 - beta / 2``.
3. The at most ``m + 2B + 1`` Laplace draws all stay within ``t = ln(2(m +
   2B + 1) / beta)`` of their scale with probability ``1 - beta / 2``.
4. A reference answer is within ``T + 2 sigma t + 4 sigma t`` of the holdout
   mean, a noisy one within ``sigma t``; hence every answer given (before
   the budget runs out and the mechanism refuses) is within

   ``tau = T + 6 sigma t + 2 eps'``

   of the true value with probability ``1 - beta``.

The bound is conservative: at n = 10,000 it exceeds 1 (vacuous) even for a
budget of 10, and it reaches a few hundredths only from about 10^7 cases.
The paper's experiment ran with ``T = 0.04`` and ``sigma = 0.01`` (``4 /
sqrt(n)`` and ``1 / sqrt(n)``), far below what the proof needs; at such
settings the protection is empirical (docs/holdout.md), not proven.

Scope. The proof covers statistical queries: means over i.i.d. cases of a
[0, 1]-valued function (accuracy; sensitivity over the positives and
specificity over the negatives, with ``n`` the class size). AUROC is a
two-sample U-statistic: one case moves it by at most ``1 / min(n_pos,
n_neg)``, and the private-generalization results extend to such
low-sensitivity statistics (Bassily et al. 2016) with other constants, so
using ``n = min(n_pos, n_neg)`` here is a heuristic for AUROC, not a proof.

References
----------
Dwork C, Feldman V, Hardt M, Pitassi T, Reingold O, Roth A. Generalization
in adaptive data analysis and holdout reuse. NIPS 2015 (arXiv:1506.02629).
Dwork C, Feldman V, Hardt M, Pitassi T, Reingold O, Roth A. Preserving
statistical validity in adaptive data analysis. STOC 2015; and Guilt-free
data reuse, Commun ACM 2017;60(4):86-93.
Bassily R, Nissim K, Smith A, Steinke T, Stemmer U, Ullman J. Algorithmic
stability for adaptive data analysis. STOC 2016.
"""

from __future__ import annotations

import math

from medval._errors import InputError
from medval.stats._thresholdout import _check_count, _check_positive
from medval.stats._validate import check_confidence_level

__all__ = ["thresholdout_bound", "thresholdout_parameters"]


def _terms(n: int, budget: int, n_queries: int, confidence_level: float) -> tuple[float, float]:
    """(t, eps_floor): the Laplace tail multiple and the smallest useful privacy level."""
    n = _check_count(n, "n", minimum=1)
    budget = _check_count(budget, "budget", minimum=1)
    n_queries = _check_count(n_queries, "n_queries", minimum=1)
    beta = 1.0 - check_confidence_level(confidence_level)
    t = math.log(2.0 * (n_queries + 2 * budget + 1) / beta)
    eps_floor = math.sqrt(math.log(12.0 * n_queries / beta) / n)
    return t, eps_floor


def thresholdout_parameters(
    n: int, *, budget: int, n_queries: int, confidence_level: float = 0.95
) -> tuple[float, float]:
    """``(threshold, noise_scale)`` of the proof, as in Theorem 25.

    ``noise_scale`` minimises the noise part of the bound,
    ``6 sigma t + 2 max(2B / (sigma n), eps_floor)``
    (see the module notes); ``threshold = 3 tau / 4`` as in Theorem 25 of
    Dwork et al. (NIPS 2015), so that a query whose reference value is
    within ``tau / 4`` of the holdout value is rarely charged to the budget.

    Parameters
    ----------
    n : int
        Holdout cases the metric averages over (for sensitivity, the
        positives; for AUROC, ``min(n_pos, n_neg)``, heuristically).
    budget : int
        Overfitting detections allowed, ``B >= 1``.
    n_queries : int
        Queries the holdout will answer over its life, ``m >= 1``.
    confidence_level : float, default 0.95
        Probability that every answer is within the bound.

    Returns
    -------
    tuple of float
        ``(threshold, noise_scale)`` for :class:`Thresholdout`.
    """
    t, eps_floor = _terms(n, budget, n_queries, confidence_level)
    sigma_opt = math.sqrt(2.0 * budget / (3.0 * t * n))
    sigma_floor = 2.0 * budget / (eps_floor * n)  # beyond it the privacy term stops falling
    sigma = min(sigma_opt, sigma_floor)
    rest = 6.0 * sigma * t + 2.0 * max(2.0 * budget / (sigma * n), eps_floor)
    return 3.0 * rest, sigma


def thresholdout_bound(
    n: int,
    *,
    budget: int,
    n_queries: int,
    confidence_level: float = 0.95,
    threshold: float | None = None,
    noise_scale: float | None = None,
) -> float:
    """Proven accuracy ``tau`` of every Thresholdout answer under adaptive queries.

    With probability ``confidence_level``, every answer the mechanism gives
    (it refuses once ``budget`` detections are spent) is within ``tau`` of
    the metric's true value, whatever the analyst's strategy:
    ``tau = T + 6 sigma t + 2 max(2B / (sigma n), sqrt(ln(12 m / beta) / n))``
    with ``t = ln(2 (m + 2B + 1) / beta)`` and ``beta = 1 -
    confidence_level`` (derivation in the module notes). It holds for
    statistical queries (means of [0, 1]-valued functions over i.i.d.
    cases); for AUROC it is a heuristic. Values above 1 are vacuous.

    Parameters
    ----------
    n, budget, n_queries, confidence_level
        As in :func:`thresholdout_parameters`.
    threshold, noise_scale : float, optional
        The mechanism's ``T`` and ``sigma``; both or neither. Default: those
        of :func:`thresholdout_parameters`.

    Returns
    -------
    float
        ``tau`` on the metric's [0, 1] scale.

    Raises
    ------
    InputError
        For a non-positive count, a confidence level outside (0, 1), or only
        one of ``threshold`` and ``noise_scale``.

    References
    ----------
    Dwork et al., NIPS 2015 (arXiv:1506.02629), Lemma 23 and Theorem 25;
    Dwork et al., Commun ACM 2017, Theorem 4.
    """
    t, eps_floor = _terms(n, budget, n_queries, confidence_level)
    if (threshold is None) != (noise_scale is None):
        raise InputError(
            "Give both threshold and noise_scale (the mechanism's T and sigma) or neither "
            f"(for the optimal ones); got threshold={threshold!r}, noise_scale={noise_scale!r}."
        )
    if threshold is None or noise_scale is None:
        threshold, noise_scale = thresholdout_parameters(
            n, budget=budget, n_queries=n_queries, confidence_level=confidence_level
        )
    T = _check_positive(threshold, "threshold", zero_ok=True)
    sigma = _check_positive(noise_scale, "noise_scale")
    eps = max(2.0 * budget / (sigma * n), eps_floor)
    return T + 6.0 * sigma * t + 2.0 * eps
