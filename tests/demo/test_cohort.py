"""Tests of the synthetic DICOM cohort writer (medval.demo.write_cohort)."""

from __future__ import annotations

import csv
import hashlib
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

from medval import InputError
from medval.demo import DemoCohortInfo, write_cohort

SMALL = (6, 5, 4)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> DemoCohortInfo:
    return write_cohort(tmp_path_factory.mktemp("cohort"), seed=0)


@pytest.fixture(scope="module")
def rows(cohort: DemoCohortInfo) -> list[dict[str, str]]:
    with (cohort.root / "labels.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def headers(cohort: DemoCohortInfo, rows: list[dict[str, str]]) -> dict[str, pydicom.Dataset]:
    return {r["file"]: pydicom.dcmread(cohort.root / "dicom" / r["file"]) for r in rows}


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_labels_table(cohort: DemoCohortInfo, rows: list[dict[str, str]]) -> None:
    with (cohort.root / "labels.csv").open(encoding="utf-8") as handle:
        assert handle.readline() == "case_id,file,label,split\n"
    assert len(rows) == cohort.n_images
    ids = [r["case_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"c\d{5}", i) for i in ids)
    assert {r["label"] for r in rows} == {"0", "1"}
    assert {r["split"] for r in rows} == {"train", "calibration", "internal", "external"}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        counts[r["split"]][int(r["label"])] += 1
        assert (cohort.root / "dicom" / r["file"]).is_file()
    assert {k: tuple(v) for k, v in counts.items()} == dict(cohort.label_counts)
    assert cohort.n_patients == 400
    assert 600 <= cohort.n_images <= 1000


def test_files_are_valid_ct_dicom(
    cohort: DemoCohortInfo, headers: dict[str, pydicom.Dataset]
) -> None:
    for file, ds in headers.items():
        raw = (cohort.root / "dicom" / file).read_bytes()
        assert raw[128:132] == b"DICM", file
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPClassUID == CTImageStorage
        assert ds.SOPClassUID == CTImageStorage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.Modality == "CT"
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert (ds.Rows, ds.Columns) == cohort.image_size == (64, 64)
        assert (ds.BitsAllocated, ds.PixelRepresentation) == (16, 1)
        assert (float(ds.RescaleIntercept), float(ds.RescaleSlope)) == (-1024.0, 1.0)
        assert (float(ds.WindowCenter), float(ds.WindowWidth)) == cohort.window
        assert ds.PatientSex in {"F", "M"}
        assert re.fullmatch(r"\d{3}Y", ds.PatientAge)
    pixels = next(iter(headers.values())).pixel_array
    assert pixels.dtype == np.int16
    assert pixels.shape == (64, 64)


def test_uids_unique_and_valid(headers: dict[str, pydicom.Dataset]) -> None:
    sops = [ds.SOPInstanceUID for ds in headers.values()]
    assert len(set(sops)) == len(sops)
    for ds in headers.values():
        for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            assert UID(ds.data_element(keyword).value).is_valid


def test_sites_have_distinct_scanners(
    headers: dict[str, pydicom.Dataset], rows: list[dict[str, str]], cohort: DemoCohortInfo
) -> None:
    keywords = ("Manufacturer", "ManufacturerModelName", "KVP", "SliceThickness",
                "ConvolutionKernel", "SoftwareVersions", "InstitutionName")  # fmt: skip
    signatures: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for file, ds in headers.items():
        signatures[file.split("/")[0]].add(tuple(str(ds.data_element(k).value) for k in keywords))
    assert sorted(signatures) == list(cohort.site_folders) == ["site-1", "site-2", "site-3"]
    assert all(len(s) == 1 for s in signatures.values())
    per_site = [next(iter(s)) for s in signatures.values()]
    for column in zip(*per_site, strict=True):
        assert len(set(column)) == 3
    assert cohort.external_sites == ("site-3",)
    for r in rows:
        assert (r["split"] == "external") == r["file"].startswith("site-3/")


def test_paths_are_not_identifying(cohort: DemoCohortInfo, rows: list[dict[str, str]]) -> None:
    for r in rows:
        assert re.fullmatch(r"site-\d/p\d{4}/img-\d\.dcm", r["file"]), r["file"]
    every_path = [p.relative_to(cohort.root).as_posix() for p in cohort.root.rglob("*")]
    for value in cohort.phi_values:
        assert not any(value in p for p in every_path)


def test_patients_and_split_are_patient_level(
    headers: dict[str, pydicom.Dataset], rows: list[dict[str, str]]
) -> None:
    by_patient: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        by_patient[r["file"].rsplit("/", 1)[0]].append(r)
    sizes = [len(v) for v in by_patient.values()]
    assert min(sizes) == 1
    assert max(sizes) == 4
    assert sum(s > 1 for s in sizes) >= 50
    for members in by_patient.values():
        assert len({r["split"] for r in members}) == 1
        assert len({r["label"] for r in members}) == 1
        assert len({headers[r["file"]].PatientID for r in members}) == 1
        assert len({headers[r["file"]].StudyInstanceUID for r in members}) == 1
    mrns = {headers[v[0]["file"]].PatientID for v in by_patient.values()}
    assert len(mrns) == len(by_patient)
    splits = defaultdict(list)
    for members in by_patient.values():
        splits[members[0]["split"]].append(int(members[0]["label"]))
    n_dev = sum(len(splits[s]) for s in ("train", "calibration", "internal"))
    assert n_dev == 300
    assert len(splits["external"]) == 100
    assert len(splits["train"]) == pytest.approx(0.6 * n_dev, abs=2)
    assert len(splits["calibration"]) == pytest.approx(0.2 * n_dev, abs=2)
    assert len(splits["internal"]) == pytest.approx(0.2 * n_dev, abs=2)
    prevalence = np.mean([lab for labs in splits.values() for lab in labs])
    assert 0.35 <= prevalence <= 0.40
    for labels in splits.values():
        assert 0.3 <= np.mean(labels) <= 0.45


def test_junk_files(cohort: DemoCohortInfo, rows: list[dict[str, str]]) -> None:
    assert cohort.junk_files == ("site-1/p0001/img-trunc.dcm", "site-2/notes.txt")
    listed = {r["file"] for r in rows}
    assert not listed & set(cohort.junk_files)
    with pytest.raises(InvalidDicomError, match="File is missing DICOM File Meta"):
        pydicom.dcmread(cohort.root / "dicom" / "site-2" / "notes.txt")
    truncated = pydicom.dcmread(cohort.root / "dicom" / "site-1" / "p0001" / "img-trunc.dcm")
    with pytest.raises(ValueError, match="less than expected"):
        _ = truncated.pixel_array
    on_disk = {p.relative_to(cohort.root / "dicom").as_posix()
               for p in (cohort.root / "dicom").rglob("*") if p.is_file()}  # fmt: skip
    assert on_disk == listed | set(cohort.junk_files)


def test_planted_phi_is_distinctive(
    cohort: DemoCohortInfo, headers: dict[str, pydicom.Dataset]
) -> None:
    assert "PatientName" in cohort.phi_keywords
    assert "PatientAge" not in cohort.phi_keywords
    planted = set()
    for ds in headers.values():
        for keyword in cohort.phi_keywords:
            value = str(ds.data_element(keyword).value)
            assert len(value) >= 8, (keyword, value)
            planted.add(value)
        assert str(ds.PatientName).startswith("ZZFAKE")
        assert re.fullmatch(r"MRN\d{8}", ds.PatientID)
        assert re.fullmatch(r"ACC\d+", ds.AccessionNumber)
    assert planted == set(cohort.phi_values)
    assert min(len(v) for v in cohort.phi_values) >= 8
    names = {str(ds.PatientName) for ds in headers.values()}
    assert len(names) == cohort.n_patients
    ages = [int(ds.PatientAge[:3]) for ds in headers.values()]
    assert max(ages) >= 90
    assert min(ages) < 40
    assert {ds.PatientSex for ds in headers.values()} == {"F", "M"}


def test_same_seed_is_byte_identical(tmp_path: Path) -> None:
    first = write_cohort(tmp_path / "a", seed=7, n_patients=SMALL)
    second = write_cohort(tmp_path / "b", seed=7, n_patients=SMALL)
    digests = _digests(first.root)
    assert len(digests) == first.n_images + 3  # labels.csv and two junk files
    assert digests == _digests(second.root)
    assert first.phi_values == second.phi_values


def test_different_seed_differs(tmp_path: Path) -> None:
    first = _digests(write_cohort(tmp_path / "a", seed=1, n_patients=SMALL).root / "dicom")
    second = _digests(write_cohort(tmp_path / "b", seed=2, n_patients=SMALL).root / "dicom")
    common = set(first) & set(second)
    assert common
    changed = [f for f in common if f.endswith(".dcm") and first[f] != second[f]]
    assert len(changed) == sum(f.endswith(".dcm") for f in common)


def test_overwrite(tmp_path: Path) -> None:
    info = write_cohort(tmp_path, seed=3, n_patients=SMALL)
    before = _digests(tmp_path)
    with pytest.raises(InputError, match="already exists; choose an empty folder"):
        write_cohort(tmp_path, seed=3, n_patients=SMALL)
    again = write_cohort(tmp_path, seed=3, n_patients=SMALL, overwrite=True)
    assert _digests(tmp_path) == before
    assert again == info


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed(tmp_path: Path, seed: object) -> None:
    with pytest.raises(InputError, match="seed must be a non-negative int"):
        write_cohort(tmp_path, seed=seed, n_patients=SMALL)  # type: ignore[arg-type]


@pytest.mark.parametrize("n_patients", [(5, 5), (5, 0, 5), (5, 5, 2.0), 10])
def test_bad_n_patients(tmp_path: Path, n_patients: object) -> None:
    with pytest.raises(InputError, match="n_patients must be 3 positive ints"):
        write_cohort(tmp_path, n_patients=n_patients)  # type: ignore[arg-type]


def test_import_is_light() -> None:
    code = (
        "import sys, medval.demo\n"
        "heavy = [m for m in ('torch', 'pydicom') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(medval.demo.write_cohort)\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
