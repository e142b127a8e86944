"""The registration items (CLAIM 34, TRIPOD+AI 18d) suggested from the run's registration."""

from __future__ import annotations

from medval._result import ValidationResult
from medval.checklist import fill
from medval.checklist._rules import RULES

REG = {
    "status": "registered",
    "file": "cohort/medval-registration.json",
    "registered_at": "2026-11-02T09:00:00Z",
    "protocol_sha256": "ab" * 32,
    "n_criteria": 5,
    "signed": True,
    "splits_now": {"internal": {}, "external": {}},
    "deviations": [],
}


def test_no_registration_suggests_nothing() -> None:
    r = ValidationResult(provenance={"registration": {"status": "not registered"}})
    assert RULES["registration"](r) is None


def test_registration_without_and_with_deviations() -> None:
    r = ValidationResult(provenance={"registration": REG})
    e = RULES["registration"](r)
    assert e is not None and not e.complete  # a registry and number still come from a person
    assert "5 acceptance criteria pre-registered with medval on 2026-11-02" in e.text
    assert "HMAC-signed" in e.text and "external, internal" in e.text
    assert "without deviation" in e.text
    said = "threshold for external-auroc lowered from 0.85 to 0.8 after registration"
    r = ValidationResult(
        provenance={
            "registration": {**REG, "deviations": [{"text": said, "loosened": True}]},
            "test_set_usage": {"text": "this test set has been evaluated 3 times by 2 models"},
        }
    )
    e = RULES["registration"](r)
    assert e is not None and f"1 deviation(s) after registration: {said}" in e.text
    assert "evaluated 3 times by 2 models" in e.text


def test_the_items_of_both_checklists_carry_the_suggestion() -> None:
    r = ValidationResult(provenance={"registration": REG})
    for name, number in (("claim-2024", "34"), ("tripod-ai-2024", "18d")):
        item = next(i for i in fill(r, checklist=name) if i.number == number)
        assert item.suggestion is not None and "pre-registered" in item.suggestion
