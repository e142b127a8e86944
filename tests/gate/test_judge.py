"""Verdicts: every status, group criteria, fail-closed errors, exit codes."""

from __future__ import annotations

from typing import Any

import pytest

from medval import Estimate, ExitCode
from medval._result import ValidationResult
from medval.gate import (
    ANALYSIS_ERRORS,
    check_criteria,
    error_verdicts,
    exit_code,
    gate_status,
    judge,
    record,
    require,
)


def _est(value: float | None, low: float | None, high: float | None, n: int) -> Estimate:
    reason = None if low is not None else "only one class present"
    return Estimate(value, low, high, confidence_level=0.95, method="test", n=n, reason=reason)


@pytest.fixture
def result() -> ValidationResult:
    r = ValidationResult()
    r.estimates["discrimination.auroc"] = _est(0.91, 0.86, 0.95, 300)
    r.estimates["split.external.discrimination.auroc"] = _est(0.70, 0.62, 0.78, 181)
    r.estimates["calibration.ece"] = _est(0.05, 0.03, 0.08, 300)
    r.estimates["subgroup.manufacturer=GE.auroc"] = _est(0.90, 0.85, 0.94, 412)
    r.estimates["subgroup.manufacturer=Philips.auroc"] = _est(0.88, 0.842, 0.92, 412)
    r.estimates["subgroup.manufacturer=Tiny.auroc"] = _est(0.99, 0.70, 1.0, 12)
    r.estimates["subgroup.manufacturer=Flat.auroc"] = _est(None, None, None, 40)
    r.values["calibration.brier"] = 0.12
    r.values["triage.feasible"] = True
    r.values["shift.leakage.shared_patients"] = 0
    r.values["uncertainty.referral"] = {"fraction": 0.4, "reason": None}
    r.tables["conformal.by_group"] = [
        {"column": "manufacturer", "group": "A", "n": 67, "coverage": 0.81, "low": 0.69,
         "high": 0.89},
        {"column": "manufacturer", "group": "B", "n": 59, "coverage": 0.85, "low": 0.73,
         "high": 0.93},
        {"column": "sex", "group": "F", "n": 5, "coverage": 0.6, "low": 0.2, "high": 0.9},
    ]  # fmt: skip
    return r


def _one(result: ValidationResult, **raw: Any) -> Any:
    raw.setdefault("name", "c")
    (v,) = judge(result, check_criteria([raw], source="t"))
    return v


def test_ci_lower_bound_against_goal(result: ValidationResult) -> None:
    v = _one(result, key="discrimination.auroc", op=">=", threshold=0.85)
    assert v.status == "pass" and v.bound == "low" and v.observed == 0.86
    assert v.reason == "auroc CI low 0.860 >= 0.85 (n=300)"
    v = _one(result, key="discrimination.auroc", op=">=", threshold=0.87)
    assert v.status == "fail" and v.reason == "auroc CI low 0.860 < 0.87 (n=300)"
    v = _one(result, key="discrimination.auroc", op=">=", threshold=0.87, bound="value")
    assert v.status == "pass" and v.observed == 0.91
    # The verdict carries the estimate, its CI and the threshold.
    assert (v.value, v.low, v.high, v.threshold, v.n) == (0.91, 0.86, 0.95, 0.87, 300)


def test_auto_bound_is_the_conservative_one(result: ValidationResult) -> None:
    v = _one(result, key="calibration.ece", op="<=", threshold=0.07)
    assert v.status == "fail" and v.bound == "high" and v.observed == 0.08


def test_warn_severity_and_split_label(result: ValidationResult) -> None:
    v = _one(
        result, key="split.external.discrimination.auroc", op=">=", threshold=0.8, severity="warn"
    )
    assert v.status == "warn" and v.passed
    assert v.reason.startswith("auroc (external) CI low 0.620 < 0.8")


