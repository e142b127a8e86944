"""The [gate] section: registration strictness, usage budget, multiplicity, holdout."""

from __future__ import annotations

import pytest

from medval._errors import SpecError
from medval.gate import check_spec

_BASE = {
    "task": {"class_names": ["a", "b"]},
    "data": {"table": "t.csv"},
    "model": {"predictions": "p.csv"},
}


def _check(**gate: object) -> dict[str, object]:
    return check_spec({**_BASE, "gate": gate}, source="s.toml")["gate"]


def test_defaults() -> None:
    g = check_spec(dict(_BASE), source="s.toml")["gate"]
    assert g["multiplicity"] == "none" and g["holdout"] == "plain"
    assert g["strict_registration"] is False and g["usage_budget"] is None


@pytest.mark.parametrize(
    ("gate", "match"),
    [
        ({"multiplicity": "sidak"}, r"gate\.multiplicity"),
        ({"holdout": "reusable"}, r"gate\.holdout"),
        ({"usage_budget": 0}, r"gate\.usage_budget must be an integer >= 1"),
        ({"thresholdout_sigma": 0.0}, r"gate\.thresholdout_sigma must be in \(0, 1\)"),
        ({"thresholdout_threshold": 1.5}, r"gate\.thresholdout_threshold must be in"),
        ({"thresholdout_budget": 0}, r"gate\.thresholdout_budget must be an integer >= 1"),
        ({"ledger": True}, r"ledger"),
    ],
)
def test_bad_values_are_refused(gate: dict[str, object], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        _check(**gate)
