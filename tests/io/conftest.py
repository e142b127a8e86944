"""Helpers for the io tests: small real DICOM files written with pydicom."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

# Distinctive PHI values planted in every test file, so leaks are easy to grep.
PHI_VALUES: dict[str, str] = {
    "PatientName": "Zebulon^Quixote",
    "PatientBirthDate": "19440229",
    "OtherPatientIDs": "OTHERID-771",
    "AccessionNumber": "ACC-93817",
    "InstitutionName": "St Hypothetical Infirmary",
    "InstitutionAddress": "12 Nowhere Lane",
    "StationName": "CTSTATION-QQ",
    "ReferringPhysicianName": "Dr^Referrer",
    "PerformingPhysicianName": "Dr^Performer",
    "OperatorsName": "Op^Erator",
    "StudyDate": "20240115",
    "SeriesDate": "20240115",
    "AcquisitionDate": "20240115",
    "ContentDate": "20240115",
    "StudyTime": "101112",
    "StudyID": "STUDYID-5521",
    "DeviceSerialNumber": "SERIAL-44187",
    "InstitutionalDepartmentName": "Dept-Of-Secrets",
}

WriteDicom = Callable[..., pathlib.Path]


def write_dicom(
    path: pathlib.Path,
    *,
    pixels: np.ndarray | None = None,
    patient_id: str | None = "PATIENT-0001",
    phi: bool = True,
    **header: Any,
) -> pathlib.Path:
    """Write a small uncompressed CT-like file; ``header`` sets or (None) removes keywords."""
    if pixels is None:
        pixels = np.arange(64, dtype=np.int16).reshape(8, 8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.111"
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.ManufacturerModelName = "Revolution"
    ds.SoftwareVersions = "1.0"
    ds.BodyPartExamined = "CHEST"
    ds.KVP = "120"
    ds.SliceThickness = "2.5"
    ds.PixelSpacing = ["0.7", "0.8"]
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientSex = "F"
    ds.PatientAge = "063Y"
    if patient_id is not None:
        ds.PatientID = patient_id
    if phi:
        for keyword, value in PHI_VALUES.items():
            setattr(ds, keyword, value)
    arr = np.asarray(pixels)
    ds.Rows, ds.Columns = arr.shape[-2:]
    if arr.ndim == 3:
        ds.NumberOfFrames = arr.shape[0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = ds.BitsAllocated
    ds.HighBit = ds.BitsAllocated - 1
    ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
    ds.RescaleSlope = "1"
    ds.RescaleIntercept = "0"
    ds.PixelData = arr.tobytes()
    for keyword, value in header.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def dicom_writer() -> WriteDicom:
    """The :func:`write_dicom` helper."""
    return write_dicom


def testdata(name: str) -> pathlib.Path:
    """A file bundled with pydicom (a missing one fails: the tests need no download)."""
    from pydicom.data import get_testdata_file

    try:
        found = get_testdata_file(name, download=False)
    except Exception:  # pragma: no cover - depends on the pydicom build
        found = None
    if found is None:
        pytest.fail(f"pydicom test file {name!r} is not bundled with this pydicom build")
    return pathlib.Path(str(found))


@pytest.fixture
def planted_phi() -> dict[str, str]:
    """The PHI values :func:`write_dicom` plants by default."""
    return dict(PHI_VALUES)


@pytest.fixture
def bundled() -> Callable[[str], pathlib.Path]:
    """Look up a pydicom bundled test file (fails when absent)."""
    return testdata
