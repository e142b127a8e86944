"""Split and Mondrian conformal regression intervals: :class:`ConformalRegressor`."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError, NotCalibratedError
from medval.conformal._checks import (
    check_confidence_level,
    check_groups,
    conformal_rank,
    min_calibration_size,
)

__all__ = ["REGRESSION_SCORES", "ConformalRegressor", "check_band", "check_values"]

#: Conformity scores of :class:`ConformalRegressor`.
REGRESSION_SCORES: tuple[str, ...] = ("absolute", "normalized", "cqr")
_POLICIES = ("marginal", "infinite", "error")

FloatArray = NDArray[np.float64]
#: ``(lower, upper, scale)``: the interval is ``[lower - Q scale, upper + Q scale]``.
Band = tuple[FloatArray, FloatArray, FloatArray | None]


def check_values(values: ArrayLike, what: str, n: int | None = None) -> FloatArray:
    """A finite float64 vector of shape (n,)."""
    a = np.asarray(values)
    if a.dtype.kind not in "fiub":
        raise InputError(f"{what} must be numeric; got dtype {a.dtype}.")
    a = a.astype(np.float64, copy=False)
    if a.ndim != 1 or (n is not None and a.shape[0] != n):
        want = "(n,)" if n is None else f"({n},)"
        raise InputError(f"{what} must have shape {want}, one value per case; got {a.shape}.")
    if not np.all(np.isfinite(a)):
        bad = int(np.flatnonzero(~np.isfinite(a))[0])
        raise InputError(
            f"{what} must be finite; case {bad} is {a[bad]}. Drop or impute it before "
            "conformalizing."
        )
    return a


def check_band(
    score: str,
    n: int,
    y_pred: ArrayLike | None,
    sigma: ArrayLike | None,
    quantiles: ArrayLike | None,
) -> Band:
    """Check one score's model outputs for n cases and return its band ``(lo, hi, scale)``.

    absolute: ``(y_pred, y_pred, None)``; normalized: ``(y_pred, y_pred, sigma)``
    with ``sigma > 0``; cqr: ``(q_lo, q_hi, None)`` from ``quantiles`` (n, 2).
    An output the score does not use is refused (except ``y_pred`` for cqr,
    which is checked and ignored), so that no input is silently dropped.
    """
    if score == "cqr":
        if sigma is not None:
            raise InputError("score 'cqr' takes quantiles, not sigma; use score='normalized'.")
        if quantiles is None:
            raise InputError(
                "score 'cqr' needs quantiles: shape (n, 2), the model's lower and upper "
                "quantile predictions (e.g. at (1 - c)/2 and (1 + c)/2)."
            )
        q = np.asarray(quantiles)
        if q.ndim != 2 or q.shape != (n, 2):
            raise InputError(
                f"quantiles must have shape ({n}, 2): lower and upper quantile per case; got "
                f"{q.shape}."
            )
        if y_pred is not None:
            check_values(y_pred, "y_pred", n)
        lower = check_values(q[:, 0], "quantiles[:, 0] (lower)")
        return lower, check_values(q[:, 1], "quantiles[:, 1] (upper)"), None
    if quantiles is not None:
        raise InputError(f"quantiles are used by score 'cqr' only; got score {score!r}.")
    if y_pred is None:
        raise InputError(f"score {score!r} needs y_pred, the point predictions (shape (n,)).")
    yp = check_values(y_pred, "y_pred", n)
    if score == "absolute":
        if sigma is not None:
            raise InputError(
                "sigma is used by score 'normalized' only; pass score='normalized' to scale the "
                "intervals by it, or drop sigma."
            )
        return yp, yp, None
    if sigma is None:
        raise InputError(
            "score 'normalized' needs sigma: the model's own predicted spread per case "
            "(a heteroscedastic head's standard deviation, or the MC-dropout spread)."
        )
    s = check_values(sigma, "sigma", n)
    if np.any(s <= 0):
        bad = int(np.flatnonzero(s <= 0)[0])
        raise InputError(
            f"sigma must be > 0; case {bad} has sigma = {s[bad]}. Floor it at a small positive "
            "value (e.g. a fraction of the median sigma) before conformalizing."
        )
    return yp, yp, s


def _scores(y: FloatArray, band: Band) -> FloatArray:
    """``max(lo - y, y - hi) / scale``: |y - y_pred| (/ sigma), or Romano et al.'s CQR score."""
    lo, hi, scale = band
    s = np.maximum(lo - y, y - hi)
    return s if scale is None else s / scale


