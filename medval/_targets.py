"""A regression model's outputs: :class:`RegressionPredictions`.

numpy only, so ``import medval`` stays light. A regression head may give a
point prediction alone, a predicted variance beside it (a heteroscedastic
head's mean and log-variance, Kendall and Gal 2017), quantiles (a quantile
head), and MC-dropout samples of each.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError
from medval._types import as_case_ids

__all__ = ["RegressionPredictions", "check_targets"]

FloatArray = NDArray[np.float64]


def check_targets(values: ArrayLike, n: int, *, name: str) -> FloatArray:
    """``values`` as finite float64, shape (n,); else an InputError naming the first bad one."""
    v = np.asarray(values)
    if v.ndim != 1 or v.shape[0] != n:
        raise InputError(f"{name} must have shape ({n},); got {v.shape}.")
    if v.dtype.kind not in "fiub":
        raise InputError(f"{name} must be numbers; got dtype {v.dtype}.")
    out = v.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raise InputError(
            f"{name} must be finite; entry {int(bad[0])} is {out[bad[0]]} ({bad.size} entries "
            "NaN or infinite). Drop those cases or fix the model outputs."
        )
    return out


def _float_matrix(a: ArrayLike, shape: tuple[int, ...], name: str) -> FloatArray:
    m = np.asarray(a, dtype=np.float64)
    if m.shape != shape:
        raise InputError(f"{name} must have shape {shape}; got {m.shape}.")
    if not np.all(np.isfinite(m)):
        raise InputError(f"{name} contain NaN or infinite values; check the model outputs.")
    return m


def _check_variances(v: FloatArray, name: str) -> None:
    if v.size and v.min() <= 0.0:
        raise InputError(
            f"{name} must be > 0; the smallest is {v.min():.4g}. A head giving log-variances "
            "is read with RegressionPredictions.from_log_variance (or output = "
            '"mean_log_variance" in a spec).'
        )


@dataclasses.dataclass(frozen=True, eq=False)
class RegressionPredictions:
    """A regression model's outputs on a set of cases.

    Parameters
    ----------
    case_ids : array of str, shape (n,)
        Unique, de-identified case identifiers.
    values : array of float, shape (n,)
        Point predictions of the deterministic pass (dropout off): the model
        as deployed.
    labels : array of float, shape (n,), optional
        True values, in ``unit``.
    variances : array of float, shape (n,), optional
        The predicted (aleatoric) variance of each case, > 0.
    quantiles : array of float, shape (n, Q), optional
        Quantile heads' predictions at ``quantile_levels`` (increasing).
    quantile_levels : sequence of float
        Levels in (0, 1), strictly increasing; required with ``quantiles``.
    mc_values, mc_variances : array of float, shape (T, n), optional
        MC-dropout samples of the point prediction and the predicted variance.
    unit : str
        The unit of the target (``"months"``), shown beside every number.

    Raises
    ------
    InputError
        On mismatched shapes, non-finite values, variances <= 0 or levels
        that are not strictly increasing in (0, 1).
    """

    case_ids: NDArray[np.str_]
    values: FloatArray
    labels: FloatArray | None = None
    variances: FloatArray | None = None
    quantiles: FloatArray | None = None
    quantile_levels: tuple[float, ...] = ()
    mc_values: FloatArray | None = None
    mc_variances: FloatArray | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        v = np.asarray(self.values)
        if v.ndim != 1:
            raise InputError(
                f"values must have shape (n,); got {v.shape}. A (n, 2) mean and log-variance "
                "head is read with RegressionPredictions.from_log_variance."
            )
        n = v.shape[0]
        object.__setattr__(self, "values", check_targets(v, n, name="values"))
        object.__setattr__(self, "case_ids", as_case_ids(self.case_ids, n))
        if self.labels is not None:
            object.__setattr__(self, "labels", check_targets(self.labels, n, name="labels"))
        if self.variances is not None:
            var = check_targets(self.variances, n, name="variances")
            _check_variances(var, "variances")
            object.__setattr__(self, "variances", var)
        self._check_quantiles(n)
        if self.mc_values is not None:
            mc = np.asarray(self.mc_values, dtype=np.float64)
            if mc.ndim != 2 or mc.shape[1] != n or mc.shape[0] < 1:
                raise InputError(f"mc_values must have shape (T, {n}); got {mc.shape}.")
            object.__setattr__(self, "mc_values", _float_matrix(mc, mc.shape, "mc_values"))
        if self.mc_variances is not None:
            if self.mc_values is None:
                raise InputError("mc_variances need mc_values (the samples' means).")
            mv = _float_matrix(self.mc_variances, self.mc_values.shape, "mc_variances")
            _check_variances(mv, "mc_variances")
            object.__setattr__(self, "mc_variances", mv)
        object.__setattr__(self, "unit", str(self.unit))

    def _check_quantiles(self, n: int) -> None:
        levels = tuple(float(q) for q in self.quantile_levels)
        if self.quantiles is None:
            if levels:
                raise InputError("quantile_levels given without quantiles.")
            return
        q = np.asarray(self.quantiles, dtype=np.float64)
        if q.ndim != 2 or q.shape[0] != n or q.shape[1] != len(levels) or not levels:
            raise InputError(
                f"quantiles must have shape ({n}, Q) with Q = len(quantile_levels) = "
                f"{len(levels)} >= 1; got {q.shape}."
            )
        arr = np.asarray(levels)
        if np.any(arr <= 0) or np.any(arr >= 1) or np.any(np.diff(arr) <= 0):
            raise InputError(
                f"quantile_levels must be strictly increasing in (0, 1); got {list(levels)}."
            )
        object.__setattr__(self, "quantiles", _float_matrix(q, q.shape, "quantiles"))
        object.__setattr__(self, "quantile_levels", levels)

    @property
    def n_cases(self) -> int:
        """Number of cases n."""
        return int(self.values.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of MC samples T (0 without)."""
        return 0 if self.mc_values is None else int(self.mc_values.shape[0])

    @classmethod
    def from_log_variance(
        cls,
        case_ids: ArrayLike,
        outputs: ArrayLike,
        *,
        mc_outputs: ArrayLike | None = None,
        labels: ArrayLike | None = None,
        unit: str = "",
    ) -> RegressionPredictions:
        """A mean and log-variance head's outputs (n, 2) (and MC samples (T, n, 2))."""
        out = np.asarray(outputs, dtype=np.float64)
        if out.ndim != 2 or out.shape[1] != 2:
            raise InputError(f"a mean and log-variance head gives (n, 2) outputs; got {out.shape}.")
        mc = None if mc_outputs is None else np.asarray(mc_outputs, dtype=np.float64)
        if mc is not None and (mc.ndim != 3 or mc.shape[1:] != out.shape):
            raise InputError(f"MC outputs must have shape (T, {out.shape[0]}, 2); got {mc.shape}.")
        return cls(
            case_ids=np.asarray(case_ids),
            values=out[:, 0],
            labels=None if labels is None else np.asarray(labels),
            variances=np.exp(out[:, 1]),
            mc_values=None if mc is None else mc[:, :, 0],
            mc_variances=None if mc is None else np.exp(mc[:, :, 1]),
            unit=unit,
        )

    def subset(self, mask: ArrayLike) -> RegressionPredictions:
        """The cases selected by a boolean mask or index array."""
        idx = np.asarray(mask)

        def pick(a: NDArray[Any] | None, axis: int = 0) -> Any:
            return None if a is None else np.take(a, np.flatnonzero(idx) if idx.dtype == bool
                                                  else idx, axis=axis)  # fmt: skip

        return dataclasses.replace(
            self,
            case_ids=pick(self.case_ids),
            values=pick(self.values),
            labels=pick(self.labels),
            variances=pick(self.variances),
            quantiles=pick(self.quantiles),
            mc_values=pick(self.mc_values, 1),
            mc_variances=pick(self.mc_variances, 1),
        )

    def with_labels(self, labels: ArrayLike) -> RegressionPredictions:
        """A copy carrying ``labels``."""
        return dataclasses.replace(self, labels=np.asarray(labels))

    def sigma(self) -> FloatArray | None:
        """The predicted standard deviation per case: the head's variance, else the MC spread.

        With both, the total predictive variance (aleatoric mean of the MC
        variances plus the epistemic variance of the MC means); None without
        either.
        """
        if self.mc_values is not None and self.mc_values.shape[0] > 1:
            total = self.mc_values.var(axis=0)
            if self.mc_variances is not None:
                total = total + self.mc_variances.mean(axis=0)
            elif self.variances is not None:
                total = total + self.variances
            out: FloatArray = np.sqrt(np.maximum(total, np.finfo(np.float64).tiny))
            return out
        if self.variances is not None:
            return np.sqrt(self.variances)
        return None
