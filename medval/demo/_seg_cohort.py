"""The segmentation demo cohort: three scanners, DICOM series, masks, splits.

Sites ``site-a`` and ``site-b`` are the development sites; ``site-c`` is out
of distribution: noisier, lower contrast, and anisotropic, with slices every
2.5 mm while ``SliceThickness`` says 3.0 (an overlapping reconstruction),
where the other sites have 2.0 mm for both. ``site-b`` writes its files from
the top down (``000.dcm`` is the highest slice), so a reader must sort by
``ImagePositionPatient``. Some patients have two studies (two cases with one
``PatientID``). Every header carries fake PHI planted as in the
classification demo (:mod:`medval.demo._dicom`), so leak tests can search
outputs for it. The same seed writes the same bytes.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from medval._errors import InputError
from medval.demo._cohort import _GIVEN, _SURNAMES
from medval.demo._dicom import PHI_KEYWORDS, PatientHeader, uid
from medval.demo._seg_phantom import (
    RESCALE_INTERCEPT,
    VOLUME_SHAPE,
    PhantomVolume,
    Scanner,
    synthesize_volume,
)

__all__ = ["SEG_SITES", "SegCase", "SegCohortInfo", "SegSite", "segmentation_cases",
           "write_segmentation_cohort"]  # fmt: skip

DEFAULT_N_PER_SITE = 30
_HEALTHY_FRACTION = 0.22
_LESION_COUNTS = (np.array([1, 2, 3, 4]), np.array([0.38, 0.31, 0.18, 0.13]))
_SECOND_STUDY = 0.2  # chance that a patient's next case is a second study
_FIRST_STUDY_DATE = dt.date(2020, 3, 2)


@dataclasses.dataclass(frozen=True)
class SegSite:
    """One fictional hospital, its CT scanner and the way it writes files."""

    folder: str
    external: bool
    reverse_files: bool
    manufacturer: str
    model_name: str
    institution: str
    address: str
    department: str
    station_name: str
    device_serial: str
    operator: str
    referring: tuple[str, ...]
    scanner: Scanner


SEG_SITES: tuple[SegSite, ...] = (
    SegSite(
        "site-a", False, False, "Halcyon Radiologic", "HR-Spectra 128",
        "Larkspur Valley Hospital", "77 Larkspur Lane, Fakeville, ZZ 00011",
        "Larkspur Abdominal Imaging", "LVH-CT-ALPHA", "HRSN-60418827",
        "ZZTECH^Annelise^Corbridge", ("ZZDOCTOR^Evander^Thistlewood",),
        Scanner(pixel_spacing=0.80, slice_spacing=2.0, slice_thickness=2.0,
                scale=1.0, offset=0.0, blur_mm=0.6, noise_sd=10.0),
    ),
    SegSite(
        "site-b", False, True, "Meridian Tomography", "MT Axis 64",
        "Gullhaven Infirmary", "3 Quayside Row, Mocktown, ZZ 00012",
        "Gullhaven CT Department", "GHI-CTROOM2", "MTSN-91736254",
        "ZZTECH^Bronwen^Aldercott", ("ZZDOCTOR^Leocadia^Marchbank",),
        Scanner(pixel_spacing=0.90, slice_spacing=2.0, slice_thickness=2.0,
                scale=0.95, offset=10.0, blur_mm=0.8, noise_sd=14.0),
    ),
    SegSite(
        "site-c", True, False, "Quorvex Imaging", "QX-Vantage 16",
        "Thornbury Cottage Hospital", "12 Millstream Close, Pretendburg, ZZ 00013",
        "Thornbury Radiology", "TCH-CT-OLD1", "QXSN-22950471",
        "ZZTECH^Crispin^Wolverdale", ("ZZDOCTOR^Ottoline^Ravensworth",),
        Scanner(pixel_spacing=0.98, slice_spacing=2.5, slice_thickness=3.0,
                scale=0.7, offset=30.0, blur_mm=1.0, noise_sd=30.0),
    ),
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SegCase:
    """One synthesized case (a CT series) before it is written.

    ``case_id`` is ``"<site>/<case>"``, the series folder relative to
    ``root/dicom``; ``split`` is ``calibration``, ``internal`` or
    ``external``; ``volume.mask`` is in ascending-z order.
    """

    case_id: str
    site: SegSite
    split: str
    number: int
    header: PatientHeader
    volume: PhantomVolume


@dataclasses.dataclass(frozen=True)
class SegCohortInfo:
    """What :func:`write_segmentation_cohort` wrote.

    Attributes
    ----------
    root : pathlib.Path
        Series under ``root/dicom/<site>/<case>/<slice:03d>.dcm``, masks under
        ``root/masks/<site>/<case>.npy``, splits in ``root/cases.csv``.
    n_cases, n_patients : int
        Cases (series) and distinct patients.
    sites, external_sites, reversed_sites : tuple[str, ...]
        Site folders; those out of distribution; those whose file names run
        from the top slice down.
    n_lesions, n_healthy : int
        Planted lesions over all cases; cases without any lesion.
    lesion_radii_mm : tuple[float, ...]
        Equivalent-sphere radius of every planted lesion.
    phi_keywords : tuple[str, ...]
        DICOM keywords whose values are planted fake PHI.
    phi_values : frozenset[str]
        Every planted PHI value as written, for leak tests.
    """

    root: Path
    n_cases: int
    n_patients: int
    sites: tuple[str, ...]
    external_sites: tuple[str, ...]
    reversed_sites: tuple[str, ...]
    n_lesions: int
    n_healthy: int
    lesion_radii_mm: tuple[float, ...]
    phi_keywords: tuple[str, ...]
    phi_values: frozenset[str]


def _check(seed: object, n_per_site: object) -> tuple[int, int]:
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed must be a non-negative int; got {seed!r}.")
    n = DEFAULT_N_PER_SITE if n_per_site is None else n_per_site
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 2:
        raise InputError(f"n_per_site must be an int of at least 2 (or None); got {n!r}.")
    return int(seed), int(n)


def _header(seed: int, patient: int, study: int, site: SegSite, names: Any) -> PatientHeader:
    rng = np.random.default_rng([seed, 31, patient])  # same for both studies
    age = int(np.clip(rng.normal(58.0, 14.0), 21, 88))
    first = _FIRST_STUDY_DATE + dt.timedelta(days=int(rng.integers(0, 700)))
    month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
    birth_year = first.year - age - int((month, day) > (first.month, first.day))
    surname, rest = divmod(int(names[patient]), len(_GIVEN) * 26)
    given, initial = divmod(rest, 26)
    sex = "F" if rng.uniform() < 0.5 else "M"
    study_rng = np.random.default_rng([seed, 32, patient, study])
    date = first + dt.timedelta(days=study * int(study_rng.integers(90, 400)))
    n = 10_000_000 + (patient * 7_919 + seed * 104_729) % 80_000_000
    return PatientHeader(
        name=f"ZZFAKE{_SURNAMES[surname]}^{_GIVEN[given]}^{chr(ord('A') + initial)}",
        patient_id=f"SEGMRN{n:08d}",
        other_id=f"SEGXREF{n + 13:08d}",
        accession=f"SEGACC{n:08d}{study}",
        study_id=f"SEGSTU{(n * 7 + study) % 10**8:08d}",
        birth_date=f"{birth_year:04d}{month:02d}{day:02d}",
        study_date=date.strftime("%Y%m%d"),
        study_time=f"{int(study_rng.integers(7, 19)):02d}{int(study_rng.integers(0, 60)):02d}00",
        sex=sex,
        age=f"{age + (date.year - first.year):03d}Y",
        referring=site.referring[0],
    )


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Everything about a case except its voxels."""

    case_id: str
    site: SegSite
    split: str
    number: int
    header: PatientHeader
    n_lesions: int
    rng_key: tuple[int, ...]


