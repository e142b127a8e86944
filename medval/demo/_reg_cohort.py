"""The bone-age regression demo cohort: hand radiographs from three sites as DX DICOM.

Each patient has a chronological age, a bone age near it (the phantom's
skeletal maturity, :mod:`medval.demo._reg_phantom`) and a reading of that
bone age (the label: bone age plus reader variability, in months, one
decimal). About a fifth of the patients have a second image of the same
hand (a repeat exposure, same label), so errors cluster by patient. Sites A
and B split their patients 50/50 into ``calibration`` and ``internal``;
site C is ``external``. Every header carries fake PHI planted as in the
classification demo (:func:`medval.demo._dicom.plant_phi`). The same seed
writes the same bytes.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from medval._errors import InputError
from medval.demo._cohort import _GIVEN, _SURNAMES, _encode, _prepare_root
from medval.demo._dicom import PHI_KEYWORDS, PatientHeader, plant_phi, uid
from medval.demo._reg_phantom import (
    BONE_AGE_RANGE,
    MAX_STORED,
    HandAnatomy,
    HandImage,
    draw_anatomy,
    synthesize_hand,
)
from medval.demo._reg_sites import REG_SITES, RegSite

__all__ = ["RegCase", "RegCohortInfo", "regression_cases", "write_regression_cohort"]

DEFAULT_N_PATIENTS = (125, 125, 85)
READER_SD = 4.0  # months: reader variability of a bone-age reading
_SECOND_IMAGE = 0.2
_FIRST_STUDY_DATE = dt.date(2021, 2, 1)
_DAYS_PER_MONTH = 365.25 / 12.0


@dataclasses.dataclass(frozen=True)
class RegCase:
    """One synthesized image before it is written.

    Attributes
    ----------
    case_id : str
        ``r<NNNNN>``, the labels-table id.
    file : str
        ``<site>/p<NNNN>/img-<k>.dcm``, relative to ``root/dicom``.
    site : RegSite
    split : str
        ``calibration``, ``internal`` or ``external``.
    patient, instance : int
        Patient number (both images of a patient share it) and image number.
    header : PatientHeader
        Fake PHI and demographics.
    chronological_age, bone_age, label : float
        Months: the age at the study, the phantom's bone age, and its
        reading (the label).
    anatomy : HandAnatomy
    image : HandImage
    """

    case_id: str
    file: str
    site: RegSite
    split: str
    patient: int
    instance: int
    header: PatientHeader
    chronological_age: float
    bone_age: float
    label: float
    anatomy: HandAnatomy
    image: HandImage

    def frame(self) -> Any:
        """The image as :func:`medval.io.read_image` decodes its DICOM file (a ``Frame``).

        Stored values are modality values (no rescale); the stored range is
        0-4095 (BitsStored 12), which the pipeline's MONOCHROME1 inversion
        uses.
        """
        from medval.io import Frame

        pixels = self.image.stored.astype(np.float64)
        return Frame(pixels, self.site.detector.monochrome1, (0.0, float(MAX_STORED)),
                     (float(MAX_STORED + 1) / 2.0, float(MAX_STORED + 1)))  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RegCohortInfo:
    """What :func:`write_regression_cohort` wrote.

    Attributes
    ----------
    root : pathlib.Path
        Images under ``root/dicom/<site>/p<NNNN>/img-<k>.dcm``, labels in
        ``root/labels.csv`` (``case_id,file,label,split``).
    n_images, n_patients : int
    split_counts : dict of str to int
        Images per split.
    label_mean, label_sd : float
        Of all labels (months; sd with ddof 0).
    sites, external_sites : tuple[str, ...]
        Site folders; those out of distribution.
    degraded : frozenset[str]
        Case ids of the images with a degradation (blur, lead apron,
        underexposure): their bone age is harder to read.
    phi_keywords : tuple[str, ...]
        DICOM keywords whose values are planted fake PHI.
    phi_values : frozenset[str]
        Every planted PHI value as written, for leak tests.
    """

    root: Path
    n_images: int
    n_patients: int
    split_counts: dict[str, int] = dataclasses.field(hash=False)
    label_mean: float
    label_sd: float
    sites: tuple[str, ...]
    external_sites: tuple[str, ...]
    degraded: frozenset[str]
    phi_keywords: tuple[str, ...]
    phi_values: frozenset[str]


def _check(seed: object, n_patients: object, minimum: int) -> tuple[int, tuple[int, ...]]:
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed must be a non-negative int; got {seed!r}.")
    if (
        not isinstance(n_patients, tuple | list)
        or len(n_patients) != len(REG_SITES)
        or not all(isinstance(n, int | np.integer) and not isinstance(n, bool) for n in n_patients)
        or min(n_patients) < minimum
        or sum(n_patients) < 1
    ):
        raise InputError(
            f"n_patients must be {len(REG_SITES)} ints of at least {minimum}, one patient or more "
            f"in all (patients at sites A, B and C); got {n_patients!r}."
        )
    return int(seed), tuple(int(n) for n in n_patients)


def _age_string(months: float) -> str:
    """DICOM AS: months below two years, else whole years."""
    return f"{int(months):03d}M" if months < 24 else f"{int(months // 12):03d}Y"


def _header(seed: int, number: int, site: RegSite, name: int, months: float) -> PatientHeader:
    rng = np.random.default_rng([seed, 51, number])
    study = _FIRST_STUDY_DATE + dt.timedelta(days=int(rng.integers(0, 900)))
    birth = study - dt.timedelta(days=round(months * _DAYS_PER_MONTH))
    surname, rest = divmod(name, len(_GIVEN) * 26)
    given, initial = divmod(rest, 26)
    n = 10_000_000 + (number * 7_919 + seed * 104_729 + 4_111) % 80_000_000
    return PatientHeader(
        name=f"ZZFAKE{_SURNAMES[surname]}^{_GIVEN[given]}^{chr(ord('A') + initial)}",
        patient_id=f"BAMRN{n:08d}",
        other_id=f"BAXREF{n + 17:08d}",
        accession=f"BAACC{n:08d}",
        study_id=f"BASTU{(n * 11 + 3) % 10**8:08d}",
        birth_date=birth.strftime("%Y%m%d"),
        study_date=study.strftime("%Y%m%d"),
        study_time=f"{int(rng.integers(8, 18)):02d}{int(rng.integers(0, 60)):02d}"
        f"{int(rng.integers(0, 60)):02d}",
        sex="F" if rng.uniform() < 0.5 else "M",
        age=_age_string(months),
        referring=site.referring[int(rng.integers(len(site.referring)))],
    )


def regression_cases(
    *, seed: int = 0, n_patients: tuple[int, int, int] = DEFAULT_N_PATIENTS
) -> list[RegCase]:
    """Synthesize the cohort's images in memory (what the writer writes).

    Parameters
    ----------
    seed : int, default 0
        Seed of every random choice.
    n_patients : tuple of 3 ints, default (125, 125, 85)
        Patients at sites A, B and C; 0 leaves a site out (a site's cases do
        not depend on the other sites' counts).

    Returns
    -------
    list of RegCase
        Ordered by site, patient, image.

    Raises
    ------
    InputError
        If ``seed`` or ``n_patients`` is invalid.
    """
    seed, counts = _check(seed, n_patients, 0)
    names = np.random.default_rng([seed, 50]).choice(
        len(_SURNAMES) * len(_GIVEN) * 26, size=sum(counts), replace=False
    )
    cases: list[RegCase] = []
    first = 0
    for site_index, (site, n) in enumerate(zip(REG_SITES, counts, strict=True)):
        order = np.random.default_rng([seed, 52, site_index]).permutation(n)
        calibration = set(order[: n // 2].tolist())
        for k in range(n):
            number = 1000 * site_index + k + 1
            rng = np.random.default_rng([seed, 53, site_index, k])
            chrono = float(rng.uniform(14.0, 210.0))
            bone_age = float(np.clip(chrono + rng.normal(0.0, 10.0), *BONE_AGE_RANGE))
            label = round(float(np.clip(bone_age + rng.normal(0.0, READER_SD), 0.0, 240.0)), 1)
            anatomy = draw_anatomy(rng, bone_age)
            n_images = 2 if rng.uniform() < _SECOND_IMAGE else 1
            split = "external" if site.external else (
                "calibration" if k in calibration else "internal")  # fmt: skip
            header = _header(seed, number, site, int(names[first + k]), chrono)
            for image in range(1, n_images + 1):
                pixels = synthesize_hand(
                    np.random.default_rng([seed, 54, site_index, k, image]), anatomy, site.detector
                )
                file = f"{site.folder}/p{number:04d}/img-{image}.dcm"
                cases.append(RegCase(
                    case_id="", file=file, site=site, split=split, patient=number,
                    instance=image, header=header, chronological_age=chrono,
                    bone_age=bone_age, label=label, anatomy=anatomy, image=pixels,
                ))  # fmt: skip
        first += n
    return [dataclasses.replace(c, case_id=f"r{i:05d}") for i, c in enumerate(cases, start=1)]


def _dx_dataset(case: RegCase, seed: int) -> Any:
    """The pydicom dataset (with file meta) of one DX image."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian

    site, det = case.site, case.site.detector
    sop = UID(uid(seed, "reg-sop", case.patient, case.instance))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = uid(seed, "reg-study", case.patient)
    ds.SeriesInstanceUID = uid(seed, "reg-series", case.patient)
    ds.Modality = "DX"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.StudyDescription = "XR HAND LEFT BONE AGE"
    ds.SeriesDescription = "PA LEFT HAND"
    ds.BodyPartExamined = "HAND"
    ds.ViewPosition = "PA"
    ds.ImageLaterality = "L"
    ds.PatientOrientation = ["R", "H"]
    h = case.header
    plant_phi(
        ds, h, institution=site.institution, address=site.address,
        department=site.department, station_name=site.station_name, operator=site.operator,
        device_serial=site.device_serial,
    )  # fmt: skip
    ds.Manufacturer, ds.ManufacturerModelName = site.manufacturer, site.model_name
    ds.SoftwareVersions = site.software_versions
    ds.DetectorType = site.detector_type
    ds.KVP = site.kvp
    ds.Exposure = 2
    ds.ImagerPixelSpacing = [det.pixel_spacing, det.pixel_spacing]
    ds.PixelSpacing = [det.pixel_spacing, det.pixel_spacing]
    ds.SeriesNumber, ds.InstanceNumber = 1, case.instance
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if det.monochrome1 else "MONOCHROME2"
    ds.Rows, ds.Columns = case.image.stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.WindowCenter, ds.WindowWidth = (MAX_STORED + 1) // 2, MAX_STORED + 1
    ds.PixelData = case.image.stored.astype("<u2").tobytes()
    return ds


def write_regression_cohort(
    root: Path | str,
    *,
    seed: int = 0,
    n_patients: tuple[int, int, int] = DEFAULT_N_PATIENTS,
    overwrite: bool = False,
) -> RegCohortInfo:
    """Write the synthetic three-site bone-age cohort as DX DICOM files plus labels.

    Parameters
    ----------
    root : pathlib.Path or str
        Output folder (created). Images go to
        ``root/dicom/<site>/p<NNNN>/img-<k>.dcm`` (Digital X-Ray, for
        presentation; uint16 stored values, 12 bits; 80 x 80 at site A,
        96 x 96 MONOCHROME1 at site B, 64 x 64 at site C); labels to
        ``root/labels.csv`` with columns ``case_id,file,label,split``, the
        label a bone age in months with one decimal.
    seed : int, default 0
        Seed of every random choice; the same seed writes the same bytes.
    n_patients : tuple of 3 ints, default (125, 125, 85)
        Patients at sites A, B and C, at least 2 each (about 150, 150 and
        100 images: 4 MB, a few seconds).
    overwrite : bool, default False
        Replace an existing ``root/dicom`` folder and ``root/labels.csv``.

    Returns
    -------
    RegCohortInfo

    Raises
    ------
    InputError
        If ``seed`` or ``n_patients`` is invalid, or the output exists and
        ``overwrite`` is False.
    """
    seed, counts = _check(seed, n_patients, 2)
    root = Path(root)
    dicom_dir = _prepare_root(root, overwrite)
    cases = regression_cases(seed=seed, n_patients=counts)  # type: ignore[arg-type]
    phi: set[str] = set()
    for case in cases:
        path = dicom_dir / case.file
        path.parent.mkdir(parents=True, exist_ok=True)
        ds = _dx_dataset(case, seed)
        path.write_bytes(_encode(ds))
        phi.update(str(ds.data_element(k).value) for k in PHI_KEYWORDS)
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("case_id", "file", "label", "split"))
        writer.writerows((c.case_id, c.file, f"{c.label:.1f}", c.split) for c in cases)
    labels = np.array([c.label for c in cases])
    return RegCohortInfo(
        root=root,
        n_images=len(cases),
        n_patients=len({c.patient for c in cases}),
        split_counts={
            s: sum(c.split == s for c in cases) for s in ("calibration", "internal", "external")
        },
        label_mean=float(labels.mean()),
        label_sd=float(labels.std()),
        sites=tuple(s.folder for s in REG_SITES),
        external_sites=tuple(s.folder for s in REG_SITES if s.external),
        degraded=frozenset(c.case_id for c in cases if c.image.degradation),
        phi_keywords=PHI_KEYWORDS,
        phi_values=frozenset(phi),
    )
