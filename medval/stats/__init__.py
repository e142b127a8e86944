"""medval.stats: metrics with their uncertainty.

The statistics engine every analysis and every gate rests on: a metric
registry, a vectorised stratified / patient-clustered bootstrap
(percentile, basic, BCa), DeLong's AUROC interval and paired test,
binomial intervals, operating points, paired non-inferiority comparisons
and multiplicity adjustments, and sample-size planning (interval
half-widths for the AUROC, sensitivity and specificity, paired AUROC
non-inferiority power, clustered designs, subgroup floors). numpy and
scipy only.

At ten million cases the count-based engine takes over: ``ScoreCells``
counts cases per (subgroup, score slot, label) and per patient, built from
arrays or streamed from Parquet (pyarrow, imported when used), tables of
shards add, and ``cell_statistics`` / ``cell_bootstrap`` compute the AUROC,
threshold metrics and calibration with case or patient-clustered bootstrap
intervals from the counts alone.

The input checks (``check_*``: labels, class labels, probability matrices,
scores, thresholds, patient keys, the confidence level; and
``normalise_random_state`` for seeds) are public so that the other analysis
rooms validate arrays with the same messages. ``resample_counts`` is the
one resampler (stratified and patient-clustered on request) for statistics
computed outside ``bootstrap_ci``.

``Thresholdout`` is the reusable holdout for repeated gating (Dwork et al.
2015), with its proven accuracy ``thresholdout_bound`` and a simulation of
adaptive tuning against a plain and a reusable holdout
(``simulate_adaptive_gating``).
"""

from __future__ import annotations

from medval.stats._auroc_size import (
    auroc_sample_size,
    auroc_variance,
    noninferiority_power,
    noninferiority_sample_size,
)
from medval.stats._bootstrap import bootstrap_ci
from medval.stats._cell_bins import ScoreBins
from medval.stats._cell_bootstrap import CellResult, cell_bootstrap
from medval.stats._cell_stats import CELL_STATISTICS, auroc_binning_bound, cell_statistics
from medval.stats._cells import PatientCells, ScoreCells
from medval.stats._compare import Comparison, Verdict, compare
from medval.stats._delong import (
    PairedTest,
    auroc_ci,
    delong_ci,
    delong_covariance,
    delong_test,
)
from medval.stats._holdout_sim import AdaptiveGatingResult, simulate_adaptive_gating
from medval.stats._metrics import (
    METRICS,
    Metric,
    accuracy,
    auprc,
    auroc,
    balanced_accuracy,
    brier_score,
    confusion_counts,
    f1,
    get_metric,
    log_loss,
    macro_auroc,
    npv,
    ovr_auroc,
    ppv,
    sensitivity,
    specificity,
)
from medval.stats._multiplicity import benjamini_hochberg, holm
from medval.stats._obuchowski import clustered_auroc_variance
from medval.stats._operating import (
    choose_threshold,
    sensitivity_at_specificity,
    specificity_at_sensitivity,
)
from medval.stats._proportion import (
    case_proportion_ci,
    clustered_proportion_ci,
    clustered_proportion_variance,
    proportion_ci,
    threshold_metric_ci,
)
from medval.stats._resample import resample_counts
from medval.stats._sample_size import (
    SampleSize,
    SubgroupPlan,
    design_effect,
    sensitivity_sample_size,
    specificity_sample_size,
    subgroup_sample_size,
    wilson_half_width,
)
from medval.stats._thresholdout import Thresholdout, ThresholdoutAnswer
from medval.stats._thresholdout_bound import thresholdout_bound, thresholdout_parameters
from medval.stats._validate import (
    check_binary_labels,
    check_class_labels,
    check_clusters,
    check_confidence_level,
    check_mask,
    check_probabilities,
    check_scores,
    check_spacing,
    check_threshold,
    normalise_random_state,
    too_few_for_interval,
)

__all__ = [
    "CELL_STATISTICS",
    "METRICS",
    "AdaptiveGatingResult",
    "CellResult",
    "Comparison",
    "Metric",
    "PairedTest",
    "PatientCells",
    "SampleSize",
    "ScoreBins",
    "ScoreCells",
    "SubgroupPlan",
    "Thresholdout",
    "ThresholdoutAnswer",
    "Verdict",
    "accuracy",
    "auprc",
    "auroc",
    "auroc_binning_bound",
    "auroc_ci",
    "auroc_sample_size",
    "auroc_variance",
    "balanced_accuracy",
    "benjamini_hochberg",
    "bootstrap_ci",
    "brier_score",
    "case_proportion_ci",
    "cell_bootstrap",
    "cell_statistics",
    "check_binary_labels",
    "check_class_labels",
    "check_clusters",
    "check_confidence_level",
    "check_mask",
    "check_probabilities",
    "check_scores",
    "check_spacing",
    "check_threshold",
    "choose_threshold",
    "clustered_auroc_variance",
    "clustered_proportion_ci",
    "clustered_proportion_variance",
    "compare",
    "confusion_counts",
    "delong_ci",
    "delong_covariance",
    "delong_test",
    "design_effect",
    "f1",
    "get_metric",
    "holm",
    "log_loss",
    "macro_auroc",
    "noninferiority_power",
    "noninferiority_sample_size",
    "normalise_random_state",
    "npv",
    "ovr_auroc",
    "ppv",
    "proportion_ci",
    "resample_counts",
    "sensitivity",
    "sensitivity_at_specificity",
    "sensitivity_sample_size",
    "simulate_adaptive_gating",
    "specificity",
    "specificity_at_sensitivity",
    "specificity_sample_size",
    "subgroup_sample_size",
    "threshold_metric_ci",
    "thresholdout_bound",
    "thresholdout_parameters",
    "too_few_for_interval",
    "wilson_half_width",
]
