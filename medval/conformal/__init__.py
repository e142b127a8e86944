"""Conformal prediction sets, risk control and coverage diagnostics.

Split, Mondrian (per group) and class-conditional conformal classification
with MAPIE's conformity scores (:class:`ConformalClassifier`), conformal
risk control for a triage threshold, weighted conformal prediction under
covariate shift (likelihood ratios from a cross-fitted domain classifier),
coverage diagnostics with exact binomial intervals, and MAPIE's
``SplitConformalClassifier`` on a prefit adapter as the cross-check.
Regression: split and Mondrian intervals with the absolute, normalized and
CQR scores (:class:`ConformalRegressor`), their coverage diagnostics, and
MAPIE's ``SplitConformalRegressor`` / ``ConformalizedQuantileRegressor`` as
the cross-check.
"""

from medval.conformal._checks import case_uniforms, min_calibration_size
from medval.conformal._classifier import ConformalClassifier
from medval.conformal._diagnostics import (
    check_disjoint_patients,
    clopper_pearson,
    coverage_difference,
    coverage_report,
)
from medval.conformal._intervals import coverage_by_bins, interval_coverage
from medval.conformal._mapie import (
    MAPIE_MIN_VERSION,
    mapie_prediction_sets,
    mapie_split_conformal,
    prefit_adapter,
)
from medval.conformal._mapie_regression import mapie_cqr, mapie_split_regression, prefit_column
from medval.conformal._margins import MorphologicalMargin, added_volume, dilation_needed
from medval.conformal._masks import (
    GRIDS,
    N_BINS,
    MaskRiskControl,
    probability_histograms,
    threshold_grid,
)
from medval.conformal._quantile import (
    WeightedThreshold,
    conformal_quantile,
    effective_sample_size,
    weighted_quantile_threshold,
)
from medval.conformal._raps import RAPS_LAMBDA_GRID, tune_raps
from medval.conformal._regression import REGRESSION_SCORES, ConformalRegressor
from medval.conformal._risk import (
    RiskControlResult,
    conformal_risk_control,
    risk_control_threshold,
)
from medval.conformal._scores import SCORES, ConformityScore, Regularization, get_score
from medval.conformal._weighted import (
    WeightedConformalClassifier,
    domain_likelihood_ratios,
    likelihood_ratios_from_domain_probs,
)

__all__ = [
    "GRIDS",
    "MAPIE_MIN_VERSION",
    "N_BINS",
    "RAPS_LAMBDA_GRID",
    "REGRESSION_SCORES",
    "SCORES",
    "ConformalClassifier",
    "ConformalRegressor",
    "ConformityScore",
    "MaskRiskControl",
    "MorphologicalMargin",
    "Regularization",
    "RiskControlResult",
    "WeightedConformalClassifier",
    "WeightedThreshold",
    "added_volume",
    "case_uniforms",
    "check_disjoint_patients",
    "clopper_pearson",
    "conformal_quantile",
    "conformal_risk_control",
    "coverage_by_bins",
    "coverage_difference",
    "coverage_report",
    "dilation_needed",
    "domain_likelihood_ratios",
    "effective_sample_size",
    "get_score",
    "interval_coverage",
    "likelihood_ratios_from_domain_probs",
    "mapie_cqr",
    "mapie_prediction_sets",
    "mapie_split_conformal",
    "mapie_split_regression",
    "min_calibration_size",
    "prefit_adapter",
    "prefit_column",
    "probability_histograms",
    "risk_control_threshold",
    "threshold_grid",
    "tune_raps",
    "weighted_quantile_threshold",
]
