"""Binary metrics of the MC-dropout mean, beside the deployed model's headline.

The headline (``discrimination.*``, ``operating_point.*``) comes from the
deterministic forward pass, the model as deployed. The mean of the T
dropout samples is a different predictor; its AUROC, sensitivity and
specificity (at the deployed operating threshold) are recorded under
``uncertainty.mc_mean.*`` for reference only, with the paired difference of
the AUROCs (MC mean minus deterministic), so a reader sees whether averaging
the samples would change the picture.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval import stats
from medval._types import Estimate
from medval.evaluation._inputs import Inputs

__all__ = ["mc_mean_metrics"]


def mc_mean_metrics(inputs: Inputs, mc_probabilities: NDArray[Any]) -> dict[str, Estimate]:
    """``uncertainty.mc_mean.{auroc,auroc_difference,sensitivity,specificity}`` per test split.

    The same estimators as the headline (:func:`medval.stats.auroc_ci`,
    :func:`medval.stats.threshold_metric_ci`) on the positive-class
    probability of ``mc_probabilities.mean(axis=0)`` (shape (T, n, K)); the
    difference is :func:`medval.stats.compare`'s paired interval (DeLong
    without patients, else the paired patient bootstrap). Binary tasks only.
    """
    c = inputs.config
    mean = np.asarray(mc_probabilities.mean(axis=0)[:, inputs.positive_class], dtype=np.float64)
    out: dict[str, Estimate] = {}
    for name in inputs.test_splits:
        key = f"{inputs.prefix(name)}uncertainty.mc_mean."
        y, deployed, clusters = inputs.split_arrays(name)
        s = mean[inputs.mask(name)]
        out[f"{key}auroc"] = stats.auroc_ci(
            y, s, clusters=clusters, confidence_level=c.confidence_level,
            n_resamples=c.n_resamples, random_state=c.seed,
        )  # fmt: skip
        out[f"{key}auroc_difference"] = stats.compare(
            "auroc", y, s, deployed, margin=0.0, clusters=clusters,
            confidence_level=c.confidence_level, n_resamples=c.n_resamples,
            method=c.bootstrap_method, random_state=c.seed,  # type: ignore[arg-type]
        ).difference  # fmt: skip
        for metric in ("sensitivity", "specificity"):
            out[f"{key}{metric}"] = stats.threshold_metric_ci(
                metric, y, s, threshold=inputs.threshold, clusters=clusters,
                confidence_level=c.confidence_level,
            )  # fmt: skip
    return out
