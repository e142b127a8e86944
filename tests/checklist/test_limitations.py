"""Limitations suggested from the flags of a result."""

from __future__ import annotations

from medval import ValidationResult
from medval._types import Estimate
from medval.checklist import fill, suggest_limitations


def _flags(result: ValidationResult) -> list[str]:
    return [x["flag"] for x in suggest_limitations(result)]


def _ci(value: float, low: float, high: float) -> Estimate:
    return Estimate(value, low, high, method="test", n=100)


def test_synthetic_run_flags_the_weak_external_scanner(synthetic_run) -> None:
    result, _ = synthetic_run
    found = suggest_limitations(result)
    flags = [x["flag"] for x in found]
    assert "performance_drop" in flags
    assert "underpowered_subgroups" in flags  # every subgroup has < 100 events
    assert "no_external" not in flags and "leakage" not in flags
    for x in found:
        assert x["anchor"].startswith("#") and x["text"].endswith(".")
    drop = next(x for x in found if x["flag"] == "performance_drop")
    ext = result.estimates["split.external.discrimination.auroc"]
    assert f"{ext.value:.3f}" in drop["text"]


def test_leak_and_missing_external_split_are_flagged(leaky_single_split) -> None:
    flags = _flags(leaky_single_split)
    assert flags[:2] == ["no_external", "leakage"]
    text = suggest_limitations(leaky_single_split)[1]["text"]
    assert "10 patient keys" in text
    by = {st.number: st for st in fill(leaky_single_split)}
    assert "LEAK found" in by["20"].evidence
    assert "Development and test data overlap (10 patient keys" in by["40"].suggestion


def test_clean_result_suggests_nothing() -> None:
    r = ValidationResult()
    r.values["evaluation.splits"] = ["internal", "external"]
    r.estimates["discrimination.auroc"] = _ci(0.90, 0.85, 0.94)
    r.estimates["split.external.discrimination.auroc"] = _ci(0.88, 0.83, 0.92)
    r.estimates["calibration.ece"] = _ci(0.04, 0.02, 0.06)
    assert suggest_limitations(r) == []


def test_each_flag_from_a_hand_made_result() -> None:
    r = ValidationResult()
    v = r.values
    v["evaluation.splits"] = ["internal", "external"]
    v["shift.reference_split"] = "internal"
    v.update({
        "split.external.shift.drifted": True,
        "split.external.shift.n_drifted": 3,
        "split.external.shift.n_tested": 9,
        "split.external.shift.mmd_shift": True,
        "conformal.confidence_level": 0.9,
        "subgroup.columns": ["sex"],
        "subgroup.min_cell": 11,
        "subgroup.min_events": 100,
        "subgroup.min_non_events": 100,
    })  # fmt: skip
    r.estimates["calibration.ece"] = _ci(0.15, 0.11, 0.19)
    r.estimates["split.external.shift.estimated_accuracy"] = _ci(0.95, 0.93, 0.97)
    r.estimates["split.external.shift.observed_accuracy"] = _ci(0.70, 0.64, 0.76)
    r.tables["subgroup.sex"] = [
        {"column": "sex", "value": "F", "suppressed": False, "underpowered": True},
        {"column": "sex", "value": "X", "suppressed": True, "underpowered": True},
    ]
    r.tables["split.external.conformal.by_group"] = [
        {"column": "sex", "group": "F", "flag": True, "direction": "under"},
        {"column": "sex", "group": "M", "flag": True, "direction": "over"},
    ]
    found = {x["flag"]: x["text"] for x in suggest_limitations(r)}
    assert set(found) == {
        "drift", "label_free_disagrees", "underpowered_subgroups", "suppressed_subgroups",
        "coverage_gap", "calibration",
    }  # fmt: skip
    assert "3 of 9 monitored features, image embeddings (MMD)" in found["drift"]
    assert "0.950 [0.930, 0.970]" in found["label_free_disagrees"]
    assert "1 subgroup had fewer than 11 cases" in found["suppressed_subgroups"]
    assert "sex=F" in found["coverage_gap"] and "sex=M" not in found["coverage_gap"]
    assert "exceeds 0.1 (internal 0.150" in found["calibration"]
    assert "calibration" not in _flags_with_limit(r, 0.2)


def _flags_with_limit(r: ValidationResult, limit: float) -> list[str]:
    return [x["flag"] for x in suggest_limitations(r, ece_limit=limit)]


def test_overlapping_intervals_are_not_a_disagreement() -> None:
    r = ValidationResult()
    r.values["evaluation.splits"] = ["internal", "external"]
    r.estimates["discrimination.auroc"] = _ci(0.90, 0.80, 0.95)
    r.estimates["split.external.discrimination.auroc"] = _ci(0.82, 0.70, 0.85)
    r.estimates["split.external.shift.estimated_accuracy"] = _ci(0.90, 0.85, 0.95)
    r.estimates["split.external.shift.observed_accuracy"] = _ci(0.84, 0.80, 0.88)
    assert _flags(r) == []
