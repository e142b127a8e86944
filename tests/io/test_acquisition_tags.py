"""Per-modality acquisition tags: read alike by the fast reader and pydicom, nothing identifying."""

from __future__ import annotations

import math
import pathlib
import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from medval._types import COHORT_COLUMNS, DICOM_COLUMNS
from medval.io import _scan, read_dicom_cohort
from medval.io._header import read_header
from medval.io._phi import PHI_KEYWORDS, TECHNICAL_TEXT_KEYWORDS, technical_text
from medval.io._row import ACQUISITION_KEYWORDS, JOIN_IDENTIFIERS

WriteDicom = Callable[..., pathlib.Path]

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"
MG_STORAGE = "1.2.840.10008.5.1.4.1.1.1.2"

CT = {"KVP": "120", "ConvolutionKernel": "B30f", "Exposure": "250", "CTDIvol": 11.25}
MR = {
    "SOPClassUID": MR_STORAGE,
    "Modality": "MR",
    "Manufacturer": "SIEMENS",
    "ManufacturerModelName": "Skyra",
    "KVP": None,
    "ConvolutionKernel": None,
    "MagneticFieldStrength": "3",
    "SequenceName": "*tfl3d1_16ns",
    "ScanningSequence": ["GR", "IR"],
    "EchoTime": "2.46",
    "RepetitionTime": "2300",
    "BitsStored": 12,
}
DX = {
    "SOPClassUID": DX_STORAGE,
    "Modality": "DX",
    "Manufacturer": "Carestream",
    "ManufacturerModelName": "DRX-1",
    "ConvolutionKernel": None,
    "SliceThickness": None,
    "PixelSpacing": None,
    "ImagerPixelSpacing": ["0.139", "0.139"],
    "KVP": "110",
    "DetectorType": "SCINTILLATOR",
    "ExposureIndex": "412.5",
    "ViewPosition": "PA",
    "PhotometricInterpretation": "MONOCHROME1",
}
MG = {
    "SOPClassUID": MG_STORAGE,
    "Modality": "MG",
    "Manufacturer": "HOLOGIC",
    "ManufacturerModelName": "Selenia",
    "ConvolutionKernel": None,
    "SliceThickness": None,
    "KVP": "29",
    "ViewPosition": "MLO",
    "CompressionForce": "98.5",
    "BodyPartThickness": "52",
    "DetectorType": "DIRECT",
}


