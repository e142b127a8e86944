"""Uncertainty: entropy and variance decompositions, selective prediction (referral).

Evidential (Dirichlet) heads: closed-form decomposition and vacuity. Monte Carlo
error of the sampled measures (jackknife) and the number of samples that suffices.
Regression heads: the variance decomposition, Gaussian interval coverage and NLL,
sigma against the error, referral by sigma.

numpy and scipy only.
"""

from medval.uncertainty._decompose import (
    DECOMPOSITIONS,
    Decomposition,
    decompose,
    decompose_regression,
    decompose_regression_variances,
    predictive_entropy,
)
from medval.uncertainty._dirichlet import dirichlet_decompose, dirichlet_vacuity
from medval.uncertainty._mc_error import (
    MC_TOLERANCE,
    MCStandardErrors,
    mc_error,
    mc_standard_errors,
)
from medval.uncertainty._regression import (
    gaussian_calibration,
    gaussian_nll,
    regression_referral_curve,
    sigma_error_rank,
)
from medval.uncertainty._selective import (
    aurc,
    compare_uncertainty_measures,
    recommended_referral_fraction,
    referral_curve,
    uncertainty_error_auroc,
)
from medval.uncertainty._voxels import case_referral_curve, case_uncertainty, failure_detection

__all__ = [
    "DECOMPOSITIONS",
    "MC_TOLERANCE",
    "Decomposition",
    "MCStandardErrors",
    "aurc",
    "case_referral_curve",
    "case_uncertainty",
    "compare_uncertainty_measures",
    "decompose",
    "decompose_regression",
    "decompose_regression_variances",
    "dirichlet_decompose",
    "dirichlet_vacuity",
    "failure_detection",
    "gaussian_calibration",
    "gaussian_nll",
    "mc_error",
    "mc_standard_errors",
    "predictive_entropy",
    "recommended_referral_fraction",
    "referral_curve",
    "regression_referral_curve",
    "sigma_error_rank",
    "uncertainty_error_auroc",
]
