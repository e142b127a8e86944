"""Running a regression model: :func:`predict_regression` (MC dropout included)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from medval._errors import InputError
from medval._targets import RegressionPredictions
from medval.inference._halving import BatchLimit
from medval.inference._passes import resolve_device, run_passes

__all__ = ["REGRESSION_OUTPUTS", "predict_regression"]

#: What a regression head returns (``predict_regression(output=...)``), with its columns.
REGRESSION_OUTPUTS: dict[str, str] = {
    "mean": "(batch,) or (batch, 1): the predicted value",
    "mean_log_variance": "(batch, 2): the mean and the log of the predicted variance",
    "mean_variance": "(batch, 2): the mean and the predicted variance (> 0)",
    "quantiles": "(batch, Q): one column per quantile level, increasing",
}


def _columns(output: str, levels: Sequence[float]) -> int:
    return {"mean": 1, "mean_log_variance": 2, "mean_variance": 2}.get(output, len(levels))


def predict_regression(
    model: torch.nn.Module,
    loader: Iterable[Any],
    *,
    output: str = "mean",
    quantile_levels: Sequence[float] = (),
    device: str | torch.device | None = None,
    case_ids: Sequence[str] | None = None,
    input_key: str = "image",
    progress: bool = False,
    mc_samples: int = 0,
    seed: int = 0,
    unit: str = "",
    precision: str = "float32",
    batch_limit: BatchLimit | None = None,
) -> RegressionPredictions:
    """Run a regression model over ``loader`` and collect :class:`~medval.RegressionPredictions`.

    The deterministic pass (dropout off) gives ``values`` (and
    ``variances`` or ``quantiles``): the model as deployed. With
    ``mc_samples=T > 0`` the T MC-dropout passes (Gal and Ghahramani 2016),
    with dropout masks keyed by (seed, case id) exactly as
    :func:`medval.predict`'s, give ``mc_values`` (and ``mc_variances``);
    the predictive variance then splits into epistemic (the variance of the
    MC means) and aleatoric (the mean predicted variance) parts (Kendall
    and Gal 2017).

    Parameters
    ----------
    model : torch.nn.Module
    loader : iterable of batches
        As for :func:`medval.predict`.
    output : {"mean", "mean_log_variance", "mean_variance", "quantiles"}
        What the model returns (:data:`REGRESSION_OUTPUTS`); declared, never guessed.
    quantile_levels : sequence of float
        With ``output="quantiles"``: the level of each column, increasing. With
        MC dropout the quantiles come from the deterministic pass only.
    device, case_ids, input_key, progress, mc_samples, seed, precision, batch_limit
        As for :func:`medval.predict` (the head's outputs are cast to float32).
    unit : str
        The target's unit, carried by the predictions.

    Raises
    ------
    InputError
        An unknown output, a model returning another number of columns,
        non-finite or non-positive variances (naming the case), a
        ``precision`` the device cannot run, out of memory on a single case.
    """
    if output not in REGRESSION_OUTPUTS:
        raise InputError(f"output must be one of {list(REGRESSION_OUTPUTS)}; got {output!r}.")
    if (output == "quantiles") != bool(quantile_levels):
        raise InputError('quantile_levels go with output="quantiles" (one level per column).')
    if isinstance(mc_samples, bool) or not isinstance(mc_samples, int) or mc_samples < 0:
        raise InputError(f"mc_samples must be an integer >= 0; got {mc_samples!r}.")
    if not isinstance(model, torch.nn.Module):
        raise InputError("model must be a torch.nn.Module.")
    passes = run_passes(
        [model], loader, kind="identity", dev=resolve_device(device), case_ids=case_ids,
        input_key=input_key, progress=progress, mc_samples=mc_samples, seed=seed,
        transforms=[lambda x: x], head=None, mc_chunk=None, embeddings=False,
        precision=precision, batch_limit=batch_limit,
    )  # fmt: skip
    want = _columns(output, quantile_levels)
    det, mc, ids = passes.det[0], passes.mc, passes.case_ids
    if det.shape[1] != want:
        raise InputError(
            f'output="{output}" means {REGRESSION_OUTPUTS[output]}, so {want} column(s); the '
            f"model returns {det.shape[1]}. Declare the head's output (model.output)."
        )
    samples = mc if mc_samples > 0 else None
    if output == "quantiles":
        return RegressionPredictions(
            ids, det[:, len(quantile_levels) // 2], quantiles=det,
            quantile_levels=tuple(float(q) for q in quantile_levels),
            mc_values=None if samples is None else samples[:, :, len(quantile_levels) // 2],
            unit=unit,
        )  # fmt: skip
    values = det[:, 0]
    mc_values = None if samples is None else samples[:, :, 0]
    if output == "mean":
        return RegressionPredictions(ids, values, mc_values=mc_values, unit=unit)
    var = det[:, 1] if output == "mean_variance" else _exp(det[:, 1], ids)
    mc_var = None
    if samples is not None:
        mc_var = samples[:, :, 1] if output == "mean_variance" else _exp(samples[:, :, 1], ids)
    _check_positive(var, ids, output)
    if mc_var is not None:
        _check_positive(mc_var, ids, output)
    return RegressionPredictions(
        ids, values, variances=var, mc_values=mc_values, mc_variances=mc_var, unit=unit
    )


def _exp(log_variance: np.ndarray, ids: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        out = np.exp(log_variance)
    return np.asarray(out, dtype=np.float64)


def _check_positive(var: np.ndarray, ids: np.ndarray, output: str) -> None:
    bad = ~(np.isfinite(var) & (var > 0))
    if bad.any():
        i = int(np.argwhere(bad)[0][-1])
        raise InputError(
            f'output="{output}": the predicted variance of case {str(ids[i])!r} is not a finite '
            f"number > 0 ({int(bad.any(axis=0).sum()) if bad.ndim > 1 else int(bad.sum())} "
            'cases affected). A head giving log-variances is output = "mean_log_variance"; '
            "one giving variances must keep them positive (e.g. softplus)."
        )
