"""Specs, acceptance criteria, verdicts and JUnit XML: the release gate.

Import-light (stdlib and medval's result types): the pytest plugin and the
CLI read specs and judge results without torch, pandas or evidently.
"""

from medval.gate._baseline import (
    noninferiority_section,
    read_baseline_scores,
    read_prediction_scores,
    read_predictions_csv,
    write_predictions_csv,
)
from medval.gate._checks import check_settings, check_spec_against_cohort
from medval.gate._config import (
    DEFAULT_CALIBRATION_SPLIT,
    DEFAULT_COLUMNS,
    DEFAULT_INTERSECTIONS,
    SPEC_KEYS,
    EvaluationConfig,
    Setting,
    reference_table,
    settings,
)
from medval.gate._criteria import Criterion, check_criteria
from medval.gate._judge import (
    ANALYSIS_ERRORS,
    Verdict,
    error_verdicts,
    exit_code,
    gate_status,
    judge,
    record,
)
from medval.gate._junit import junit_xml, suite_properties, write_junit
from medval.gate._multiplicity import (
    MULTIPLICITY_KEY,
    MultiplicityStatement,
    adjust_verdicts,
    judge_spec,
    multiplicity_statement,
)
from medval.gate._preprocess import (
    CT_PRESETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_expect,
    preprocess_steps,
    shorthand_steps,
)
from medval.gate._preprocess import STEPS as PREPROCESS_STEPS
from medval.gate._regression import REGRESSION_OUTPUTS
from medval.gate._require import require
from medval.gate._schema import json_schema, json_schema_text
from medval.gate._settings import EvaluationSettings, check_values, evaluated_splits
from medval.gate._spec import (
    CHOICES,
    SCHEMA,
    Spec,
    baseline_criterion,
    check_spec,
    choices,
    read_spec,
    spec_criteria,
)
from medval.gate._trust import TRUST_FLAG, check_trust, code_outside_spec

__all__ = [
    "ANALYSIS_ERRORS",
    "CHOICES",
    "CT_PRESETS",
    "DEFAULT_CALIBRATION_SPLIT",
    "DEFAULT_COLUMNS",
    "DEFAULT_INTERSECTIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MULTIPLICITY_KEY",
    "PREPROCESS_STEPS",
    "REGRESSION_OUTPUTS",
    "SCHEMA",
    "SPEC_KEYS",
    "TRUST_FLAG",
    "Criterion",
    "EvaluationConfig",
    "EvaluationSettings",
    "MultiplicityStatement",
    "Setting",
    "Spec",
    "Verdict",
    "adjust_verdicts",
    "baseline_criterion",
    "check_criteria",
    "check_expect",
    "check_settings",
    "check_spec",
    "check_spec_against_cohort",
    "check_trust",
    "check_values",
    "choices",
    "code_outside_spec",
    "error_verdicts",
    "evaluated_splits",
    "exit_code",
    "gate_status",
    "json_schema",
    "json_schema_text",
    "judge",
    "judge_spec",
    "junit_xml",
    "multiplicity_statement",
    "noninferiority_section",
    "preprocess_steps",
    "read_baseline_scores",
    "read_prediction_scores",
    "read_predictions_csv",
    "read_spec",
    "record",
    "reference_table",
    "require",
    "settings",
    "shorthand_steps",
    "spec_criteria",
    "suite_properties",
    "write_junit",
    "write_predictions_csv",
]
