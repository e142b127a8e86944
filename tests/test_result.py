from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medval import DataError, Estimate, InputError, ValidationResult
from medval._result import canonical_json, signing_key


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
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(DataError, match=r"is a folder; pass the result\.json inside it"):
        ValidationResult.read_json(tmp_path / "folder.json")


def test_result_json_carries_a_digest_of_its_content(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    _result().write_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data["integrity"]) == {"content_sha256"}
    assert ValidationResult.read_json(path, require_integrity=True)["z.order"] == 1
    # A hand edit (raising one CI bound) no longer matches the digest.
    data["estimates"]["discrimination.auroc"]["low"] = 0.95
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=r"result.json was changed after medval wrote it"):
        ValidationResult.read_json(path)
    # A file without the block (an older medval, or stripped) is refused where required.
    del data["integrity"]
    path.write_text(json.dumps(data), encoding="utf-8")
    assert ValidationResult.read_json(path)["discrimination.auroc"].low == 0.95
    with pytest.raises(DataError, match="carries no content digest"):
        ValidationResult.read_json(path, require_integrity=True)
    data["integrity"] = "x"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match="'integrity' is malformed"):
        ValidationResult.read_json(path)


def test_signed_result_checks_its_hmac_and_never_holds_the_key(tmp_path: Path) -> None:
    import hashlib
    import hmac

    path = tmp_path / "result.json"
    _result().write_json(path, signing_key=b"s3cret-key")
    text = path.read_text(encoding="utf-8")
    assert "s3cret-key" not in text
    data = json.loads(text)
    content = canonical_json({k: v for k, v in data.items() if k != "integrity"}).encode()
    expected = hmac.new(b"s3cret-key", content, hashlib.sha256).hexdigest()
    assert data["integrity"]["hmac_sha256"] == expected  # RFC 2104, independently computed
    assert ValidationResult.read_json(path, signing_key=b"s3cret-key") is not None
    with pytest.raises(DataError, match="signature does not match MEDVAL_SIGNING_KEY"):
        ValidationResult.read_json(path, signing_key=b"another-key")
    _result().write_json(path)  # unsigned
    with pytest.raises(DataError, match="is not signed, but MEDVAL_SIGNING_KEY is set"):
        ValidationResult.read_json(path, signing_key=b"s3cret-key")


def test_signing_key_comes_from_the_environment() -> None:
    assert signing_key({"MEDVAL_SIGNING_KEY": "k"}) == b"k"
    assert signing_key({"MEDVAL_SIGNING_KEY": ""}) is None
    assert signing_key({}) is None
