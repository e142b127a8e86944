"""MAPIE's ``SplitConformalClassifier`` on stored probabilities: the cross-check.

medval's batched scores reproduce MAPIE's (:mod:`medval.conformal._scores`);
these helpers run MAPIE itself on the same probabilities, e.g. those of a
torch model, through a prefit scikit-learn adapter, so that any user can
compare the two on their own data (``tests/conformal`` and
``benchmarks/bench_conformal.py`` do).
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError, MissingDependencyError
from medval.conformal._checks import check_labels, check_probabilities

__all__ = ["MAPIE_MIN_VERSION", "mapie_prediction_sets", "mapie_split_conformal", "prefit_adapter"]

#: MAPIE releases before 1.6 take one order statistic too many in the quantile.
MAPIE_MIN_VERSION = (1, 6)
_METHODS = {"lac": "lac", "aps": "aps", "raps": "raps", "topk": "top_k", "top_k": "top_k"}


def mapie_module(name: str) -> Any:
    """``mapie.<name>`` (classification, regression), refusing a MAPIE older than 1.6."""
    import importlib

    try:
        version = metadata.version("mapie")
    except metadata.PackageNotFoundError:
        raise MissingDependencyError(
            "The MAPIE cross-check needs mapie >= 1.6; install it with `pip install 'mapie>=1.6'`."
        ) from None
    parts = tuple(int(x) for x in version.split(".")[:2] if x.isdigit())
    if parts < MAPIE_MIN_VERSION:
        raise MissingDependencyError(
            f"mapie {version} is installed but medval needs mapie >= 1.6 (earlier releases "
            "take one order statistic too many); upgrade with `pip install -U 'mapie>=1.6'`."
        )
    return importlib.import_module(f"mapie.{name}")


def _mapie_classification() -> Any:
    return mapie_module("classification")


@functools.cache
def _adapter_class() -> Any:
    # defined on first use: scikit-learn is imported only for the cross-check
    from sklearn.base import BaseEstimator, ClassifierMixin

    class PrefitProbabilities(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
        """A fitted classifier whose input *is* its probability matrix."""

        def __init__(self, n_classes: int = 2) -> None:
            self.n_classes = n_classes

        def fit(self, X: Any, y: Any = None) -> Any:
            return self

        def __sklearn_is_fitted__(self) -> bool:
            return True

        @property
        def classes_(self) -> NDArray[np.intp]:
            return np.arange(self.n_classes)

        def predict_proba(self, X: Any) -> NDArray[Any]:
            return np.asarray(X)

        def predict(self, X: Any) -> NDArray[np.intp]:
            return np.asarray(np.argmax(np.asarray(X), axis=1), dtype=np.intp)

    return PrefitProbabilities


def prefit_adapter(n_classes: int) -> Any:
    """A fitted scikit-learn classifier whose input *is* its probability matrix.

    ``predict_proba(X)`` returns ``X``: pass probabilities (e.g. a torch
    model's softmax outputs) as ``X`` to MAPIE with ``prefit=True``.
    """
    return _adapter_class()(int(n_classes))


def mapie_split_conformal(
    probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    method: str = "lac",
    confidence_level: float = 0.9,
    random_state: int | None = None,
) -> Any:
    """MAPIE's ``SplitConformalClassifier`` conformalized on the given cases.

    Parameters
    ----------
    probabilities : array of float, shape (n, K)
        Calibration probabilities (the adapter's ``X``).
    labels : array of int, shape (n,)
    method : {"lac", "aps", "raps", "topk"}, default "lac"
    confidence_level : float, default 0.9
    random_state : int, optional
        MAPIE's seed (it draws its uniforms from ``RandomState(random_state)``).

    Returns
    -------
    mapie.classification.SplitConformalClassifier
        Conformalized; call ``predict_set(X)``.

    Raises
    ------
    MissingDependencyError
        When mapie >= 1.6 is not installed.
    InputError
        Bad probabilities, labels or method.
    """
    if method not in _METHODS:
        raise InputError(f"Unknown method {method!r} for MAPIE; valid: {sorted(set(_METHODS))}.")
    p = check_probabilities(probabilities)
    y = check_labels(labels, p.shape[0], p.shape[1])
    model = _mapie_classification().SplitConformalClassifier(
        estimator=prefit_adapter(p.shape[1]),
        confidence_level=confidence_level,
        conformity_score=_METHODS[method],
        prefit=True,
        random_state=random_state,
    )
    model.conformalize(p, y)
    return model


def mapie_prediction_sets(
    calibration_probabilities: ArrayLike,
    calibration_labels: ArrayLike,
    probabilities: ArrayLike,
    *,
    method: str = "lac",
    confidence_level: float = 0.9,
    include_last_label: bool | str = True,
    random_state: int | None = None,
) -> NDArray[np.bool_]:
    """Prediction sets from MAPIE's ``SplitConformalClassifier`` (the cross-check).

    Parameters
    ----------
    calibration_probabilities, calibration_labels
        As for :func:`mapie_split_conformal`.
    probabilities : array of float, shape (m, K)
        Cases to predict.
    include_last_label : bool or "randomized", default True
        MAPIE's option for APS and RAPS (ignored by LAC and top-k).

    Returns
    -------
    array of bool, shape (m, K)
    """
    model = mapie_split_conformal(
        calibration_probabilities,
        calibration_labels,
        method=method,
        confidence_level=confidence_level,
        random_state=random_state,
    )
    params = {"include_last_label": include_last_label} if method in ("aps", "raps") else None
    _, sets = model.predict_set(check_probabilities(probabilities), conformity_score_params=params)
    return np.asarray(sets[:, :, 0], dtype=bool)
