"""The regression readers read only the keys a regression evaluation writes.

As ``tests/evaluation/test_keys.py`` does for whole runs: the report's
regression sections and findings, the regression checklist rules and
limitations, and the terminal summary are run on a recording copy of the
hand-made result, and every key they look up must be one of the keys of the
regression key scheme below (a reader that drifted from it would show "n/a"
or skip a finding in silence).
"""

from __future__ import annotations

import re

from medval import ValidationResult
from medval.checklist._limitations_regression import regression_limitations
from medval.checklist._rules_regression import REGRESSION_RULES
from medval.report._regression import regression_context, regression_findings, with_target_text
from medval.run import summary_table
from tests.evaluation._recording import Recorder, recording

from ._regression_result import SPLITS, regression_result

# Per evaluated split ("{p}": no prefix for the primary split, "split.<name>." else).
_PER_SPLIT = {
    *(f"regression.{m}" for m in ("mae", "median_ae", "rmse", "bias", "error_slope")),
    *(f"regression.agreement.{m}" for m in ("bias", "loa_low", "loa_high", "proportional_bias")),
    "regression.interval.coverage", "regression.uncertainty.sigma_rank", "regression.n_cases",
    "regression.agreement", "regression.target", "regression.collapsed", "regression.by_value",
    *(f"regression.interval.{k}" for k in ("mean_width", "median_width", "fallback_groups",
                                           "by_group", "by_value", "by_sigma")),
    *(f"regression.uncertainty.{k}" for k in ("decomposition", "nll", "mean_sigma", "gaussian",
                                              "referral")),
}  # fmt: skip
_GLOBAL = {
    "task.kind", "task.unit", "task.name", "task.range", "evaluation.splits",
    "evaluation.primary_split", "regression.outputs", "subgroup.scope",
    "subgroup.<col>.worst_mae_group", "subgroup.<col>.worst_mae", "subgroup.<col>",
    "subgroup.<col>=<group>.regression.mae", "subgroup.<col>=<group>.regression.bias",
    *(f"regression.interval.{k}" for k in ("score", "target", "quantile", "n_calibration",
                                           "mondrian", "quantiles")),
    "regression.uncertainty.sigma_from", "cohort.table1", "evaluation.skipped",
    # Written for every task kind: by evaluate (the resampling unit) and gate.record.
    "evaluation.clustered_by", "gate.status",
}  # fmt: skip


def _generic(key: str) -> str:
    for split in SPLITS:
        key = key.removeprefix(f"split.{split}.")
    key = re.sub(r"^subgroup\.(manufacturer|sex)=[^.]*\.", "subgroup.<col>=<group>.", key)
    return re.sub(r"^subgroup\.(manufacturer|sex)(\.|$)", r"subgroup.<col>\2", key)


def _read(result: ValidationResult) -> set[str]:
    recorded, seen = recording(result)
    regression_context(recorded)
    regression_findings(recorded)
    with_target_text(recorded.tables["cohort.table1"], recorded)
    for rule in REGRESSION_RULES.values():
        rule(recorded)
    regression_limitations(recorded)
    summary_table(recorded)
    return {_generic(k) for k in seen}


def test_the_regression_readers_read_only_regression_keys() -> None:
    read = set()
    for result in (regression_result(), regression_result(sigma=False, intervals=False)):
        read |= _read(result)
    assert len(read) > 40  # the recorder saw the readers at work
    stray = sorted(read - _PER_SPLIT - _GLOBAL)
    assert not stray, f"keys outside the regression key scheme: {stray}"


def test_the_recorder_catches_a_key_outside_the_scheme() -> None:
    """The check can fail: a classifier key looked up is reported."""
    result = regression_result()
    seen: set[str] = set()
    values = Recorder(result.values, seen)
    values.get("discrimination.auroc")
    assert {_generic(k) for k in seen} - _PER_SPLIT - _GLOBAL == {"discrimination.auroc"}
