"""One comparison's evidence against its threshold: a one-sided p-value, a simultaneous bound.

A fail criterion on a conservative CI bound (``low`` for ``>=``/``>``, ``high``
for ``<=``/``<``) is a one-sided test of H0 "the metric misses the threshold" at
level ``(1 - confidence_level) / 2``. For a family of such comparisons
:mod:`medval.gate._multiplicity` needs that test's p-value (Holm) or the bound
at a smaller level (Bonferroni); both come from the numbers an :class:`Obs`
carries:

- a proportion with its count (an Estimate whose method is ``"wilson"``,
  ``"clopper-pearson"`` or ``"exact"`` and whose ``value * n`` is whole): the
  exact binomial test and the exact Clopper-Pearson bound;
- anything else with a CI: a normal approximation whose standard error is read
  off the interval, ``se = (high - low) / (2 z_{(1 + cl) / 2})``, centred so
  that at the criterion's own level it reproduces the CI bound exactly (the
  p-value equals the level when the bound sits on the threshold).

Import-light: the normal quantiles are the standard library's; scipy loads
only for the binomial tails.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

from medval.gate._compare import _CMP, _NEGATED, _where
from medval.gate._criteria import Criterion
from medval.gate._observe import Obs

__all__ = [
    "COUNT_METHODS",
    "bonferroni_outcomes",
    "holm_outcomes",
    "one_sided_level",
    "p_value",
    "simultaneous_bound",
]

#: Estimate methods whose value is a count over ``n`` (binomial intervals; the
#: cluster-adjusted ``"wilson-clustered"`` is not: its variance is inflated).
COUNT_METHODS = ("wilson", "clopper-pearson", "exact")
_STD = NormalDist()


def one_sided_level(o: Obs) -> float:
    """``(1 - confidence_level) / 2``: the error rate of one bound of a two-sided CI."""
    if o.confidence_level is None:
        raise ValueError("the observation states no confidence level")
    return (1.0 - o.confidence_level) / 2.0


def _count(o: Obs, threshold: float) -> tuple[int, int] | None:
    """``(x, n)`` when the observation is a binomial proportion, else None."""
    if o.method not in COUNT_METHODS or not isinstance(o.n, int) or o.n < 1:
        return None
    if not isinstance(o.value, float) or not 0.0 < threshold < 1.0:
        return None
    x = round(o.value * o.n)
    if abs(o.value * o.n - x) > 1e-6 or not 0 <= x <= o.n:
        return None
    return x, o.n


def _se(o: Obs) -> float:
    z = _STD.inv_cdf(1.0 - one_sided_level(o))
    assert o.low is not None and o.high is not None  # callers pass CI observations
    return (o.high - o.low) / (2.0 * z)


def p_value(o: Obs, op: str, threshold: float) -> tuple[float, str]:
    """One-sided p-value of H0 "the metric misses the threshold", and how it was computed.

    Parameters
    ----------
    o : Obs
        One group's number with a CI and its confidence level.
    op : {">=", ">", "<=", "<"}
        Higher is required for ``>=``/``>`` (H0: theta <= threshold), lower
        for ``<=``/``<`` (H0: theta >= threshold).
    threshold : float

    Returns
    -------
    p : float
        In [0, 1]. Exact binomial: ``P(X >= x | n, threshold)`` (or
        ``P(X <= x)``), ``x = round(value * n)``. Otherwise
        ``Phi(-(margin / se + z))`` with ``margin`` the distance of the CI
        bound beyond the threshold and ``z = z_{1 - level}``.
    how : {"exact binomial", "normal from the CI"}

    References
    ----------
    Clopper & Pearson (1934), Biometrika 26:404-413 (the exact binomial
    test they invert); Altman & Bland (2011), BMJ 343:d2090 (a p-value from
    a confidence interval).
    """
    higher = op in (">=", ">")
    count = _count(o, threshold)
    if count is not None:
        from scipy.special import betainc

        x, n = count
        # P(X >= x) = I_t(x, n - x + 1); P(X <= x) = I_{1-t}(n - x, x + 1).
        if higher:
            return (1.0 if x == 0 else float(betainc(x, n - x + 1, threshold))), "exact binomial"
        return (1.0 if x == n else float(betainc(n - x, x + 1, 1.0 - threshold))), "exact binomial"
    level = one_sided_level(o)
    bound = o.low if higher else o.high
    assert bound is not None
    margin = bound - threshold if higher else threshold - bound
    se = _se(o)
    if se <= 0.0 or not math.isfinite(se):  # a degenerate interval: a point
        return (0.0 if margin > 0 else 1.0 if margin < 0 else level), "normal from the CI"
    return _STD.cdf(-(margin / se + _STD.inv_cdf(1.0 - level))), "normal from the CI"


def simultaneous_bound(
    o: Obs, op: str, threshold: float, *, m: int, level: float | None = None
) -> float:
    """The CI bound facing the threshold at the one-sided level ``level / m`` (Bonferroni).

    Parameters
    ----------
    o : Obs
    op : {">=", ">", "<=", "<"}
        ``low`` is recomputed for ``>=``/``>``, ``high`` for ``<=``/``<``.
    threshold : float
        Decides only whether the observation is treated as a proportion.
    m : int
        Comparisons in the family, ``m >= 1``.
    level : float, optional
        The family's one-sided level; default :func:`one_sided_level` of ``o``.

    Returns
    -------
    float
        Exact Clopper-Pearson bound for a proportion with its count; else the
        bound moved outwards by ``se * (z_{1 - level/m} - z_{1 - level})``.
        Together the m bounds hold simultaneously with probability at least
        ``1 - level`` (two-sided level ``1 - (1 - cl) / m`` each).

    References
    ----------
    Dunn (1961), JASA 56:52-64; Clopper & Pearson (1934).
    """
    higher = op in (">=", ">")
    own = one_sided_level(o)
    tail = (own if level is None else level) / m
    count = _count(o, threshold)
    if count is not None:
        from scipy.special import betaincinv

        x, n = count
        if higher:
            return 0.0 if x == 0 else float(betaincinv(x, n - x + 1, tail))
        return 1.0 if x == n else float(betaincinv(x + 1, n - x, 1.0 - tail))
    shift = _se(o) * (_STD.inv_cdf(1.0 - tail) - _STD.inv_cdf(1.0 - own))
    bound = o.low if higher else o.high
    assert bound is not None
    return bound - shift if higher else bound + shift


#: One family member: the criterion, its group's outcome (a
#: :func:`medval.gate._compare.judge_obs` dict) and the label to print.
Item = tuple[Criterion, dict[str, Any], str]


def holm_outcomes(items: Sequence[Item]) -> list[dict[str, Any]]:
    """The outcomes re-judged by Holm-adjusted p-values at the family's one-sided level.

    A comparison passes when its adjusted :func:`p_value` is at most the
    smallest one-sided level in the family. Reference: Holm (1979), Scand.
    J. Statist. 6:65-70.
    """
    from medval.stats import holm

    alpha = min(one_sided_level(d["obs"]) for _, d, _ in items)
    tests = [p_value(d["obs"], c.op, float(c.threshold)) for c, d, _ in items]
    adjusted = holm([p for p, _ in tests])
    out = []
    for (c, d, label), (_, how), p in zip(items, tests, adjusted, strict=True):
        ok = bool(p <= alpha)
        why = (
            f"{label} Holm-adjusted p = {p:.3g} {'<=' if ok else '>'} {alpha:g} "
            f"(m = {len(items)}, {how}; CI {d['bound']} {d['observed']:.3f}){_where(d['obs'])}"
        )
        out.append({**d, "status": "pass" if ok else c.severity, "reason": why})
    return out


def bonferroni_outcomes(items: Sequence[Item]) -> list[dict[str, Any]]:
    """The outcomes re-judged on simultaneous bounds (:func:`simultaneous_bound`).

    Each bound at the one-sided level ``alpha / m``, ``alpha`` the smallest
    one-sided level in the family. Reference: Dunn (1961), JASA 56:52-64.
    """
    m = len(items)
    alpha = min(one_sided_level(d["obs"]) for _, d, _ in items)
    pct = 100 * (1 - 2 * alpha / m)
    out = []
    for c, d, label in items:
        thr = float(c.threshold)
        x = simultaneous_bound(d["obs"], c.op, thr, m=m, level=alpha)
        ok = _CMP[c.op](x, thr)
        why = (
            f"{label} simultaneous {pct:.4g}% CI {d['bound']} {x:.3f} "
            f"{c.op if ok else _NEGATED[c.op]} {thr:g} (Bonferroni, m = {m}){_where(d['obs'])}"
        )
        out.append({**d, "status": "pass" if ok else c.severity, "observed": x, "reason": why})
    return out
