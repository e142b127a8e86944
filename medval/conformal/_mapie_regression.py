"""MAPIE 1.6's regression intervals on stored predictions: the cross-check.

MAPIE needs a scikit-learn estimator; :func:`prefit_column` makes one whose
``predict(X)`` returns a column of ``X``, so the stored outputs of any model
(a torch network's mean, sigma or quantiles) pass through MAPIE's own
conformalization. ``tests/conformal`` and
``benchmarks/bench_regression_conformal.py`` compare these intervals with
:class:`medval.conformal.ConformalRegressor`'s.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval.conformal._mapie import mapie_module
from medval.conformal._regression import check_band, check_values

__all__ = ["mapie_cqr", "mapie_split_regression", "prefit_column"]


def _mapie_regression() -> Any:
    return mapie_module("regression")


@functools.cache
def _column_class() -> Any:
    # defined on first use: scikit-learn is imported only for the cross-check
    from sklearn.base import BaseEstimator, RegressorMixin

    class PrefitColumn(RegressorMixin, BaseEstimator):  # type: ignore[misc]
        """A fitted regressor whose prediction is column ``column`` of its input."""

        def __init__(self, column: int = 0) -> None:
            self.column = column

        def fit(self, X: Any, y: Any = None) -> Any:
            return self

        def __sklearn_is_fitted__(self) -> bool:
            return True

        @property
        def fitted_(self) -> bool:  # one of MAPIE's "is fitted" attributes
            return True

        def predict(self, X: Any) -> NDArray[np.float64]:
            return np.asarray(X, dtype=np.float64)[:, self.column]

    return PrefitColumn


def prefit_column(column: int) -> Any:
    """A fitted scikit-learn regressor whose ``predict(X)`` is ``X[:, column]``."""
    return _column_class()(int(column))


def _levels(intervals: Any) -> NDArray[np.float64]:
    """MAPIE's (m, 2, 1) intervals as (m, 2)."""
    return np.asarray(intervals, dtype=np.float64)[:, :, 0]


def mapie_split_regression(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    y_pred_test: ArrayLike,
    *,
    sigma: ArrayLike | None = None,
    sigma_test: ArrayLike | None = None,
    confidence_level: float = 0.9,
) -> NDArray[np.float64]:
    """Intervals from MAPIE's ``SplitConformalRegressor`` with a prefit estimator.

    Without ``sigma`` the conformity score is ``"absolute"``; with it,
    ``ResidualNormalisedScore`` with a prefit residual estimator that returns
    ``sigma`` (MAPIE then scores ``|y - y_pred| / max(sigma, 1e-8)``), i.e.
    medval's ``"normalized"`` score for ``sigma > 1e-8``.

    Parameters
    ----------
    y_true, y_pred : array of float, shape (n,)
        Calibration truth and point predictions.
    y_pred_test : array of float, shape (m,)
    sigma, sigma_test : array of float, shape (n,) and (m,), optional
        The model's spread, both or neither.
    confidence_level : float, default 0.9

    Returns
    -------
    array of float64, shape (m, 2)

    Raises
    ------
    MissingDependencyError
        When mapie >= 1.6 is not installed.
    InputError
        Bad inputs (as for :class:`~medval.conformal.ConformalRegressor`).
    ValueError
        From MAPIE, when ``n`` is too small for a finite quantile (medval
        returns infinite intervals there).
    """
    y = check_values(y_true, "y_true")
    score = "absolute" if sigma is None and sigma_test is None else "normalized"
    yp, _, s = check_band(score, y.shape[0], y_pred, sigma, None)
    m = np.shape(y_pred_test)[0] if np.ndim(y_pred_test) else 0
    yt, _, st = check_band(score, m, y_pred_test, sigma_test, None)
    regression = _mapie_regression()
    conformity: Any = "absolute"
    X, X_test = yp[:, None], yt[:, None]
    if s is not None and st is not None:
        from mapie.conformity_scores import ResidualNormalisedScore

        X, X_test = np.column_stack((yp, s)), np.column_stack((yt, st))
        conformity = ResidualNormalisedScore(residual_estimator=prefit_column(1), prefit=True)
    model = regression.SplitConformalRegressor(
        estimator=prefit_column(0),
        confidence_level=confidence_level,
        conformity_score=conformity,
        prefit=True,
    )
    model.conformalize(X, y)
    return _levels(model.predict_interval(X_test)[1])


def mapie_cqr(
    y_true: ArrayLike,
    quantiles: ArrayLike,
    quantiles_test: ArrayLike,
    *,
    confidence_level: float = 0.9,
    symmetric_correction: bool = True,
) -> NDArray[np.float64]:
    """Intervals from MAPIE's ``ConformalizedQuantileRegressor`` with prefit quantiles.

    MAPIE takes three prefit estimators (lower, upper, median); the median
    only gives the point prediction, so the midpoint of the two quantiles
    stands in for it. ``symmetric_correction=True`` is Romano et al.'s CQR
    (one quantile of ``max(q_lo - y, y - q_hi)`` at ``c``), medval's
    ``"cqr"``; ``False`` (MAPIE's default) corrects each side with its own
    quantile at level ``1 - (1 - c)/2``. MAPIE also refuses ``n < max(1/alpha,
    1/(1 - alpha))`` calibration cases.

    Parameters
    ----------
    y_true : array of float, shape (n,)
    quantiles : array of float, shape (n, 2)
        Calibration lower and upper quantile predictions.
    quantiles_test : array of float, shape (m, 2)
    confidence_level : float, default 0.9
    symmetric_correction : bool, default True

    Returns
    -------
    array of float64, shape (m, 2)
    """
    y = check_values(y_true, "y_true")
    lo, hi, _ = check_band("cqr", y.shape[0], None, None, quantiles)
    m = np.shape(quantiles_test)[0] if np.ndim(quantiles_test) else 0
    lo_t, hi_t, _ = check_band("cqr", m, None, None, quantiles_test)
    regression = _mapie_regression()
    cols = [prefit_column(j) for j in range(3)]
    model = regression.ConformalizedQuantileRegressor(
        estimator=cols, confidence_level=confidence_level, prefit=True
    )
    model.conformalize(np.column_stack((lo, hi, (lo + hi) / 2)), y)
    X_test = np.column_stack((lo_t, hi_t, (lo_t + hi_t) / 2))
    _, intervals = model.predict_interval(X_test, symmetric_correction=symmetric_correction)
    return _levels(intervals)
