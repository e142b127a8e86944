"""One cohort row from one DICOM header: typed tag values, pseudonymous keys, de-id values.

The readers accept either a pydicom dataset or the ``dict`` of values from
the fast header reader (:mod:`medval.io._header`), so both paths of the scan
build identical rows.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from medval._text import one_line
from medval.io._phi import TECHNICAL_TEXT_KEYWORDS, age_band, pseudonym, sex, technical_text

__all__ = [
    "ACQUISITION_KEYWORDS",
    "ACQUISITION_NUMBERS",
    "DATE_KEYWORDS",
    "DEID_KEYWORDS",
    "JOIN_IDENTIFIERS",
    "acquisition_fields",
    "cohort_row",
    "deid_values",
    "join_keys",
    "tag_int",
    "tag_number",
    "tag_text",
]

DEID_KEYWORDS = ("PatientIdentityRemoved", "BurnedInAnnotation", "DeidentificationMethod")
DATE_KEYWORDS = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
#: Hidden scan columns -> (DICOM keyword, pseudonym prefix): the identifiers a
#: labels table may be keyed by. Salted like every key; never in a Cohort.
JOIN_IDENTIFIERS: dict[str, tuple[str, str]] = {
    "join_sop": ("SOPInstanceUID", "sop-"),
    "join_series": ("SeriesInstanceUID", "ser-"),
    "join_study": ("StudyInstanceUID", "st-"),
    "join_accession": ("AccessionNumber", "acc-"),
    "join_patient": ("PatientID", "pt-"),
}


@functools.cache
def _tag(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - keywords read by the scan are all in the dictionary
        raise KeyError(keyword)
    return int(tag)


def _value(ds: Any, keyword: str) -> Any:
    if isinstance(ds, dict):  # values from the fast header reader
        return ds.get(keyword)
    # Lookup by tag skips pydicom's per-call keyword resolution (hot in big scans).
    elem = ds.get(_tag(keyword))
    return None if elem is None else elem.value


def tag_text(ds: Any, keyword: str) -> str | None:
    """A header value as one printable line, or None when absent, empty or unreadable.

    Control characters are removed (tabs and line breaks become spaces,
    :func:`medval._text.one_line`): a header is data, never a terminal
    command. Both scan paths (the fast reader and pydicom) read through here.
    """
    try:
        value = _value(ds, keyword)
    except Exception:
        return None
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "/".join(one_line(str(v)).strip() for v in value)
    else:
        text = one_line(str(value)).strip()
    return text or None


def tag_number(ds: Any, keyword: str) -> float | None:
    """A header value as a finite float (first of several), or None."""
    try:
        value = _value(ds, keyword)
        if value is not None and not isinstance(value, (str, int, float)):
            value = value[0]  # PixelSpacing: row spacing first
        number = float(value) if value not in (None, "") else math.nan
    except Exception:
        return None
    return number if math.isfinite(number) else None


def tag_int(ds: Any, keyword: str, default: int | None = None) -> int | None:
    """A header value as an int, or ``default`` when absent or unreadable."""
    number = tag_number(ds, keyword)
    return default if number is None else int(number)


def deid_values(ds: Any) -> tuple[str, str, str]:
    """The three de-identification values counted by :func:`medval.io._dicom.summarise_deid`."""
    pir = (tag_text(ds, "PatientIdentityRemoved") or "absent").upper()
    bia = (tag_text(ds, "BurnedInAnnotation") or "absent").upper()
    method = "present" if tag_text(ds, "DeidentificationMethod") else "absent"
    return (
        pir if pir in {"YES", "NO"} else pir.lower() if pir == "ABSENT" else "other",
        bia if bia in {"YES", "NO"} else bia.lower() if bia == "ABSENT" else "other",
        method,
    )


#: Per-modality acquisition tags: cohort column -> DICOM keyword (all technical,
#: none identifying; the free-text one passes :func:`medval.io._phi.technical_text`).
ACQUISITION_KEYWORDS: dict[str, str] = {
    "bits_stored": "BitsStored",  # (0028,0101), every image
    "exposure_mas": "Exposure",  # (0018,1152) mAs, CT and X-ray
    "ctdi_vol": "CTDIvol",  # (0018,9345) mGy, CT
    "sequence_name": "SequenceName",  # (0018,0024), MR
    "scanning_sequence": "ScanningSequence",  # (0018,0020), MR: SE, GR, IR, EP, RM
    "echo_time": "EchoTime",  # (0018,0081) ms, MR
    "repetition_time": "RepetitionTime",  # (0018,0080) ms, MR
    "detector_type": "DetectorType",  # (0018,7004), CR/DX/MG
    "exposure_index": "ExposureIndex",  # (0018,1411), CR/DX/MG
    "view_position": "ViewPosition",  # (0018,5101), CR/DX/MG: AP, PA, CC, MLO
    "compression_force": "CompressionForce",  # (0018,11A2) N, MG
    "body_part_thickness": "BodyPartThickness",  # (0018,11A0) mm, MG
}
_ACQUISITION_TEXT = frozenset(
    ("sequence_name", "scanning_sequence", "detector_type", "view_position")
)
#: The numeric ones (float columns, NaN where absent).
ACQUISITION_NUMBERS: tuple[str, ...] = tuple(
    c for c in ACQUISITION_KEYWORDS if c not in _ACQUISITION_TEXT
)


def acquisition_fields(ds: Any) -> dict[str, Any]:
    """The per-modality acquisition columns of one header (None where absent)."""
    out: dict[str, Any] = {}
    for column, keyword in ACQUISITION_KEYWORDS.items():
        if keyword in TECHNICAL_TEXT_KEYWORDS:
            out[column] = technical_text(tag_text(ds, keyword))
        elif column in _ACQUISITION_TEXT:
            out[column] = tag_text(ds, keyword)
        else:
            out[column] = tag_number(ds, keyword)
    return out


def join_keys(ds: Any, salt: bytes) -> dict[str, str | None]:
    """Salted keys of the identifiers a labels table may be keyed by (never in a Cohort)."""
    out: dict[str, str | None] = {}
    for column, (keyword, prefix) in JOIN_IDENTIFIERS.items():
        value = tag_text(ds, keyword)
        out[column] = None if value is None else pseudonym(value, salt=salt, prefix=prefix)
    return out


def cohort_row(ds: Any, salt: bytes) -> dict[str, Any]:
    """The whitelisted columns of one header, identifiers replaced by salted keys."""
    institution, station = tag_text(ds, "InstitutionName"), tag_text(ds, "StationName")
    site = institution or station
    birth = tag_text(ds, "PatientBirthDate")
    date = next((d for d in map(lambda k: tag_text(ds, k), DATE_KEYWORDS) if d), None)
    study = tag_text(ds, "StudyInstanceUID")
    spacing = tag_number(ds, "PixelSpacing")
    return {
        **join_keys(ds, salt),
        "patient_key": pseudonym(tag_text(ds, "PatientID") or "", salt=salt, prefix="pt-"),
        "study_key": None if study is None else pseudonym(study, salt=salt, prefix="st-"),
        "site_key": None if site is None else pseudonym(site, salt=salt, prefix="site-"),
        # Station names repeat across sites ("CT01"), so key them within the site.
        "station_key": None
        if station is None
        else pseudonym(f"{institution or ''}\x00{station}", salt=salt, prefix="stn-"),
        "modality": tag_text(ds, "Modality"),
        "manufacturer": tag_text(ds, "Manufacturer"),
        "model_name": tag_text(ds, "ManufacturerModelName"),
        "software_version": tag_text(ds, "SoftwareVersions"),
        "body_part": tag_text(ds, "BodyPartExamined"),
        "kvp": tag_number(ds, "KVP"),
        "slice_thickness": tag_number(ds, "SliceThickness"),
        "pixel_spacing": spacing if spacing is not None else tag_number(ds, "ImagerPixelSpacing"),
        "magnetic_field_strength": tag_number(ds, "MagneticFieldStrength"),
        "convolution_kernel": tag_text(ds, "ConvolutionKernel"),
        "rows": tag_int(ds, "Rows"),
        "columns": tag_int(ds, "Columns"),
        "photometric_interpretation": tag_text(ds, "PhotometricInterpretation"),
        **acquisition_fields(ds),
        "sex": sex(tag_text(ds, "PatientSex")),
        "age_band": age_band(tag_text(ds, "PatientAge"), birth_date=birth, study_date=date),
    }
