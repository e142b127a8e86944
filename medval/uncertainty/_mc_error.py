"""Monte Carlo error of the uncertainty measures: what T samples leave to chance."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from medval._errors import InputError
from medval._types import Predictions
from medval.uncertainty._decompose import DECOMPOSITIONS, _as_mc, decompose

__all__ = ["MC_TOLERANCE", "MCStandardErrors", "mc_error", "mc_standard_errors"]

FloatArray = NDArray[np.float64]
_PARTS = ("total", "aleatoric", "epistemic")

#: Default tolerance of :func:`mc_error`: the per-case Monte Carlo error may be
#: at most this fraction of the measure's spread across cases. At 0.1 the
#: measure from T samples correlates about 0.995 with its T -> infinity value.
MC_TOLERANCE = 0.1

_CRITERION = "rms per-case Monte Carlo SE / sd of the measure across cases"

_Z95 = float(special.ndtri(0.95))

# Mantissas of the "nice" sample counts a recommendation is rounded up to.
_NICE = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


@dataclasses.dataclass(frozen=True, eq=False)
class MCStandardErrors:
    """Jackknife Monte Carlo error of each case's uncertainty measures.

    Attributes
    ----------
    se : dict of str to array of float, shape (n,)
        Standard error, due to using only T samples, of ``total``,
        ``aleatoric`` and ``epistemic`` (as :func:`decompose` computes them).
    bias : dict of str to array of float, shape (n,)
        Jackknife estimate of each measure's bias (estimate minus its
        T -> infinity value); subtract it to bias-correct.
    mean_se, mean_bias : dict of str to float
        The same for the mean of the measure over the n cases, jackknifed
        over the samples as a whole (valid also when sample t is shared by
        all cases, as for ensemble members).
    measure : str
        ``"entropy"`` or ``"variance"``.
    n_samples : int
        T.
    """

    se: dict[str, FloatArray]
    bias: dict[str, FloatArray]
    mean_se: dict[str, float]
    mean_bias: dict[str, float]
    measure: str
    n_samples: int


def _per_row(measure: str, p: FloatArray) -> FloatArray:
    """The measure's function g of single probability rows: (..., K) -> (...)."""
    # With one sample, a decomposition's total is g of that sample.
    total, _ = DECOMPOSITIONS[measure](p.reshape(1, -1, p.shape[-1]))
    return np.asarray(total, dtype=np.float64).reshape(p.shape[:-1])


