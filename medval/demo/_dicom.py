"""Build the pydicom dataset of one demo CT image (headers, fake PHI, pixels).

UIDs are derived from the seed with ``pydicom.uid.generate_uid(entropy_srcs=...)``
and all dates and times are fixed, so the same seed gives the same bytes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval.demo._phantom import RESCALE_INTERCEPT, WINDOW
from medval.demo._sites import Site

__all__ = ["PHI_KEYWORDS", "PatientHeader", "image_dataset", "plant_phi", "uid"]

# Keywords whose values are planted fake PHI; io/ must never let them out.
PHI_KEYWORDS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "PatientBirthDate",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "ReferringPhysicianName",
    "OperatorsName",
    "DeviceSerialNumber",
)


@dataclasses.dataclass(frozen=True)
class PatientHeader:
    """Per-patient header values (all fake)."""

    name: str
    patient_id: str
    other_id: str
    accession: str
    study_id: str
    birth_date: str
    study_date: str
    study_time: str
    sex: str
    age: str
    referring: str


def uid(seed: int, *parts: object) -> str:
    """A deterministic DICOM UID from the seed and a description of the object."""
    from pydicom.uid import generate_uid

    sources = ["medval-demo", str(seed), *(str(p) for p in parts)]
    return str(generate_uid(entropy_srcs=sources))


def plant_phi(
    ds: Any,
    header: PatientHeader,
    *,
    institution: str,
    address: str,
    department: str,
    station_name: str,
    operator: str,
    device_serial: str,
) -> None:
    """Set every :data:`PHI_KEYWORDS` value (fake), the times, sex and age on ``ds``."""
    ds.PatientName = header.name
    ds.PatientID = header.patient_id
    ds.OtherPatientIDs = header.other_id
    ds.PatientBirthDate = header.birth_date
    ds.AccessionNumber = header.accession
    ds.StudyID = header.study_id
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, keyword, header.study_date)
    for keyword in ("StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime"):
        setattr(ds, keyword, header.study_time)
    ds.InstitutionName = institution
    ds.InstitutionAddress = address
    ds.InstitutionalDepartmentName = department
    ds.StationName = station_name
    ds.ReferringPhysicianName = header.referring
    ds.OperatorsName = operator
    ds.DeviceSerialNumber = device_serial
    ds.PatientSex = header.sex
    ds.PatientAge = header.age


def image_dataset(
    header: PatientHeader,
    site: Site,
    pixels: NDArray[np.int16],
    *,
    seed: int,
    patient_number: int,
    instance: int,
) -> Any:
    """The ``pydicom.Dataset`` (with file meta) of one image of one patient."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

    sop_uid = UID(uid(seed, "sop", patient_number, instance))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = uid(seed, "study", patient_number)
    ds.SeriesInstanceUID = uid(seed, "series", patient_number)
    ds.FrameOfReferenceUID = uid(seed, "frame", patient_number)
    ds.Modality = "CT"
    ds.StudyDescription = "CT ABDOMEN WITH CONTRAST"
    ds.SeriesDescription = "AXIAL SOFT TISSUE"
    ds.BodyPartExamined = "ABDOMEN"

    plant_phi(
        ds, header, institution=site.institution, address=site.address,
        department=site.department, station_name=site.station_name,
        operator=site.operators[0], device_serial=site.device_serial,
    )  # fmt: skip

    ds.Manufacturer = site.manufacturer
    ds.ManufacturerModelName = site.model_name
    ds.SoftwareVersions = site.software_versions
    ds.KVP = site.kvp
    ds.SliceThickness = site.slice_thickness
    ds.ConvolutionKernel = site.convolution_kernel
    ds.PixelSpacing = [site.pixel_spacing, site.pixel_spacing]
    ds.SeriesNumber = 2
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [-22.4, -22.4, -40.0 - 10.0 * instance]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceLocation = -40.0 - 10.0 * instance

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = RESCALE_INTERCEPT
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = WINDOW[0]
    ds.WindowWidth = WINDOW[1]
    ds.PixelData = pixels.astype("<i2").tobytes()
    return ds