def test_group_pattern_names_the_worst_group(result: ValidationResult) -> None:
    v = _one(
        result,
        key="subgroup.manufacturer={group}.auroc",
        op=">=",
        threshold=0.85,
        min_n=30,
        small_groups="skip",
    )
    # Philips fails by its CI; Flat is not estimable (fails too); Tiny is skipped.
    assert v.status == "fail"
    assert v.reason.startswith("auroc CI low 0.842 < 0.85 on manufacturer=Philips (n=412)")
    by_group = {g["group"]: g["status"] for g in v.groups}
    assert by_group == {
        "manufacturer=Flat": "fail",
        "manufacturer=GE": "pass",
        "manufacturer=Philips": "fail",
        "manufacturer=Tiny": "skip",
    }


@pytest.mark.parametrize(("policy", "status"), [("fail", "fail"), ("warn", "warn")])
def test_small_groups_policy(result: ValidationResult, policy: str, status: str) -> None:
    v = _one(
        result,
        key="conformal.by_group",
        column="sex",
        field="coverage",
        op=">=",
        threshold=0.5,
        min_n=30,
        small_groups=policy,
    )
    assert v.status == status and "too few cases on sex=F (n=5) < min_n 30" in v.reason


def test_every_group_small_and_skipped_is_a_warning(result: ValidationResult) -> None:
    v = _one(
        result,
        key="conformal.by_group",
        column="sex",
        field="coverage",
        op=">=",
        threshold=0.5,
        min_n=30,
        small_groups="skip",
    )
    assert v.status == "warn" and "nothing was checked" in v.reason


def test_table_rows_with_ci(result: ValidationResult) -> None:
    v = _one(
        result,
        key="conformal.by_group",
        column="manufacturer",
        field="coverage",
        op=">=",
        threshold=0.9,
        bound="high",
    )
    assert v.status == "fail" and v.group == "manufacturer=A" and v.observed == 0.89
    v = _one(
        result, key="conformal.by_group", column="manufacturer", field="coverage", op=">=",
        threshold=0.8, bound="value",
    )  # fmt: skip
    assert v.status == "pass" and "worst of 2 groups" in v.reason


def test_plain_values_booleans_and_mappings(result: ValidationResult) -> None:
    assert _one(result, key="calibration.brier", op="<=", threshold=0.2).status == "pass"
    assert _one(result, key="triage.feasible", op="==", threshold=True).status == "pass"
    assert _one(result, key="shift.leakage.shared_patients", op="==", threshold=0).status == "pass"
    v = _one(result, key="uncertainty.referral", field="fraction", op="<=", threshold=0.3)
    assert v.status == "fail" and v.observed == 0.4


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"key": "discrimination.aurc", "op": ">=", "threshold": 0.8}, r"not in the result"),
        ({"key": "subgroup.site={group}.auroc", "op": ">=", "threshold": 0.8}, "no result key"),
        (
            {"key": "calibration.brier", "op": "<=", "threshold": 0.2, "bound": "high"},
            "no confidence interval; use bound = 'value'",
        ),
        ({"key": "conformal.by_group", "op": ">=", "threshold": 0.8}, "needs criteria.field"),
        (
            {"key": "conformal.by_group", "column": "site", "field": "coverage", "op": ">=",
             "threshold": 0.8},
            r"no rows with column='site'",
        ),
        ({"key": "uncertainty.referral", "op": "<=", "threshold": 0.3}, "name its entry"),
        ({"key": "triage.feasible", "op": ">=", "threshold": 1.0}, "not a number"),
    ],
)  # fmt: skip
def test_unjudgeable_criteria_are_errors(
    result: ValidationResult, raw: dict[str, Any], match: str
) -> None:
    v = _one(result, **raw)
    assert v.status == "error" and not v.passed
    assert match in v.reason


def test_recorded_analysis_error_fails_closed(result: ValidationResult) -> None:
    result.values[ANALYSIS_ERRORS] = {"noninferiority.auroc": "RuntimeError: boom"}
    result.estimates["noninferiority.auroc.difference"] = _est(0.01, 0.0, 0.02, 300)
    v = _one(result, key="noninferiority.auroc.difference", op=">", threshold=-0.05)
    assert v.status == "error" and "boom" in v.reason


