"""read_series: slice order from positions, spacing, tilt, gaps, consistency, modality LUT."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from medval._errors import DataError, InputError
from medval.io._volume import Volume, read_series

from ._series import raw_pixels, write_series


def _no_absolute(messages: list[str], tmp_path: pathlib.Path) -> None:
    for message in messages:
        assert str(tmp_path) not in message
        assert "/tmp" not in message


def test_thickness_differs_from_spacing(tmp_path: pathlib.Path) -> None:
    paths = write_series(tmp_path / "s", thickness="3.0")
    vol = read_series(paths, root=tmp_path)
    assert isinstance(vol, Volume)
    assert vol.spacing[0] == pytest.approx(2.5)
    assert vol.spacing[1:] == (0.7, 0.8)
    assert vol.origin == (-10.0, -20.0, 30.0)
    np.testing.assert_array_equal(vol.direction, np.eye(3))
    assert vol.files == tuple(p.relative_to(tmp_path).as_posix() for p in paths)
    assert vol.array.dtype == np.float32
    np.testing.assert_array_equal(vol.array, raw_pixels())
    assert vol.warnings == (
        "SliceThickness 3 mm differs from the slice spacing 2.5 mm (overlapping "
        "reconstruction?); the spacing from ImagePositionPatient is used",
    )
    _no_absolute([*vol.warnings, *vol.files], tmp_path)


def test_thickness_equal_no_warning_and_names_without_root(tmp_path: pathlib.Path) -> None:
    paths = write_series(tmp_path / "s")
    vol = read_series(paths)
    assert vol.warnings == ()
    assert vol.files == tuple(p.name for p in paths)


def test_shuffled_order_gives_the_same_volume(tmp_path: pathlib.Path) -> None:
    paths = write_series(tmp_path / "s")
    a = read_series(paths, root=tmp_path)
    shuffled = [paths[i] for i in np.random.default_rng(3).permutation(len(paths))]
    b = read_series(shuffled, root=tmp_path)
    c = read_series(sorted(paths), root=tmp_path)  # file-name order is not slice order
    for other in (b, c):
        np.testing.assert_array_equal(other.array, a.array)
        assert other.files == a.files
        assert other.spacing == a.spacing and other.origin == a.origin


def test_relative_paths_resolved_against_root(tmp_path: pathlib.Path) -> None:
    paths = write_series(tmp_path / "s")
    vol = read_series([p.relative_to(tmp_path) for p in paths], root=tmp_path)
    np.testing.assert_array_equal(vol.array, raw_pixels())


def test_oblique_orientation_sorts_along_the_normal(tmp_path: pathlib.Path) -> None:
    rot = Rotation.from_euler("xyz", [25.0, -40.0, 70.0], degrees=True).as_matrix()
    row, col, normal = rot[:, 0], rot[:, 1], rot[:, 2]
    origin = np.array([12.0, -7.0, 44.0])
    paths = write_series(tmp_path / "s", row_dir=row, col_dir=col, origin=origin, seed=5)
    vol = read_series(paths[::-1], root=tmp_path)
    np.testing.assert_array_equal(vol.array, raw_pixels())
    np.testing.assert_allclose(vol.direction, np.stack([row, col, normal]), atol=1e-9)
    assert vol.spacing[0] == pytest.approx(2.5)
    np.testing.assert_allclose(vol.origin, origin, atol=1e-8)
    # The affine maps voxel (x, y, z) index to the written ImagePositionPatient.
    affine = vol.affine()
    for k in range(8):
        np.testing.assert_allclose(
            affine @ [3, 5, k, 1], [*(origin + 3 * 0.8 * row + 5 * 0.7 * col + 2.5 * k * normal), 1]
        )
    assert vol.warnings == ()


def test_gantry_tilt_warns_with_the_angle(tmp_path: pathlib.Path) -> None:
    tilt = 12.0
    step = np.array([0.0, 2.5 * math.tan(math.radians(tilt)), 2.5])  # along y and the normal z
    paths = write_series(tmp_path / "s", step=step)
    vol = read_series(paths, root=tmp_path)
    assert vol.spacing[0] == pytest.approx(2.5)
    (warning,) = vol.warnings
    assert warning.startswith("gantry tilt 12.0°")
    assert "projected" in warning
    expected = np.array([-10.0, -20.0, 30.0]) + np.arange(8)[:, None] * step
    np.testing.assert_allclose(vol.slice_positions(), expected, atol=1e-8)
    np.testing.assert_allclose(vol.affine()[:3, 2], step, atol=1e-8)


def test_missing_slice_is_an_error(tmp_path: pathlib.Path) -> None:
    paths = write_series(tmp_path / "s")
    names = [p.relative_to(tmp_path).as_posix() for p in paths]
    with pytest.raises(DataError, match="slice missing between") as info:
        read_series(paths[:4] + paths[5:], root=tmp_path)
    assert repr(names[3]) in str(info.value) and repr(names[5]) in str(info.value)
    assert "2.0 x the typical 2.5 mm" in str(info.value)
    _no_absolute([str(info.value)], tmp_path)


def test_small_non_uniformity_warns_and_uses_the_mean(tmp_path: pathlib.Path) -> None:
    z = 30.0 + 2.5 * np.arange(8) + np.array([0, 0.05, -0.04, 0.02, 0, 0.06, -0.03, 0.01])
    positions = np.column_stack([np.full(8, -10.0), np.full(8, -20.0), z])
    paths = write_series(tmp_path / "s", positions=positions)
    vol = read_series(paths)
    assert vol.spacing[0] == pytest.approx((z[-1] - z[0]) / 7)
    (warning,) = vol.warnings
    assert warning.startswith("non-uniform slice spacing (")
    assert read_series(paths, uniform_tolerance=0.1).warnings == ()


def test_duplicate_position_is_an_error(tmp_path: pathlib.Path) -> None:
    paths = write_series(tmp_path / "s", per_slice={4: {"ImagePositionPatient": [-10, -20, 37.5]}})
    with pytest.raises(DataError, match="same position along the slice normal") as info:
        read_series(paths, root=tmp_path)
    assert paths[3].name in str(info.value) and paths[4].name in str(info.value)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"ImageOrientationPatient": [1, 0, 0, 0, 0.99995, 0.01]}, "ImageOrientationPatient"),
        ({"PixelSpacing": [0.7, 0.9]}, "PixelSpacing"),
        ({"Rows": 15, "PixelData": raw_pixels(1, 15, 16).tobytes()}, "Rows/Columns"),
        ({"SeriesInstanceUID": "1.2.3.4"}, "SeriesInstanceUID differs"),
    ],
)
def test_inconsistent_slice_is_named(
    tmp_path: pathlib.Path, override: dict[str, object], match: str
) -> None:
    paths = write_series(tmp_path / "s", per_slice={6: override})
    with pytest.raises(DataError, match=match) as info:
        read_series(paths, root=tmp_path)
    assert f"DICOM file {paths[6].relative_to(tmp_path).as_posix()!r}" in str(info.value)
    assert "one series" in str(info.value)
    _no_absolute([str(info.value)], tmp_path)


@pytest.mark.parametrize(
    "keyword", ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"]
)
def test_missing_geometry_tag_is_named(tmp_path: pathlib.Path, keyword: str) -> None:
    paths = write_series(tmp_path / "s", per_slice={2: {keyword: None}})
    with pytest.raises(DataError, match=f"'s/{paths[2].name}' has no {keyword}"):
        read_series(paths, root=tmp_path)


def test_non_orthogonal_orientation(tmp_path: pathlib.Path) -> None:
    paths = write_series(tmp_path / "s", col_dir=(0.1, 0.995, 0.0), n=2)
    with pytest.raises(DataError, match="not two orthogonal unit vectors"):
        read_series(paths)


def test_rescale_slope_and_intercept_applied(tmp_path: pathlib.Path) -> None:
    paths = write_series(tmp_path / "s", slope="2", intercept="-1024")
    vol = read_series(paths)
    np.testing.assert_array_equal(vol.array, raw_pixels() * 2.0 - 1024.0)


def test_single_slice(tmp_path: pathlib.Path) -> None:
    (path,) = write_series(tmp_path / "a", n=1, thickness="3.0")
    vol = read_series([path])
    assert vol.shape == (1, 16, 16) and vol.spacing[0] == 3.0
    assert vol.warnings[0].startswith("a single slice: its z spacing is SliceThickness 3 mm")
    (path,) = write_series(tmp_path / "b", n=1, per_slice={0: {"SpacingBetweenSlices": "4"}})
    vol = read_series([path])
    assert vol.spacing[0] == 4.0 and vol.warnings == ()
    (path,) = write_series(tmp_path / "c", n=1, thickness=None)
    with pytest.raises(DataError, match="neither SpacingBetweenSlices nor SliceThickness"):
        read_series([path])


def test_enhanced_multiframe_equals_the_single_frames(tmp_path: pathlib.Path) -> None:
    hd = pytest.importorskip("highdicom")
    from pydicom import dcmread

    paths = write_series(tmp_path / "s", slope="2", intercept="-1024", seed=2)
    singles = read_series(paths, root=tmp_path)
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        [dcmread(p) for p in paths],
        series_instance_uid=hd.UID(),
        series_number=9,
        sop_instance_uid=hd.UID(),
        instance_number=1,
    )
    enhanced.save_as(tmp_path / "enhanced.dcm")
    vol = read_series([tmp_path / "enhanced.dcm"], root=tmp_path)
    np.testing.assert_array_equal(vol.array, singles.array)
    assert vol.spacing == pytest.approx(singles.spacing)
    np.testing.assert_allclose(vol.slice_positions(), singles.slice_positions())
    assert vol.files == ("enhanced.dcm",) * 8
    with pytest.raises(DataError, match="enhanced multi-frame image and 1 other file"):
        read_series([tmp_path / "enhanced.dcm", paths[0]], root=tmp_path)


def test_unreadable_file_and_bad_options(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"not dicom at all")
    with pytest.raises(DataError, match=r"DICOM file 'x.dcm' cannot be read") as info:
        read_series([bad], root=tmp_path)
    _no_absolute([str(info.value)], tmp_path)
    with pytest.raises(InputError, match="at least one file"):
        read_series([])
    with pytest.raises(InputError, match="uniform_tolerance must be a number >= 0"):
        read_series([bad], uniform_tolerance=-1)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"SamplesPerPixel": 3}, "has colour pixels"),
        ({"PixelData": b"\x00" * 10}, "pixel data cannot be decoded"),
        ({"ImagePositionPatient": [1, 2]}, "ImagePositionPatient must be 3 finite numbers"),
        ({"Rows": None}, "has no Rows/Columns"),
    ],
)
def test_bad_slice_is_named(
    tmp_path: pathlib.Path, override: dict[str, object], match: str
) -> None:
    paths = write_series(tmp_path / "s", n=3, per_slice={1: override})
    with pytest.raises(DataError, match=match) as info:
        read_series(paths, root=tmp_path)
    assert paths[1].name in str(info.value)
    _no_absolute([str(info.value)], tmp_path)


def test_plain_multiframe_not_supported(tmp_path: pathlib.Path) -> None:
    (path,) = write_series(
        tmp_path / "s",
        n=1,
        per_slice={0: {"NumberOfFrames": 2, "PixelData": raw_pixels(2).tobytes()}},
    )
    with pytest.raises(DataError, match="not supported yet; export the series as single-frame"):
        read_series([path])
