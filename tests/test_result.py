from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medval import DataError, Estimate, InputError, ValidationResult


def _result() -> ValidationResult:
    r = ValidationResult()
    r.estimates["discrimination.auroc"] = Estimate(0.9, 0.85, 0.94, method="delong", n=200)
    r.values["operating_point.threshold"] = np.float32(0.25)
    r.values["z.order"] = 1
    r.tables["cohort.flow"] = [{"step": "files", "count": np.int64(3)}]
    r.provenance["seed"] = 0
    return r


def test_json_round_trip_and_canonical_bytes(tmp_path: Path) -> None:
    r = _result()
    digest = r.write_json(tmp_path / "result.json")
    text = (tmp_path / "result.json").read_text(encoding="utf-8")
    assert json.loads(text)["values"]["operating_point.threshold"] == 0.25
    assert list(json.loads(text)) == sorted(json.loads(text))
    back = ValidationResult.read_json(tmp_path / "result.json")
    assert back["discrimination.auroc"] == r["discrimination.auroc"]
    assert back.write_json(tmp_path / "again.json") == digest


def test_lookup_errors_and_non_finite_values(tmp_path: Path) -> None:
    r = _result()
    with pytest.raises(KeyError, match="known keys start with"):
        r["nope"]
    r.values["bad"] = float("inf")
    with pytest.raises(InputError, match="finite"):
        r.to_json()
    (tmp_path / "x.json").write_text('{"schema": "other"}')
    with pytest.raises(DataError, match="not a medval result"):
        ValidationResult.read_json(tmp_path / "x.json")
    with pytest.raises(DataError, match="does not exist"):
        ValidationResult.read_json(tmp_path / "missing.json")
