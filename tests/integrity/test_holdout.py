"""The gate's reusable-holdout mode on hand-built results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from medval._result import ValidationResult
from medval._types import Estimate
from medval.gate import Criterion, judge
from medval.integrity import HoldoutOutcome, answer_criteria, reference_key

SETTINGS = {"thresholdout_threshold": 0.04, "thresholdout_sigma": 0.01, "thresholdout_budget": 2}


def _result(test: float, ref: float, *, table: bool = False) -> ValidationResult:
    e = {
        "discrimination.auroc": Estimate(test, test - 0.05, min(1.0, test + 0.05), n=400),
        "split.dev.discrimination.auroc": Estimate(ref, ref - 0.05, min(1.0, ref + 0.05), n=300),
        "subgroup.site=A.auroc": Estimate(test, test - 0.1, min(1.0, test + 0.1), n=200),
        "split.dev.subgroup.site=A.auroc": Estimate(ref, ref - 0.1, min(1.0, ref + 0.1), n=150),
    }
    r = ValidationResult(estimates=e)
    if table:
        r.tables["conformal.by_group"] = [{"group": "A", "coverage": 0.9, "n": 50}]
    return r


CRITERIA = [
    Criterion(name="auroc", key="discrimination.auroc", op=">=", threshold=0.8, bound="low"),
    Criterion(name="sites", key="subgroup.site={group}.auroc", op=">=", threshold=0.75),
]


def _answer(
    result: ValidationResult,
    criteria: list[Criterion],
    state: dict[str, Any] | None = None,
    seed: int = 0,
    sigma: float = 0.01,
) -> HoldoutOutcome:
    settings = {**SETTINGS, "thresholdout_sigma": sigma}
    return answer_criteria(
        result, criteria, judge(result, criteria), settings=settings, reference_split="dev",
        state=state, model_sha256="m" * 64, random_state=np.random.default_rng(seed),
    )  # fmt: skip


def test_reference_key() -> None:
    assert reference_key("discrimination.auroc", "dev") == "split.dev.discrimination.auroc"
    assert reference_key("split.external.x.y", "dev") == "split.dev.x.y"


def test_agreeing_reference_is_the_answer_and_spends_nothing() -> None:
    # Noise scale 0.001: a false detection needs Lap noise 10 of its scales out (p < 1e-4).
    out = _answer(_result(0.86, 0.86), CRITERIA, sigma=0.001)
    v = out.verdicts[0]
    assert v.status == "pass" and v.observed == pytest.approx(0.86)
    assert v.low is None and v.reason.startswith("Thresholdout answer:")
    assert out.state["budget_left"] == 2 and out.state["n_queries"] == 2
    assert out.provenance["answered"] == ["auroc", "sites"] and out.revealed == ()


def test_overfit_reference_is_detected_and_the_noisy_holdout_decides() -> None:
    # The team's own split says 0.95; the test set says 0.70: far beyond T plus noise.
    out = _answer(_result(0.70, 0.95), CRITERIA[:1])
    v = out.verdicts[0]
    assert v.status == "fail" and abs(float(v.observed) - 0.70) < 0.1  # Lap(0.01) noise
    assert out.state["budget_left"] == 1


def test_cached_answer_for_the_same_model_and_budget_exhaustion() -> None:
    first = _answer(_result(0.70, 0.95), CRITERIA[:1])
    again = _answer(_result(0.70, 0.95), CRITERIA[:1], state=first.state, seed=99)
    assert again.verdicts[0].observed == first.verdicts[0].observed
    assert again.state["n_queries"] == first.state["n_queries"]
    # A new model spends the last unit, a third finds the budget spent: error, fail closed.
    state = first.state
    for name, expect in (("second", "fail"), ("third", "error")):
        out = answer_criteria(
            _result(0.70, 0.95), CRITERIA[:1], judge(_result(0.70, 0.95), CRITERIA[:1]),
            settings=SETTINGS, reference_split="dev", state=state, model_sha256=name * 4,
            random_state=np.random.default_rng(1),
        )  # fmt: skip
        state = out.state
        assert out.verdicts[0].status == expect
    assert "spent its budget" in out.verdicts[0].reason


def test_criteria_outside_the_mechanism_are_judged_plainly_and_named() -> None:
    table = Criterion(
        name="coverage", key="conformal.by_group", op=">=", threshold=0.85, field="coverage"
    )
    result = _result(0.86, 0.86, table=True)
    out = _answer(result, [CRITERIA[0], table])
    assert out.verdicts[1] == judge(result, [table])[0]
    assert out.provenance["outside"] == ["coverage"]
    assert out.revealed == ("conformal.by_group",)
    assert "outside the mechanism" in out.provenance["text"]
