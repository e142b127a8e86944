"""Tests of the segmentation demo cohort (medval.demo.write_segmentation_cohort)."""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import CTImageStorage

from medval import InputError
from medval.demo import SegCohortInfo, segmentation_cases, write_segmentation_cohort
from medval.demo._seg_cohort import _plan_cases, _write_series
from medval.demo._seg_phantom import LESION_RADIUS_MM, Scanner, synthesize_volume

N = 3  # cases per site: 9 series, 288 files


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> SegCohortInfo:
    return write_segmentation_cohort(tmp_path_factory.mktemp("seg"), seed=0, n_per_site=N)


@pytest.fixture(scope="module")
def rows(cohort: SegCohortInfo) -> list[dict[str, str]]:
    with (cohort.root / "cases.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _series(root: Path, case_id: str) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted((root / "dicom" / case_id).glob("*.dcm"))]


def _volume_by_ipp(series: list[pydicom.Dataset]) -> tuple[np.ndarray, np.ndarray]:
    """(z positions ascending, HU volume) sorted along the slice normal (0, 0, 1)."""
    z = np.array([float(ds.ImagePositionPatient[2]) for ds in series])
    order = np.argsort(z)
    hu = np.stack([series[i].pixel_array * float(series[i].RescaleSlope) for i in order])
    return z[order], hu + float(series[0].RescaleIntercept)


def test_cases_table_and_layout(cohort: SegCohortInfo, rows: list[dict[str, str]]) -> None:
    with (cohort.root / "cases.csv").open(encoding="utf-8") as handle:
        assert handle.readline() == "case_id,split\n"
    assert [r["case_id"] for r in rows] == [
        f"{site}/case-{k:03d}" for site in ("site-a", "site-b", "site-c") for k in range(1, N + 1)
    ]
    assert cohort.n_cases == len(rows) == 3 * N
    for r in rows:
        assert len(list((cohort.root / "dicom" / r["case_id"]).glob("*.dcm"))) == 32
        assert (cohort.root / "masks" / f"{r['case_id']}.npy").is_file()
        site = r["case_id"].split("/")[0]
        expected = {"external"} if site == "site-c" else {"calibration", "internal"}
        assert r["split"] in expected
    for site in ("site-a", "site-b"):
        assert {r["split"] for r in rows if r["case_id"].startswith(site)} == {
            "calibration",
            "internal",
        }
    assert cohort.external_sites == ("site-c",) and cohort.reversed_sites == ("site-b",)


def test_files_are_ct_dicom_with_site_geometry(cohort: SegCohortInfo) -> None:
    geometry = {"site-a": (2.0, 2.0, 0.80), "site-b": (2.0, 2.0, 0.90), "site-c": (2.5, 3.0, 0.98)}
    makers = set()
    for site, (spacing, thickness, pixel) in geometry.items():
        series = _series(cohort.root, f"{site}/case-001")
        ds = series[0]
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == CTImageStorage
        assert ds.Modality == "CT" and ds.PixelRepresentation == 0
        assert ds.pixel_array.dtype == np.uint16 and ds.pixel_array.shape == (64, 64)
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.PixelSpacing] == [pixel, pixel]
        assert float(ds.SliceThickness) == thickness
        assert ds.PatientSex in {"F", "M"} and ds.PatientAge.endswith("Y")
        z, hu = _volume_by_ipp(series)
        np.testing.assert_allclose(np.diff(z), spacing, atol=1e-6)
        assert hu.min() >= -1024 and -1100 < hu[:, 0, 0].mean() < -900  # air in the corner
        assert len({s.SOPInstanceUID for s in series}) == 32
        assert len({s.SeriesInstanceUID for s in series}) == 1
        makers.add((ds.Manufacturer, ds.ManufacturerModelName))
    assert len(makers) == 3


def test_site_b_files_run_from_the_top_down(cohort: SegCohortInfo) -> None:
    for site, descending in (("site-a", False), ("site-b", True), ("site-c", False)):
        series = _series(cohort.root, f"{site}/case-002")  # file names 000..031
        z = np.array([float(ds.ImagePositionPatient[2]) for ds in series])
        assert np.all(np.diff(z) < 0) if descending else np.all(np.diff(z) > 0), site


def test_masks_follow_the_ipp_order(cohort: SegCohortInfo) -> None:
    cases = {c.case_id: c for c in segmentation_cases(seed=0, n_per_site=N)}
    checked = 0
    for case_id, case in cases.items():
        mask = np.load(cohort.root / "masks" / f"{case_id}.npy")
        assert mask.dtype == np.uint8 and mask.shape == (32, 64, 64)
        assert set(np.unique(mask)) <= {0, 1}
        np.testing.assert_array_equal(mask, case.volume.mask)
        if not case.volume.lesions:
            assert mask.sum() == 0
            continue
        z, hu = _volume_by_ipp(_series(cohort.root, case_id))
        np.testing.assert_array_equal(hu, case.volume.hu)  # the files hold this volume
        spacing = case.site.scanner.slice_spacing
        for lesion in case.volume.lesions:
            # The lesion's centre, in IPP-sorted index space, lies inside the mask.
            k = round(lesion.center_mm[0] / spacing)
            iy, ix = (round(c / case.site.scanner.pixel_spacing) for c in lesion.center_mm[1:])
            assert mask[k, iy, ix] == 1, case_id
        # Reverse check at file level: the mask's lowest lesion slice is where
        # the lowest IPP shows it (z ascends with index).
        assert np.all(np.diff(z) > 0)
        checked += 1
    assert checked >= 3


