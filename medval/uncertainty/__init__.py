"""Uncertainty: entropy and variance decompositions, selective prediction (referral).

Evidential (Dirichlet) heads: closed-form decomposition and vacuity.

numpy and scipy only.
"""

from medval.uncertainty._decompose import (
    DECOMPOSITIONS,
    Decomposition,
    decompose,
    decompose_regression,
    predictive_entropy,
)
from medval.uncertainty._dirichlet import dirichlet_decompose, dirichlet_vacuity
from medval.uncertainty._selective import (
    aurc,
    compare_uncertainty_measures,
    recommended_referral_fraction,
    referral_curve,
    uncertainty_error_auroc,
)

__all__ = [
    "DECOMPOSITIONS",
    "Decomposition",
    "aurc",
    "compare_uncertainty_measures",
    "decompose",
    "decompose_regression",
    "dirichlet_decompose",
    "dirichlet_vacuity",
    "predictive_entropy",
    "recommended_referral_fraction",
    "referral_curve",
    "uncertainty_error_auroc",
]
