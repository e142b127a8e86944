"""DicomDataset: rescale, windowing, MONOCHROME1, frames, resizing, errors."""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Callable

import numpy as np
import pytest
import torch

from medval._errors import DataError, InputError
from medval.io import DicomDataset

WriteDicom = Callable[..., pathlib.Path]
PIXELS = np.array([[0, 50, 100], [150, 200, 250]], dtype=np.int16)


def _image(path: pathlib.Path, **options: object) -> np.ndarray:
    item = DicomDataset([path], ["c"], **options)[0]  # type: ignore[arg-type]
    assert item["case_id"] == "c"
    image = item["image"]
    assert image.dtype == torch.float32
    return image.numpy()


def test_rescale_and_window(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    path = dicom_writer(tmp_path / "x.dcm", pixels=PIXELS, RescaleSlope="2",
                        RescaleIntercept="-100")  # fmt: skip
    hu = PIXELS * 2.0 - 100.0
    expected = np.clip((hu - (150 - 200 / 2)) / 200, 0.0, 1.0)
    got = _image(path, window=(150.0, 200.0))
    assert got.shape == (1, 2, 3)
    np.testing.assert_allclose(got[0], expected, atol=1e-6)
    assert got.min() == 0.0 and got.max() == 1.0


def test_min_max_default(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    path = dicom_writer(tmp_path / "x.dcm", pixels=PIXELS, RescaleIntercept="-1024")
    np.testing.assert_allclose(_image(path)[0], PIXELS / 250.0, atol=1e-6)


def test_constant_image_is_zero(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    path = dicom_writer(tmp_path / "x.dcm", pixels=np.full((4, 4), 7, np.int16))
    assert np.all(_image(path) == 0.0)


def test_monochrome1_inverted(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    path = dicom_writer(tmp_path / "x.dcm", pixels=PIXELS, PhotometricInterpretation="MONOCHROME1")
    np.testing.assert_allclose(_image(path)[0], 1.0 - PIXELS / 250.0, atol=1e-6)
    windowed = _image(path, window=(100.0, 100.0))[0]
    np.testing.assert_allclose(windowed, 1.0 - np.clip((PIXELS - 50.0) / 100.0, 0, 1), atol=1e-6)


def test_multi_frame_policies(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    frames = np.stack([np.full((2, 2), v, np.int16) for v in (10, 20, 30)])
    frames[:, 0, 0] = 0  # so min-max is not constant
    path = dicom_writer(tmp_path / "mf.dcm", pixels=frames)
    window = (50.0, 100.0)  # maps v to v / 100
    assert _image(path, window=window)[0, 1, 1] == pytest.approx(0.2)
    assert _image(path, window=window, frame_policy="first")[0, 1, 1] == pytest.approx(0.1)
    with pytest.raises(DataError, match=r"mf\.dcm' has 3 frames and frame_policy='error'"):
        _image(path, frame_policy="error")


def test_resize(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    pixels = np.arange(64, dtype=np.int16).reshape(8, 8)
    path = dicom_writer(tmp_path / "x.dcm", pixels=pixels)
    got = DicomDataset([path], ["c"], size=4)[0]["image"]
    full = torch.from_numpy((pixels / 63.0).astype(np.float32))[None, None]
    expected = torch.nn.functional.interpolate(full, size=(4, 4), mode="bilinear",
                                               antialias=True, align_corners=False)[0]  # fmt: skip
    assert got.shape == (1, 4, 4)
    torch.testing.assert_close(got, expected)
    assert DicomDataset([path], ["c"], size=(2, 6))[0]["image"].shape == (1, 2, 6)


def test_transform_and_loader(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    paths = [dicom_writer(tmp_path / f"{i}.dcm", pixels=PIXELS + i) for i in range(3)]
    ds = DicomDataset(paths, ["a", "b", "c"], transform=lambda t: t * 2.0)
    assert len(ds) == 3
    assert float(ds[0]["image"].max()) == pytest.approx(2.0)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["image"].shape == (3, 1, 2, 3)
    assert list(batch["case_id"]) == ["a", "b", "c"]


def test_bundled_ct_matches_modality_lut(tmp_path: pathlib.Path, bundled: Callable) -> None:
    from pydicom import dcmread
    from pydicom.pixels import apply_modality_lut

    src = bundled("CT_small.dcm")
    ds = dcmread(src)
    hu = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    expected = np.clip((hu - (40 - 400 / 2)) / 400, 0, 1)
    np.testing.assert_allclose(_image(src, window=(40.0, 400.0))[0], expected, atol=1e-6)


def test_compressed_file_decodes_or_names_the_decoder(bundled: Callable) -> None:
    from pydicom import dcmread
    from pydicom.pixels.decoders.base import get_decoder

    src = bundled("MR_small_jpeg_ls_lossless.dcm")
    if get_decoder(dcmread(src).file_meta.TransferSyntaxUID).is_available:
        assert _image(src).shape[-2:] == (64, 64)  # a decoder is installed here
        return
    with pytest.raises(DataError, match=r"jpeg_ls_lossless\.dcm'.*pip install pylibjpeg"):
        _image(src)


def test_unreadable_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "junk.dcm"
    path.write_text("not dicom")
    with pytest.raises(DataError, match=r"junk\.dcm' cannot be read"):
        _image(path)


def test_truncated_pixels(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    path = dicom_writer(tmp_path / "t.dcm", pixels=np.zeros((16, 16), np.int16))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t\.dcm'"):
        _image(path)


def test_constructor_checks(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "x.dcm"
    with pytest.raises(InputError, match="same length; got 1 and 2"):
        DicomDataset([p], ["a", "b"])
    with pytest.raises(InputError, match="width > 0"):
        DicomDataset([p], ["a"], window=(40.0, 0.0))
    with pytest.raises(InputError, match="frame_policy must be one of"):
        DicomDataset([p], ["a"], frame_policy="last")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="size must be"):
        DicomDataset([p], ["a"], size=0)


def test_copy_keeps_working(tmp_path: pathlib.Path, bundled: Callable) -> None:
    dst = tmp_path / "mr.dcm"
    shutil.copy(bundled("MR_small.dcm"), dst)
    image = DicomDataset([dst], ["m"], size=32)[0]["image"]
    assert image.shape == (1, 32, 32)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
