"""What a section is: a named analysis, what it needs, and what it returns.

A section is a pure function of the frozen :class:`~medval.evaluation.Inputs`
and of what earlier sections returned (``earlier``, read only); it returns a
:class:`Part` holding its estimates, values and tables. A section whose needs
the inputs do not meet is not run: :func:`missing` gives the reason and the
fix, and ``evaluate`` records both in ``result.tables["evaluation.skipped"]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from medval._result import ValidationResult

if TYPE_CHECKING:
    pass

__all__ = ["NEEDS", "TASKS", "Part", "Section", "missing"]


@dataclasses.dataclass
class Part(ValidationResult):
    """What one section returns.

    ``shared`` holds arrays for later sections (never written to the result);
    ``replaces`` names the values keys of earlier sections this one updates
    (any other key written twice is an error).
    """

    shared: dict[str, Any] = dataclasses.field(default_factory=dict)
    replaces: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True)
class Section:
    """One analysis of :func:`medval.evaluate`.

    Attributes
    ----------
    name : str
        Short name (``"conformal"``), used in ``evaluation.sections`` and
        ``evaluation.skipped``.
    title : str
        What it computes, for the report and the progress bar.
    run : callable
        ``run(inputs, earlier) -> Part``; pure: it reads ``inputs`` and what
        earlier sections returned (``earlier``), and writes only its Part.
    needs : tuple of str
        Keys of :data:`NEEDS` the inputs must meet, else the section is
        skipped with the recorded reason and fix.
    tasks : tuple of str
        Task kinds it applies to (:data:`TASKS`); for other kinds it is not
        applicable and not listed as skipped.
    switch : tuple of str
        :class:`~medval.gate.EvaluationConfig` fields (booleans) that must all
        be true for it to run.
    """

    name: str
    title: str
    run: Callable[[Any, Part], Part]  # Inputs, or SegmentationInputs for segmentation
    needs: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ("binary", "multiclass")
    switch: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [n for n in self.needs if n not in NEEDS]
        if unknown or not set(self.tasks) <= set(TASKS):
            raise ValueError(
                f"section {self.name!r}: unknown needs {unknown} or tasks {self.tasks}"
            )


TASKS = ("binary", "multiclass", "segmentation", "regression")

# need -> (is it met?, reason when not, fix). The fixes name the spec key and
# the evaluate keyword, since both paths run the same sections.
NEEDS: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "cohort": (
        lambda i: i.cohort is not None,
        "no cohort was given",
        "pass the Cohort (a DataFrame indexed by case_id, or io.load_cohort's CohortData) "
        "to evaluate",
    ),
    "calibration": (
        lambda i: i.calibration_split is not None,
        "no calibration split among the predicted cases",
        "name one with [analysis] calibration_split (evaluate(calibration_split=...)), "
        "or give the cohort a split named 'calibration'",
    ),
    "mc_samples": (
        lambda i: getattr(i.predictions, "mc_probabilities", None) is not None,
        "the predictions hold no MC-dropout samples",
        "set [model] mc_samples (medval.predict(..., mc_samples=30)) on a model with dropout",
    ),
    "dicom_files": (
        lambda i: bool(i.paths),
        "no DICOM files were given (a metadata table or a bare DataFrame)",
        "read the cohort from DICOM (io.load_cohort) and pass its CohortData to evaluate",
    ),
    "exclusions": (
        lambda i: i.data is not None,
        "the cohort came without its file scan (no exclusion counts)",
        "pass io.load_cohort's or io.read_cohort_table's CohortData instead of the bare DataFrame",
    ),
    "input_statistics": (
        lambda i: i.input_statistics is not None,
        "no input statistics were given (precomputed predictions, or none passed)",
        "run the model from the spec (model.file), or pass "
        "evaluate(input_statistics=io.input_statistics(dataset, cohort))",
    ),
    "voxel_uncertainty": (
        lambda i: getattr(i, "cases", None) is not None and i.cases.uncertainty is not None,
        "the segmentation was run without MC-dropout samples (no voxel uncertainty)",
        "set [model] mc_samples (e.g. 20) on a model with dropout",
    ),
    "sigma": (
        lambda i: getattr(i, "sigma", None) is not None,
        "the regression model gives no sigma (neither a variance head nor MC-dropout samples)",
        'declare a mean and log-variance head ([model] output = "mean_log_variance") or set '
        "[model] mc_samples on a model with dropout",
    ),
    "reference": (
        lambda i: i.reference is not None,
        "no baseline predictions were given",
        "add a [baseline] section with its predictions or model (evaluate(reference=...))",
    ),
}


def missing(section: Section, inputs: Any) -> tuple[str, str] | None:
    """(reason, fix) when ``section`` cannot run on ``inputs``; None when it can."""
    from medval.gate import SPEC_KEYS

    for field in section.switch:
        if not getattr(inputs.config, field):
            key = SPEC_KEYS[field]
            return f"turned off ({key} = false)", f"set {key} = true (evaluate({field}=True))"
    for need in section.needs:
        met, reason, fix = NEEDS[need]
        if not met(inputs):
            return reason, fix
    return None
