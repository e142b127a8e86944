"""Voxel probabilities of a segmentation model: calibration near the structure, and how
well MC-dropout uncertainty flags the cases the model gets wrong."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from medval import calibration, uncertainty
from medval.evaluation._section import Part, Section
from medval.evaluation._segment_inputs import SegmentationInputs
from medval.segmentation import case_statistic_ci

__all__ = ["CALIBRATION_SECTION", "UNCERTAINTY_SECTION"]

#: The case-level uncertainty that ranks cases: mean predictive entropy in the band
#: around the predicted boundary, where segmentation errors live.
CASE_UNCERTAINTY = "entropy_border"


def _calibration(inputs: SegmentationInputs, earlier: Part) -> Part:
    out = Part()
    cfg = inputs.config
    c = inputs.cases
    for split in inputs.test_splits:
        m = inputs.mask(split)
        pre = inputs.prefix(split)
        for s in c.structures:
            bins = c.bins[s][m]
            key = f"{pre}segmentation.{s}.calibration"
            if bins[:, 0, :].sum() == 0:
                out.values[f"{key}.reason"] = "no voxel in the foreground region"
                continue

            def ece(w: NDArray[np.int64], b: NDArray[np.float64] = bins) -> float:
                return float(calibration.ece_from_bins(np.tensordot(w, b, axes=1)))

            out.estimates[f"{key}.ece"] = case_statistic_ci(
                ece, int(m.sum()), higher_is_better=False, **inputs.interval_options(m)
            )
            out.tables[f"{key}.reliability"] = calibration.reliability_from_bins(bins.sum(axis=0))
            out.values[f"{key}.margin_mm"] = cfg.calibration_margin_mm
    return out


def _uncertainty(inputs: SegmentationInputs, earlier: Part) -> Part:
    out = Part()
    cfg = inputs.config
    c = inputs.cases
    assert c.uncertainty is not None  # the section's need
    for split in inputs.test_splits:
        m = inputs.mask(split)
        pre = inputs.prefix(split)
        for s in c.structures:
            key = f"{pre}segmentation.{s}.uncertainty"
            u = c.uncertainty[s][CASE_UNCERTAINTY][m]
            dice = c.metrics[s]["dice"][m]
            for name, values in c.uncertainty[s].items():
                out.values[f"{key}.mean_{name}"] = float(np.mean(values[m]))
            found = uncertainty.failure_detection(u, dice, bad_below=cfg.bad_dice)
            out.values[f"{key}.failure_detection"] = dict(found)
            out.tables[f"{key}.referral"] = uncertainty.case_referral_curve(u, dice)
        out.values[f"{pre}segmentation.uncertainty.measure"] = CASE_UNCERTAINTY
    return out


CALIBRATION_SECTION = Section(
    "voxel_calibration",
    "calibration of voxel probabilities near the structures",
    _calibration,
    tasks=("segmentation",),
)
UNCERTAINTY_SECTION = Section(
    "voxel_uncertainty",
    "voxel uncertainty and referral of cases",
    _uncertainty,
    needs=("voxel_uncertainty",),
    tasks=("segmentation",),
)
