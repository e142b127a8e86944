"""Conformity scores for classification: LAC, APS, RAPS and top-k, batched.

medval computes the same scores and sets as MAPIE 1.6's
``mapie.conformity_scores`` (``LACConformityScore``, ``APSConformityScore``,
``RAPSConformityScore``, ``TopKConformityScore``), operation for operation:
calibration scores in the input's dtype (float32 stays float32) and the set
rules in float64, as MAPIE's prediction step does, so that the same inputs
give the same scores and the same sets;
``tests/conformal/test_mapie_equivalence.py`` checks this against MAPIE on
real network outputs. What differs is the cost: MAPIE sorts with
``argsort`` and carries (n, K, n_alpha) float64 copies; here rows are
processed in cache-sized batches, the sort is a value sort (``np.sort``, far
cheaper than ``argsort``), and the true label's rank is a comparison count.

Conventions shared with MAPIE (``mapie._machine_precision.EPSILON = 1e-8``):

* LAC: score ``1 - p_y``; set ``{j : (1 - p_j) - q <= 1e-8}``.
* APS/RAPS: score = cumulated sorted probability up to the true label
  (``- U * p_y`` when randomised, ``+ lambda * max(0, rank - k_reg)`` for
  RAPS). Set = every label whose probability is at least that of the last
  included one (minus 1e-8), the last one being the first rank whose
  (regularised) cumulated sum reaches ``q - 1e-8`` (MAPIE's
  ``include_last_label=True``), or the last rank at or below
  ``max(q, p_max)`` (``include_last_label=False``). Randomised sets drop that
  last label when ``(C_L - q) / p_L > U + 1e-8`` (Romano et al. 2020).
* top-k: score = 0-based rank of the true label; set = the top ``q + 1``
  labels (ties included).

Deliberate differences, only on degenerate rows: when several sorted ranks
share the same cumulated sum (probabilities below the float resolution of
the sum), MAPIE's ``argmin`` may pick a later, near-zero label as "last" and
return almost the full label set; medval takes the first rank reaching the
threshold. Randomised RAPS uses the paper's ``V = (C_L - q) / p_L``
(Angelopoulos et al. 2021, Alg. 2), where MAPIE 1.6 subtracts
``lambda * (L - k_reg - 1)`` from the denominator for sets larger than
``k_reg + 1``. With exactly tied probabilities at the boundary, which tied
label a randomised set drops may differ.

References
----------
Sadinle, Lei & Wasserman (2019), JASA 114:223-234 (LAC).
Romano, Sesia & Candès (2020), NeurIPS (APS).
Angelopoulos, Bates, Malik & Jordan (2021), ICLR (RAPS).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from medval._errors import InputError
from medval.conformal._checks import FloatArray, batches

__all__ = [
    "EPSILON",
    "SCORES",
    "ConformityScore",
    "Regularization",
    "get_score",
]

#: Tolerance of every comparison, as MAPIE's ``_machine_precision.EPSILON``.
EPSILON = np.float64(1e-8)

BoolArray = NDArray[np.bool_]


@dataclasses.dataclass(frozen=True)
class Regularization:
    """RAPS penalty ``lambda_reg * max(0, rank - k_reg)`` (rank 1-based)."""

    lambda_reg: float = 0.0
    k_reg: float = 0.0

    def penalty(self, k: int) -> NDArray[np.float64]:
        """Penalty per sorted rank 1..K, float64 as in MAPIE."""
        ranks = np.arange(1, k + 1, dtype=np.float64)
        return self.lambda_reg * np.maximum(0.0, ranks - self.k_reg)


def _rows(n: int) -> NDArray[np.intp]:
    return np.arange(n, dtype=np.intp)


def _true_rank(block: FloatArray, y: NDArray[np.intp]) -> tuple[NDArray[np.intp], FloatArray]:
    """0-based rank of the true label in decreasing order, and its probability."""
    p_y = block[_rows(block.shape[0]), y]
    return np.count_nonzero(block > p_y[:, None], axis=1), p_y


def _sorted_cumsum(block: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Probabilities sorted decreasingly and their cumulated sums (input dtype)."""
    s = np.sort(block, axis=1)[:, ::-1]
    return s, np.cumsum(s, axis=1)


