"""The registration file: round trip, refused edits, signatures, superseding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medval import DataError, InputError
from medval.integrity import (
    REGISTRATION_FILE,
    Registration,
    protocol,
    protocol_sha256,
    read_registration,
    registration_path,
    write_registration,
)

from ._specs import criterion, make_spec


def _reg(tmp_path: Path, at: str = "2026-01-01T00:00:00Z") -> Registration:
    spec = make_spec(tmp_path, criterion())
    return Registration(
        registered_at=at,
        medval_version="0.1.0",
        protocol_sha256=protocol_sha256(spec),
        protocol=protocol(spec),
        splits={"internal": {"manifest_sha256": "a" * 64, "n_cases": 9}},
        strict=True,
        usage_budget=5,
    )


def test_round_trip_and_place(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    path = registration_path(make_spec(tmp_path, criterion()))
    assert path == (tmp_path / "cohort" / REGISTRATION_FILE).resolve()
    path.parent.mkdir()
    assert write_registration(reg, path, signing_key=None) == reg
    assert read_registration(path, signing_key=None) == reg
    assert Registration.from_dict(reg.to_dict()) == reg
    data = json.loads(path.read_text())
    assert set(data["integrity"]) == {"content_sha256"}
    assert not list(path.parent.glob(".medval-registration-*"))  # no temporary file left


def test_an_existing_registration_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / REGISTRATION_FILE
    write_registration(_reg(tmp_path), path, signing_key=None)
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"already exists.*--supersede"):
        write_registration(_reg(tmp_path, "2026-02-01T00:00:00Z"), path, signing_key=None)
    assert path.read_bytes() == before


def test_one_edited_byte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / REGISTRATION_FILE
    write_registration(_reg(tmp_path), path, signing_key=None)
    text = path.read_text()
    assert '"threshold": 0.85' in text
    path.write_text(text.replace('"threshold": 0.85', '"threshold": 0.75'))
    with pytest.raises(DataError, match=rf"{REGISTRATION_FILE} was changed after registration"):
        read_registration(path, signing_key=None)
    data = json.loads(text)
    del data["integrity"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="carries no content digest"):
        read_registration(path, signing_key=None)


def test_a_key_requires_a_matching_signature(tmp_path: Path) -> None:
    unsigned, signed = tmp_path / "u.json", tmp_path / "s.json"
    write_registration(_reg(tmp_path), unsigned, signing_key=None)
    write_registration(_reg(tmp_path), signed, signing_key=b"key")
    assert "hmac_sha256" in json.loads(signed.read_text())["integrity"]
    assert read_registration(signed, signing_key=b"key") == _reg(tmp_path)
    assert read_registration(signed, signing_key=None) == _reg(tmp_path)
    with pytest.raises(DataError, match=r"u\.json is not signed, but MEDVAL_SIGNING_KEY is set"):
        read_registration(unsigned, signing_key=b"key")
    with pytest.raises(DataError, match="signature does not match MEDVAL_SIGNING_KEY"):
        read_registration(signed, signing_key=b"other")


def test_supersede_records_the_chain(tmp_path: Path) -> None:
    path = tmp_path / REGISTRATION_FILE
    write_registration(_reg(tmp_path), path, signing_key=None)
    first = json.loads(path.read_text())["integrity"]["content_sha256"]
    second = write_registration(
        _reg(tmp_path, "2026-02-01T00:00:00Z"), path, signing_key=None, supersede=True
    )
    assert second.supersedes == (
        {"content_sha256": first, "registered_at": "2026-01-01T00:00:00Z"},
    )
    middle = json.loads(path.read_text())["integrity"]["content_sha256"]
    third = write_registration(
        _reg(tmp_path, "2026-03-01T00:00:00Z"), path, signing_key=None, supersede=True
    )
    assert [s["content_sha256"] for s in third.supersedes] == [first, middle]
    assert read_registration(path, signing_key=None) == third


def test_superseding_an_edited_registration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / REGISTRATION_FILE
    write_registration(_reg(tmp_path), path, signing_key=None)
    path.write_text(path.read_text().replace('"n_cases": 9', '"n_cases": 8'))
    with pytest.raises(DataError, match=r"changed after registration.*version control"):
        write_registration(_reg(tmp_path), path, signing_key=None, supersede=True)


def test_unreadable_or_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist; register the spec first"):
        read_registration(tmp_path / "none.json", signing_key=None)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match=r"bad\.json is not a readable medval registration"):
        read_registration(bad, signing_key=None)
    bad.write_text("[]")
    with pytest.raises(DataError, match="is not a medval registration"):
        read_registration(bad, signing_key=None)
    with pytest.raises(DataError, match="not a medval registration: format"):
        Registration.from_dict({"format": "other"})
    with pytest.raises(DataError, match="lacks"):
        Registration.from_dict({"format": "medval-registration/1"})


def test_a_spec_without_a_cohort_definition(tmp_path: Path) -> None:
    from dataclasses import replace

    spec = make_spec(tmp_path)
    sections = {**spec.sections, "data": {**spec.sections["data"], "labels": None}}
    with pytest.raises(InputError, match="names no cohort definition"):
        registration_path(replace(spec, sections=sections))
