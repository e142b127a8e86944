"""Write the synthetic three-site CT cohort of the demo as real DICOM files.

The cohort has a binary finding (a small round lesion of raised density),
patient-level labels, several images per patient, realistic but fake PHI in
every header (so leak tests have something distinctive to look for), two
junk files to exercise exclusion handling, and a ``labels.csv`` with a
patient-level split. Sites 1 and 2 are the development sites; site 3 is an
out-of-distribution external site. Output is byte-identical for a seed.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medval._errors import InputError
from medval.demo._dicom import PHI_KEYWORDS, PatientHeader, image_dataset, uid
from medval.demo._phantom import IMAGE_SIZE, WINDOW, synthesize
from medval.demo._sites import SITES, Site

__all__ = ["DemoCohortInfo", "write_cohort"]

CLASS_NAMES = ("no lesion", "lesion")
_PREVALENCE = 0.38
_SPLIT_FRACTIONS = (("train", 0.6), ("calibration", 0.2), ("internal", 0.2))
_IMAGES_PER_PATIENT = (np.array([1, 2, 3, 4]), np.array([0.4, 0.3, 0.2, 0.1]))
_FIRST_STUDY_DATE = dt.date(2019, 1, 7)

_SURNAMES = (
    "WHITLOCK", "ABERNATHY", "QUILLFEATHER", "MONTGOMERY", "HOLLOWAY", "FAIRWEATHER",
    "LINDQVIST", "OKONKWO", "VASQUEZ", "TANAKAWA", "BRANDT", "KOWALCZYK", "DELACROIX",
    "MACALLISTER", "PETROVSKA", "ONYEKACHI", "HALVORSEN", "RAMASWAMY", "ESPINOZA",
    "GALLAGHER", "NAKAMURO", "WESTERGAARD", "FITZHUGH", "BELLAMY", "CASTELLANO",
    "DUBROVNIK", "EKWUEME", "FONTAINE", "GRISWOLD", "HARGREAVES", "IVANOVA", "JAROSZ",
    "KINGSLEY", "LOVELACE", "MARCHETTI", "NORDSTROM", "OYELARAN", "PENHALIGON",
    "ROCHEFORT", "SANTORINI",
)  # fmt: skip
_GIVEN = (
    "Alicia", "Bernard", "Celestine", "Dmitri", "Evangeline", "Fernando", "Gwendolyn",
    "Horatio", "Ingrid", "Jasper", "Katarina", "Leopold", "Magdalena", "Nikolai",
    "Ottilie", "Percival", "Rosamund", "Sebastian", "Theodora", "Ulysses", "Valentina",
    "Wilhelmina", "Xavier", "Yolanda", "Zachariah", "Annika", "Benedikt", "Clementine",
    "Desmond", "Eleonora", "Florian", "Genevieve", "Humphrey", "Isadora", "Joaquin",
    "Kassandra", "Lysander", "Mirabel", "Nathaniel", "Octavia",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class DemoCohortInfo:
    """What :func:`write_cohort` wrote.

    Attributes
    ----------
    root : pathlib.Path
        The output folder; images under ``root / "dicom"``, labels in
        ``root / "labels.csv"``.
    n_images, n_patients : int
        Labelled images and patients (junk files not counted).
    label_counts : Mapping[str, tuple[int, int]]
        Per split (``train``, ``calibration``, ``internal``, ``external``),
        the number of images with label 0 and with label 1.
    window : tuple[float, float]
        VOI window (center, width) in HU recommended for the model input.
    image_size : tuple[int, int]
        Rows and columns of every image.
    class_names : tuple[str, str]
        Names of label 0 and label 1.
    phi_keywords : tuple[str, ...]
        DICOM keywords whose values were planted as fake PHI.
    phi_values : frozenset[str]
        Every planted PHI value as written (each at least 8 characters), for
        leak tests to search outputs for.
    junk_files : tuple[str, ...]
        Files under ``root / "dicom"`` (POSIX-relative) that are not usable
        images and are not in ``labels.csv``.
    site_folders : tuple[str, ...]
        Top-level folders under ``root / "dicom"``, one per site.
    external_sites : tuple[str, ...]
        The site folders of the external (out-of-distribution) sites.
    """

    root: Path
    n_images: int
    n_patients: int
    label_counts: Mapping[str, tuple[int, int]] = dataclasses.field(hash=False)
    window: tuple[float, float]
    image_size: tuple[int, int]
    class_names: tuple[str, str]
    phi_keywords: tuple[str, ...]
    phi_values: frozenset[str]
    junk_files: tuple[str, ...]
    site_folders: tuple[str, ...]
    external_sites: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class _Patient:
    number: int
    site: Site
    label: int
    split: str
    n_images: int
    header: PatientHeader


def _check_args(seed: object, n_patients: object) -> tuple[int, int, int]:
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed must be a non-negative int; got {seed!r}.")
    if (
        not isinstance(n_patients, tuple | list)
        or len(n_patients) != len(SITES)
        or not all(isinstance(n, int | np.integer) and not isinstance(n, bool) for n in n_patients)
        or min(n_patients) < 1
    ):
        raise InputError(
            f"n_patients must be {len(SITES)} positive ints (patients per site); "
            f"got {n_patients!r}."
        )
    return (int(n_patients[0]), int(n_patients[1]), int(n_patients[2]))


def _site_labels_and_splits(
    rng: np.random.Generator, n: int, external: bool
) -> tuple[list[int], list[str]]:
    labels = np.zeros(n, dtype=int)
    labels[: round(_PREVALENCE * n)] = 1
    labels = rng.permutation(labels)
    splits = ["external"] * n
    if not external:
        # Stratified by label so every split keeps the prevalence.
        for value in (0, 1):
            members = rng.permutation(np.flatnonzero(labels == value))
            n_train = round(_SPLIT_FRACTIONS[0][1] * members.size)
            n_cal = round(_SPLIT_FRACTIONS[1][1] * members.size)
            for rank, i in enumerate(members):
                name = "train" if rank < n_train else "calibration"
                splits[i] = "internal" if rank >= n_train + n_cal else name
    return labels.tolist(), splits


def _make_patients(seed: int, counts: tuple[int, int, int]) -> list[_Patient]:
    total = sum(counts)
    ids_rng = np.random.default_rng([seed, 1])
    numbers = ids_rng.choice(90_000_000, size=3 * total, replace=False) + 10_000_000
    names = ids_rng.choice(len(_SURNAMES) * len(_GIVEN) * 26, size=total, replace=False)
    patients: list[_Patient] = []
    number = 0
    for site_index, (site, n) in enumerate(zip(SITES, counts, strict=True)):
        site_rng = np.random.default_rng([seed, 2, site_index])
        labels, splits = _site_labels_and_splits(site_rng, n, site.external)
        for label, split in zip(labels, splits, strict=True):
            k = number
            number += 1
            rng = np.random.default_rng([seed, 3, number])
            age = (
                int(rng.uniform(90, 99))
                if rng.uniform() < 0.05
                else int(np.clip(rng.normal(60.0, 15.0), 19, 89))
            )
            study = _FIRST_STUDY_DATE + dt.timedelta(days=int(rng.integers(0, 1000)))
            month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
            birth_year = study.year - age - int((month, day) > (study.month, study.day))
            surname, rest = divmod(int(names[k]), len(_GIVEN) * 26)
            given, initial = divmod(rest, 26)
            header = PatientHeader(
                name=f"ZZFAKE{_SURNAMES[surname]}^{_GIVEN[given]}^{chr(ord('A') + initial)}",
                patient_id=f"MRN{numbers[3 * k]:08d}",
                other_id=f"XREF{numbers[3 * k + 1]:08d}",
                accession=f"ACC{numbers[3 * k + 2]:09d}",
                study_id=f"STU{(numbers[3 * k] * 7 + 13) % 10**8:08d}",
                birth_date=f"{birth_year:04d}{month:02d}{day:02d}",
                study_date=study.strftime("%Y%m%d"),
                study_time=f"{int(rng.integers(7, 19)):02d}{int(rng.integers(0, 60)):02d}"
                f"{int(rng.integers(0, 60)):02d}",
                sex="F" if rng.uniform() < 0.5 else "M",
                age=f"{age:03d}Y",
                referring=site.referring[int(rng.integers(len(site.referring)))],
            )
            n_images = int(rng.choice(_IMAGES_PER_PATIENT[0], p=_IMAGES_PER_PATIENT[1]))
            patients.append(_Patient(number, site, label, split, n_images, header))
    return patients


def _encode(ds: Any) -> bytes:
    import pydicom

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _prepare_root(root: Path, overwrite: bool) -> Path:
    dicom_dir = root / "dicom"
    existing = [p for p in (dicom_dir, root / "labels.csv") if p.exists()]
    if existing and not overwrite:
        raise InputError(
            f"{existing[0]} already exists; choose an empty folder or pass overwrite=True."
        )
    if dicom_dir.exists():
        shutil.rmtree(dicom_dir)
    dicom_dir.mkdir(parents=True)
    return dicom_dir


def write_cohort(
    root: Path | str,
    *,
    seed: int = 0,
    n_patients: tuple[int, int, int] = (150, 150, 100),
    overwrite: bool = False,
) -> DemoCohortInfo:
    """Write the synthetic multi-scanner CT cohort as DICOM files plus labels.

    Parameters
    ----------
    root : pathlib.Path or str
        Output folder (created). Images go to
        ``root/dicom/site-<k>/p<NNNN>/img-<i>.dcm``; labels to
        ``root/labels.csv`` with columns ``case_id,file,label,split``.
    seed : int, default 0
        Seed of every random choice. The same seed writes byte-identical
        files.
    n_patients : tuple of 3 ints, default (150, 150, 100)
        Patients at site 1, site 2 and the external site 3. Each patient has
        1 to 4 images (64 x 64, int16, CT Image Storage).
    overwrite : bool, default False
        Replace an existing ``root/dicom`` folder and ``root/labels.csv``.

    Returns
    -------
    DemoCohortInfo

    Raises
    ------
    InputError
        If ``seed`` or ``n_patients`` is invalid, or the output exists and
        ``overwrite`` is False.

    Notes
    -----
    Labels are patient-level (prevalence 38 %, every image of a diseased
    patient shows a lesion). Splits are patient-level and stratified by
    label: sites 1 and 2 are split 60/20/20 into ``train``, ``calibration``
    and ``internal``; site 3 is ``external``. Two junk files are added: a
    text file and a DICOM file truncated inside its pixel data.
    """
    counts = _check_args(seed, n_patients)
    root = Path(root)
    dicom_dir = _prepare_root(root, overwrite)
    patients = _make_patients(int(seed), counts)

    rows: list[tuple[str, str, int, str]] = []
    label_counts = {name: [0, 0] for name in ("train", "calibration", "internal", "external")}
    phi_values: set[str] = set()
    truncated: bytes | None = None
    junk_trunc = ""
    for patient in patients:
        folder = f"{patient.site.folder}/p{patient.number:04d}"
        (dicom_dir / folder).mkdir(parents=True)
        for image in range(1, patient.n_images + 1):
            pixels = synthesize(
                np.random.default_rng([int(seed), 4, patient.number, image]),
                lesion=bool(patient.label),
                acquisition=patient.site.acquisition,
            )
            ds = image_dataset(
                patient.header, patient.site, pixels, seed=int(seed),
                patient_number=patient.number, instance=image,
            )  # fmt: skip
            phi_values.update(str(ds.data_element(k).value) for k in PHI_KEYWORDS)
            file = f"{folder}/img-{image}.dcm"
            (dicom_dir / file).write_bytes(_encode(ds))
            rows.append((f"c{len(rows) + 1:05d}", file, patient.label, patient.split))
            label_counts[patient.split][patient.label] += 1
        if truncated is None and not patient.site.external:
            ds.SOPInstanceUID = uid(int(seed), "sop", patient.number, "truncated")
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.InstanceNumber = patient.n_images + 1
            full = _encode(ds)
            truncated = full[: len(full) - pixels.nbytes // 2]
            junk_trunc = f"{folder}/img-trunc.dcm"
            (dicom_dir / junk_trunc).write_bytes(truncated)

    junk_text = f"{SITES[1].folder}/notes.txt"
    (dicom_dir / junk_text).parent.mkdir(parents=True, exist_ok=True)
    (dicom_dir / junk_text).write_text(
        "Scanner QA notes: phantom passed, table calibrated.\nNot an image.\n", encoding="utf-8"
    )
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("case_id", "file", "label", "split"))
        writer.writerows(rows)

    return DemoCohortInfo(
        root=root,
        n_images=len(rows),
        n_patients=len(patients),
        label_counts={k: (v[0], v[1]) for k, v in label_counts.items()},
        window=WINDOW,
        image_size=(IMAGE_SIZE, IMAGE_SIZE),
        class_names=CLASS_NAMES,
        phi_keywords=PHI_KEYWORDS,
        phi_values=frozenset(phi_values),
        junk_files=tuple(sorted(j for j in (junk_text, junk_trunc) if j)),
        site_folders=tuple(site.folder for site in SITES),
        external_sites=tuple(site.folder for site in SITES if site.external),
    )
