"""The fast header reader gives exactly pydicom's answer, file by file."""

from __future__ import annotations

import pathlib
import warnings
from collections.abc import Callable

from medval.io import _scan
from medval.io._header import read_header


def _both(data: bytes) -> tuple[object, object]:
    cache_a: dict[str, str | None] = {}
    cache_b: dict[str, str | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = _scan.scan_one(data, b"salt", cache_a)
        original = _scan.read_header
        _scan.read_header = lambda *a, **k: None  # type: ignore[assignment]
        try:
            slow = _scan.scan_one(data, b"salt", cache_b)
        finally:
            _scan.read_header = original
    return fast, slow


def test_demo_like_files_take_the_fast_path_and_agree(
    tmp_path: pathlib.Path, dicom_writer: Callable[..., pathlib.Path]
) -> None:
    cases = {
        "plain": {},
        "multi_spacing": {"PixelSpacing": [0.5, 0.75]},
        "utf8": {"SpecificCharacterSet": "ISO_IR 192", "Manufacturer": "Médica"},
        "no_patient": {"PatientID": None},
        "no_rows": {"Rows": None},
        "sequence": {"ReferencedImageSequence": "undefined"},
    }
    for name, header in cases.items():
        if header.get("ReferencedImageSequence") == "undefined":
            from pydicom.dataset import Dataset
            from pydicom.sequence import Sequence

            item = Dataset()
            item.ReferencedSOPInstanceUID = "1.2.3"
            nested = Dataset()
            nested.CodeValue = "X"
            item.PurposeOfReferenceCodeSequence = Sequence([nested])
            header = {"ReferencedImageSequence": Sequence([item, Dataset()])}
        path = dicom_writer(tmp_path / f"{name}.dcm", **header)
        data = path.read_bytes()
        assert read_header(data, _scan.READ_KEYWORDS) is not None, name
        fast, slow = _both(data)
        assert fast == slow, name


def test_truncated_files_agree(
    tmp_path: pathlib.Path, dicom_writer: Callable[..., pathlib.Path]
) -> None:
    data = dicom_writer(tmp_path / "a.dcm").read_bytes()
    for cut in (10, 131, 140, 200, 400, len(data) // 2, len(data) - 7):
        fast, slow = _both(data[:cut])
        assert fast == slow, cut


def test_pydicom_bundled_files_agree() -> None:
    import pydicom.data

    # The files shipped inside the package (no download is attempted).
    files = sorted((pathlib.Path(pydicom.data.__file__).parent / "test_files").rglob("*.dcm"))
    assert files, "pydicom bundles no test files here"
    n_fast = 0
    for f in files:
        data = pathlib.Path(f).read_bytes()
        n_fast += read_header(data, _scan.READ_KEYWORDS) is not None
        fast, slow = _both(data)
        assert fast == slow, f
    assert n_fast >= 20  # the fast path is really exercised


def test_bundled_files_mixed_with_demo_like_files_are_all_accounted_for(
    tmp_path: pathlib.Path, dicom_writer: Callable[..., pathlib.Path]
) -> None:
    import shutil

    import pydicom.data

    from medval.io import read_dicom_cohort

    source = pathlib.Path(pydicom.data.__file__).parent / "test_files"
    bundled = sorted(p for p in source.rglob("*") if p.is_file())
    root = tmp_path / "mixed"
    for i, p in enumerate(bundled):
        dest = root / "bundled" / f"{i:03d}-{p.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest)
    for i in range(20):
        dicom_writer(root / "site" / f"img-{i}.dcm", PatientID=f"P{i % 7}")
    scan = read_dicom_cohort(root, salt="s", workers=2)
    n = len(bundled) + 20
    assert scan.n_files == n
    assert len(scan.frame) + len(scan.exclusions) == n
    assert all(e.reason for e in scan.exclusions)
    assert sum(f.startswith("site/") for f in scan.frame.index) == 20
    reasons = {e.reason.split(":")[0] for e in scan.exclusions}
    assert "not a DICOM file" in reasons


def test_control_characters_are_removed_on_both_paths(
    tmp_path: pathlib.Path, dicom_writer: Callable[..., pathlib.Path]
) -> None:
    # A crafted Manufacturer erased the verdict line below it on the console.
    hostile = {
        "SpecificCharacterSet": "ISO_IR 192",
        "Manufacturer": "Aster\x1b[2K\x1b[1A Medical\u202e\x9b",
        "ManufacturerModelName": "Model\tX\nY",
        "SequenceName": "*tfl\x1b3d",
        "ConvolutionKernel": ["B30f\x07", "3"],
    }
    data = dicom_writer(tmp_path / "hostile.dcm", **hostile).read_bytes()
    assert read_header(data, _scan.READ_KEYWORDS) is not None
    fast, slow = _both(data)
    assert fast == slow
    row = fast[0]  # type: ignore[index]
    assert row["manufacturer"] == "Aster[2K[1A Medical"
    assert row["model_name"] == "Model X Y"
    assert row["sequence_name"] == "*tfl3d"
    assert row["convolution_kernel"] == "B30f/3"
    assert all(v.isprintable() for v in row.values() if isinstance(v, str))
