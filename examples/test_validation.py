"""Hand-written validation tests on top of the spec's criteria.

Run from the repository root after `python -m medval demo --out medval-demo`:

    pytest examples/test_validation.py --medval-spec examples/medval.toml

pytest then runs every criterion of the spec as its own item plus these tests;
the validation runs once per session and the fixtures share it. Judge an
existing run instead of re-running the model with
``--medval-result medval-demo/validation/result.json``. Every test using a
medval fixture carries the ``medval`` marker: ``-m "not medval"`` skips them.
"""

from __future__ import annotations

from typing import Any

from medval.gate import require


def test_internal_auroc_meets_the_goal(medval_result: Any) -> None:
    # The same rule as a [[criteria]] table, written as an assertion; a failure
    # reads "auroc CI low 0.781 < 0.8 (n=126)".
    require(medval_result, "discrimination.auroc", ">=", 0.80)


def test_no_internal_scanner_misses_the_sensitivity_floor(medval_result: Any) -> None:
    # A floor a team might declare; on the demo the lowest CI low is 0.49 (Aster Medical).
    for scanner in ("Aster Medical", "Boreal Imaging"):
        require(medval_result, f"subgroup.manufacturer={scanner}.sensitivity", ">=", 0.45)


def test_every_evaluated_case_has_a_prediction(medval_predictions: Any, medval_cohort: Any) -> None:
    evaluated = set(medval_cohort.index[medval_cohort["split"] != "train"])
    assert set(medval_predictions.case_ids) == evaluated


def test_each_patient_is_in_one_split(medval_cohort: Any) -> None:
    splits = medval_cohort.groupby("patient_key")["split"].nunique()
    shared = splits[splits > 1]
    assert shared.empty, f"{len(shared)} patients appear in more than one split"


def test_predictions_are_probabilities(medval_predictions: Any) -> None:
    p = medval_predictions.probabilities
    assert p.shape[1] == 2
    assert ((p >= 0) & (p <= 1)).all()
