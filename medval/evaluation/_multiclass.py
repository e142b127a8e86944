"""Discrimination of a K > 2 class model for :func:`medval.evaluate`.

Per split: macro one-vs-rest AUROC (stratified bootstrap, patient-clustered
when patients are known), each class's one-vs-rest AUROC (DeLong or the
clustered bootstrap), accuracy of the arg-max decision (binomial, design-
effect adjusted), and each class's sensitivity (recall) and PPV at that
decision. The keys follow the binary ones, with ``.<class name>`` appended
for per-class numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval import stats
from medval._result import ValidationResult
from medval.evaluation._inputs import Inputs
from medval.evaluation._section import Part, Section

__all__ = ["SECTION", "multiclass_block"]


def multiclass_block(
    result: ValidationResult,
    prefix: str,
    labels: NDArray[np.int64],
    probabilities: NDArray[np.floating[Any]],
    clusters: NDArray[Any] | None,
    *,
    class_names: Sequence[str],
    confidence_level: float,
    n_resamples: int,
    seed: int,
) -> None:
    """Write one split's multiclass keys into ``result``."""
    p = np.asarray(probabilities, dtype=np.float64)
    k = p.shape[1]
    counts = np.bincount(labels, minlength=k)
    result.values[f"{prefix}cohort.n_cases"] = int(labels.size)
    result.values[f"{prefix}cohort.class_counts"] = {
        str(name): int(c) for name, c in zip(class_names, counts, strict=True)
    }
    if clusters is not None:
        result.values[f"{prefix}cohort.n_patients"] = int(np.unique(clusters).size)
    if (counts > 0).all():
        result.estimates[f"{prefix}discrimination.auroc"] = stats.bootstrap_ci(
            "macro_auroc",
            labels,
            p,
            clusters=clusters,
            confidence_level=confidence_level,
            n_resamples=n_resamples,
            random_state=seed,
        )
    decision = p.argmax(axis=1)
    result.estimates[f"{prefix}operating_point.accuracy"] = stats.case_proportion_ci(
        decision == labels, clusters=clusters, confidence_level=confidence_level
    )
    for j, name in enumerate(class_names):
        is_j = (labels == j).astype(np.int64)
        if 0 < counts[j] < labels.size:
            result.estimates[f"{prefix}discrimination.auroc.{name}"] = stats.auroc_ci(
                is_j,
                p[:, j],
                clusters=clusters,
                confidence_level=confidence_level,
                n_resamples=n_resamples,
                random_state=seed,
            )
        called = (decision == j).astype(np.float64)
        for metric in ("sensitivity", "ppv"):
            result.estimates[f"{prefix}operating_point.{metric}.{name}"] = (
                stats.threshold_metric_ci(
                    metric,
                    is_j,
                    called,
                    threshold=0.5,
                    clusters=clusters,
                    confidence_level=confidence_level,
                )
            )
    result.values[f"{prefix}operating_point.decision"] = "most probable class"


def _run(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    c = inputs.config
    p = inputs.predictions
    for name in inputs.test_splits:
        m = inputs.mask(name)
        multiclass_block(
            out, inputs.prefix(name), inputs.labels[m], p.probabilities[m],
            None if inputs.clusters is None else inputs.clusters[m],
            class_names=p.class_names, confidence_level=c.confidence_level,
            n_resamples=c.n_resamples, seed=c.seed,
        )  # fmt: skip
    return out


SECTION = Section("multiclass", "discrimination (multiclass)", _run, tasks=("multiclass",))