class ConformityScore:
    """Base class: a conformity score and its prediction-set rule.

    Subclasses implement :meth:`calibration_scores` (one score per case, the
    larger the less conforming), :meth:`row_sets` (one threshold per row: the
    marginal and group-Mondrian case) and :meth:`label_scores` (the score
    every label would have, for class-conditional thresholds).
    """

    name: ClassVar[str] = ""
    randomizable: ClassVar[bool] = False

    def calibration_scores(
        self,
        probabilities: FloatArray,
        labels: NDArray[np.intp],
        *,
        u: NDArray[np.float64] | None = None,
        regularization: Regularization | None = None,
    ) -> FloatArray:
        """Scores of the true labels, shape (n,), in the input dtype."""
        raise NotImplementedError

    def row_sets(
        self,
        probabilities: FloatArray,
        thresholds: FloatArray,
        *,
        u: NDArray[np.float64] | None = None,
        include_last_label: bool = True,
        regularization: Regularization | None = None,
    ) -> BoolArray:
        """Prediction sets (n, K) for one threshold per row, shape (n,)."""
        raise NotImplementedError

    def label_scores(
        self,
        probabilities: FloatArray,
        *,
        u: NDArray[np.float64] | None = None,
        regularization: Regularization | None = None,
    ) -> FloatArray:
        """Score every label would get, shape (n, K); set = ``score <= q_label``."""
        raise NotImplementedError


class LACScore(ConformityScore):
    """Least ambiguous set-valued classifier: score ``1 - p_y`` (Sadinle et al. 2019)."""

    name = "lac"

    def calibration_scores(
        self,
        probabilities: FloatArray,
        labels: NDArray[np.intp],
        *,
        u: NDArray[np.float64] | None = None,
        regularization: Regularization | None = None,
    ) -> FloatArray:
        p_y = probabilities[_rows(labels.shape[0]), labels]
        return 1 - p_y

    def row_sets(
        self,
        probabilities: FloatArray,
        thresholds: FloatArray,
        *,
        u: NDArray[np.float64] | None = None,
        include_last_label: bool = True,
        regularization: Regularization | None = None,
    ) -> BoolArray:
        n, k = probabilities.shape
        out = np.empty((n, k), dtype=bool)
        for sl in batches(n, k):
            diff = 1 - probabilities[sl].astype(np.float64)
            diff -= thresholds[sl, None]
            np.less_equal(diff, EPSILON, out=out[sl])
        return out

    def label_scores(
        self,
        probabilities: FloatArray,
        *,
        u: NDArray[np.float64] | None = None,
        regularization: Regularization | None = None,
    ) -> FloatArray:
        return 1 - probabilities


class APSScore(ConformityScore):
    """Adaptive prediction sets (Romano, Sesia & Candès 2020)."""

    name = "aps"
    randomizable = True

    def calibration_scores(
        self,
        probabilities: FloatArray,
        labels: NDArray[np.intp],
        *,
        u: NDArray[np.float64] | None = None,
        regularization: Regularization | None = None,
    ) -> FloatArray:
        n, k = probabilities.shape
        out = np.empty(n, dtype=probabilities.dtype)
        for sl in batches(n, k):
            block, y = probabilities[sl], labels[sl]
            rank, p_y = _true_rank(block, y)
            _, c = _sorted_cumsum(block)
            score = c[_rows(block.shape[0]), rank]
            if u is not None:
                score -= u[sl] * p_y
            if regularization is not None:
                score += np.maximum(
                    regularization.lambda_reg * (rank + 1 - regularization.k_reg), 0
                )
            out[sl] = score
        return out

    def row_sets(
        self,
        probabilities: FloatArray,
        thresholds: FloatArray,
        *,
        u: NDArray[np.float64] | None = None,
        include_last_label: bool = True,
        regularization: Regularization | None = None,
    ) -> BoolArray:
        n, k = probabilities.shape
        out = np.empty((n, k), dtype=bool)
        pen = None if regularization is None else regularization.penalty(k)
        for sl in batches(n, k):
            block = probabilities[sl]
            rows = _rows(block.shape[0])
            # sort in the input dtype (cheap), add up in float64 as MAPIE predicts;
            # a contiguous float64 copy summed in place is twice as fast as
            # cumsum(..., dtype=float64) on the reversed view
            s = np.sort(block, axis=1)[:, ::-1]
            c = s.astype(np.float64)
            np.cumsum(c, axis=1, out=c)
            if pen is not None:
                c += pen
            t = thresholds[sl]
            if include_last_label or u is not None:
                # first rank whose cumulated sum reaches the threshold
                reached = np.count_nonzero((c - t[:, None]) >= -EPSILON, axis=1)
                last = np.minimum(k - reached, k - 1)
            else:
                # last rank at or below max(q, p_max): at least the top label
                top = np.maximum(t, c[:, 0])
                last = np.count_nonzero((c - top[:, None]) <= EPSILON, axis=1) - 1
                # ranks adding nothing to the sum (p below its resolution) stay out
                last = np.count_nonzero(c < c[rows, last][:, None], axis=1)
            p_last = s[rows, last].astype(np.float64)
            tiny = np.flatnonzero(p_last <= EPSILON)
            if tiny.size:
                # as MAPIE: a ~0 last probability becomes the row's smallest >= 1e-8
                sub = block[tiny]
                p_last[tiny] = np.where(sub >= EPSILON, sub, np.inf).min(axis=1)
            included = out[sl]
            np.greater_equal(block - p_last[:, None], -EPSILON, out=included)
            if u is not None:
                # a near-zero last probability gives a huge ratio: the label is dropped
                with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                    v = (c[rows, last] - t) / p_last
                drop = np.flatnonzero((v - u[sl]) > EPSILON)
                if drop.size:
                    s_last = s[drop, last[drop]]
                    label = np.argmax(block[drop] == s_last[:, None], axis=1)
                    included[drop, label] = False
        return out

    def label_scores(
        self,
        probabilities: FloatArray,
        *,
        u: NDArray[np.float64] | None = None,
        regularization: Regularization | None = None,
    ) -> FloatArray:
        n, k = probabilities.shape
        out = np.empty((n, k), dtype=probabilities.dtype)
        pen = None if regularization is None else regularization.penalty(k)
        for sl in batches(n, k):
            block = probabilities[sl]
            order = np.argsort(block, axis=1)[:, ::-1]
            c = np.cumsum(np.take_along_axis(block, order, axis=1), axis=1)
            if u is not None:
                c -= u[sl, None] * np.take_along_axis(block, order, axis=1)
            if pen is not None:
                c += pen
            np.put_along_axis(out[sl], order, c, axis=1)
        return out


