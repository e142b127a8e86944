"""The spec of a regression model: the target's name, unit and range, the head's outputs."""

from __future__ import annotations

import itertools
import math
from typing import Any

from medval._errors import SpecError

__all__ = ["REGRESSION_ONLY", "REGRESSION_OUTPUTS", "check_regression_spec"]

#: ``model.output`` of a regression head (inference.REGRESSION_OUTPUTS; tests check they agree):
#: one value; a mean and its log-variance or variance (a heteroscedastic head); quantiles.
REGRESSION_OUTPUTS: tuple[str, ...] = ("mean", "mean_log_variance", "mean_variance", "quantiles")
#: Keys a classification or segmentation spec may not set.
REGRESSION_ONLY = ("task.unit", "task.range", "model.quantile_levels")


def check_regression_spec(s: dict[str, dict[str, Any]], source: str) -> None:
    """Check a spec with ``task.type = "regression"`` (raises :class:`SpecError`)."""
    task, model = s["task"], s["model"]
    for key in ("class_names", "positive_class", "structures"):
        if task[key] is not None:
            raise SpecError(
                f"{source}: task.{key} is not for regression; a regression spec names its "
                'target: [task] type = "regression", name = "bone age", unit = "months", '
                "range = [0, 240]."
            )
    if not task["unit"]:
        raise SpecError(
            f'{source}: missing required key task.unit (the target\'s unit, e.g. "months", '
            '"years", "%"): every error is reported in it.'
        )
    _check_range(task["range"], source)
    if model["output"] not in REGRESSION_OUTPUTS:
        raise SpecError(
            f"{source}: model.output must be one of {list(REGRESSION_OUTPUTS)} for a regression "
            f"model; got {model['output']!r}. mean_log_variance: the forward returns (batch, 2), "
            "the mean and the log of the predicted variance."
        )
    levels = model["quantile_levels"]
    if (model["output"] == "quantiles") != (levels is not None):
        raise SpecError(
            f'{source}: model.quantile_levels goes with output = "quantiles" (the levels of the '
            "head's columns, e.g. [0.05, 0.5, 0.95]); give both or neither."
        )
    if levels is not None and (
        len(levels) < 2
        or not all(isinstance(q, float) and 0.0 < q < 1.0 for q in levels)
        or any(b <= a for a, b in itertools.pairwise(levels))
    ):
        raise SpecError(
            f"{source}: model.quantile_levels must be at least two increasing numbers in "
            f"(0, 1), e.g. [0.05, 0.5, 0.95]; got {levels!r}."
        )
    if isinstance(model["file"], list):
        raise SpecError(
            f"{source}: model.file lists several files; ensembles of regression models are not "
            "built yet: give one model file."
        )
    if model["tta"] != "none" or model["embeddings"] is not False:
        raise SpecError(
            f"{source}: model.tta and model.embeddings are not supported for regression models "
            'yet; set tta = "none" and embeddings = false.'
        )
    if s.get("baseline"):
        raise SpecError(
            f"{source}: a [baseline] comparison of regression models is not built yet; remove "
            '[baseline] (gate on absolute criteria, e.g. regression.mae with bound = "high").'
        )
    if s["data"]["aggregate"] != "mean" or s["data"]["labels_key"] not in (None, "file", "case_id"):
        raise SpecError(
            f"{source}: regression labels are one value per image (labels keyed by file or "
            "case_id); series, study or patient labels are not built for regression yet."
        )


def _check_range(bounds: Any, source: str) -> None:
    if bounds is None:
        return
    ok = (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
        and all(math.isfinite(b) for b in bounds)
        and bounds[0] < bounds[1]
    )
    if not ok:
        raise SpecError(
            f"{source}: task.range must be [low, high], two finite numbers with low < high "
            f"(the values a label may take, e.g. [0, 240] months); got {bounds!r}."
        )
