"""The sections :func:`medval.evaluate` runs, in order.

Adding an analysis is one new module defining a :class:`Section` and one line
here (see ``docs/architecture.md``, "Adding a section"). Order matters only
where a section reads what an earlier one returned (``earlier``): the
uncertainty section reads the conformal set sizes, the shift section the
calibration temperature, the pixel-duplicate check the leakage verdict.
"""

from __future__ import annotations

from medval.evaluation import (
    _calibration,
    _cohort,
    _conformal,
    _curves,
    _discrimination,
    _input,
    _intervals,
    _lesion,
    _mask_conformal,
    _multiclass,
    _reference,
    _regression,
    _regression_uncertainty,
    _sanity,
    _segment,
    _shift,
    _uncertainty,
    _voxel,
)
from medval.evaluation._section import Section

__all__ = ["SECTIONS"]

SECTIONS: tuple[Section, ...] = (
    _input.SECTION,
    _discrimination.SECTION,
    _multiclass.SECTION,
    _curves.CURVES,
    _conformal.SECTION,
    _calibration.SECTION,
    _uncertainty.SECTION,
    _shift.SECTION,
    _cohort.COHORT,
    _curves.FAILURES,
    _cohort.FLOW,
    _cohort.DUPLICATES,
    _reference.SECTION,
    _sanity.SECTION,
    # Segmentation (task kind "segmentation"): the per-case table's aggregates.
    _segment.SECTION,
    _lesion.SECTION,
    _mask_conformal.SECTION,
    _voxel.CALIBRATION_SECTION,
    _voxel.UNCERTAINTY_SECTION,
    # Regression (task kind "regression"): errors, agreement, intervals, sigma.
    _regression.SECTION,
    _intervals.SECTION,
    _regression_uncertainty.SECTION,
)
