"""read_mask and find_mask: NumPy, NIfTI and DICOM SEG onto a series' grid."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from medval._errors import DataError, InputError, MissingDependencyError
from medval.io._masks import MASK_SUFFIXES, find_mask, read_mask
from medval.io._volume import Volume, read_series

from ._series import write_series

ROT = Rotation.from_euler("xyz", [10.0, -20.0, 35.0], degrees=True).as_matrix()
ORIGIN = np.array([12.0, -7.0, 44.0])
SPACING = (0.7, 0.8)  # PixelSpacing: row spacing (y), column spacing (x)


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[pathlib.Path]]:
    root = tmp_path_factory.mktemp("data")
    paths = write_series(
        root / "s", row_dir=ROT[:, 0], col_dir=ROT[:, 1], origin=ORIGIN, pixel_spacing=SPACING
    )
    return root, paths


@pytest.fixture(scope="module")
def volume(series: tuple[pathlib.Path, list[pathlib.Path]]) -> Volume:
    root, paths = series
    return read_series(paths, root=root)


@pytest.fixture
def labels() -> np.ndarray:
    mask = np.zeros((8, 16, 16), dtype=np.uint8)
    mask[2:5, 3:8, 4:9] = 1
    mask[4:7, 10:14, 2:6] = 2
    mask[6, 0, 15] = 2  # asymmetric: a flip or transpose shows
    return mask


def test_npy_right_and_wrong_shape(
    tmp_path: pathlib.Path, volume: Volume, labels: np.ndarray
) -> None:
    np.save(tmp_path / "c.npy", labels.astype(np.int64))
    got = read_mask(tmp_path / "c.npy", volume=volume)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, labels)
    np.save(tmp_path / "t.npy", labels.transpose(2, 1, 0)[:, :15])
    with pytest.raises(DataError, match=r"'t.npy' has shape \(16, 15, 8\); expected the volume's"):
        read_mask(tmp_path / "t.npy", volume=volume)


def test_npz_single_array_or_mask_key(
    tmp_path: pathlib.Path, volume: Volume, labels: np.ndarray
) -> None:
    np.savez(tmp_path / "a.npz", labels)
    np.testing.assert_array_equal(read_mask(tmp_path / "a.npz", volume=volume), labels)
    np.savez_compressed(tmp_path / "b.npz", image=np.zeros(3), mask=labels == 1)
    np.testing.assert_array_equal(read_mask(tmp_path / "b.npz", volume=volume), labels == 1)
    np.savez(tmp_path / "c.npz", x=labels, y=labels)
    with pytest.raises(DataError, match=r"holds the arrays \['x', 'y'\]"):
        read_mask(tmp_path / "c.npz", volume=volume)


def test_pickled_npy_is_refused(tmp_path: pathlib.Path, volume: Volume) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"cannot be read as NumPy .npy .*no pickles"):
        read_mask(tmp_path / "o.npy", volume=volume)


def test_values_checked(tmp_path: pathlib.Path, volume: Volume, labels: np.ndarray) -> None:
    prob = labels * 0.5
    np.save(tmp_path / "p.npy", prob)
    with pytest.raises(DataError, match=r"e.g. 0.5.*a probability map is not a reference mask"):
        read_mask(tmp_path / "p.npy", volume=volume)
    np.save(tmp_path / "f.npy", labels.astype(np.float32))  # integer-valued floats are labels
    np.testing.assert_array_equal(read_mask(tmp_path / "f.npy", volume=volume), labels)
    with pytest.raises(DataError, match=r"label values \[2\] outside the structures \[1\]"):
        read_mask(tmp_path / "f.npy", volume=volume, structures={"liver": 1})
    np.save(tmp_path / "n.npy", labels.astype(np.int16) - 1)
    with pytest.raises(DataError, match=r"label values \[-1\]"):
        read_mask(tmp_path / "n.npy", volume=volume)
    with pytest.raises(InputError, match="structures must map names"):
        read_mask(tmp_path / "f.npy", volume=volume, structures={"liver": 0})


def test_four_d_channels(tmp_path: pathlib.Path, volume: Volume, labels: np.ndarray) -> None:
    channels = np.stack([labels == 1, labels >= 1])  # overlapping: multi-label
    np.save(tmp_path / "m.npy", channels)
    got = read_mask(tmp_path / "m.npy", volume=volume, structures={"a": 1, "b": 2})
    assert got.dtype == np.bool_ and got.shape == (2, 8, 16, 16)
    np.testing.assert_array_equal(got, channels)
    with pytest.raises(DataError, match=r"has 2 channels .* structures go up to index 3"):
        read_mask(tmp_path / "m.npy", volume=volume, structures={"a": 1, "b": 3})
    np.save(tmp_path / "v.npy", channels.astype(np.uint8) * 2)
    with pytest.raises(DataError, match="each channel must hold 0 and 1 only"):
        read_mask(tmp_path / "v.npy", volume=volume)


def _affine_ras(flip_x: bool = False) -> np.ndarray:
    """The NIfTI affine of the test series, computed from the written DICOM tags."""
    lps = np.eye(4)
    lps[:3, 0] = ROT[:, 0] * SPACING[1]  # x: along a row, column spacing
    lps[:3, 1] = ROT[:, 1] * SPACING[0]  # y: down the columns, row spacing
    lps[:3, 2] = ROT[:, 2] * 2.5
    lps[:3, 3] = ORIGIN
    if flip_x:  # index i -> 15 - i: origin at the far end, axis reversed
        lps[:3, 3] = ORIGIN + 15 * lps[:3, 0]
        lps[:3, 0] *= -1
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def test_nifti_round_trip(tmp_path: pathlib.Path, volume: Volume, labels: np.ndarray) -> None:
    nib = pytest.importorskip("nibabel")
    xyz = labels.transpose(2, 1, 0)
    nib.save(nib.Nifti1Image(xyz, _affine_ras()), tmp_path / "a.nii.gz")
    got = read_mask(tmp_path / "a.nii.gz", volume=volume)
    np.testing.assert_array_equal(got, labels)
    # Flipped storage, and nibabel's own reorientation to RAS+, read back the same.
    nib.save(nib.Nifti1Image(xyz[::-1].copy(), _affine_ras(flip_x=True)), tmp_path / "f.nii")
    np.testing.assert_array_equal(read_mask(tmp_path / "f.nii", volume=volume), labels)
    canonical = nib.as_closest_canonical(nib.load(tmp_path / "a.nii.gz"))
    assert canonical.shape != xyz.shape or not np.array_equal(canonical.get_fdata(), xyz)
    nib.save(canonical, tmp_path / "c.nii.gz")
    np.testing.assert_array_equal(read_mask(tmp_path / "c.nii.gz", volume=volume), labels)
    # Stored (y, x, z), with the affine's first two columns exchanged to say so.
    swapped = _affine_ras()
    swapped[:3, [0, 1]] = swapped[:3, [1, 0]]
    nib.save(nib.Nifti1Image(labels.transpose(1, 2, 0), swapped), tmp_path / "s.nii.gz")
    np.testing.assert_array_equal(read_mask(tmp_path / "s.nii.gz", volume=volume), labels)
    # 4-D: channels last in NIfTI, first in the result.
    four = np.stack([xyz == 1, xyz == 2], axis=-1).astype(np.uint8)
    nib.save(nib.Nifti1Image(four, _affine_ras()), tmp_path / "m.nii.gz")
    got = read_mask(tmp_path / "m.nii.gz", volume=volume)
    np.testing.assert_array_equal(got, np.stack([labels == 1, labels == 2]))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("origin", r"off the series' by up to 1 mm"),
        ("spacing", r"voxel sizes \[0.8, 0.7, 2.6\]"),
        (
            "shape",
            r"NIfTI shape \(16, 16, 7\) does not match the series' \(x, y, z\) \(16, 16, 8\)",
        ),
        ("lps", r"its NIfTI axes do not align with the series'"),
    ],
)
def test_nifti_wrong_affine(
    tmp_path: pathlib.Path, volume: Volume, labels: np.ndarray, change: str, match: str
) -> None:
    nib = pytest.importorskip("nibabel")
    affine = _affine_ras()
    if change == "origin":
        affine[:3, 3] += affine[:3, 2] / 2.5  # 1 mm along the normal
    elif change == "spacing":
        affine[:3, 2] *= 2.6 / 2.5
    elif change == "shape":
        labels = labels[:7]
    else:  # the DICOM (LPS) affine written as if it were RAS
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    nib.save(nib.Nifti1Image(labels.transpose(2, 1, 0), affine), tmp_path / "w.nii.gz")
    with pytest.raises(DataError, match=match) as info:
        read_mask(tmp_path / "w.nii.gz", volume=volume, root=tmp_path)
    assert "mask 'w.nii.gz'" in str(info.value) and str(tmp_path) not in str(info.value)


def test_nifti_without_nibabel(
    tmp_path: pathlib.Path, volume: Volume, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.nii.gz").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(MissingDependencyError, match=r"pip install medval\[nifti\]"):
        read_mask(tmp_path / "a.nii.gz", volume=volume)


def _seg(
    paths: list[pathlib.Path], mask: np.ndarray, out: pathlib.Path, fractional: bool = False
) -> pathlib.Path:
    """Write a DICOM SEG with highdicom (labels 1, 2 -> segments 'liver', 'tumour')."""
    hd = pytest.importorskip("highdicom")
    from pydicom import dcmread
    from pydicom.sr.codedict import codes

    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=i + 1,
            segment_label=label,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for i, label in enumerate(["liver", "tumour"][: mask.shape[-1] if mask.ndim == 4 else 2])
    ]
    kind = hd.seg.SegmentationTypeValues.FRACTIONAL if fractional else "BINARY"
    seg = hd.seg.Segmentation(
        source_images=[dcmread(p) for p in paths],
        pixel_array=mask,
        segmentation_type=kind,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=5,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="medval tests",
        manufacturer_model_name="none",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(out)
    return out


def test_seg_round_trip(
    tmp_path: pathlib.Path,
    series: tuple[pathlib.Path, list[pathlib.Path]],
    volume: Volume,
    labels: np.ndarray,
) -> None:
    _, paths = series
    path = _seg(paths, labels, tmp_path / "m.dcm")
    got = read_mask(path, volume=volume)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, labels)
    swapped = read_mask(path, volume=volume, structures={"tumour": 1, "liver": 2})
    np.testing.assert_array_equal(swapped, np.choose(labels, [0, 2, 1]))
    with pytest.raises(DataError, match=r"segments labelled \['tumour'\] not in the structures"):
        read_mask(path, volume=volume, structures={"liver": 1})


def test_seg_overlapping_segments_give_channels(
    tmp_path: pathlib.Path,
    series: tuple[pathlib.Path, list[pathlib.Path]],
    volume: Volume,
    labels: np.ndarray,
) -> None:
    _, paths = series
    channels = np.stack([labels >= 1, labels == 2], axis=-1)  # (z, y, x, segments)
    got = read_mask(_seg(paths, channels, tmp_path / "o.dcm"), volume=volume)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, np.moveaxis(channels, -1, 0))


def test_seg_fractional(
    tmp_path: pathlib.Path,
    series: tuple[pathlib.Path, list[pathlib.Path]],
    volume: Volume,
    labels: np.ndarray,
) -> None:
    _, paths = series
    binary = (labels == 1).astype(np.float32)[..., None]
    path = _seg(paths, binary, tmp_path / "f.dcm", fractional=True)
    np.testing.assert_array_equal(read_mask(path, volume=volume), labels == 1)
    path = _seg(paths, binary * 0.5, tmp_path / "h.dcm", fractional=True)
    with pytest.raises(DataError, match="FRACTIONAL SEG with values between 0 and 255"):
        read_mask(path, volume=volume)


def test_seg_frame_not_in_series(
    tmp_path: pathlib.Path,
    series: tuple[pathlib.Path, list[pathlib.Path]],
    labels: np.ndarray,
) -> None:
    root, paths = series
    path = _seg(paths, labels, tmp_path / "m.dcm")
    shorter = read_series(paths[:6], root=root)  # the SEG has frames on slices 6 and 7
    with pytest.raises(DataError, match=r"frame \d+ lies at .* the SEG was made on another"):
        read_mask(path, volume=shorter)


def test_seg_grid_checks(
    tmp_path: pathlib.Path,
    series: tuple[pathlib.Path, list[pathlib.Path]],
    volume: Volume,
    labels: np.ndarray,
) -> None:
    from pydicom import dcmread

    _, paths = series
    path = _seg(paths, labels, tmp_path / "m.dcm")
    ds = dcmread(path)
    ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing = [0.7, 0.7]
    ds.save_as(tmp_path / "s.dcm")
    with pytest.raises(DataError, match=r"PixelSpacing \[0.7, 0.7\] differs from the series'"):
        read_mask(tmp_path / "s.dcm", volume=volume)
    with pytest.raises(DataError, match="is DICOM of Modality 'CT', not SEG"):
        read_mask(paths[0], volume=volume)


def test_unknown_suffix(tmp_path: pathlib.Path, volume: Volume) -> None:
    with pytest.raises(DataError, match=r"'m.png': unknown file type; expected one of"):
        read_mask(tmp_path / "m.png", volume=volume)


def test_find_mask(tmp_path: pathlib.Path) -> None:
    assert MASK_SUFFIXES == (".npy", ".npz", ".nii", ".nii.gz", ".dcm")
    assert find_mask(tmp_path, "case1") is None
    (tmp_path / "case1.nii.gz").write_bytes(b"")
    (tmp_path / "case10.npy").write_bytes(b"")
    assert find_mask(tmp_path, "case1") == tmp_path / "case1.nii.gz"
    (tmp_path / "case1.dcm").write_bytes(b"")
    with pytest.raises(DataError, match=r"'case1.nii.gz' and 'case1.dcm'; keep one"):
        find_mask(tmp_path, "case1")
    with pytest.raises(DataError, match="masks folder 'nope' does not exist"):
        find_mask(tmp_path / "nope", "case1")


def test_seg_corrupt_or_other_grid(
    tmp_path: pathlib.Path,
    series: tuple[pathlib.Path, list[pathlib.Path]],
    volume: Volume,
    labels: np.ndarray,
) -> None:
    from pydicom import dcmread

    _, paths = series
    path = _seg(paths, labels, tmp_path / "m.dcm")

    def broken(change: str) -> pathlib.Path:
        ds = dcmread(path)
        if change == "rows":
            ds.Rows = 15
        elif change == "orientation":
            ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[
                0
            ].ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        elif change == "type":
            ds.SegmentationType = "LABELMAP"
        else:
            ds.PerFrameFunctionalGroupsSequence[0].SegmentIdentificationSequence[
                0
            ].ReferencedSegmentNumber = 9
        out = tmp_path / f"{change}.dcm"
        ds.save_as(out)
        return out

    with pytest.raises(DataError, match=r"Rows/Columns \(15, 16\) differ from the series'"):
        read_mask(broken("rows"), volume=volume)
    with pytest.raises(DataError, match=r"ImageOrientationPatient .* differs from the series'"):
        read_mask(broken("orientation"), volume=volume)
    with pytest.raises(DataError, match="SegmentationType 'LABELMAP' is not supported"):
        read_mask(broken("type"), volume=volume)
    with pytest.raises(DataError, match=r"frame 1 refers to segment 9, not in its SegmentSequence"):
        read_mask(broken("number"), volume=volume)
    (tmp_path / "junk.dcm").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"'junk.dcm' cannot be read as DICOM"):
        read_mask(tmp_path / "junk.dcm", volume=volume)


def test_other_bad_arrays(tmp_path: pathlib.Path, volume: Volume, labels: np.ndarray) -> None:
    np.save(tmp_path / "c.npy", labels.astype(np.complex64))
    with pytest.raises(DataError, match="has dtype complex64; expected integers or bools"):
        read_mask(tmp_path / "c.npy", volume=volume)
    three = np.zeros((3, *labels.shape), dtype=bool)
    three[1, 0, 0, 0] = True  # channel 2: index 2, not a structure
    np.save(tmp_path / "s.npy", three)
    with pytest.raises(DataError, match=r"channels \[2\] are not structures"):
        read_mask(tmp_path / "s.npy", volume=volume, structures={"a": 1, "c": 3})


def test_bad_nifti(tmp_path: pathlib.Path, volume: Volume) -> None:
    nib = pytest.importorskip("nibabel")
    nib.save(nib.Nifti1Image(np.zeros((16, 16), np.uint8), _affine_ras()), tmp_path / "a.nii")
    with pytest.raises(DataError, match=r"NIfTI of shape \(16, 16\); expected 3-D or 4-D"):
        read_mask(tmp_path / "a.nii", volume=volume)
    (tmp_path / "b.nii.gz").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"'b.nii.gz' cannot be read as NIfTI"):
        read_mask(tmp_path / "b.nii.gz", volume=volume)
