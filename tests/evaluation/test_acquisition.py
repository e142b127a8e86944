"""Modality-aware acquisition tables, from real DICOM files to the report."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from medval import Predictions, ValidationResult, evaluate
from medval.evaluation._cohort import acquisition_rows
from medval.io import load_cohort
from medval.report import render_html

CLASSES = ("normal", "abnormal")
PHI = {
    "PatientName": "Zebulon^Quixote",
    "PatientBirthDate": "19440229",
    "AccessionNumber": "ACC-93817",
    "InstitutionName": "St Hypothetical Infirmary",
    "StationName": "STATION-QQ",
    "OperatorsName": "Op^Erator",
    "StudyDate": "20240115",
    "DeviceSerialNumber": "SERIAL-44187",
    "StudyDescription": "Secret study 7731",
    "SeriesDescription": "Secret series 8842",
    "ProtocolName": "Protocol of Dr Who",
}
STORAGE = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
}
# modality -> scanners, each (manufacturer, model, header overrides per image i)
SCANNERS: dict[str, list[tuple[str, str, Any]]] = {
    "CT": [
        ("GE", "Revolution", lambda i: {"KVP": "120", "ConvolutionKernel": "STANDARD",
                                        "CTDIvol": 8.0 + i, "Exposure": "200"}),
        ("SIEMENS", "Force", lambda i: {"KVP": str(100 + 20 * (i % 2)), "ConvolutionKernel":
                                        "Br40d", "SliceThickness": "1"}),
    ],
    "MR": [
        ("SIEMENS", "Skyra", lambda i: {"MagneticFieldStrength": "3", "EchoTime": "2.46",
                                        "RepetitionTime": "2300", "SequenceName": "*tfl3d1_16ns",
                                        "ScanningSequence": ["GR", "IR"]}),
        ("Philips", "Ingenia", lambda i: {"MagneticFieldStrength": "1.5", "EchoTime":
                                          str(80 + i), "RepetitionTime": "4000",
                                          "SequenceName": "TSE", "ScanningSequence": "SE"}),
    ],
    "DX": [
        ("Carestream", "DRX-1", lambda i: {"ViewPosition": ["PA", "AP"][i % 2], "KVP": "110",
                                           "ExposureIndex": str(400 + i), "DetectorType":
                                           "SCINTILLATOR",
                                           "PhotometricInterpretation": "MONOCHROME1"}),
    ],
}  # fmt: skip
PER_SCANNER = 8


def _write(path: pathlib.Path, modality: str, maker: str, model: str, n: int, **extra: Any) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = STORAGE[modality]
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = STORAGE[modality], meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.{n + 1}"
    ds.Modality, ds.Manufacturer, ds.ManufacturerModelName = modality, maker, model
    ds.PatientID, ds.PatientSex, ds.PatientAge = f"MRN-{n:06d}", "FM"[n % 2], "058Y"
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    if modality != "DX":
        ds.PixelSpacing, ds.SliceThickness = ["0.7", "0.7"], "2.5"
    else:
        ds.ImagerPixelSpacing = ["0.139", "0.139"]
    pixels = np.zeros((4, 4), np.uint16)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.tobytes()
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> ValidationResult:
    root = tmp_path_factory.mktemp("acq")
    lines = ["case_id,file,label,split"]
    n = 0
    for modality, scanners in SCANNERS.items():
        for maker, model, header in scanners:
            for i in range(PER_SCANNER):
                rel = f"{modality}/{model}/{i}.dcm"
                _write(root / "dicom" / rel, modality, maker, model, n, **header(i))
                lines.append(f"c{n},{rel},{n % 2},{('internal', 'external')[(n // 2) % 2]}")
                n += 1
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    data = load_cohort(root / "dicom", root / "labels.csv", class_names=CLASSES, salt="s")
    ids = data.cohort.index.to_numpy()
    y = data.cohort["label"].to_numpy()
    score = np.clip(0.3 + 0.4 * y + np.random.default_rng(0).normal(0, 0.15, len(y)), 0.01, 0.99)
    preds = Predictions(ids, np.c_[1 - score, score], class_names=CLASSES)
    # Each scanner's free-text values are on PER_SCANNER images: shown, not pooled.
    return evaluate(preds, data, n_resamples=200, seed=0, small_cell=PER_SCANNER)


def _rows(result: ValidationResult, modality: str) -> dict[str, dict[str, Any]]:
    rows = result.tables["cohort.acquisition"]
    return {r["model_name"]: r for r in rows if r["modality"] == modality}


def test_rows_are_grouped_by_modality_and_scanner(result: ValidationResult) -> None:
    rows = result.tables["cohort.acquisition"]
    keys = [(r["modality"], r["manufacturer"], r["model_name"]) for r in rows]
    assert keys == sorted(keys) == [
        ("CT", "GE", "Revolution"), ("CT", "SIEMENS", "Force"), ("DX", "Carestream", "DRX-1"),
        ("MR", "Philips", "Ingenia"), ("MR", "SIEMENS", "Skyra"),
    ]  # fmt: skip
    assert all(r["n_cases"] == PER_SCANNER for r in rows)
    for r in rows:  # every row: how the pixels are encoded
        assert r["bits_stored"] == "12"
        assert r["photometric_interpretation"] in {"MONOCHROME1", "MONOCHROME2"}


def test_mr_rows_have_field_sequence_te_tr_and_no_ct_columns(result: ValidationResult) -> None:
    mr = _rows(result, "MR")
    skyra, ingenia = mr["Skyra"], mr["Ingenia"]
    assert skyra["magnetic_field_strength"] == "3" and ingenia["magnetic_field_strength"] == "1.5"
    assert (skyra["echo_time"], skyra["repetition_time"]) == ("2.46", "2300")
    assert ingenia["echo_time"] == f"80-{80 + PER_SCANNER - 1}"
    assert (skyra["sequence_name"], skyra["scanning_sequence"]) == ("*tfl3d1_16ns", "GR/IR")
    assert (ingenia["sequence_name"], ingenia["scanning_sequence"]) == ("TSE", "SE")
    for row in mr.values():
        assert not {"kvp", "convolution_kernel", "ctdi_vol", "exposure_mas"} & set(row)
        assert not {"view_position", "exposure_index"} & set(row)


def test_ct_rows_have_kvp_kernel_and_dose(result: ValidationResult) -> None:
    ct = _rows(result, "CT")
    assert (ct["Revolution"]["kvp"], ct["Force"]["kvp"]) == ("120", "100-120")
    assert (ct["Revolution"]["convolution_kernel"], ct["Force"]["convolution_kernel"]) == (
        "STANDARD",
        "Br40d",
    )
    assert ct["Revolution"]["ctdi_vol"] == f"8-{8 + PER_SCANNER - 1}"
    assert ct["Revolution"]["exposure_mas"] == "200" and ct["Force"]["exposure_mas"] is None
    assert ct["Force"]["slice_thickness"] == "1"
    for row in ct.values():
        assert not {"magnetic_field_strength", "echo_time", "sequence_name"} & set(row)


def test_dx_rows_have_view_and_exposure_index(result: ValidationResult) -> None:
    dx = _rows(result, "DX")["DRX-1"]
    assert dx["view_position"] == "AP, PA"
    assert dx["exposure_index"] == f"400-{400 + PER_SCANNER - 1}"
    assert (dx["detector_type"], dx["kvp"], dx["pixel_spacing"]) == ("SCINTILLATOR", "110", "0.139")
    assert dx["photometric_interpretation"] == "MONOCHROME1"
    assert "slice_thickness" not in dx and "echo_time" not in dx


def test_report_has_one_table_per_modality(result: ValidationResult) -> None:
    html = render_html(result, result_sha256="0" * 64, generated_at="T")
    assert 'id="acquisition"' in html
    tables = dict(re.findall(r'<table id="acquisition-(\w+)">(.*?)</table>', html, re.S))
    assert set(tables) == {"ct", "mr", "dx"}
    heads = {m: re.findall(r'<th scope="col"[^>]*>([^<]*)</th>', t) for m, t in tables.items()}
    assert {"kVp", "Kernel", "CTDIvol (mGy)"} <= set(heads["ct"])
    assert {"Field strength (T)", "TE (ms)", "TR (ms)", "Sequence name"} <= set(heads["mr"])
    assert not {"kVp", "Kernel", "CTDIvol (mGy)", "View"} & set(heads["mr"])
    assert {"View", "Exposure index", "Detector"} <= set(heads["dx"])
    for head in heads.values():
        assert {"Photometric interpretation", "Bits stored"} <= set(head)
    assert "*tfl3d1_16ns" in tables["mr"] and "2300" in tables["mr"]
    assert "SCINTILLATOR" in tables["dx"] and "Br40d" in tables["ct"]


def test_no_identifying_value_reaches_the_result_or_report(result: ValidationResult) -> None:
    text = result.to_json() + render_html(result, result_sha256="0" * 64, generated_at="T")
    for value in [*PHI.values(), "MRN-0000", "1.2.826.0.1.3680043.8.498.1"]:
        assert value not in text, value


def test_metadata_table_text_numbers_and_other_modalities() -> None:
    cohort = pd.DataFrame(
        {
            "modality": ["MR", "MR", "US", None],
            "manufacturer": ["A", "A", "B", "C"],
            "echo_time": ["90", "100", None, None],  # a metadata table keeps text
            "kvp": [None, None, None, "80"],
            "view_position": [None, None, "TRANSVERSE", None],
        }
    )
    rows = {r["modality"]: r for r in acquisition_rows(cohort) or []}
    assert rows["MR"]["echo_time"] == "90-100" and "kvp" not in rows["MR"]
    assert rows["MR"]["repetition_time"] is None  # an MR column without values
    assert rows["US"]["view_position"] == "TRANSVERSE" and "echo_time" not in rows["US"]
    assert rows["unknown"]["kvp"] == "80"
    assert rows["US"]["bits_stored"] is None
    assert acquisition_rows(cohort.drop(columns="manufacturer")) is None
    no_modality = acquisition_rows(cohort.drop(columns="modality")) or []
    assert [r["modality"] for r in no_modality] == ["unknown"] * 3


def test_a_rare_free_text_value_is_pooled_under_the_small_cell_rule() -> None:
    # A kernel typed on five images ("SITE7-DRSMITH") was printed in the report.
    n_common, n_rare = 20, 5
    cohort = pd.DataFrame(
        {
            "modality": ["CT"] * (n_common + n_rare) + ["MR"] * 12,
            "manufacturer": ["GE"] * (n_common + n_rare) + ["Siemens"] * 12,
            "convolution_kernel": ["STANDARD"] * n_common
            + ["SITE7-DRSMITH"] * n_rare
            + [None] * 12,
            "sequence_name": [None] * (n_common + n_rare) + ["*tfl3d1"] * 11 + ["ODD1"],
        }
    )
    rows = {r["modality"]: r for r in acquisition_rows(cohort) or []}
    assert rows["CT"]["convolution_kernel"] == "STANDARD, other (n<11 each)"
    assert rows["MR"]["sequence_name"] == "*tfl3d1, other (n<11 each)"
    assert "SITE7" not in str(rows) and "ODD1" not in str(rows)
    # The limit is shift.small_cell: counted over the cohort, not per scanner.
    loose = {r["modality"]: r for r in acquisition_rows(cohort, small_cell=5) or []}
    assert loose["CT"]["convolution_kernel"] == "SITE7-DRSMITH, STANDARD"
    assert loose["MR"]["sequence_name"] == "*tfl3d1, other (n<5 each)"
