"""The PHI policy: which DICOM fields are never kept, salted keys, age bands.

Identifiers (patient IDs, study UIDs, institution and station names) become
salted SHA-256 pseudonyms; ages become bands with 90+ grouped (HIPAA Safe
Harbor, 45 CFR 164.514(b)(2)); dates and names are read only to derive those
values and are then dropped. This module imports the standard library (and
:mod:`medval._text`) only.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import secrets

from medval._text import one_line

__all__ = [
    "AGE_BANDS",
    "PHI_KEYWORDS",
    "SALT_ENV_VAR",
    "TECHNICAL_TEXT_KEYWORDS",
    "age_band",
    "pseudonym",
    "resolve_salt",
    "sex",
    "technical_text",
]

#: Environment variable read by :func:`resolve_salt` when no salt is given.
SALT_ENV_VAR = "MEDVAL_SALT"

#: DICOM keywords whose values never reach a Cohort, a result or a log line.
#: Some are read transiently to derive a salted key or an age band.
PHI_KEYWORDS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientMotherBirthName",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "IssuerOfPatientID",
    "MedicalRecordLocator",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "OperatorsName",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "AcquisitionDateTime",
    "StudyTime",
    "SeriesTime",
    "AcquisitionTime",
    "ContentTime",
    "StudyID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
    "DeviceSerialNumber",
    "RequestAttributesSequence",
    "StudyDescription",
    "SeriesDescription",
    "ImageComments",
    "AdditionalPatientHistory",
)

#: Free-text technical fields kept as text: not in the PS3.15 Table E.1-1
#: de-identification profile (they name a scanner setting, not a person), but
#: typed in at the console, so :func:`technical_text` drops a value that looks
#: like a name, a date or an identifier before it is kept.
TECHNICAL_TEXT_KEYWORDS: tuple[str, ...] = ("SequenceName",)

_IDENTIFIER_LIKE = re.compile(
    r"\d{5}"  # a record, accession, phone or postal number, a compact date
    r"|\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}"  # a date
    r"|[\^@]"  # a DICOM person name, an e-mail address
)
_TECHNICAL_MAX = 16  # SH, the VR of SequenceName, holds at most 16 characters

#: Age bands, lower bound inclusive; the last band groups 90 and over.
# Children in five-year bands (paediatric models: bone age, growth), adults coarser.
AGE_BANDS: tuple[tuple[int, str], ...] = (
    (0, "0-4"),
    (5, "5-9"),
    (10, "10-14"),
    (15, "15-17"),
    (18, "18-39"),
    (40, "40-59"),
    (60, "60-74"),
    (75, "75-89"),
    (90, "90+"),
)

_AS_RE = re.compile(r"^\s*(\d{1,3})\s*([DWMY]?)\s*$", re.IGNORECASE)
_DAYS_PER_UNIT = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0, "Y": 365.25}


def resolve_salt(salt: str | bytes | None) -> bytes:
    """The salt for this run's pseudonyms.

    Parameters
    ----------
    salt : str or bytes or None
        An explicit salt. ``None`` reads the ``MEDVAL_SALT`` environment
        variable and, when that is unset or empty, draws 32 random bytes, so
        keys then differ between runs (they never reach result files, so
        this only matters when two runs must be linked).

    Returns
    -------
    bytes
        The salt. It is never written anywhere by medval.
    """
    if isinstance(salt, bytes):
        return salt
    if isinstance(salt, str):
        return salt.encode("utf-8")
    env = os.environ.get(SALT_ENV_VAR, "")
    if env:
        return env.encode("utf-8")
    return secrets.token_bytes(32)


def pseudonym(value: str, *, salt: bytes, prefix: str) -> str:
    """A salted SHA-256 pseudonym, ``prefix + hexdigest[:16]``.

    Parameters
    ----------
    value : str
        The identifier (surrounding whitespace is ignored).
    salt : bytes
        From :func:`resolve_salt`.
    prefix : str
        Short tag naming the kind of key, e.g. ``"pt-"``.

    Returns
    -------
    str
        The same value and salt always give the same key; 64 bits of the
        digest keep collisions negligible for cohorts below ~10^8 keys.
    """
    digest = hashlib.sha256(salt + b"\x00" + value.strip().encode("utf-8")).hexdigest()
    return prefix + digest[:16]


def _band(years: float) -> str | None:
    if not 0.0 <= years < 150.0:
        return None
    label = AGE_BANDS[0][1]
    for lower, name in AGE_BANDS:
        if years >= lower:
            label = name
    return label


def _parse_da(value: str | None) -> _dt.date | None:
    if not value:
        return None
    text = str(value).strip().replace(".", "").replace("-", "")[:8]
    try:
        return _dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _whole_years(birth: _dt.date, on: _dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def age_band(
    patient_age: str | None,
    *,
    birth_date: str | None = None,
    study_date: str | None = None,
) -> str | None:
    """Band a patient's age; never raises.

    Parameters
    ----------
    patient_age : str or None
        DICOM Age String (AS) such as ``"058Y"``, ``"006M"``, ``"010W"``,
        ``"003D"``; ``"58Y"`` and a bare ``"58"`` (years) are tolerated.
    birth_date, study_date : str or None
        DICOM dates (``YYYYMMDD``); used when ``patient_age`` is missing or
        unparseable.

    Returns
    -------
    str or None
        One of ``"0-4"``, ``"5-9"``, ``"10-14"``, ``"15-17"``, ``"18-39"``, ``"40-59"``,
        ``"60-74"``,
        ``"75-89"``, ``"90+"`` (ages 90 and over are grouped, as HIPAA Safe
        Harbor requires), or ``None`` when no age can be derived.
    """
    if patient_age is not None:
        match = _AS_RE.match(str(patient_age))
        if match:
            unit = match.group(2).upper() or "Y"
            n = int(match.group(1))
            years = float(n) if unit == "Y" else n * _DAYS_PER_UNIT[unit] / 365.25
            return _band(years)
    birth, study = _parse_da(birth_date), _parse_da(study_date)
    if birth is None or study is None or study < birth:
        return None
    return _band(float(_whole_years(birth, study)))


def sex(value: object) -> str | None:
    """Normalise DICOM PatientSex to ``"F"``, ``"M"``, ``"O"`` or ``None``."""
    if value is None:
        return None
    text = str(value).strip().upper()
    if text in {"F", "FEMALE"}:
        return "F"
    if text in {"M", "MALE"}:
        return "M"
    if text in {"O", "OTHER"}:
        return "O"
    return None


def technical_text(value: str | None) -> str | None:
    """A free-text technical value (:data:`TECHNICAL_TEXT_KEYWORDS`), or None.

    Sequence names such as ``"*tfl3d1_16ns"`` are kept; a value longer than
    16 characters or holding a person-name delimiter (``^``), an ``@``, a
    date or a run of five digits (an accession or record number typed into the
    wrong field) is dropped, never shown. Control characters are removed first
    (:func:`medval._text.one_line`).
    """
    if value is None:
        return None
    text = one_line(str(value)).strip()
    if not text or len(text) > _TECHNICAL_MAX or _IDENTIFIER_LIKE.search(text):
        return None
    return text
