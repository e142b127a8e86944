"""Regression: error metrics, agreement, error by value and by group.

For models that predict a number (bone age, brain age, ejection fraction).
Everywhere the error is ``y_pred - y_true``: a positive bias means the
model over-estimates. Intervals are percentile bootstraps, resampling
patients with all their cases when ``clusters`` is given, or closed forms
(t intervals) where the method says so.

numpy and scipy only.
"""

from medval.regression._agreement import LIMITS_COVERAGE, BlandAltman, bland_altman, plot_points
from medval.regression._conditional import error_by_value, error_slope
from medval.regression._groups import MISSING_GROUP, group_errors
from medval.regression._metrics import BIAS_INTERVALS, REGRESSION_METRICS, error_metrics

__all__ = [
    "BIAS_INTERVALS",
    "LIMITS_COVERAGE",
    "MISSING_GROUP",
    "REGRESSION_METRICS",
    "BlandAltman",
    "bland_altman",
    "error_by_value",
    "error_metrics",
    "error_slope",
    "group_errors",
    "plot_points",
]