class RAPSScore(APSScore):
    """Regularised APS: APS plus ``lambda * max(0, rank - k_reg)`` (Angelopoulos et al. 2021)."""

    name = "raps"


class TopKScore(ConformityScore):
    """Top-k: the 0-based rank of the true label (Angelopoulos et al. 2021, sec. 2)."""

    name = "topk"

    def calibration_scores(
        self,
        probabilities: FloatArray,
        labels: NDArray[np.intp],
        *,
        u: NDArray[np.float64] | None = None,
        regularization: Regularization | None = None,
    ) -> FloatArray:
        n, k = probabilities.shape
        out = np.empty(n, dtype=np.float64)
        for sl in batches(n, k):
            out[sl] = _true_rank(probabilities[sl], labels[sl])[0]
        return out

    def row_sets(
        self,
        probabilities: FloatArray,
        thresholds: FloatArray,
        *,
        u: NDArray[np.float64] | None = None,
        include_last_label: bool = True,
        regularization: Regularization | None = None,
    ) -> BoolArray:
        n, k = probabilities.shape
        out = np.empty((n, k), dtype=bool)
        for sl in batches(n, k):
            block = probabilities[sl]
            s = np.sort(block, axis=1)[:, ::-1]
            idx = np.clip(thresholds[sl], 0, k - 1).astype(np.intp)
            p_last = s[_rows(block.shape[0]), idx].astype(np.float64)
            np.greater_equal(block - p_last[:, None], -EPSILON, out=out[sl])
        return out

    def label_scores(
        self,
        probabilities: FloatArray,
        *,
        u: NDArray[np.float64] | None = None,
        regularization: Regularization | None = None,
    ) -> FloatArray:
        n, k = probabilities.shape
        out = np.empty((n, k), dtype=np.float64)
        cols = np.arange(k)
        for sl in batches(n, k):
            block = probabilities[sl]
            order = np.argsort(block, axis=1, kind="stable")
            s = np.take_along_axis(block, order, axis=1)
            # index of the last member of each tie group in the ascending sort
            ends = np.where(
                np.concatenate([s[:, 1:] != s[:, :-1], np.ones((s.shape[0], 1), bool)], axis=1),
                cols,
                k,
            )
            ends = np.minimum.accumulate(ends[:, ::-1], axis=1)[:, ::-1]
            # rank = number of strictly larger probabilities
            np.put_along_axis(out[sl], order, (k - 1 - ends).astype(np.float64), axis=1)
        return out


#: Registry of conformity scores by alias.
SCORES: dict[str, type[ConformityScore]] = {
    "lac": LACScore,
    "aps": APSScore,
    "raps": RAPSScore,
    "topk": TopKScore,
}


def get_score(method: str) -> ConformityScore:
    """The conformity score registered under ``method``.

    Raises
    ------
    InputError
        For an unknown alias; the message lists the valid ones.
    """
    try:
        return SCORES[str(method).lower()]()
    except KeyError:
        raise InputError(
            f"Unknown conformity score {method!r}; valid methods: {sorted(SCORES)}."
        ) from None