def _plan_cases(seed: int, n: int, sites: tuple[str, ...] | None) -> list[_Plan]:
    known = {s.folder: s for s in SEG_SITES}
    wanted = tuple(known) if sites is None else tuple(sites)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise InputError(f"unknown sites {unknown}; valid sites are {sorted(known)}.")
    names = np.random.default_rng([seed, 30]).choice(
        len(_SURNAMES) * len(_GIVEN) * 26, size=len(SEG_SITES) * n, replace=False
    )
    plans: list[_Plan] = []
    for site_index, site in enumerate(SEG_SITES):
        if site.folder not in wanted:
            continue
        rng = np.random.default_rng([seed, 33, site_index])
        # Patients: a case starts a new patient or is the last one's second study.
        patient_of: list[int] = []
        study_of: list[int] = []
        for k in range(n):
            second = k > 0 and study_of[-1] == 0 and rng.uniform() < _SECOND_STUDY
            patient_of.append(patient_of[-1] if second else site_index * n + k)
            study_of.append(1 if second else 0)
        patients = sorted(set(patient_of))
        order = rng.permutation(len(patients))
        n_cal = min(max(round(len(patients) / 2), 1), len(patients) - 1)
        calibration = {patients[i] for i in order[:n_cal]}
        lesion_counts = np.where(
            rng.permutation(n) < round(_HEALTHY_FRACTION * n),
            0,
            rng.choice(_LESION_COUNTS[0], size=n, p=_LESION_COUNTS[1]),
        )
        for k in range(n):
            split = "external" if site.external else (
                "calibration" if patient_of[k] in calibration else "internal")  # fmt: skip
            plans.append(
                _Plan(
                    case_id=f"{site.folder}/case-{k + 1:03d}",
                    site=site,
                    split=split,
                    number=site_index * n + k,
                    header=_header(seed, patient_of[k], study_of[k], site, names),
                    n_lesions=int(lesion_counts[k]),
                    rng_key=(seed, 34, site_index, k),
                )
            )
    return plans