def test_lesion_contrast_is_visible_in_the_files(cohort: SegCohortInfo) -> None:
    case = next(c for c in segmentation_cases(seed=0, n_per_site=N, sites=("site-a",))
                if c.volume.lesions)  # fmt: skip
    _, hu = _volume_by_ipp(_series(cohort.root, case.case_id))
    mask = np.load(cohort.root / "masks" / f"{case.case_id}.npy").astype(bool)
    big = max(case.volume.lesions, key=lambda les: les.n_voxels)
    inside = hu[mask].mean()
    # Hyper- or hypodense: the lesion mean departs from soft tissue (~40-60 HU).
    assert (inside > 60) if big.contrast_hu > 0 else (inside < 35)


def test_phi_is_planted_and_patients_recur(tmp_path: Path, cohort: SegCohortInfo) -> None:
    ds = _series(cohort.root, "site-a/case-001")[0]
    for keyword in cohort.phi_keywords:
        assert str(ds[keyword].value) in cohort.phi_values, keyword
    assert any(v.startswith("ZZFAKE") for v in cohort.phi_values)
    # A larger cohort has patients with two studies (same PatientID, other study UID).
    cases = _plan_cases(0, 30, ("site-a", "site-b"))
    by_patient: dict[str, list[str]] = defaultdict(list)
    for c in cases:
        by_patient[c.header.patient_id].append(c.split)
    repeated = [splits for splits in by_patient.values() if len(splits) > 1]
    assert len(repeated) >= 2
    assert all(len(set(s)) == 1 for s in repeated)  # a patient stays in one split


def test_full_size_plan() -> None:
    plans = _plan_cases(0, 30, None)
    assert len(plans) == 90
    healthy = sum(p.n_lesions == 0 for p in plans)
    assert 0.2 <= healthy / 90 <= 0.25
    assert {p.n_lesions for p in plans} == {0, 1, 2, 3, 4}
    splits = [p.split for p in plans]
    assert splits.count("external") == 30
    assert 20 <= splits.count("calibration") <= 40


def test_lesion_sizes_span_the_bands(cohort: SegCohortInfo) -> None:
    radii = np.array(cohort.lesion_radii_mm)
    assert cohort.n_lesions == radii.size >= 9
    lo, hi = LESION_RADIUS_MM
    # Semi-axes vary by +-20 % around a radius drawn in [lo, hi].
    assert np.all((radii > 0.8 * lo) & (radii < 1.2 * hi))
    assert radii.min() < 3.0 and radii.max() > 7.0  # small and large lesions
    assert cohort.n_healthy >= 1


def test_same_seed_same_bytes(tmp_path: Path, cohort: SegCohortInfo) -> None:
    (again,) = [c for c in segmentation_cases(seed=0, n_per_site=N, sites=("site-c",))
                if c.case_id == "site-c/case-002"]  # fmt: skip
    _write_series(again, tmp_path / "s", 0)
    for file in ("000.dcm", "017.dcm"):
        written = cohort.root / "dicom" / again.case_id / file
        assert (tmp_path / "s" / file).read_bytes() == written.read_bytes()
    other = segmentation_cases(seed=1, n_per_site=2, sites=("site-a",))
    same = segmentation_cases(seed=0, n_per_site=2, sites=("site-a",))
    assert not np.array_equal(other[0].volume.stored, same[0].volume.stored)


def test_existing_output_and_bad_arguments(tmp_path: Path, cohort: SegCohortInfo) -> None:
    with pytest.raises(InputError, match=r"already exists.*overwrite=True"):
        write_segmentation_cohort(cohort.root, n_per_site=2)
    with pytest.raises(InputError, match="n_per_site must be an int of at least 2"):
        write_segmentation_cohort(tmp_path, n_per_site=1)
    with pytest.raises(InputError, match="seed must be a non-negative int"):
        segmentation_cases(seed=-1)
    with pytest.raises(InputError, match="unknown sites \\['site-z'\\]"):
        segmentation_cases(sites=("site-z",))
    scanner = Scanner(1.0, 2.0, 2.0, 1.0, 0.0, 0.5, 5.0)
    with pytest.raises(InputError, match="n_lesions must be 0 to 4"):
        synthesize_volume(np.random.default_rng(0), scanner, n_lesions=5)


def test_mask_digest_is_stable() -> None:
    # SHA-256 of the seed-0 masks of two cases per site: a change means the
    # demo's reference data changed.
    h = hashlib.sha256()
    for case in segmentation_cases(seed=0, n_per_site=2):
        h.update(case.volume.mask.tobytes())
    assert h.hexdigest() == MASKS_SEED0_N2_SHA256


MASKS_SEED0_N2_SHA256 = "7ca33edbb123902afd7bdabfe83f186dcd3602581f04c91aa44dd63e66279ebd"
