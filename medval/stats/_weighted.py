"""Metrics evaluated for many resamples at once, from resampling counts.

A bootstrap resample is a vector of counts ``w`` (how often each case was
drawn). Each evaluator here sorts its data once and then turns a whole
block of count vectors ``W`` (c, n) into ``c`` metric values with a few
vectorised passes: AUROC is a weighted Mann-Whitney statistic over
cumulative negative counts, threshold metrics are sums over contiguous
blocks, mean losses are one matrix-vector product. Undefined values
(e.g. a resample without positives) come back as NaN.

``jackknife(unit, n_units)`` returns the leave-one-unit-out values (units
are cases or patients) in closed form where one exists, else ``None``; the
generic fallback :func:`jackknife_by_weights` evaluates leave-one-out
weight rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from medval.stats._validate import FloatArray, IntArray

__all__ = [
    "ApEvaluator",
    "AurocEvaluator",
    "ConfusionEvaluator",
    "Evaluator",
    "MacroAurocEvaluator",
    "MeanLossEvaluator",
    "jackknife_by_weights",
]

Weights = NDArray[Any]


class Evaluator(Protocol):
    """What the bootstrap needs from a metric."""

    n: int

    def point(self) -> float: ...

    def values(self, W: Weights) -> FloatArray: ...

    def jackknife(self, unit: IntArray, n_units: int) -> FloatArray | None: ...


def _div(num: NDArray[Any], den: NDArray[Any]) -> FloatArray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _permute(W: Weights, perm: IntArray | None) -> Weights:
    return W if perm is None else np.take(W, perm, axis=1)


def _maybe_identity(perm: IntArray) -> IntArray | None:
    return None if np.array_equal(perm, np.arange(perm.size)) else perm


class AurocEvaluator:
    """Weighted Mann-Whitney AUROC (ties count one half).

    With negatives and positives each sorted by score, the AUROC of counts
    ``w`` is ``sum_i wp_i * (Cn[lo_i] + Cn[hi_i]) / 2 / (sum wp * sum wn)``
    where ``Cn`` is the cumulative negative count and ``lo``/``hi`` bracket
    the negatives tied with positive ``i``: O(n) per resample after one
    O(n log n) sort.
    """

    def __init__(self, y: IntArray, s: FloatArray) -> None:
        self.n = int(y.shape[0])
        perm = np.lexsort((s, y))
        self.n0 = int(np.sum(y == 0))
        self.n1 = self.n - self.n0
        self.perm = _maybe_identity(perm)
        self.y, self.s = y, s
        neg_s = s[perm[: self.n0]]
        pos_s = s[perm[self.n0 :]]
        self.lo = np.searchsorted(neg_s, pos_s, side="left")
        self.hi = np.searchsorted(neg_s, pos_s, side="right")
        self.ties = bool(np.any(self.lo != self.hi))
        # Placement counts: negatives below each positive (ties 1/2), and
        # positives above each negative.
        self._perm_full = perm
        self.row = (self.lo + self.hi) / 2.0
        plo = np.searchsorted(pos_s, neg_s, side="left")
        phi = np.searchsorted(pos_s, neg_s, side="right")
        self.col = self.n1 - (plo + phi) / 2.0
        self.plo, self.phi = plo, phi

    def point(self) -> float:
        return float(self.row.sum() / (self.n1 * self.n0)) if self.n1 and self.n0 else np.nan

    def values(self, W: Weights) -> FloatArray:
        W = _permute(W, self.perm)
        Wn, Wp = W[:, : self.n0], W[:, self.n0 :]
        if self.n1 < self.n0:
            # Accumulate over the smaller class (a cumulative sum costs more
            # per element than a gather): pairs below = total - pairs above.
            below, tot_p = _pairs_below(Wp, Wn, self.plo, self.phi, self.ties)
            tot_n = Wn.sum(axis=1)
            return _div(tot_p * tot_n - below, tot_p * tot_n)
        num, tot_n = _pairs_below(Wn, Wp, self.lo, self.hi, self.ties)
        return _div(num, tot_n * Wp.sum(axis=1))

    def jackknife(self, unit: IntArray, n_units: int) -> FloatArray:
        """Leave-one-unit-out AUROC from the placement values (DeLong 1988)."""
        perm = self._perm_full
        u_neg, u_pos = unit[perm[: self.n0]], unit[perm[self.n0 :]]
        n1u = np.bincount(u_pos, minlength=n_units)
        n0u = np.bincount(u_neg, minlength=n_units)
        num = self.row.sum()
        removed = np.bincount(u_pos, self.row, n_units) + np.bincount(u_neg, self.col, n_units)
        within = np.zeros(n_units)
        if np.any((n1u > 0) & (n0u > 0)):
            within = self._within_unit_pairs(u_neg, u_pos, n_units)
        return _div(num - removed + within, (self.n1 - n1u) * (self.n0 - n0u))

    def _within_unit_pairs(self, u_neg: IntArray, u_pos: IntArray, n_units: int) -> FloatArray:
        # Pairs (positive, negative) inside one unit were subtracted twice.
        perm = self._perm_full
        _, rank = np.unique(self.s, return_inverse=True)
        rank = rank.astype(np.int64) + 1
        span = int(rank.max()) + 2
        neg_key = np.sort(u_neg * span + rank[perm[: self.n0]])
        pos_key = u_pos * span + rank[perm[self.n0 :]]
        base = np.searchsorted(neg_key, u_pos * span, side="left")
        lo = np.searchsorted(neg_key, pos_key, side="left") - base
        hi = np.searchsorted(neg_key, pos_key, side="right") - base
        out: FloatArray = np.bincount(u_pos, (lo + hi) / 2.0, n_units).astype(np.float64)
        return out


def _pairs_below(
    Wa: Weights, Wb: Weights, lo: IntArray, hi: IntArray, ties: bool
) -> tuple[FloatArray, FloatArray]:
    """Per row: sum_i Wb_i * (Ca[lo_i] + Ca[hi_i]) / 2 and the total of Wa.

    ``Ca`` is the cumulative sum of ``Wa`` with a leading zero: the weight of
    class-a cases strictly below (``lo``) or at most at (``hi``) each
    class-b case's score, so tied pairs count one half.
    """
    Ca = np.empty((Wa.shape[0], Wa.shape[1] + 1), dtype=Wa.dtype)
    Ca[:, 0] = 0
    np.cumsum(Wa, axis=1, out=Ca[:, 1:])
    if not ties:
        num = np.einsum("ij,ij->i", Wb, np.take(Ca, lo, axis=1)).astype(np.float64)
    else:
        T = np.take(Ca, lo, axis=1)
        T += np.take(Ca, hi, axis=1)
        num = np.einsum("ij,ij->i", Wb, T) / 2.0
    return num, Ca[:, -1].astype(np.float64)


class MacroAurocEvaluator:
    """Unweighted mean of one-vs-rest AUROCs, each a :class:`AurocEvaluator`."""

    def __init__(self, y: IntArray, S: FloatArray) -> None:
        self.n = int(y.shape[0])
        self.parts = [AurocEvaluator((y == k).astype(np.int64), S[:, k]) for k in range(S.shape[1])]

    def point(self) -> float:
        return float(np.mean([p.point() for p in self.parts]))

    def values(self, W: Weights) -> FloatArray:
        out: FloatArray = np.mean([p.values(W) for p in self.parts], axis=0)
        return out

    def jackknife(self, unit: IntArray, n_units: int) -> FloatArray:
        out: FloatArray = np.mean([p.jackknife(unit, n_units) for p in self.parts], axis=0)
        return out


CountsFn = Callable[[FloatArray, FloatArray, FloatArray, FloatArray], FloatArray]


def _sens(tp: FloatArray, fp: FloatArray, tn: FloatArray, fn: FloatArray) -> FloatArray:
    return _div(tp, tp + fn)


def _spec(tp: FloatArray, fp: FloatArray, tn: FloatArray, fn: FloatArray) -> FloatArray:
    return _div(tn, tn + fp)


def _ppv(tp: FloatArray, fp: FloatArray, tn: FloatArray, fn: FloatArray) -> FloatArray:
    return _div(tp, tp + fp)


def _npv(tp: FloatArray, fp: FloatArray, tn: FloatArray, fn: FloatArray) -> FloatArray:
    return _div(tn, tn + fn)


def _acc(tp: FloatArray, fp: FloatArray, tn: FloatArray, fn: FloatArray) -> FloatArray:
    return _div(tp + tn, tp + fp + tn + fn)


def _bacc(tp: FloatArray, fp: FloatArray, tn: FloatArray, fn: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (_div(tp, tp + fn) + _div(tn, tn + fp))
    return out


def _f1(tp: FloatArray, fp: FloatArray, tn: FloatArray, fn: FloatArray) -> FloatArray:
    return _div(2 * tp, 2 * tp + fp + fn)


#: Metric name -> function of confusion counts (arrays).
COUNT_FUNCS: dict[str, CountsFn] = {
    "sensitivity": _sens,
    "specificity": _spec,
    "ppv": _ppv,
    "npv": _npv,
    "accuracy": _acc,
    "balanced_accuracy": _bacc,
    "f1": _f1,
}


class ConfusionEvaluator:
    """A function of the confusion counts of fixed 0/1 predictions."""

    def __init__(self, y: IntArray, pred: IntArray, fn: CountsFn) -> None:
        self.n = int(y.shape[0])
        perm = np.lexsort((pred, y))
        self.perm = _maybe_identity(perm)
        self.fn = fn
        self.cell = 2 * y + pred  # 0 tn, 1 fp, 2 fn, 3 tp
        sizes = np.bincount(self.cell, minlength=4)
        self.edges = np.r_[0, np.cumsum(sizes)]

    def _apply(self, counts: NDArray[Any]) -> FloatArray:
        tn, fp, fn, tp = (np.asarray(counts[..., k], dtype=np.float64) for k in range(4))
        return self.fn(tp, fp, tn, fn)

    def point(self) -> float:
        return float(self._apply(np.bincount(self.cell, minlength=4)))

    def values(self, W: Weights) -> FloatArray:
        W = _permute(W, self.perm)
        e = self.edges
        counts = np.stack([W[:, e[k] : e[k + 1]].sum(axis=1) for k in range(4)], axis=1)
        return self._apply(counts)

    def jackknife(self, unit: IntArray, n_units: int) -> FloatArray:
        total = np.bincount(self.cell, minlength=4)
        per_unit = np.stack([np.bincount(unit, self.cell == k, n_units) for k in range(4)], axis=1)
        return self._apply(total[None, :] - per_unit)


class MeanLossEvaluator:
    """The weighted mean of a per-case loss (Brier score, log loss)."""

    def __init__(self, losses: FloatArray) -> None:
        self.n = int(losses.shape[0])
        self.losses = losses

    def point(self) -> float:
        return float(self.losses.mean())

    def values(self, W: Weights) -> FloatArray:
        Wf = W.astype(np.float64, copy=False)
        return _div(Wf @ self.losses, Wf.sum(axis=1))

    def jackknife(self, unit: IntArray, n_units: int) -> FloatArray:
        total = self.losses.sum()
        return _div(
            total - np.bincount(unit, self.losses, n_units),
            self.n - np.bincount(unit, minlength=n_units),
        )


class ApEvaluator:
    """Weighted average precision (step-wise, as scikit-learn)."""

    def __init__(self, y: IntArray, s: FloatArray) -> None:
        self.n = int(y.shape[0])
        self.perm = np.argsort(-s, kind="stable")
        self.ypos = y[self.perm].astype(bool)
        s_sorted = s[self.perm]
        self.last = np.r_[np.flatnonzero(np.diff(s_sorted)), self.n - 1]

    def point(self) -> float:
        return float(self.values(np.ones((1, self.n), dtype=np.int64))[0])

    def values(self, W: Weights) -> FloatArray:
        Wd = np.take(W, self.perm, axis=1)
        tp = np.cumsum(Wd * self.ypos, axis=1)[:, self.last]
        allc = np.cumsum(Wd, axis=1)[:, self.last]
        dtp = np.diff(tp, axis=1, prepend=0)
        prec = _div(tp, allc)
        prec[dtp == 0] = 0.0
        return _div(np.sum(dtp * prec, axis=1), tp[:, -1])

    def jackknife(self, unit: IntArray, n_units: int) -> None:
        return None


def jackknife_by_weights(
    ev: Evaluator, unit: IntArray, n_units: int, *, max_cells: int = 1 << 19
) -> FloatArray:
    """Leave-one-unit-out values by evaluating 0/1 weight rows (any metric).

    Costs ``n_units * n`` time; rows are evaluated ``max_cells // n`` at a
    time (at least one), so memory stays that of a bootstrap block.
    Callers group units first when ``n_units`` is large.
    """
    out = np.empty(n_units)
    step = max(1, max_cells // max(ev.n, 1))
    for start in range(0, n_units, step):
        stop = min(n_units, start + step)
        W = (unit[None, :] != np.arange(start, stop)[:, None]).astype(np.int64)
        out[start:stop] = ev.values(W)
    return out
