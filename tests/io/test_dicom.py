"""Scanning DICOM folders: rows, exclusions, PHI, manifest."""

from __future__ import annotations

import hashlib
import math
import pathlib
import shutil
from collections.abc import Callable

import numpy as np
import pytest

from medval._errors import DataError, InputError
from medval._types import COHORT_COLUMNS
from medval.io import MAX_PIXEL_BYTES, SCAN_COLUMNS, read_dicom_cohort

Bundled = Callable[[str], pathlib.Path]
WriteDicom = Callable[..., pathlib.Path]


def _reasons(scan: object) -> dict[str, str]:
    return {e.file: e.reason for e in scan.exclusions}  # type: ignore[attr-defined]


@pytest.fixture
def mixed_dir(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> pathlib.Path:
    root = tmp_path / "dicom"
    dicom_writer(root / "a" / "good1.dcm", patient_id="P1")
    dicom_writer(root / "a" / "good2.dcm", patient_id="P2", PatientAge="092Y", PatientSex="M")
    dicom_writer(root / "b" / "nopid.dcm", patient_id=None)
    dicom_writer(root / "b" / "nopixels.dcm", PixelData=None)
    dicom_writer(root / "b" / "norows.dcm", Rows=None)
    dicom_writer(root / "b" / "nosop.dcm", SOPClassUID=None, Modality=None)
    full = dicom_writer(root / "c" / "trunc.dcm", pixels=np.zeros((16, 16), np.int16))
    data = full.read_bytes()
    full.write_bytes(data[:-100])
    head = dicom_writer(root / "c" / "header_cut.dcm")
    head.write_bytes(head.read_bytes()[:200])
    (root / "notes.txt").write_text("not an image")
    (root / "empty.dcm").write_bytes(b"")
    return root


def test_every_file_is_accounted_for(mixed_dir: pathlib.Path) -> None:
    scan = read_dicom_cohort(mixed_dir, salt="s")
    all_files = sorted(p.relative_to(mixed_dir).as_posix() for p in mixed_dir.rglob("*")
                       if p.is_file())  # fmt: skip
    assert scan.n_files == len(all_files) == 10
    assert sorted([*scan.frame.index, *(e.file for e in scan.exclusions)]) == all_files
    assert list(scan.frame.index) == ["a/good1.dcm", "a/good2.dcm"]
    assert set(scan.paths) == set(scan.frame.index)
    assert scan.paths["a/good1.dcm"] == (mixed_dir / "a" / "good1.dcm").resolve()
    assert [e.file for e in scan.exclusions] == sorted(e.file for e in scan.exclusions)


def test_exclusion_reasons(mixed_dir: pathlib.Path) -> None:
    reasons = _reasons(read_dicom_cohort(mixed_dir, salt="s"))
    assert reasons["b/nopid.dcm"] == "missing required tag PatientID"
    assert reasons["b/nopixels.dcm"] == "pixel data missing"
    assert reasons["b/norows.dcm"] == "missing required tag Rows"
    assert reasons["b/nosop.dcm"] == "missing required tag SOPClassUID"
    assert reasons["c/trunc.dcm"] == "pixel data truncated: expected 512 bytes, found 412"
    assert reasons["c/header_cut.dcm"].startswith("truncated or corrupt: ")
    assert reasons["notes.txt"] == "not a DICOM file"
    assert reasons["empty.dcm"] == "not a DICOM file"


def test_row_fields(mixed_dir: pathlib.Path) -> None:
    frame = read_dicom_cohort(mixed_dir, salt="s").frame
    assert tuple(frame.columns) == SCAN_COLUMNS
    assert set(frame.columns) <= COHORT_COLUMNS
    assert frame.index.name == "file"
    row = frame.loc["a/good1.dcm"]
    assert row["modality"] == "CT"
    assert row["manufacturer"] == "GE MEDICAL SYSTEMS"
    assert row["model_name"] == "Revolution"
    assert row["software_version"] == "1.0"
    assert row["body_part"] == "CHEST"
    assert row["convolution_kernel"] == "STANDARD"
    assert row["kvp"] == 120.0
    assert row["slice_thickness"] == 2.5
    assert row["pixel_spacing"] == 0.7
    assert math.isnan(row["magnetic_field_strength"])
    assert (row["rows"], row["columns"]) == (8, 8)
    assert row["photometric_interpretation"] == "MONOCHROME2"
    assert (row["sex"], row["age_band"]) == ("F", "60-74")
    assert frame.loc["a/good2.dcm", "age_band"] == "90+"
    assert frame.loc["a/good2.dcm", "sex"] == "M"
    for col in ("patient_key", "study_key", "site_key", "station_key"):
        assert str(row[col]).split("-")[0] in {"pt", "st", "site", "stn"}
    assert frame["study_key"].nunique() == 1  # same StudyInstanceUID


def test_age_band_from_dates_when_no_age(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    dicom_writer(tmp_path / "x.dcm", PatientAge=None)  # born 1944-02-29, study 2024-01-15
    assert read_dicom_cohort(tmp_path, salt="s").frame["age_band"].tolist() == ["75-89"]


def test_no_phi_in_frame(mixed_dir: pathlib.Path, planted_phi: dict[str, str]) -> None:
    scan = read_dicom_cohort(mixed_dir, salt="s")
    texts = [scan.frame.to_csv(), repr(scan.frame), repr(scan.exclusions),
             repr(scan.deid_summary)]  # fmt: skip
    for value in [*planted_phi.values(), "PATIENT-0001", "P1", "1.2.826.0.1.3680043.8.498.111"]:
        for text in texts:
            assert value not in text.replace("P1,", ""), value
    assert "PATIENT-0001" not in scan.frame.to_csv()
    assert "Zebulon" not in scan.frame.to_string()


def test_keys_depend_on_salt(mixed_dir: pathlib.Path) -> None:
    a = read_dicom_cohort(mixed_dir, salt="one").frame
    b = read_dicom_cohort(mixed_dir, salt="one").frame
    c = read_dicom_cohort(mixed_dir, salt=b"two").frame
    keys = ["patient_key", "study_key", "site_key", "station_key"]
    assert a[keys].equals(b[keys])
    for key in keys:
        assert (a[key] != c[key]).all()
    assert a["patient_key"].nunique() == 2


def test_site_key_falls_back_to_station(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    dicom_writer(tmp_path / "inst.dcm")
    dicom_writer(tmp_path / "station.dcm", InstitutionName=None)
    dicom_writer(tmp_path / "none.dcm", InstitutionName=None, StationName=None)
    frame = read_dicom_cohort(tmp_path, salt="s").frame
    assert frame.loc["inst.dcm", "site_key"] != frame.loc["station.dcm", "site_key"]
    assert frame.loc["station.dcm", "site_key"].startswith("site-")
    assert frame.loc[["none.dcm"], "site_key"].isna().all()
    assert frame.loc[["none.dcm"], "station_key"].isna().all()


def test_manifest_covers_every_file(mixed_dir: pathlib.Path) -> None:
    scan = read_dicom_cohort(mixed_dir, salt="s")
    lines = sorted(
        f"{p.relative_to(mixed_dir).as_posix()}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
        for p in mixed_dir.rglob("*")
        if p.is_file()
    )
    assert scan.manifest_sha256 == hashlib.sha256("".join(lines).encode()).hexdigest()
    # Independent of the salt; changes when an excluded file changes.
    assert read_dicom_cohort(mixed_dir, salt="x").manifest_sha256 == scan.manifest_sha256
    (mixed_dir / "notes.txt").write_text("changed")
    assert read_dicom_cohort(mixed_dir, salt="s").manifest_sha256 != scan.manifest_sha256


def test_deid_summary(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    dicom_writer(tmp_path / "1.dcm", PatientIdentityRemoved="YES", DeidentificationMethod="x")
    dicom_writer(tmp_path / "2.dcm", PatientIdentityRemoved="NO", BurnedInAnnotation="NO")
    dicom_writer(tmp_path / "3.dcm", BurnedInAnnotation="YES")
    summary = read_dicom_cohort(tmp_path, salt="s").deid_summary
    assert summary == {
        "PatientIdentityRemoved": {"YES": 1, "NO": 1, "absent": 1},
        "BurnedInAnnotation": {"absent": 1, "NO": 1, "YES": 1},
        "DeidentificationMethod": {"present": 1, "absent": 2},
    }


def test_progress_bar_runs(mixed_dir: pathlib.Path) -> None:
    assert len(read_dicom_cohort(mixed_dir, salt="s", progress=True).frame) == 2


def test_bad_root(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_dicom_cohort(tmp_path / "missing")
    (tmp_path / "f.dcm").write_bytes(b"x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        read_dicom_cohort(tmp_path / "f.dcm")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no files"):
        read_dicom_cohort(tmp_path / "empty")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("CT_small.dcm", None),
        ("MR_small.dcm", None),
        ("MR_small_bigendian.dcm", None),
        ("rtplan.dcm", "pixel data missing"),
        ("MR_truncated.dcm", "pixel data truncated: expected 8192 bytes, found 8130"),
        ("MR_small_RLE.dcm", None),
        ("README.txt", "not a DICOM file"),
    ],
)
def test_bundled_files(tmp_path: pathlib.Path, bundled: Bundled, name: str,
                       reason: str | None) -> None:  # fmt: skip
    shutil.copy(bundled(name), tmp_path / name)
    scan = read_dicom_cohort(tmp_path, salt="s")
    assert scan.n_files == 1
    if reason is None:
        assert list(scan.frame.index) == [name]
        assert scan.exclusions == ()
    else:
        assert _reasons(scan) == {name: reason}


def test_bundled_ct_fields(tmp_path: pathlib.Path, bundled: Bundled) -> None:
    shutil.copy(bundled("CT_small.dcm"), tmp_path / "ct.dcm")
    row = read_dicom_cohort(tmp_path, salt="s").frame.loc["ct.dcm"]
    assert (row["modality"], row["manufacturer"]) == ("CT", "GE MEDICAL SYSTEMS")
    assert (row["rows"], row["columns"], row["kvp"]) == (128, 128, 120.0)


@pytest.mark.parametrize(
    ("name", "codec", "install"),
    [
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS Lossless", "pylibjpeg pylibjpeg-libjpeg"),
        ("JPEG2000.dcm", "JPEG 2000", "pylibjpeg pylibjpeg-openjpeg"),
    ],
)
def test_compressed_file_is_a_row_or_excluded_naming_the_decoder(
    tmp_path: pathlib.Path, bundled: Bundled, name: str, codec: str, install: str
) -> None:
    # Either branch holds on any machine: a row where a decoder is installed,
    # an exclusion that names the package to install where none is.
    from pydicom import dcmread
    from pydicom.pixels.decoders.base import get_decoder

    src = bundled(name)
    shutil.copy(src, tmp_path / name)
    scan = read_dicom_cohort(tmp_path, salt="s")
    if get_decoder(dcmread(src).file_meta.TransferSyntaxUID).is_available:
        assert list(scan.frame.index) == [name]
    else:
        reason = _reasons(scan)[name]
        assert reason.startswith(f"compressed transfer syntax {codec}")
        assert f"needs a decoder: pip install {install}" in reason


def _same_scan(a: object, b: object) -> None:
    import pandas as pd

    pd.testing.assert_frame_equal(a.frame, b.frame)  # type: ignore[attr-defined]
    for field in ("paths", "exclusions", "n_files", "manifest_sha256", "deid_summary",
                  "file_sha256", "deid_by_file"):  # fmt: skip
        assert getattr(a, field) == getattr(b, field), field
    assert list(a.paths) == list(b.paths)  # type: ignore[attr-defined]


def test_parallel_scan_equals_serial(tmp_path: pathlib.Path, mixed_dir: pathlib.Path) -> None:
    from medval.demo import write_cohort

    write_cohort(tmp_path / "demo", seed=1, n_patients=(15, 15, 10))
    # the bad files of mixed_dir sit between the demo files in sorted order
    shutil.copytree(mixed_dir, tmp_path / "demo" / "dicom" / "site-2" / "mixed")
    root = tmp_path / "demo" / "dicom"
    serial = read_dicom_cohort(root, salt="s")
    assert serial.n_files > 64 and len(serial.exclusions) >= 10
    _same_scan(serial, read_dicom_cohort(root, salt="s", workers=2))
    _same_scan(serial, read_dicom_cohort(root, salt="s", workers=3, progress=True))
    _same_scan(serial, read_dicom_cohort(root, salt="s", workers=1))


def test_parallel_small_folder_stays_serial(mixed_dir: pathlib.Path) -> None:
    _same_scan(
        read_dicom_cohort(mixed_dir, salt="s"), read_dicom_cohort(mixed_dir, salt="s", workers=2)
    )


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_bad_workers(mixed_dir: pathlib.Path, workers: object) -> None:
    from medval._errors import InputError

    with pytest.raises(InputError, match="workers must be None or a positive int"):
        read_dicom_cohort(mixed_dir, workers=workers)  # type: ignore[arg-type]


def test_a_file_over_max_pixel_bytes_is_excluded_naming_its_size(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom
) -> None:
    dicom_writer(tmp_path / "a.dcm", pixels=np.zeros((2, 16, 16), np.int16))
    assert MAX_PIXEL_BYTES == 2 * 1024**3
    assert not read_dicom_cohort(tmp_path).exclusions
    # 2 frames x 16 x 16 x 2 bytes + one frame as float64 (16 x 16 x 8) = 3072 bytes.
    assert not read_dicom_cohort(tmp_path, max_pixel_bytes=3072).exclusions
    (excluded,) = read_dicom_cohort(tmp_path, max_pixel_bytes=3071).exclusions
    assert excluded.reason.startswith(
        "pixel data too large: decoding takes 3072 bytes (16 x 16 pixels x 2 frame(s) x "
        "1 sample(s) x 16 bits, and a float64 copy of one frame), over the 3071 bytes limit; "
        "raise [data] max_pixel_bytes (now 3071)"
    )


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "2GiB"])
def test_bad_max_pixel_bytes(tmp_path: pathlib.Path, limit: object) -> None:
    with pytest.raises(InputError, match=r"max_pixel_bytes must be a positive int"):
        read_dicom_cohort(tmp_path, max_pixel_bytes=limit)  # type: ignore[arg-type]


def test_entries_that_are_not_regular_files_are_excluded_with_a_reason(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom
) -> None:
    import os

    root = tmp_path / "dicom"
    dicom_writer(root / "good.dcm")
    dicom_writer(root / "odd.dcm" / "inner.dcm")  # a folder named like a file: still read
    os.symlink("loop.dcm", root / "loop.dcm")
    os.symlink("gone.dcm", root / "broken.dcm")
    os.symlink(root / "odd.dcm", root / "linked")
    os.symlink(root / "good.dcm", root / "alias.dcm")  # a link to a file is a file
    os.mkfifo(root / "pipe.dcm")
    scan = read_dicom_cohort(root, salt="s")
    assert list(scan.frame.index) == ["alias.dcm", "good.dcm", "odd.dcm/inner.dcm"]
    assert _reasons(scan) == {
        "broken.dcm": "broken symbolic link",
        "linked": "link to a folder, not followed",
        "loop.dcm": "symbolic link loop",
        "odd.dcm": "folder named like a DICOM file",
        "pipe.dcm": "not a regular file (named pipe)",
    }
    assert scan.n_files == 8 == len(scan.frame) + len(scan.exclusions)
    assert [e.file for e in scan.exclusions] == sorted(e.file for e in scan.exclusions)
    only_special = tmp_path / "special"
    only_special.mkdir()
    os.mkfifo(only_special / "a.dcm")
    with pytest.raises(
        DataError, match=r"holds no files \(1 other entries, e\.g\. 'a\.dcm': not a"
    ):
        read_dicom_cohort(only_special)
