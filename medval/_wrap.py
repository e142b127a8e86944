"""`medval.wrap`: a model that answers with a prediction set and a refer flag."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from medval._errors import InputError
from medval._types import Predictions

__all__ = ["RuntimeOutput", "WrappedModel", "wrap"]


@dataclasses.dataclass(frozen=True)
class RuntimeOutput:
    """Per-image answers of a :class:`WrappedModel`.

    Attributes
    ----------
    probabilities : (n, K) float array
    sets : (n, K) bool array
        Conformal prediction sets at the wrapper's confidence level.
    refer : (n,) bool array
        True where the set is not a single class: send to a reader.
    class_names : tuple of str
    """

    probabilities: NDArray[np.floating[Any]]
    sets: NDArray[np.bool_]
    refer: NDArray[np.bool_]
    class_names: tuple[str, ...]

    def labels(self) -> list[tuple[str, ...]]:
        """The classes in each set, by name."""
        names = np.asarray(self.class_names)
        return [tuple(names[row].tolist()) for row in self.sets]


class WrappedModel:
    """A torch model plus a calibrated conformal predictor (see :func:`wrap`)."""

    def __init__(
        self,
        model: Any,
        conformal: Any,
        *,
        output: Literal["logits", "probabilities"],
        device: Any,
        class_names: tuple[str, ...],
    ) -> None:
        self.model = model
        self.conformal = conformal
        self.output = output
        self.device = device
        self.class_names = class_names

    def __call__(self, images: Any) -> RuntimeOutput:
        """Answer for one batch of model inputs (a tensor)."""
        from medval.inference import predict

        preds = predict(
            self.model,
            [images],
            output=self.output,
            device=self.device,
            class_names=self.class_names,
        )
        if preds.n_classes != len(self.class_names):
            raise InputError(
                f"the model returned {preds.n_classes} classes but was calibrated with "
                f"{len(self.class_names)}."
            )
        sets = self.conformal.predict_sets(preds.probabilities)
        return RuntimeOutput(
            probabilities=preds.probabilities,
            sets=sets,
            refer=sets.sum(axis=1) != 1,
            class_names=self.class_names,
        )


def wrap(
    model: Any,
    calibration: Predictions,
    *,
    method: str = "aps",
    confidence_level: float = 0.9,
    output: Literal["logits", "probabilities"] = "logits",
    device: Any = None,
    class_names: Sequence[str] | None = None,
    random_state: int | None = 0,
) -> WrappedModel:
    """Wrap a torch model for deployment with conformal prediction sets.

    Marginal sets on the model's raw probabilities, kept in memory. To deploy
    what a validation run measured (its preprocessing, temperature, Mondrian
    thresholds, operating threshold and referral rule), saved as data, use
    :func:`medval.export_deployment` and :func:`medval.load_deployment`.

    Parameters
    ----------
    model : torch.nn.Module
    calibration : Predictions
        The same model's predictions on labelled calibration cases that are
        exchangeable with the deployment cases and disjoint from any test set.
    method : {"aps", "raps", "lac", "topk"}, default "aps"
    confidence_level : float, default 0.9
        Each set holds the true class with at least this probability
        (marginally, under exchangeability; Vovk et al. 2005).
    output : {"logits", "probabilities"}, default "logits"
    device : optional
    class_names : sequence of str, optional
        Default: ``calibration.class_names``.
    random_state : int or None, default 0

    Returns
    -------
    WrappedModel
        Call it on a batch: probabilities, sets and a refer flag per image.
    """
    from medval.conformal import ConformalClassifier
    from medval.inference import resolve_device

    if calibration.labels is None:
        raise InputError("calibration predictions need labels: use Predictions(..., labels=...).")
    names = tuple(class_names) if class_names is not None else calibration.class_names
    cp = ConformalClassifier(method, confidence_level=confidence_level, random_state=random_state)
    cp.calibrate(calibration.probabilities, calibration.labels)
    return WrappedModel(model, cp, output=output, device=resolve_device(device), class_names=names)