def _jackknife(full: FloatArray, loo: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(se, bias) from the estimate on all T samples and its T leave-one-out values."""
    t = loo.shape[0]
    centre = loo.mean(axis=0)
    se = np.sqrt((t - 1) / t * np.sum((loo - centre) ** 2, axis=0))
    return se, (t - 1) * (centre - full)


def mc_standard_errors(
    mc_probabilities: ArrayLike | Predictions, *, measure: str = "entropy"
) -> MCStandardErrors:
    """Delete-one jackknife over the T Monte Carlo samples of each case.

    Both decompositions have the form total = g(mean_t p_t), aleatoric =
    mean_t g(p_t), epistemic = total - aleatoric, with g the entropy (nats)
    or the summed variance ``sum_k p_k (1 - p_k)``. Each is recomputed with
    one sample left out, T times (in closed form: O(T n K), the size of the
    input). The jackknife standard error is
    ``sqrt((T - 1) / T * sum_i (theta_(i) - theta_(.))**2)`` and the bias
    ``(T - 1) (theta_(.) - theta)`` (Efron and Stein 1981; Efron and Tibshirani
    1993, ch. 10-11). The aleatoric part is a plain mean, so its SE is
    exactly ``sd_t(g(p_t)) / sqrt(T)`` and its bias 0. The total (and so the
    epistemic part) is a plug-in g of the sample mean: for entropy it is
    biased low by about ``O(1 / T)`` (Jensen), and the jackknife estimates
    that bias; its variance estimate errs on the large side (Efron-Stein
    inequality).

    Parameters
    ----------
    mc_probabilities : array of float, shape (T, n, K), or Predictions
        Monte Carlo probabilities with T >= 2 (MC dropout, ensemble members).
    measure : {"entropy", "variance"}, default "entropy"

    Returns
    -------
    MCStandardErrors

    Raises
    ------
    InputError
        On invalid probabilities, an unknown ``measure`` or T < 2.

    References
    ----------
    Efron, B. and Stein, C. (1981). The jackknife estimate of variance.
    Annals of Statistics 9:586-596.
    Efron, B. and Tibshirani, R. (1993). An Introduction to the Bootstrap.
    Chapman & Hall.
    """
    if measure not in DECOMPOSITIONS:
        raise InputError(f"unknown measure {measure!r}; valid: {sorted(DECOMPOSITIONS)}.")
    mc = _as_mc(mc_probabilities)
    t = mc.shape[0]
    if t < 2:
        raise InputError(
            f"the Monte Carlo error needs T >= 2 samples per case; got T = {t}. "
            "Draw more samples (medval.predict(..., mc_samples=30))."
        )
    per_sample = _per_row(measure, mc)  # (T, n)
    mean = mc.mean(axis=0)
    # Leave-one-out means; rounding can dip a hair below 0.
    loo_mean = np.clip((t * mean[None] - mc) / (t - 1), 0.0, 1.0)
    full = {"total": _per_row(measure, mean), "aleatoric": per_sample.mean(axis=0)}
    loo = {
        "total": _per_row(measure, loo_mean),
        "aleatoric": (t * full["aleatoric"][None] - per_sample) / (t - 1),
    }
    full["epistemic"] = full["total"] - full["aleatoric"]
    loo["epistemic"] = loo["total"] - loo["aleatoric"]
    se, bias, mean_se, mean_bias = {}, {}, {}, {}
    for part in _PARTS:
        se[part], bias[part] = _jackknife(full[part], loo[part])
        s, b = _jackknife(full[part].mean(keepdims=True), loo[part].mean(axis=1, keepdims=True))
        mean_se[part], mean_bias[part] = float(s[0]), float(b[0])
    # A mean is unbiased; the jackknife says so up to rounding.
    bias["aleatoric"] = np.zeros_like(bias["aleatoric"])
    mean_bias["aleatoric"] = 0.0
    return MCStandardErrors(se, bias, mean_se, mean_bias, measure, t)


def _nice_ceiling(x: float) -> int:
    """The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten that is >= x."""
    if x <= 1:
        return 1
    power = 10.0 ** math.floor(math.log10(x))
    return round(next(m * power for m in _NICE if m * power >= x - 1e-9))


def _summary(
    values: FloatArray, errors: MCStandardErrors, part: str, tolerance: float
) -> dict[str, Any]:
    se2 = errors.se[part] ** 2
    n = se2.size
    rms = float(np.sqrt(np.mean(se2)))
    # One-sided 95% upper bound of the mean squared SE over the cases: the
    # recommendation should reach the tolerance despite the noise of its own estimate.
    upper = math.sqrt(rms**2 + _Z95 * float(np.std(se2, ddof=1)) / math.sqrt(n)) if n > 1 else rms
    # The spread of the T -> infinity values: bias-correct (the plug-in entropy of
    # the mean shrinks the spread at small T), then take out the MC noise variance.
    corrected = values - errors.bias[part]
    signal = float(np.var(corrected, ddof=1)) - rms**2 if values.size > 1 else 0.0
    spread = math.sqrt(signal) if signal > 0 else None
    relative = None if spread is None else rms / spread
    relative_upper = None if spread is None else upper / spread
    needed = None
    if relative_upper is not None:
        needed = max(2, math.ceil(errors.n_samples * (relative_upper / tolerance) ** 2 - 1e-9))
    return {
        "se_median": float(np.median(np.sqrt(se2))),
        "se_rms": rms,
        "spread": spread,
        "relative_error": relative,
        "relative_error_upper": relative_upper,
        "mean_se": errors.mean_se[part],
        "mean_bias": errors.mean_bias[part],
        "needed_samples": needed,
    }


def mc_error(
    mc_probabilities: ArrayLike | Predictions,
    *,
    measure: str = "entropy",
    tolerance: float = MC_TOLERANCE,
) -> dict[str, Any]:
    """Monte Carlo error of the uncertainty measures, and the T that would suffice.

    Per measure (total, aleatoric, epistemic), from the jackknife of
    :func:`mc_standard_errors`: the median and root-mean-square per-case
    standard error, the spread of the measure across cases (the standard
    deviation of the bias-corrected values with the mean MC noise variance
    subtracted: an estimate of the spread at T -> infinity), the standard
    error and bias of the mean over the cases (what the report shows;
    jackknifed over whole samples, so valid also when a sample is shared by
    all cases, as an ensemble member is), and the
    relative error, the criterion: rms per-case SE / spread.
    It is the noise-to-signal ratio of the per-case values that rank cases
    for referral; their correlation with the T -> infinity values is about
    ``1 / sqrt(1 + relative_error**2)``.

    The SE falls as ``1 / sqrt(T)``, so a measure needs
    ``T * (relative_error_upper / tolerance)**2`` samples, where
    ``relative_error_upper`` takes the one-sided 95% upper bound of the mean
    squared SE over the cases (normal approximation), so that the
    recommendation reaches the tolerance despite the noise of its own
    estimate (simulated: 0.6-0.95 of the tolerance). The recommended T is the
    largest need over the three measures, rounded up to a round number
    (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten); ``too_small`` is
    ``T < recommended``. A measure whose spread across cases is not larger
    than its MC noise has no relative error (None); its T cannot be
    extrapolated, and ``too_small`` is then True when its SE is not 0.

    Parameters
    ----------
    mc_probabilities : array of float, shape (T, n, K), or Predictions
        Monte Carlo probabilities of the cases to judge (one split).
    measure : {"entropy", "variance"}, default "entropy"
    tolerance : float, default :data:`MC_TOLERANCE` (0.1)
        Largest acceptable relative error, in (0, 1).

    Returns
    -------
    dict
        ``method``, ``criterion``, ``measure``, ``tolerance``,
        ``n_samples`` (T), ``n_cases``, ``measures`` (per measure: ``se_median``,
        ``se_rms``, ``spread``, ``relative_error``, ``relative_error_upper``, ``mean_se``,
        ``mean_bias``, ``needed_samples``), ``recommended_samples`` (None
        when no measure can be extrapolated), ``limiting_measure`` and
        ``too_small``.

    Raises
    ------
    InputError
        As :func:`mc_standard_errors`, or a ``tolerance`` outside (0, 1).
    """
    if isinstance(tolerance, bool) or not 0.0 < float(tolerance) < 1.0:
        raise InputError(f"tolerance must be in (0, 1), e.g. 0.1; got {tolerance!r}.")
    errors = mc_standard_errors(mc_probabilities, measure=measure)
    d = decompose(mc_probabilities, measure=measure)
    values = {"total": d.total, "aleatoric": d.aleatoric, "epistemic": d.epistemic}
    t = errors.n_samples
    parts = {part: _summary(values[part], errors, part, tolerance) for part in _PARTS}
    needs = {p: s["needed_samples"] for p, s in parts.items() if s["needed_samples"] is not None}
    limiting = max(needs, key=lambda p: needs[p]) if needs else None
    recommended = _nice_ceiling(needs[limiting]) if limiting is not None else None
    unjudged = any(s["spread"] is None and s["se_rms"] > 0 for s in parts.values())
    return {
        "method": "jackknife over the T samples",
        "criterion": _CRITERION,
        "measure": measure,
        "tolerance": float(tolerance),
        "n_samples": t,
        "n_cases": int(values["total"].size),
        "measures": parts,
        "recommended_samples": recommended,
        "limiting_measure": limiting,
        "too_small": bool(unjudged or (recommended is not None and t < recommended)),
    }
