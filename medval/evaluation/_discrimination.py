"""Discrimination and the operating point of a binary model, per evaluated split.

AUROC (DeLong, or Obuchowski's clustered variance when patients are known);
sensitivity, specificity, PPV and NPV at the operating threshold (binomial,
design-effect adjusted when clustered); AUPRC, accuracy, balanced accuracy
and F1 by the stratified, patient-clustered bootstrap.
"""

from __future__ import annotations

import numpy as np

from medval import stats
from medval.evaluation._inputs import Inputs
from medval.evaluation._section import Part, Section

__all__ = ["SECTION"]

# (result key, registry metric, needs the operating threshold)
_BOOTSTRAPPED = (
    ("discrimination.auprc", "auprc", False),
    ("operating_point.accuracy", "accuracy", True),
    ("operating_point.balanced_accuracy", "balanced_accuracy", True),
    ("operating_point.f1", "f1", True),
)


def _run(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    c = inputs.config
    for name in inputs.test_splits:
        prefix = inputs.prefix(name)
        y, s, clusters = inputs.split_arrays(name)
        n_pos = int(y.sum())
        out.values[f"{prefix}cohort.n_cases"] = int(y.size)
        out.values[f"{prefix}cohort.n_positive"] = n_pos
        out.values[f"{prefix}cohort.n_negative"] = int(y.size - n_pos)
        if clusters is not None:
            out.values[f"{prefix}cohort.n_patients"] = int(np.unique(clusters).size)
        out.estimates[f"{prefix}discrimination.auroc"] = stats.auroc_ci(
            y, s, clusters=clusters, confidence_level=c.confidence_level,
            n_resamples=c.n_resamples, random_state=c.seed,
        )  # fmt: skip
        for metric in ("sensitivity", "specificity", "ppv", "npv"):
            out.estimates[f"{prefix}operating_point.{metric}"] = stats.threshold_metric_ci(
                metric, y, s, threshold=inputs.threshold, clusters=clusters,
                confidence_level=c.confidence_level,
            )  # fmt: skip
        for key, metric, thr in _BOOTSTRAPPED:
            out.estimates[f"{prefix}{key}"] = stats.bootstrap_ci(
                metric, y, s, threshold=inputs.threshold if thr else None, clusters=clusters,
                confidence_level=c.confidence_level, n_resamples=c.n_resamples,
                random_state=c.seed, method=c.bootstrap_method,  # type: ignore[arg-type]
            )  # fmt: skip
    return out


SECTION = Section("discrimination", "discrimination and operating point", _run, tasks=("binary",))