def _both(data: bytes) -> tuple[Any, Any]:
    """scan_one by the fast reader, then with the fast reader switched off."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = _scan.scan_one(data, b"salt", {})
        original = _scan.read_header
        _scan.read_header = lambda *a, **k: None  # type: ignore[assignment]
        try:
            slow = _scan.scan_one(data, b"salt", {})
        finally:
            _scan.read_header = original
    return fast, slow


@pytest.mark.parametrize("header", [CT, MR, DX, MG], ids=["CT", "MR", "DX", "MG"])
def test_fast_reader_and_pydicom_agree_per_modality(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom, header: dict[str, Any]
) -> None:
    data = dicom_writer(tmp_path / "x.dcm", **header).read_bytes()
    assert read_header(data, _scan.READ_KEYWORDS) is not None  # FD (CTDIvol) included
    fast, slow = _both(data)
    assert fast == slow
    # The scan row: the Cohort's columns plus the hidden salted join keys and decoded size.
    assert fast[0] is not None
    assert set(fast[0]) == {*DICOM_COLUMNS, *JOIN_IDENTIFIERS, _scan.DECODED_SIZE}


def test_values_per_modality(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    for name, header in {"ct": CT, "mr": MR, "dx": DX, "mg": MG}.items():
        dicom_writer(tmp_path / f"{name}.dcm", **header)
    frame = read_dicom_cohort(tmp_path, salt="s").frame
    assert set(frame.columns) <= COHORT_COLUMNS
    ct, mr, dx, mg = (frame.loc[f"{n}.dcm"] for n in ("ct", "mr", "dx", "mg"))
    assert (ct["kvp"], ct["exposure_mas"], ct["ctdi_vol"]) == (120.0, 250.0, 11.25)
    assert ct["convolution_kernel"] == "B30f" and ct["bits_stored"] == 16.0
    assert (mr["magnetic_field_strength"], mr["echo_time"], mr["repetition_time"]) == (
        3.0,
        2.46,
        2300.0,
    )
    assert (mr["sequence_name"], mr["scanning_sequence"]) == ("*tfl3d1_16ns", "GR/IR")
    assert mr["bits_stored"] == 12.0 and math.isnan(mr["kvp"])
    assert (dx["view_position"], dx["detector_type"], dx["exposure_index"]) == (
        "PA",
        "SCINTILLATOR",
        412.5,
    )
    assert dx["pixel_spacing"] == 0.139 and dx["photometric_interpretation"] == "MONOCHROME1"
    assert (mg["view_position"], mg["compression_force"], mg["body_part_thickness"]) == (
        "MLO",
        98.5,
        52.0,
    )
    for col in ("exposure_mas", "ctdi_vol", "echo_time", "exposure_index", "bits_stored"):
        assert frame[col].dtype == float, col
    assert math.isnan(dx["echo_time"]) and pd.isna(frame.loc["ct.dcm", "sequence_name"])


def test_multi_valued_float_and_missing_values_agree(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom
) -> None:
    cases = {
        "two_ctdi": {"CTDIvol": [9.5, 10.5]},
        "float_nan": {"CTDIvol": float("nan")},
        "empty_text": {**MR, "SequenceName": "", "EchoTime": ""},
        "none": {"BitsStored": None, "Exposure": None},
    }
    for name, header in cases.items():
        fast, slow = _both(dicom_writer(tmp_path / f"{name}.dcm", **header).read_bytes())
        assert fast == slow, name
    row = _both((tmp_path / "two_ctdi.dcm").read_bytes())[0][0]
    assert row["ctdi_vol"] == 9.5
    assert _both((tmp_path / "float_nan.dcm").read_bytes())[0][0]["ctdi_vol"] is None


def test_new_tags_are_technical_not_phi() -> None:
    assert not set(ACQUISITION_KEYWORDS.values()) & set(PHI_KEYWORDS)
    assert set(TECHNICAL_TEXT_KEYWORDS) <= set(ACQUISITION_KEYWORDS.values())
    assert not set(ACQUISITION_KEYWORDS.values()) & {"ProtocolName", "SeriesDescription"}


@pytest.mark.parametrize(
    "value",
    ["Doe^John", "ACC-938170", "20240115", "2024-01-15", "15/01/2024", "me@example.org",
     "x" * 17, "", "   "],
)  # fmt: skip
def test_identifier_like_sequence_names_are_dropped(value: str) -> None:
    assert technical_text(value) is None


@pytest.mark.parametrize("value", ["*tfl3d1_16ns", "*epfid2d1_64", "ep_b1000t", "tse2d1_15"])
def test_sequence_names_are_kept(value: str) -> None:
    assert technical_text(value) == value


def test_no_identifying_value_reaches_the_frame(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom, planted_phi: dict[str, str]
) -> None:
    # An accession number typed into the sequence name must not survive either.
    dicom_writer(tmp_path / "mr.dcm", **{**MR, "SequenceName": "ACC93817"})
    dicom_writer(tmp_path / "dx.dcm", **DX)
    for fast in (True, False):
        original = _scan.read_header
        if not fast:
            _scan.read_header = lambda *a, **k: None  # type: ignore[assignment]
        try:
            frame = read_dicom_cohort(tmp_path, salt="s").frame
        finally:
            _scan.read_header = original
        text = frame.to_csv() + repr(frame)
        for value in [*planted_phi.values(), "PATIENT-0001", "ACC93817", "93817"]:
            assert value not in text, value
        assert pd.isna(frame.loc["mr.dcm", "sequence_name"])
