"""The checklist names an ensemble's members and counts samples per member."""

from __future__ import annotations

from medval import ValidationResult
from medval.checklist import fill


def _evidence(result: ValidationResult) -> str:
    rows = [s.evidence for s in fill(result) if s.evidence and "ensemble" in s.evidence]
    assert rows, "no checklist item reports the ensemble"
    return str(rows[0])


def test_an_ensemble_without_dropout_is_not_called_mc_dropout() -> None:
    r = ValidationResult()
    # Two members, no MC dropout: the result holds one "sample" per member.
    r.values["uncertainty.mc_samples"] = 2
    r.provenance.update(
        model_file=["fold0.pt", "fold1.pt"], ensemble_members=2,
        preprocess={"MC-dropout samples": 0},
    )  # fmt: skip
    text = _evidence(r)
    assert "2 ensemble members (fold0.pt, fold1.pt), each one deterministic pass" in text
    assert "MC-dropout" not in text and "['" not in text


def test_an_ensemble_with_dropout_counts_passes_per_member() -> None:
    r = ValidationResult()
    r.values["uncertainty.mc_samples"] = 60
    r.provenance.update(
        model_file=["a.pt", "b.pt", "c.pt"], ensemble_members=3,
        preprocess={"MC-dropout samples": 20}, tta="hflip",
    )  # fmt: skip
    text = _evidence(r)
    assert "each the mean of 20 MC-dropout passes" in text
    assert "test-time augmentation hflip" in text
