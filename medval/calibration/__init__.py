"""Calibration: ECE variants, Brier, NLL, slope/intercept, reliability data, temperature scaling.

numpy and scipy only.
"""

from medval.calibration._binning import (
    BINNINGS,
    classwise_ece,
    debiased_l2_ce,
    ece,
    mce,
    reliability_data,
)
from medval.calibration._bootstrap import ece_ci
from medval.calibration._scores import brier, calibration_slope_intercept, nll
from medval.calibration._temperature import TemperatureScaler
from medval.calibration._voxels import (
    ece_from_bins,
    foreground_region,
    reliability_from_bins,
    voxel_calibration_bins,
)

__all__ = [
    "BINNINGS",
    "TemperatureScaler",
    "brier",
    "calibration_slope_intercept",
    "classwise_ece",
    "debiased_l2_ce",
    "ece",
    "ece_ci",
    "ece_from_bins",
    "foreground_region",
    "mce",
    "nll",
    "reliability_data",
    "reliability_from_bins",
    "voxel_calibration_bins",
]
