"""Conformal prediction sets, risk control and coverage diagnostics.

Split, Mondrian (per group) and class-conditional conformal classification
with MAPIE's conformity scores (:class:`ConformalClassifier`), conformal
risk control for a triage threshold, weighted conformal prediction under
covariate shift, and coverage diagnostics with exact binomial intervals.
"""

from medval.conformal._classifier import RAPS_LAMBDA_GRID, ConformalClassifier
from medval.conformal._diagnostics import check_disjoint_patients, clopper_pearson, coverage_report
from medval.conformal._quantile import (
    WeightedThreshold,
    conformal_quantile,
    effective_sample_size,
    weighted_quantile_threshold,
)
from medval.conformal._risk import (
    RiskControlResult,
    conformal_risk_control,
    risk_control_threshold,
)
from medval.conformal._scores import SCORES, ConformityScore, Regularization, get_score
from medval.conformal._weighted import (
    WeightedConformalClassifier,
    likelihood_ratios_from_domain_probs,
)

__all__ = [
    "RAPS_LAMBDA_GRID",
    "SCORES",
    "ConformalClassifier",
    "ConformityScore",
    "Regularization",
    "RiskControlResult",
    "WeightedConformalClassifier",
    "WeightedThreshold",
    "check_disjoint_patients",
    "clopper_pearson",
    "conformal_quantile",
    "conformal_risk_control",
    "coverage_report",
    "effective_sample_size",
    "get_score",
    "likelihood_ratios_from_domain_probs",
    "risk_control_threshold",
    "weighted_quantile_threshold",
]