def segmentation_cases(
    *, seed: int = 0, n_per_site: int | None = None, sites: tuple[str, ...] | None = None
) -> list[SegCase]:
    """Synthesize the cohort's cases in memory (what the writer writes).

    Parameters
    ----------
    seed : int, default 0
        Seed of every random choice.
    n_per_site : int, optional
        Cases per site (default 30).
    sites : tuple of str, optional
        Site folders to synthesize (default all three); a site's cases do
        not depend on which other sites are requested.

    Returns
    -------
    list of SegCase
        Ordered by site, then case number.

    Raises
    ------
    InputError
        If an argument is invalid or a site is unknown.
    """
    seed, n = _check(seed, n_per_site)
    return [
        SegCase(
            p.case_id,
            p.site,
            p.split,
            p.number,
            p.header,
            synthesize_volume(
                np.random.default_rng(list(p.rng_key)), p.site.scanner, n_lesions=p.n_lesions
            ),
        )
        for p in _plan_cases(seed, n, sites)
    ]


def _series_dataset(case: SegCase, seed: int) -> Any:
    """The per-series part of every slice's dataset (slice fields set later)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    h, site, sc = case.header, case.site, case.site.scanner
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.StudyInstanceUID = uid(seed, "seg-study", h.patient_id, h.accession)
    ds.SeriesInstanceUID = uid(seed, "seg-series", case.number)
    ds.FrameOfReferenceUID = uid(seed, "seg-frame", case.number)
    ds.Modality = "CT"
    ds.StudyDescription = "CT ABDOMEN LIVER PROTOCOL"
    ds.SeriesDescription = "AXIAL PORTAL VENOUS"
    ds.BodyPartExamined = "ABDOMEN"
    # Fake PHI, planted as in the classification demo (see PHI_KEYWORDS).
    ds.PatientName, ds.PatientID, ds.OtherPatientIDs = h.name, h.patient_id, h.other_id
    ds.PatientBirthDate, ds.AccessionNumber, ds.StudyID = h.birth_date, h.accession, h.study_id
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, keyword, h.study_date)
    for keyword in ("StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime"):
        setattr(ds, keyword, h.study_time)
    ds.InstitutionName, ds.InstitutionAddress = site.institution, site.address
    ds.InstitutionalDepartmentName, ds.StationName = site.department, site.station_name
    ds.ReferringPhysicianName, ds.OperatorsName = h.referring, site.operator
    ds.DeviceSerialNumber = site.device_serial
    ds.PatientSex, ds.PatientAge = h.sex, h.age
    ds.Manufacturer, ds.ManufacturerModelName = site.manufacturer, site.model_name
    ds.KVP = 120.0
    ds.SliceThickness = sc.slice_thickness
    ds.SpacingBetweenSlices = sc.slice_spacing
    ds.PixelSpacing = [sc.pixel_spacing, sc.pixel_spacing]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SeriesNumber = 3
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = VOLUME_SHAPE[1:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = RESCALE_INTERCEPT, 1, "HU"
    ds.WindowCenter, ds.WindowWidth = 40, 400
    return ds


def _write_series(case: SegCase, folder: Path, seed: int) -> set[str]:
    import pydicom

    ds = _series_dataset(case, seed)
    sc = case.site.scanner
    nz, ny, nx = VOLUME_SHAPE
    x0, y0 = -(nx - 1) * sc.pixel_spacing / 2, -(ny - 1) * sc.pixel_spacing / 2
    z0 = -200.0 + 10.0 * (case.number % 7)
    folder.mkdir(parents=True)
    for k in range(nz):  # k: volume index, ascending z
        file_index = nz - 1 - k if case.site.reverse_files else k
        z = round(z0 + k * sc.slice_spacing, 3)
        ds.SOPInstanceUID = uid(seed, "seg-sop", case.number, k)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = file_index + 1
        ds.ImagePositionPatient = [round(x0, 3), round(y0, 3), z]
        ds.SliceLocation = z
        ds.PixelData = case.volume.stored[k].astype("<u2").tobytes()
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        (folder / f"{file_index:03d}.dcm").write_bytes(buffer.getvalue())
    return {str(ds.data_element(k).value) for k in PHI_KEYWORDS}


def write_segmentation_cohort(
    root: Path | str,
    *,
    seed: int = 0,
    n_per_site: int | None = None,
    overwrite: bool = False,
) -> SegCohortInfo:
    """Write the synthetic three-scanner CT segmentation cohort.

    Parameters
    ----------
    root : pathlib.Path or str
        Output folder (created). Series go to
        ``root/dicom/<site>/<case>/<slice:03d>.dcm`` (uint16 stored values,
        ``RescaleIntercept`` -1024), reference masks to
        ``root/masks/<site>/<case>.npy`` (uint8 (z, y, x), index 0 = lowest
        ``ImagePositionPatient`` z), splits to ``root/cases.csv`` with columns
        ``case_id,split``; ``case_id`` is ``<site>/<case>``.
    seed : int, default 0
        Seed of every random choice; the same seed writes the same bytes.
    n_per_site : int, optional
        Cases per site (default 30: 90 cases, 2880 files, 46 MB, about 19 s on one core).
    overwrite : bool, default False
        Replace existing ``dicom``, ``masks`` and ``cases.csv``.

    Returns
    -------
    SegCohortInfo

    Raises
    ------
    InputError
        If an argument is invalid, or the output exists and ``overwrite`` is
        False.

    Notes
    -----
    Volumes are 32 x 64 x 64; about 22 % of cases per site have no lesion,
    the others 1 to 4 lesions of 2-12 mm radius. Sites A and B split their
    patients 50/50 into ``calibration`` and ``internal`` (both studies of a
    patient in the same split); site C is ``external``.
    """
    seed, n = _check(seed, n_per_site)
    root = Path(root)
    outputs = [root / "dicom", root / "masks", root / "cases.csv"]
    existing = [p for p in outputs if p.exists()]
    if existing and not overwrite:
        raise InputError(
            f"{existing[0].name} already exists in the output folder; choose an empty folder "
            "or pass overwrite=True."
        )
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    cases = segmentation_cases(seed=seed, n_per_site=n)
    phi: set[str] = set()
    for case in cases:
        phi |= _write_series(case, root / "dicom" / case.case_id, seed)
        mask_path = root / "masks" / f"{case.case_id}.npy"
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(mask_path, case.volume.mask, allow_pickle=False)
    with (root / "cases.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("case_id", "split"))
        writer.writerows((c.case_id, c.split) for c in cases)
    lesions = [les for c in cases for les in c.volume.lesions]
    return SegCohortInfo(
        root=root,
        n_cases=len(cases),
        n_patients=len({c.header.patient_id for c in cases}),
        sites=tuple(s.folder for s in SEG_SITES),
        external_sites=tuple(s.folder for s in SEG_SITES if s.external),
        reversed_sites=tuple(s.folder for s in SEG_SITES if s.reverse_files),
        n_lesions=len(lesions),
        n_healthy=sum(not c.volume.lesions for c in cases),
        lesion_radii_mm=tuple(les.radius_mm for les in lesions),
        phi_keywords=PHI_KEYWORDS,
        phi_values=frozenset(phi),
    )