def _order_statistic(scores: FloatArray, rank: int, *, is_sorted: bool = False) -> float:
    """The rank-th smallest (1-based) score; inf beyond n."""
    if rank > scores.shape[0]:
        return float("inf")
    return float(scores[rank - 1] if is_sorted else np.partition(scores, rank - 1)[rank - 1])


class ConformalRegressor:
    """Split-conformal prediction intervals from any regressor's outputs.

    Marginal or group-conditional (Mondrian, Vovk 2003: one quantile per
    group of a Cohort column) calibration of three conformity scores:

    - ``"absolute"``: ``|y - y_pred|``, interval ``y_pred ± Q`` (Lei et al. 2018);
    - ``"normalized"``: ``|y - y_pred| / sigma`` with the model's own
      ``sigma > 0`` (a heteroscedastic head, MC-dropout spread), interval
      ``y_pred ± Q sigma`` (Papadopoulos et al. 2008; Lei et al. 2018, sec. 5.2);
    - ``"cqr"``: ``max(q_lo - y, y - q_hi)`` with the model's lower and upper
      quantiles, interval ``[q_lo - Q, q_hi + Q]`` (Romano, Patterson &
      Candès 2019).

    ``Q`` is the ``ceil((n + 1) c)``-th smallest of the n calibration scores
    (``c = confidence_level``, read exactly from its decimal spelling), so for
    exchangeable calibration and test cases the interval holds the true value
    with probability at least ``c``, and below ``c + 1/(n + 1)`` when the
    scores have no ties (Vovk et al. 2005; Lei et al. 2018, Thm. 2.2). When
    ``ceil((n + 1) c) > n`` (fewer than ``ceil(c / (1 - c))`` cases) ``Q`` is
    ``inf`` and the intervals are infinite: the only valid answer. The order
    statistic is MAPIE 1.6's (``np.quantile(..., ceil((n+1)c)/n,
    method="lower")``); MAPIE raises instead of returning ``inf``, and its CQR
    is this one with ``symmetric_correction=True`` (its default calibrates
    each side at ``1 - alpha/2``). ``tests/conformal`` check the intervals
    against MAPIE (:func:`medval.conformal.mapie_split_regression`,
    :func:`medval.conformal.mapie_cqr`).

    The guarantee needs calibration and test cases exchangeable and apart
    from the model's training data (split by patient:
    :func:`medval.conformal.check_disjoint_patients`). Crossing quantiles
    (``q_lo > q_hi``) are accepted, as by MAPIE: the guarantee holds for any
    pair of functions, but a case's CQR interval is empty (``lower > upper``)
    when ``q_lo - q_hi > 2 Q`` (``Q`` is negative when the quantile model
    over-covers). MAPIE's CQR also refuses fewer than
    ``max(1/(1 - c), 1/c)`` calibration cases.

    Parameters
    ----------
    score : {"absolute", "normalized", "cqr"}, default "absolute"
        Conformity score, from :data:`REGRESSION_SCORES`.
    confidence_level : float, default 0.9
        Target coverage ``c``.
    min_group_size_policy : {"marginal", "infinite", "error"}, default "marginal"
        A calibration group too small for a finite quantile (fewer than
        ``ceil(c / (1 - c))`` cases): use the marginal quantile for it (listed
        in ``fallback_groups_`` when predicted; its coverage then rests on
        the marginal guarantee only), keep its infinite intervals (the
        Mondrian guarantee, vacuously), or raise. A group unseen at
        calibration always falls back to the marginal quantile.

    Attributes
    ----------
    quantile_ : float
        Marginal conformal quantile ``Q`` (``inf`` with too few cases).
    group_quantiles_ : dict
        Each calibration group's own quantile (``inf`` for a small group); empty
        for marginal calibration.
    n_calibration_ : int
        Calibration cases.
    group_sizes_ : dict
        Calibration cases per group.
    small_groups_ : list
        Groups whose own quantile is ``inf``.
    fallback_groups_ : list
        Groups of the last :meth:`predict_interval` call that used the
        marginal quantile (unseen, or small under the "marginal" policy).

    References
    ----------
    Vovk (2003), Mondrian confidence machine, technical report; Vovk,
    Gammerman & Shafer (2005), *Algorithmic Learning in a Random World*;
    Papadopoulos, Gammerman & Vovk (2008), Normalized nonconformity measures
    for regression conformal prediction, AIA; Lei, G'Sell, Rinaldo,
    Tibshirani & Wasserman (2018), JASA 113:1094-1111; Romano, Patterson &
    Candès (2019), Conformalized quantile regression, NeurIPS.
    """

    def __init__(
        self,
        score: str = "absolute",
        *,
        confidence_level: float = 0.9,
        min_group_size_policy: Literal["marginal", "infinite", "error"] = "marginal",
    ) -> None:
        if score not in REGRESSION_SCORES:
            raise InputError(
                f"Unknown regression conformity score {score!r}; valid: "
                f"{', '.join(REGRESSION_SCORES)}."
            )
        self.score = score
        self.level = check_confidence_level(confidence_level)
        self.confidence_level = float(confidence_level)
        if min_group_size_policy not in _POLICIES:
            raise InputError(
                f"min_group_size_policy must be one of {list(_POLICIES)}; got "
                f"{min_group_size_policy!r}."
            )
        self.min_group_size_policy = min_group_size_policy

    def conformalize(
        self,
        y_true: ArrayLike,
        y_pred: ArrayLike | None,
        *,
        sigma: ArrayLike | None = None,
        quantiles: ArrayLike | None = None,
        groups: ArrayLike | None = None,
    ) -> ConformalRegressor:
        """Compute the conformal quantile(s) from held-out calibration cases.

        Parameters
        ----------
        y_true : array of float, shape (n,)
            True values.
        y_pred : array of float, shape (n,), or None
            Point predictions (required for "absolute" and "normalized";
            may be None for "cqr", and is not used by it).
        sigma : array of float, shape (n,), optional
            The model's spread, > 0 ("normalized" only).
        quantiles : array of float, shape (n, 2), optional
            Lower and upper quantile predictions ("cqr" only).
        groups : array, shape (n,), optional
            Group key per case (Mondrian calibration), e.g. the manufacturer.

        Returns
        -------
        self

        Raises
        ------
        InputError
            Non-finite or misshapen inputs, ``sigma <= 0``, an output the
            score does not use, an empty calibration set, or a small group
            under ``min_group_size_policy="error"``.
        """
        y = check_values(y_true, "y_true")
        n = y.shape[0]
        if n == 0:
            raise InputError("conformalize needs at least one calibration case; got 0.")
        scores = _scores(y, check_band(self.score, n, y_pred, sigma, quantiles))
        g = None if groups is None else check_groups(groups, n)
        self.n_calibration_ = n
        self.quantile_ = _order_statistic(scores, conformal_rank(n, self.level))
        self.group_quantiles_: dict[Any, float] = {}
        self.group_sizes_: dict[Any, int] = {}
        self.small_groups_: list[Any] = []
        self.fallback_groups_: list[Any] = []
        if g is not None:
            self._conformalize_groups(scores, g)
        return self

    def _conformalize_groups(self, scores: FloatArray, g: NDArray[Any]) -> None:
        keys, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
        inverse = inverse.ravel()
        # cases grouped by a stable sort of the group index, then each block sorted
        # in place (several times faster than a lexsort on (group, score))
        ordered = scores[np.argsort(inverse, kind="stable")]
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        for key, start, m in zip(keys.tolist(), starts.tolist(), counts.tolist(), strict=True):
            block = ordered[start : start + m]
            block.sort()
            q = _order_statistic(block, conformal_rank(m, self.level), is_sorted=True)
            self.group_sizes_[key] = int(m)
            self.group_quantiles_[key] = q
            if q == np.inf:
                self.small_groups_.append(key)
        if self.small_groups_ and self.min_group_size_policy == "error":
            listed = ", ".join(f"{k!r}: {self.group_sizes_[k]}" for k in self.small_groups_[:10])
            raise InputError(
                f"{len(self.small_groups_)} group(s) have too few calibration cases for "
                f"confidence_level {self.confidence_level} ({listed}); each needs "
                f"n >= {min_calibration_size(self.level)}. Add cases, merge small groups, or use "
                "min_group_size_policy='marginal' (marginal quantile) or 'infinite'."
            )

    def _check_calibrated(self) -> None:
        if not hasattr(self, "n_calibration_"):
            raise NotCalibratedError(
                "This ConformalRegressor is not conformalized yet; call "
                ".conformalize(y_true, y_pred, ...) on held-out calibration cases first."
            )

    def predict_interval(
        self,
        y_pred: ArrayLike | None,
        *,
        sigma: ArrayLike | None = None,
        quantiles: ArrayLike | None = None,
        groups: ArrayLike | None = None,
    ) -> FloatArray:
        """Prediction intervals for new cases.

        Parameters
        ----------
        y_pred, sigma, quantiles : as for :meth:`conformalize`, for m cases
        groups : array, shape (m,), optional
            Group keys; required when conformalized per group, refused otherwise.

        Returns
        -------
        array of float64, shape (m, 2)
            Lower and upper bound per case (``±inf`` when the quantile is ``inf``).

        Raises
        ------
        NotCalibratedError
            Before :meth:`conformalize`.
        InputError
            Bad inputs, or groups missing (Mondrian) or unexpected (marginal).
        """
        self._check_calibrated()
        m = _case_count(y_pred, sigma, quantiles)
        lo, hi, scale = check_band(self.score, m, y_pred, sigma, quantiles)
        q = self._row_quantiles(m, groups)
        width = q if scale is None else q * scale
        return np.column_stack((lo - width, hi + width))

    def _row_quantiles(self, m: int, groups: ArrayLike | None) -> FloatArray | float:
        self.fallback_groups_ = []
        if not self.group_sizes_:
            if groups is not None:
                raise InputError(
                    "groups were passed to predict_interval but the calibration was marginal; "
                    "pass groups to conformalize() as well, or none here."
                )
            return self.quantile_
        if groups is None:
            raise InputError(
                "This regressor was conformalized per group; pass the test cases' groups to "
                "predict_interval(..., groups=...)."
            )
        g = check_groups(groups, m)
        keys, inverse = np.unique(g, return_inverse=True)
        fall_back = set(self.small_groups_) if self.min_group_size_policy == "marginal" else set()
        table = np.empty(keys.shape[0])
        for i, key in enumerate(keys.tolist()):
            own = self.group_quantiles_.get(key)
            if own is None or key in fall_back:
                self.fallback_groups_.append(key)
                own = self.quantile_
            table[i] = own
        return table[inverse.ravel()]


def _case_count(*arrays: ArrayLike | None) -> int:
    """Number of cases: the length of the first array given."""
    for a in arrays:
        if a is not None:
            shape = np.shape(a)
            if not shape:
                raise InputError("model outputs must be arrays, one row per case; got a scalar.")
            return int(shape[0])
    raise InputError("predict_interval needs the model outputs (y_pred, sigma or quantiles).")