def test_exit_codes_and_status(result: ValidationResult) -> None:
    crit = check_criteria(
        [
            {"name": "ok", "key": "discrimination.auroc", "op": ">=", "threshold": 0.8},
            {"name": "w", "key": "discrimination.auroc", "op": ">=", "threshold": 0.9,
             "severity": "warn"},
            {"name": "f", "key": "discrimination.auroc", "op": ">=", "threshold": 0.9},
            {"name": "e", "key": "nope", "op": ">=", "threshold": 0.9},
        ],
        source="t",
    )  # fmt: skip
    verdicts = judge(result, crit)
    assert [v.status for v in verdicts] == ["pass", "warn", "fail", "error"]
    assert exit_code(verdicts) == ExitCode.INTERNAL_ERROR
    assert exit_code(verdicts[:3]) == ExitCode.GATE_FAILED
    assert exit_code(verdicts[:2]) == ExitCode.OK
    assert gate_status(verdicts[:2]) == "passed with warnings"
    assert gate_status([]) == "not gated"
    record(result, verdicts)
    assert result.values["gate.status"] == "error"
    assert result.values["gate.counts"] == {"pass": 1, "warn": 1, "fail": 1, "error": 1}
    assert [r["name"] for r in result.tables["gate.verdicts"]] == ["ok", "w", "f", "e"]
    # (Estimate.to_dict drops value=None, which from_dict cannot read back.)
    del result.estimates["subgroup.manufacturer=Flat.auroc"]
    again = ValidationResult.from_dict(__import__("json").loads(result.to_json()))
    assert again.tables["gate.verdicts"] == result.tables["gate.verdicts"]


def test_require_raises_the_readable_reason(result: ValidationResult) -> None:
    assert require(result, "discrimination.auroc", ">=", 0.85).status == "pass"
    with pytest.raises(AssertionError, match=r"auroc CI low 0\.842 < 0\.85 on manufacturer="):
        require(result, "subgroup.manufacturer={group}.auroc", ">=", 0.85, min_n=30)
    with pytest.raises(AssertionError, match="cannot judge"):
        require(result, "nope", ">=", 0.85)


def test_drift_share_ceiling_and_no_leakage(result: ValidationResult) -> None:
    result.values["shift.drift_share"] = 0.4
    result.values["leakage.leak"] = False
    v = _one(result, key="shift.drift_share", op="<=", threshold=0.25)
    assert v.status == "fail" and v.bound == "value" and v.reason == "drift_share 0.400 > 0.25"
    assert _one(result, key="shift.drift_share", op="<=", threshold=0.5).status == "pass"
    assert _one(result, key="leakage.leak", op="==", threshold=False).status == "pass"
    result.values["leakage.leak"] = True
    v = _one(result, key="leakage.leak", op="==", threshold=False)
    assert v.status == "fail" and v.reason == "leak true != false"


def test_error_verdicts_for_a_run_that_stopped(result: ValidationResult) -> None:
    crit = check_criteria(
        [
            {"name": "a", "key": "discrimination.auroc", "op": ">=", "threshold": 0.8},
            {"name": "b", "key": "calibration.ece", "op": "<=", "threshold": 0.1,
             "severity": "warn"},
        ],
        source="t",
    )  # fmt: skip
    verdicts = error_verdicts(crit, "validation did not complete: DataError: no folder")
    assert [(v.name, v.status, v.severity) for v in verdicts] == [
        ("a", "error", "fail"),
        ("b", "error", "warn"),
    ]
    assert all(v.reason.endswith("no folder") for v in verdicts)
    assert exit_code(verdicts) == ExitCode.INTERNAL_ERROR


def test_a_group_name_with_terminal_escapes_gives_a_one_line_reason(
    result: ValidationResult,
) -> None:
    # A crafted Manufacturer erased its verdict line on the console (issue 15, item 5).
    result.estimates["subgroup.manufacturer=Evil\x1b[2K\x1b[1A\t.auroc"] = _est(0.6, 0.5, 0.7, 99)
    v = _one(result, key="subgroup.manufacturer={group}.auroc", op=">=", threshold=0.85)
    assert v.status == "fail" and v.reason.isprintable()
    evil = next(g for g in v.groups if "Evil" in g["group"])
    assert evil["group"] == "manufacturer=Evil[2K[1A " and evil["status"] == "fail"
    assert all(g["group"].isprintable() and g["reason"].isprintable() for g in v.groups)
