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

__all__ = [
    "BINNINGS",
    "TemperatureScaler",
    "brier",
    "calibration_slope_intercept",
    "classwise_ece",
    "debiased_l2_ce",
    "ece",
    "ece_ci",
    "mce",
    "nll",
    "reliability_data",
]
