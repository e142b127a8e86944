"""The candidate against a released baseline: paired non-inferiority on the same cases.

The difference (candidate - baseline) of ``reference_metric`` with its
paired, patient-clustered interval (:func:`medval.stats.compare`), judged
against the margin declared up front (:func:`medval.gate.noninferiority_section`).
"""

from __future__ import annotations

from medval.evaluation._inputs import Inputs
from medval.evaluation._section import Part, Section
from medval.gate import noninferiority_section
from medval.stats import get_metric

__all__ = ["SECTION"]


def _run(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    c = inputs.config
    assert inputs.reference is not None and c.reference_margin is not None  # checked in build
    split = c.reference_split or inputs.test_splits[0]
    m = inputs.mask(split)
    kind = get_metric(c.reference_metric).kind
    noninferiority_section(
        out, inputs.y[m], inputs.scores[m], inputs.reference[m],
        margin=c.reference_margin, metric=c.reference_metric,
        clusters=None if inputs.clusters is None else inputs.clusters[m],
        # Label metrics compare at the chosen operating point; score metrics take none.
        threshold=inputs.threshold if kind == "label" else None,
        confidence_level=c.confidence_level, n_resamples=c.n_resamples, random_state=c.seed,
        baseline_name=inputs.reference_name, split=split,
    )  # fmt: skip
    return out


SECTION = Section(
    "reference", "non-inferiority against the baseline", _run, needs=("reference",),
    tasks=("binary",),
)  # fmt: skip
