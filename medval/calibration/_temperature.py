"""Temperature scaling (Guo et al. 2017)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from medval._errors import InputError, NotCalibratedError
from medval.stats import check_class_labels

__all__ = ["TemperatureScaler"]


def _as_logits(logits: ArrayLike) -> NDArray[np.float64]:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[0] == 0:
        raise InputError(f"logits must have shape (n,) or (n, K) with n >= 1; got {z.shape}.")
    if not np.all(np.isfinite(z)):
        raise InputError(
            "logits contain NaN or infinite values; check the model outputs (log of a "
            "probability of exactly 0 is -inf: clip it, e.g. np.log(np.maximum(p, 1e-300)))."
        )
    if z.shape[1] == 1:
        # A single binary logit z is the two-class logit pair [0, z].
        z = np.concatenate([np.zeros_like(z), z], axis=1)
    return z


def _nll(z: NDArray[np.float64], y: NDArray[np.int64], temperature: float) -> float:
    s = z / temperature
    return float(np.mean(special.logsumexp(s, axis=1) - s[np.arange(s.shape[0]), y]))


class TemperatureScaler:
    """Temperature scaling: divide logits by one learned ``T > 0`` (Guo et al. 2017).

    ``T`` minimises the negative log-likelihood on a calibration split
    (L-BFGS-B over ``log T``). It keeps the predicted class and rescales the
    confidence; apply it before conformal prediction.

    Parameters
    ----------
    bounds : tuple of float, default (0.05, 20.0)
        Search range of ``T``.

    Attributes
    ----------
    temperature_ : float
        The fitted temperature (> 1 softens over-confident models).
    nll_before_, nll_after_ : float
        Mean NLL on the fitting split at ``T = 1`` and at ``temperature_``.
    n_fit_ : int
        Number of cases used to fit.

    Examples
    --------
    >>> scaler = TemperatureScaler().fit(cal_logits, cal_labels)  # doctest: +SKIP
    >>> test_probabilities = scaler.predict_proba(test_logits)  # doctest: +SKIP
    """

    def __init__(self, *, bounds: tuple[float, float] = (0.05, 20.0)) -> None:
        lo, hi = (float(b) for b in bounds)
        if not 0.0 < lo < hi:
            raise InputError(f"bounds must satisfy 0 < low < high; got {bounds!r}.")
        self.bounds = (lo, hi)

    def fit(self, logits: ArrayLike, labels: ArrayLike) -> TemperatureScaler:
        """Fit ``T`` by NLL on the calibration split.

        Parameters
        ----------
        logits : array of float, shape (n, K) or (n,)
            Raw scores (a single column is a binary logit). For softmax
            probabilities ``p`` pass ``log(p)``: softmax is invariant to a
            per-row constant.
        labels : array of int, shape (n,)

        Returns
        -------
        TemperatureScaler
            ``self``.
        """
        z = _as_logits(logits)
        y = check_class_labels(labels, z.shape[0], z.shape[1], against="logits")
        log_lo, log_hi = np.log(self.bounds)

        def loss(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            t = float(np.exp(theta[0]))
            s = z / t
            p = special.softmax(s, axis=1)
            value = float(np.mean(special.logsumexp(s, axis=1) - s[np.arange(s.shape[0]), y]))
            # d/dlogT of NLL = -mean(sum_k p_k s_k - s_y)
            expected = np.sum(p * s, axis=1)
            grad = -float(np.mean(expected - s[np.arange(s.shape[0]), y]))
            return value, np.array([grad])

        res = optimize.minimize(
            loss, np.array([0.0]), jac=True, method="L-BFGS-B", bounds=[(log_lo, log_hi)]
        )
        self.temperature_ = float(np.exp(res.x[0]))
        self.nll_before_ = _nll(z, y, 1.0)
        self.nll_after_ = _nll(z, y, self.temperature_)
        self.n_fit_ = int(z.shape[0])
        return self

    def _check_fitted(self) -> float:
        t: Any = getattr(self, "temperature_", None)
        if t is None:
            raise NotCalibratedError(
                "this TemperatureScaler is not fitted yet; call .fit(logits, labels) on the "
                "calibration split first."
            )
        return float(t)

    def transform(self, logits: ArrayLike) -> NDArray[np.float64]:
        """Scaled logits ``logits / temperature_``, shape (n, K) (binary: (n, 2))."""
        return _as_logits(logits) / self._check_fitted()

    def predict_proba(self, logits: ArrayLike) -> NDArray[np.float64]:
        """Calibrated probabilities ``softmax(logits / temperature_)``, shape (n, K)."""
        return np.asarray(special.softmax(self.transform(logits), axis=1), dtype=np.float64)

    def __repr__(self) -> str:
        t = getattr(self, "temperature_", None)
        return f"TemperatureScaler(bounds={self.bounds})" + ("" if t is None else f" [T={t:.4g}]")
