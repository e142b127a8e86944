"""The bone-age regression demo cohort: phantom, DX DICOM files, labels, fake PHI."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian

from medval import InputError, io
from medval.demo import (
    RegCohortInfo,
    regression_cases,
    regression_pipeline,
    write_regression_cohort,
)
from medval.demo._reg_phantom import (
    _CARPALS,
    BONE_AGE_RANGE,
    HandAnatomy,
    _maturity,
    draw_anatomy,
    synthesize_hand,
)
from medval.demo._reg_sites import REG_SITES

SMALL = (10, 10, 8)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> RegCohortInfo:
    return write_regression_cohort(tmp_path_factory.mktemp("reg"), seed=0, n_patients=SMALL)


@pytest.fixture(scope="module")
def labels(cohort: RegCohortInfo) -> pd.DataFrame:
    return pd.read_csv(cohort.root / "labels.csv", dtype={"label": str})


@pytest.fixture(scope="module")
def headers(cohort: RegCohortInfo, labels: pd.DataFrame) -> dict[str, pydicom.Dataset]:
    return {f: pydicom.dcmread(cohort.root / "dicom" / f) for f in labels["file"]}


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_labels_table(cohort: RegCohortInfo, labels: pd.DataFrame) -> None:
    with (cohort.root / "labels.csv").open(encoding="utf-8") as handle:
        assert handle.readline() == "case_id,file,label,split\n"
    assert len(labels) == cohort.n_images
    assert labels["case_id"].is_unique
    assert all(re.fullmatch(r"r\d{5}", c) for c in labels["case_id"])
    assert all(re.fullmatch(r"\d{1,3}\.\d", v) for v in labels["label"])  # months, one decimal
    months = labels["label"].astype(float)
    assert months.between(0.0, 240.0).all()
    assert months.mean() == pytest.approx(cohort.label_mean)
    assert months.std(ddof=0) == pytest.approx(cohort.label_sd)
    site = labels["file"].str.split("/").str[0]
    assert set(labels.loc[site == "site-c", "split"]) == {"external"}
    assert set(labels.loc[site != "site-c", "split"]) == {"calibration", "internal"}
    assert labels["split"].value_counts().to_dict() == cohort.split_counts
    assert cohort.external_sites == ("site-c",)
    on_disk = {p.relative_to(cohort.root / "dicom").as_posix()
               for p in (cohort.root / "dicom").rglob("*") if p.is_file()}  # fmt: skip
    assert on_disk == set(labels["file"])


def test_files_are_valid_dx_dicom(
    cohort: RegCohortInfo, headers: dict[str, pydicom.Dataset]
) -> None:
    sizes = {s.folder: s.detector.matrix for s in REG_SITES}
    assert sizes == {"site-a": 80, "site-b": 96, "site-c": 64}
    for file, ds in headers.items():
        site = file.split("/")[0]
        assert (cohort.root / "dicom" / file).read_bytes()[128:132] == b"DICM"
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.SOPClassUID == DigitalXRayImageStorageForPresentation
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert (ds.Modality, ds.BodyPartExamined, ds.ViewPosition) == ("DX", "HAND", "PA")
        expected = "MONOCHROME1" if site == "site-b" else "MONOCHROME2"
        assert ds.PhotometricInterpretation == expected
        assert (ds.Rows, ds.Columns) == (sizes[site], sizes[site])
        assert (ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (16, 12, 0)
        pixels = ds.pixel_array
        assert pixels.dtype == np.uint16
        assert pixels.max() <= 4095
    sops = [ds.SOPInstanceUID for ds in headers.values()]
    assert len(set(sops)) == len(sops)


def test_sites_have_distinct_scanners(headers: dict[str, pydicom.Dataset]) -> None:
    keywords = ("Manufacturer", "ManufacturerModelName", "SoftwareVersions", "DetectorType",
                "InstitutionName", "ImagerPixelSpacing")  # fmt: skip
    signatures: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for file, ds in headers.items():
        signatures[file.split("/")[0]].add(tuple(str(ds.data_element(k).value) for k in keywords))
    assert sorted(signatures) == ["site-a", "site-b", "site-c"]
    assert all(len(s) == 1 for s in signatures.values())
    for column in zip(*(next(iter(s)) for s in signatures.values()), strict=True):
        assert len(set(column)) == 3


def test_medval_io_scans_every_file(cohort: RegCohortInfo, labels: pd.DataFrame) -> None:
    # Numeric labels are not io.load_cohort's yet (class names); the scan and a
    # pandas join stand in for it.
    scan = io.read_dicom_cohort(cohort.root / "dicom", salt="test")
    assert scan.exclusions == ()
    frame = scan.frame.loc[labels["file"]]
    assert set(frame["modality"]) == {"DX"}
    assert frame.groupby("manufacturer")["photometric_interpretation"].unique().map(
        tuple
    ).to_dict() == {
        "Aurelian Imaging": ("MONOCHROME2",),
        "Borealis Medical": ("MONOCHROME1",),
        "Cygnet Radiologic": ("MONOCHROME2",),
    }
    assert set(frame["sex"]) == {"F", "M"}
    assert frame["age_band"].notna().all()
    assert set(frame["pixel_spacing"]) == {3.0, 2.5, 3.75}


def test_numpy_path_equals_the_dicom_path(cohort: RegCohortInfo) -> None:
    cases = regression_cases(seed=0, n_patients=SMALL)
    pipeline = regression_pipeline()
    dataset = io.DicomDataset(
        [cohort.root / "dicom" / c.file for c in cases], [c.case_id for c in cases],
        pipeline=pipeline,
    )  # fmt: skip
    for i, case in enumerate(cases):
        from_file = dataset[i]["image"].numpy()
        in_memory = pipeline.apply(case.frame())
        assert from_file.shape == in_memory.shape == (1, 64, 64)
        assert from_file.dtype == in_memory.dtype == np.float32
        assert np.array_equal(from_file, in_memory), case.file
    # MONOCHROME1 files are inverted on the way: bone is bright at every site.
    b = next(i for i, c in enumerate(cases) if c.site.folder == "site-b")
    assert cases[b].frame().monochrome1
    assert np.array_equal(
        regression_pipeline()(4095.0 - cases[b].image.stored.astype(float)),
        dataset[b]["image"].numpy(),
    )


def test_patients_share_split_label_and_identity(
    cohort: RegCohortInfo, labels: pd.DataFrame, headers: dict[str, pydicom.Dataset]
) -> None:
    by_patient = labels.groupby(labels["file"].str.rsplit("/", n=1).str[0])
    sizes = by_patient.size()
    assert set(sizes) == {1, 2}
    assert len(sizes) == cohort.n_patients == sum(SMALL)
    for _, rows in by_patient:
        assert rows["split"].nunique() == rows["label"].nunique() == 1
        assert len({headers[f].PatientID for f in rows["file"]}) == 1
        assert len({headers[f].StudyInstanceUID for f in rows["file"]}) == 1
    assert len({ds.PatientID for ds in headers.values()}) == cohort.n_patients


def test_planted_phi_is_present_and_distinctive(
    cohort: RegCohortInfo, headers: dict[str, pydicom.Dataset]
) -> None:
    assert "PatientName" in cohort.phi_keywords
    assert "PatientAge" not in cohort.phi_keywords
    planted = set()
    for file, ds in headers.items():
        raw = (cohort.root / "dicom" / file).read_bytes()
        for keyword in cohort.phi_keywords:
            value = str(ds.data_element(keyword).value)
            assert len(value) >= 8, (keyword, value)
            assert value.encode() in raw
            planted.add(value)
        assert str(ds.PatientName).startswith("ZZFAKE")
        assert re.fullmatch(r"BAMRN\d{8}", ds.PatientID)
        assert re.fullmatch(r"\d{3}[MY]", ds.PatientAge)
    assert planted == set(cohort.phi_values)
    every_path = [p.relative_to(cohort.root).as_posix() for p in cohort.root.rglob("*")]
    for value in cohort.phi_values:
        assert not any(value in p for p in every_path)


def test_ages_are_paediatric_and_near_the_bone_age() -> None:
    cases = regression_cases(seed=0, n_patients=(40, 0, 0))
    chrono = np.array([c.chronological_age for c in cases])
    bone = np.array([c.bone_age for c in cases])
    label = np.array([c.label for c in cases])
    assert chrono.min() >= 14 and chrono.max() <= 210
    assert BONE_AGE_RANGE[0] <= bone.min() and bone.max() <= BONE_AGE_RANGE[1]
    assert np.mean(np.abs(bone - chrono)) < 15
    assert np.mean(np.abs(label - bone)) < 6
    for case in cases:
        age = case.header.age
        months = int(age[:3]) * (12 if age.endswith("Y") else 1)
        assert 0 <= case.chronological_age - months < 12


def test_same_seed_is_byte_identical(tmp_path: Path) -> None:
    first = write_regression_cohort(tmp_path / "a", seed=7, n_patients=(3, 3, 2))
    second = write_regression_cohort(tmp_path / "b", seed=7, n_patients=(3, 3, 2))
    digests = _digests(first.root)
    assert len(digests) == first.n_images + 1
    assert digests == _digests(second.root)
    assert first.phi_values == second.phi_values
    third = _digests(write_regression_cohort(tmp_path / "c", seed=8, n_patients=(3, 3, 2)).root)
    assert third["labels.csv"] != digests["labels.csv"]
    common = [f for f in set(third) & set(digests) if f.endswith(".dcm")]
    assert common
    assert all(third[f] != digests[f] for f in common)


def test_a_site_does_not_depend_on_the_others() -> None:
    alone = regression_cases(seed=2, n_patients=(0, 0, 3))
    together = [c for c in regression_cases(seed=2, n_patients=(2, 1, 3)) if c.split == "external"]
    assert [c.file for c in alone] == [c.file for c in together]
    assert all(
        np.array_equal(a.image.stored, b.image.stored) for a, b in zip(alone, together, strict=True)
    )


def test_overwrite(tmp_path: Path) -> None:
    info = write_regression_cohort(tmp_path, seed=3, n_patients=(2, 2, 2))
    before = _digests(tmp_path)
    with pytest.raises(InputError, match="already exists; choose an empty folder"):
        write_regression_cohort(tmp_path, seed=3, n_patients=(2, 2, 2))
    again = write_regression_cohort(tmp_path, seed=3, n_patients=(2, 2, 2), overwrite=True)
    assert _digests(tmp_path) == before
    assert again == info


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed(tmp_path: Path, seed: object) -> None:
    with pytest.raises(InputError, match="seed must be a non-negative int"):
        write_regression_cohort(tmp_path, seed=seed, n_patients=(2, 2, 2))  # type: ignore[arg-type]


@pytest.mark.parametrize("n_patients", [(5, 5), (5, 1, 5), (5, 5, 2.0), 10])
def test_bad_n_patients(tmp_path: Path, n_patients: object) -> None:
    with pytest.raises(InputError, match=r"n_patients must be 3 ints of at least 2"):
        write_regression_cohort(tmp_path, n_patients=n_patients)  # type: ignore[arg-type]


def test_in_memory_cases_need_one_patient() -> None:
    with pytest.raises(InputError, match=r"n_patients must be 3 ints of at least 0"):
        regression_cases(n_patients=(0, 0, 0))


def _anatomy(bone_age: float) -> HandAnatomy:
    return HandAnatomy(bone_age=bone_age, size=1.0, spread=1.0, tissue=1.0)


def test_phantom_is_seeded_and_maturity_cues_move_with_age() -> None:
    detector = REG_SITES[0].detector
    anatomy = draw_anatomy(np.random.default_rng(0), 100.0)
    a = synthesize_hand(np.random.default_rng(5), anatomy, detector)
    b = synthesize_hand(np.random.default_rng(5), anatomy, detector)
    assert np.array_equal(a.stored, b.stored)
    assert a.stored.dtype == np.uint16 and a.stored.shape == (80, 80)
    ages = np.linspace(*BONE_AGE_RANGE, 35)
    cues = [_maturity(float(age)) for age in ages]
    for name, sign in (("scale", 1), ("epiphysis", 1), ("density", 1), ("gap", -1)):
        assert (sign * np.diff([c[name] for c in cues]) >= 0).all(), name
    assert _maturity(100.0)["gap"] == pytest.approx(0.045)  # open plates
    assert _maturity(204.0)["gap"] == 0.0  # fused
    carpals = [sum(age > appears for appears, _ in _CARPALS) for age in (12, 40, 70, 120)]
    assert carpals == [2, 3, 6, 8]


def test_phantom_monochrome1_stores_the_inverse() -> None:
    det = REG_SITES[1].detector
    plain = dataclasses.replace(det, monochrome1=False)
    inverted = synthesize_hand(np.random.default_rng(2), _anatomy(60.0), det, degradation="")
    upright = synthesize_hand(np.random.default_rng(2), _anatomy(60.0), plain, degradation="")
    assert np.array_equal(inverted.stored.astype(int), 4095 - upright.stored.astype(int))


def test_phantom_degradations() -> None:
    detector = REG_SITES[0].detector
    kinds = {
        synthesize_hand(np.random.default_rng(i), _anatomy(50.0), detector).degradation
        for i in range(60)
    }
    assert kinds == {"", "blur", "apron", "underexposed"}
    with pytest.raises(InputError, match="degradation must be one of"):
        synthesize_hand(np.random.default_rng(0), _anatomy(50.0), detector, degradation="fog")


def test_import_is_light() -> None:
    code = (
        "import sys, medval.demo\n"
        "assert callable(medval.demo.write_regression_cohort)\n"
        "heavy = [m for m in ('torch', 'pydicom') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
