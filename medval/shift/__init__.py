"""medval.shift: subgroups, drift, two-sample shift tests, leakage, label-free estimates.

Light to import: pandas, pydicom and evidently load inside the functions
that need them.
"""

from __future__ import annotations

from medval.shift._drift import DRIFT_TESTS, MODEL_OUTPUT_COLUMNS, drift_report
from medval.shift._labelfree import ASSUMPTIONS, estimate_performance
from medval.shift._leakage import LEAKAGE_KEYS, leakage_report, pixel_duplicates
from medval.shift._subgroups import SUBGROUP_METRICS, intersect, subgroup_keys, subgroup_table
from medval.shift._subgroups_multiclass import subgroup_table_multiclass
from medval.shift._twosample import KERNELS, bbsd_ks, mmd_test

__all__ = [
    "ASSUMPTIONS",
    "DRIFT_TESTS",
    "KERNELS",
    "LEAKAGE_KEYS",
    "MODEL_OUTPUT_COLUMNS",
    "SUBGROUP_METRICS",
    "bbsd_ks",
    "drift_report",
    "estimate_performance",
    "intersect",
    "leakage_report",
    "mmd_test",
    "pixel_duplicates",
    "subgroup_keys",
    "subgroup_table",
    "subgroup_table_multiclass",
]
