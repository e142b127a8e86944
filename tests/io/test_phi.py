"""The PHI policy: pseudonyms, salts, age bands, sex codes."""

from __future__ import annotations

import hashlib

import pytest

from medval.io import PHI_KEYWORDS, age_band, pseudonym, resolve_salt, sex


@pytest.mark.parametrize(
    ("age", "band"),
    [
        ("058Y", "40-59"),
        ("58Y", "40-59"),
        ("58", "40-59"),
        (" 017Y ", "15-17"),
        ("015Y", "15-17"),
        ("014Y", "10-14"),
        ("010Y", "10-14"),
        ("009Y", "5-9"),
        ("005Y", "5-9"),
        ("004Y", "0-4"),
        ("059M", "0-4"),
        ("060M", "5-9"),
        ("018Y", "18-39"),
        ("039Y", "18-39"),
        ("040Y", "40-59"),
        ("060Y", "60-74"),
        ("074Y", "60-74"),
        ("075Y", "75-89"),
        ("089Y", "75-89"),
        ("090Y", "90+"),
        ("104Y", "90+"),
        ("006M", "0-4"),
        ("010W", "0-4"),
        ("003D", "0-4"),
        ("240M", "18-39"),
        ("000D", "0-4"),
    ],
)
def test_age_band_parses_age_strings(age: str, band: str) -> None:
    assert age_band(age) == band


@pytest.mark.parametrize("age", ["", "abcY", "058X", "58.5", "-5Y", "9999Y", "200Y"])
def test_age_band_unparseable_is_none(age: str) -> None:
    assert age_band(age) is None


@pytest.mark.parametrize(
    ("birth", "study", "band"),
    [
        ("19440229", "20240115", "75-89"),  # 79 years
        ("19340116", "20240115", "75-89"),  # one day short of 90
        ("19340115", "20240115", "90+"),  # 90th birthday
        ("20060116", "20240115", "15-17"),
        ("20060115", "20240115", "18-39"),
        ("1980-05-01", "2024-05-01", "40-59"),
    ],
)
def test_age_band_from_dates(birth: str, study: str, band: str) -> None:
    assert age_band(None, birth_date=birth, study_date=study) == band
    # An unparseable age string falls back to the dates.
    assert age_band("junk", birth_date=birth, study_date=study) == band


@pytest.mark.parametrize(
    ("birth", "study"),
    [(None, "20240101"), ("20240101", None), ("notadate", "20240101"), ("20250101", "20240101")],
)
def test_age_band_bad_dates_are_none(birth: str | None, study: str | None) -> None:
    assert age_band(None, birth_date=birth, study_date=study) is None


def test_age_string_wins_over_dates() -> None:
    assert age_band("030Y", birth_date="19000101", study_date="20240101") == "18-39"


@pytest.mark.parametrize(
    ("value", "code"),
    [("F", "F"), ("m", "M"), (" O ", "O"), ("female", "F"), ("", None), (None, None), ("X", None)],
)
def test_sex(value: object, code: str | None) -> None:
    assert sex(value) == code


def test_pseudonym_is_salted_sha256() -> None:
    salt = b"s3cret"
    key = pseudonym("PAT-1", salt=salt, prefix="pt-")
    expected = hashlib.sha256(salt + b"\x00" + b"PAT-1").hexdigest()[:16]
    assert key == "pt-" + expected
    assert pseudonym(" PAT-1 ", salt=salt, prefix="pt-") == key
    assert pseudonym("PAT-1", salt=b"other", prefix="pt-") != key
    assert pseudonym("PAT-2", salt=salt, prefix="pt-") != key
    assert "PAT" not in key


def test_resolve_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_salt(b"abc") == b"abc"
    assert resolve_salt("abc") == b"abc"
    monkeypatch.setenv("MEDVAL_SALT", "from-env")
    assert resolve_salt(None) == b"from-env"
    monkeypatch.delenv("MEDVAL_SALT")
    first, second = resolve_salt(None), resolve_salt(None)
    assert len(first) == 32
    assert first != second


def test_phi_keywords_are_dicom_keywords() -> None:
    from pydicom.datadict import tag_for_keyword

    for keyword in PHI_KEYWORDS:
        assert tag_for_keyword(keyword) is not None, keyword
    for needed in ("PatientName", "PatientID", "StudyDate", "InstitutionName", "SOPInstanceUID"):
        assert needed in PHI_KEYWORDS
