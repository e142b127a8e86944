"""CLAIM 2024 and TRIPOD+AI filled from a regression result."""

from __future__ import annotations

import pytest

from medval import Estimate, ValidationResult
from medval.checklist import fill, suggest_limitations, summary
from medval.checklist._limitations_regression import regression_limitations
from medval.checklist._rules import RULES, TASK_RULES
from medval.checklist._rules_data import DATA_RULES
from medval.checklist._rules_eval import EVAL_RULES
from medval.checklist._rules_regression import REGRESSION_RULES

from ..report._regression_result import EVIL, regression_result


def _items(result: ValidationResult, name: str = "claim-2024") -> dict[str, object]:
    return {st.number: st for st in fill(result, checklist=name)}


@pytest.fixture(scope="module")
def claim() -> dict[str, object]:
    return _items(regression_result())


def test_every_regression_rule_replaces_a_rule_of_the_same_name() -> None:
    names = {*DATA_RULES, *EVAL_RULES, "structured_summary", "limitations"}
    assert set(REGRESSION_RULES) <= names
    assert TASK_RULES["regression"] is REGRESSION_RULES


def test_metrics_statistics_and_results_are_reported_with_numbers(claim: dict) -> None:
    for number in ("21", "28", "29", "30", "32", "33", "36", "37", "38", "39"):
        assert claim[number].status == "reported", number
    assert "MAE, median absolute error, RMSE and bias (prediction − reference) in months" in (
        claim["28"].evidence
    )
    assert "Bland–Altman" in claim["28"].evidence and "normalized score" in claim["28"].evidence
    assert "bias by t; limits of agreement by bland-altman-t" in claim["29"].evidence
    assert "resampling clustered by patient; seed 0" in claim["29"].evidence
    assert claim["32"].evidence.startswith(
        "Primary test split 'internal' (200 cases): MAE 8.10 [7.40, 8.90] months"
    )
    assert "limits of agreement -19.69 [-22.09, -17.29] to 20.29" in claim["32"].evidence
    assert "'external' (150 cases): MAE 14.20 [12.80, 15.70] months" in claim["33"].evidence
    assert "AUROC" not in claim["32"].evidence + claim["33"].evidence + claim["37"].evidence


def test_subgroups_and_failure_analysis_name_the_worst_group(claim: dict) -> None:
    perf = claim["37"].evidence
    assert "MAE and bias with CIs for 4 subgroups of manufacturer, sex (1 too small" in perf
    assert f"highest MAE: manufacturer {EVIL} MAE 14.00 [12.50, 15.60]" in perf
    fail = claim["39"].evidence
    assert "external: bias from -6.20 to -2.20 months across 3 bins of the true value" in fail
    assert "proportional bias -0.150 [-0.220, -0.080]" in fail
    assert "error slope on the true value -0.200 [-0.270, -0.130]" in fail
    assert "Spearman of sigma and |error| 0.050 [-0.100, 0.200]" in fail
    assert "Gaussian calibration of sigma plots" in claim["38"].evidence


def test_summary_and_limitations_are_suggestions_for_a_person(claim: dict) -> None:
    assert claim["2"].status == "missing"  # H items: a person's answer
    assert claim["2"].suggestion.startswith("bone age: 'internal' (200 cases): MAE 8.10")
    assert "0.90 interval coverage 0.780 [0.710, 0.840]" in claim["2"].suggestion
    assert claim["2"].suggestion.endswith("acceptance criteria: failed.")
    assert "MAE on 'external'" in claim["40"].suggestion


def test_without_intervals_or_sigma_the_evidence_says_less_and_no_item_breaks() -> None:
    items = _items(regression_result(sigma=False, intervals=False))
    assert "conformal" not in items["28"].evidence and "sigma" not in items["28"].evidence
    assert "interval coverage" not in items["37"].evidence
    assert items["38"].status == "partial"  # no calibration plot of sigma
    assert items["27"].evidence.endswith("the mean of 20 MC-dropout passes.")


def test_one_split_asks_why_there_is_no_external_test() -> None:
    r = regression_result()
    r.values["evaluation.splits"] = ["internal"]
    items = _items(r)
    assert items["33"].status == "partial"
    assert "no external test split; state why" in items["33"].evidence


def test_performance_is_complete_only_with_a_demographic_subgroup() -> None:
    r = regression_result()
    del r.values["subgroup.sex.worst_mae_group"], r.tables["subgroup.sex"]
    assert _items(r)["37"].status == "partial"


def test_tripod_items_from_a_regression_result() -> None:
    items = _items(regression_result(), "tripod-ai-2024")
    assert summary(items.values())["reported"] >= 7
    assert items["21"].evidence.startswith("A continuous outcome (bone age): internal: 200 cases")
    assert items["23b"].evidence.startswith(f"MAE by manufacturer: Vendor A 7.90 [7.10, 8.60] "
                                            f"months, {EVIL} 14.00")  # fmt: skip
    assert "no classification threshold" in items["15"].evidence
    assert "with a variance head" in items["15"].evidence
    assert items["14"].evidence.startswith("MAE and bias with CIs by sex")
    assert items["12f"].status == "missing"  # no recalibration of a regression model


def test_limitations_flag_drop_bias_coverage_and_sigma_in_order() -> None:
    flags = [x["flag"] for x in regression_limitations(regression_result())]
    assert flags == ["performance_drop", "bias", "proportional_bias", "coverage_gap",
                     "sigma_ranking"]  # fmt: skip
    shared = [x["flag"] for x in suggest_limitations(regression_result())]
    assert shared == flags  # two splits: no classifier flag applies
    gap = regression_limitations(regression_result())[3]["text"]
    assert f"manufacturer={EVIL} on 'internal'" in gap and "'external'" in gap


def test_a_result_without_flags_gets_no_regression_limitations() -> None:
    r = regression_result(sigma=False, intervals=False)
    r.estimates["split.external.regression.mae"] = Estimate(8.5, 7.5, 9.5, n=150)
    for p in ("", "split.external."):
        r.estimates[f"{p}regression.bias"] = Estimate(0.1, -1.0, 1.2, n=100)
        r.estimates[f"{p}regression.error_slope"] = Estimate(0.0, -0.05, 0.05, n=100)
        r.estimates[f"{p}regression.agreement.proportional_bias"] = Estimate(0.0, -0.05, 0.05)
    assert regression_limitations(r) == []
    binary = ValidationResult(values={"task.kind": "binary", "evaluation.splits": ["a", "b"]})
    assert regression_limitations(binary) == []


def test_other_tasks_keep_their_own_rules() -> None:
    binary = ValidationResult(values={"task.kind": "binary", "evaluation.splits": ["test"],
                                      "cohort.n_cases": 50})  # fmt: skip
    binary.estimates["discrimination.auroc"] = Estimate(0.9, 0.85, 0.94, n=50)
    evidence = RULES["internal"](binary)
    assert evidence is not None and "AUROC 0.900 [0.850, 0.940]" in evidence.text
    seg = ValidationResult(values={"task.kind": "segmentation", "evaluation.splits": ["test"],
                                   "segmentation.structures": ["liver"],
                                   "segmentation.liver.n_cases": 12})  # fmt: skip
    seg.estimates["segmentation.liver.dice"] = Estimate(0.91, 0.88, 0.93, n=12)
    evidence = RULES["internal"](seg)
    assert evidence is not None and "Dice 0.910 [0.880, 0.930]" in evidence.text
    assert RULES["internal"].__name__ == "internal"
