"""Preprocessing steps against hand computations; the pipeline, its record and the DICOM path."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from medval import gate, io
from medval._errors import DataError, InputError

WriteDicom = Callable[..., pathlib.Path]

# Radiopaedia's typical CT windows (center, width) in HU; abdomen: soft tissue at L 40.
DOCUMENTED = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "brain": (40.0, 80.0),
    "bone": (400.0, 1800.0),
    "abdomen": (40.0, 400.0),
}


def test_window_maps_the_window_onto_unit_range() -> None:
    x = np.array([[-1000.0, 0.0], [40.0, 200.0]])
    # center 40, width 400: [-160, 240] -> [0, 1]
    expected = np.array([[0.0, 160 / 400], [200 / 400, 360 / 400]])
    np.testing.assert_allclose(io.Window(center=40, width=400)(x), expected)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_presets_give_the_documented_center_and_width(name: str) -> None:
    w = io.Window(preset=name)
    assert (w.center, w.width) == DOCUMENTED[name]
    assert gate.CT_PRESETS[name] == DOCUMENTED[name]
    center, width = DOCUMENTED[name]
    assert w.describe() == {
        "op": "window",
        "center": center,
        "width": width,
        "preset": name,
        "voi_lut": False,
    }


def test_clip_percentile_uses_the_images_own_percentiles() -> None:
    x = np.arange(101, dtype=np.float64)  # percentile q of 0..100 is q
    got = io.ClipPercentile(low=2.5, high=90.0)(x)
    np.testing.assert_allclose(got, np.clip(x, 2.5, 90.0))


def test_normalize_methods_by_hand() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    sd = np.sqrt(((x - 2.5) ** 2).mean())
    np.testing.assert_allclose(io.Normalize("zscore")(x), (x - 2.5) / sd)
    np.testing.assert_allclose(io.Normalize("minmax")(np.array([2.0, 4.0, 6.0])), [0, 0.5, 1])
    assert np.all(io.Normalize("minmax")(np.full(3, 7.0)) == 0)
    np.testing.assert_array_equal(io.Normalize("none")(x), x)
    np.testing.assert_allclose(io.Normalize("fixed", mean=1.0, std=2.0)(x), (x - 1) / 2)
    rgb = np.full((3, 1, 2), 0.5)
    got = io.Normalize("imagenet")(rgb)
    hand = [(0.5 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.5 - 0.406) / 0.225]
    np.testing.assert_allclose(got[:, 0, 0], hand)
    with pytest.raises(DataError, match=r"3 channel values .* put a channels step"):
        io.Normalize("imagenet")(np.full((4, 4), 0.5))
    with pytest.raises(InputError, match="method 'fixed'"):
        io.Normalize("zscore", mean=1.0, std=1.0)


def test_resize_by_hand() -> None:
    x = np.array([[0.0, 4.0], [8.0, 12.0]])
    # Bilinear, align_corners=False, 2 -> 4: source positions -0.25, 0.25, 0.75, 1.25
    # (clamped), i.e. weights (1, 0), (.75, .25), (.25, .75), (0, 1) on each axis.
    w = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    np.testing.assert_allclose(io.Resize(size=4)(x), w @ x @ w.T, atol=1e-6)
    big = np.arange(16, dtype=np.float64).reshape(4, 4)
    blocks = big.reshape(2, 2, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(io.Resize(size=[2, 2], interpolation="area")(big), blocks)
    np.testing.assert_array_equal(io.Resize(size=2, interpolation="nearest")(big), big[1::2, 1::2])
    wide = np.arange(8, dtype=np.float64).reshape(2, 4)
    padded = io.Resize(size=4, keep_aspect=True)(wide)
    assert padded.shape == (4, 4)
    np.testing.assert_allclose(padded[1:3], wide)
    np.testing.assert_array_equal(padded[[0, 3]], np.zeros((2, 4)))  # the image's minimum
    assert io.Resize(size=[2, 4])(wide) is not None and io.Resize(size=[2, 4])(wide).shape == (2, 4)


def test_crop_channels_dtype_by_hand() -> None:
    x = np.arange(30, dtype=np.float64).reshape(5, 6)
    np.testing.assert_array_equal(io.CenterCrop(size=[3, 2])(x), x[1:4, 2:4])
    with pytest.raises(DataError, match="larger than the image"):
        io.CenterCrop(size=8)(x)
    three = io.Channels(n=3)(x)
    assert three.shape == (3, 5, 6) and all(np.array_equal(c, x) for c in three)
    assert io.Dtype("float16")(x).dtype == np.float16


def test_gate_and_io_declare_the_same_steps_and_defaults() -> None:
    assert set(gate.PREPROCESS_STEPS) == set(io.STEP_TYPES)
    assert io._steps.CT_PRESETS == gate.CT_PRESETS  # io does not import gate
    for op, kind in gate.PREPROCESS_STEPS.items():
        fields = {f.name: f for f in dataclasses.fields(io.STEP_TYPES[op]) if f.compare}
        fields.pop("source_sha256", None)  # recorded, not declared
        assert set(fields) == set(kind.fields), op
        for name, (_, default) in kind.fields.items():
            io_default = fields[name].default
            if default is ...:
                assert io_default is dataclasses.MISSING, (op, name)
            else:
                assert io_default == default, (op, name)


def test_no_normalisation_is_an_implicit_recorded_step_with_a_warning() -> None:
    p = io.Pipeline([io.Resize(size=4)])
    described = p.describe()
    assert [s["op"] for s in described] == [
        "decode", "modality_lut", "invert_monochrome1", "normalize", "resize", "to_array",
    ]  # fmt: skip
    assert described[3]["method"] == "minmax" and described[3]["implicit"] is True
    assert p.warnings == [io.NO_NORMALISATION] and "min-max" in p.warnings[0]
    assert io.Pipeline([io.Normalize("none")]).warnings == []
    x = np.array([[2.0, 4.0], [6.0, 10.0]])
    np.testing.assert_allclose(io.Pipeline([])(x)[0], (x - 2) / 8)


def test_description_round_trips_and_checks_the_hook(tmp_path: pathlib.Path) -> None:
    hook = tmp_path / "hooks.py"
    hook.write_text("def double(x):\n    return x * 2\n", encoding="utf-8")
    steps = [
        {"op": "window", "center": None, "width": None, "preset": "lung", "voi_lut": False},
        {"op": "clip_percentile", "low": 1.0, "high": 99.0},
        {"op": "transform", "callable": "hooks.py:double"},
        {"op": "normalize", "method": "fixed", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        {"op": "resize", "size": [8, 8], "interpolation": "bicubic", "keep_aspect": True,
         "antialias": False},
        {"op": "center_crop", "size": [6, 6]},
        {"op": "channels", "n": 3},
        {"op": "dtype", "name": "float64"},
    ]  # fmt: skip
    steps[3], steps[6] = steps[6], steps[3]  # channels before the per-channel normalisation
    p = io.Pipeline.from_steps(steps, base_dir=tmp_path, frame_policy="first")
    described = p.describe()
    again = io.Pipeline.from_description(described, base_dir=tmp_path)
    assert again.describe() == described
    assert described[0]["frame_policy"] == "first"
    sha = hashlib.sha256(hook.read_bytes()).hexdigest()
    assert described[5] == {"op": "transform", "callable": "hooks.py:double", "source_sha256": sha}
    x = np.linspace(-1000, 500, 100).reshape(10, 10)
    out = p(x)
    assert out.shape == (3, 6, 6) and out.dtype == np.float64
    np.testing.assert_array_equal(again(x), out)
    hook.write_text("def double(x):\n    return x * 3\n", encoding="utf-8")
    with pytest.raises(DataError, match="changed since the pipeline was recorded"):
        io.Pipeline.from_description(described, base_dir=tmp_path)


def test_the_shorthand_expands_alike_in_gate_and_io() -> None:
    legacy = io.Pipeline.legacy((40.0, 400.0), 64).describe()
    spec = io.Pipeline.from_steps(gate.shorthand_steps([40, 400], [64, 64])).describe()
    assert legacy == spec
    assert [s["op"] for s in legacy][3:] == ["window", "resize", "to_array"]


def test_import_form_hook_hashes_its_module(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "mv_test_hooks_mod.py"
    module.write_text("def negate(x):\n    return -x\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    step = io.Transform("mv_test_hooks_mod:negate")
    assert step.describe()["source_sha256"] == hashlib.sha256(module.read_bytes()).hexdigest()
    np.testing.assert_array_equal(step(np.ones((2, 2))), -np.ones((2, 2)))
    bad = io.Transform(lambda x: "not an array")
    with pytest.raises(DataError, match="return a numeric array"):
        bad(np.ones((2, 2)))
    with pytest.raises(DataError, match=r"has no attribute 'nope'.*transforms the image"):
        io.Transform("mv_test_hooks_mod:nope")


def test_monochrome1_with_rescale_through_the_pipeline_equals_a_hand_reference(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom
) -> None:
    pixels = np.array([[0, 100, 500], [900, 1500, 4095]], dtype=np.uint16)
    path = dicom_writer(
        tmp_path / "cr.dcm", pixels=pixels, PhotometricInterpretation="MONOCHROME1",
        RescaleSlope="2", RescaleIntercept="-100", BitsStored=12, HighBit=11,
    )  # fmt: skip
    m = pixels * 2.0 - 100.0  # modality values
    # A window on the stored (modality) values, shown inverted: 1 - window(m).
    ref = 1.0 - np.clip((m - 0.0) / 2000.0, 0.0, 1.0)
    ref = (ref - ref.mean()) / ref.std()
    ref = np.repeat(ref[None], 3, axis=0).astype(np.float32)
    p = io.Pipeline([io.Window(center=1000, width=2000), io.Normalize("zscore"), io.Channels(3)])
    got = io.DicomDataset([path], ["c"], pipeline=p)[0]["image"].numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-6)
    frame = io.read_image(path)
    # The inversion keeps the stored range: lo + hi = (0 * 2 - 100) + (4095 * 2 - 100).
    assert frame.monochrome1 and frame.pivot == -100.0 + 8090.0
    plain = io.DicomDataset([path], ["c"])[0]["image"].numpy()[0]
    np.testing.assert_allclose(plain, 1.0 - (m - m.min()) / (m.max() - m.min()), atol=1e-6)


def test_voi_lut_window_comes_from_the_file(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom
) -> None:
    pixels = np.array([[0, 50], [100, 300]], dtype=np.int16)
    path = dicom_writer(tmp_path / "w.dcm", pixels=pixels, WindowCenter="100",
                        WindowWidth="200")  # fmt: skip
    p = io.Pipeline([io.Window(voi_lut=True)])
    got = io.DicomDataset([path], ["c"], pipeline=p)[0]["image"].numpy()[0]
    np.testing.assert_allclose(got, np.clip(pixels / 200.0, 0, 1), atol=1e-7)
    bare = dicom_writer(tmp_path / "n.dcm", pixels=pixels)
    with pytest.raises(DataError, match=r"n\.dcm'.*no WindowCenter/WindowWidth"):
        io.DicomDataset([bare], ["c"], pipeline=p)[0]


def test_pipeline_and_shorthand_are_exclusive(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InputError, match="not both"):
        io.DicomDataset([tmp_path / "x.dcm"], ["a"], pipeline=io.Pipeline([]), size=4)


@pytest.fixture
def environ_restored() -> Iterator[None]:
    """Importing MONAI sets CUBLAS_WORKSPACE_CONFIG and KMP_* variables; undo that, so
    later runs in this process record the same environment fingerprint."""
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


@pytest.mark.usefixtures("environ_restored")
def test_a_monai_pipeline_works_through_the_hook(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("monai")
    (tmp_path / "monai_hooks.py").write_text(
        "from monai.transforms import Compose, Resize, ScaleIntensityRange\n"
        "pipeline = Compose([\n"
        "    ScaleIntensityRange(a_min=-160, a_max=240, b_min=0.0, b_max=1.0, clip=True),\n"
        "    Resize((4, 4), mode='area'),\n"
        "])\n"
        "def apply(x):\n"
        "    return pipeline(x[None])[0]  # MONAI wants channel-first\n",
        encoding="utf-8",
    )
    x = np.arange(64, dtype=np.float64).reshape(8, 8) * 10 - 200
    p = io.Pipeline.from_steps([{"op": "transform", "callable": "monai_hooks.py:apply"}],
                               base_dir=tmp_path)  # fmt: skip
    native = io.Pipeline([io.Window(center=40, width=400), io.Resize(size=4, interpolation="area")])
    np.testing.assert_allclose(p(x), native(x), atol=1e-6)
    assert p.warnings == []  # a transform may normalise: no implicit min-max


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_a_non_linear_voi_lut_matches_pydicom(
    tmp_path: pathlib.Path, dicom_writer: WriteDicom, photometric: str
) -> None:
    from pydicom import dcmread
    from pydicom.dataset import Dataset
    from pydicom.pixels import apply_voi_lut

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 1200, size=(6, 7)).astype(np.int16)
    item = Dataset()
    item.LUTDescriptor = [1024, 100, 12]  # 1024 entries from stored value 100, 12 bits
    curve = [int(4095 * (i / 1023) ** 0.5) for i in range(1024)]  # a gamma curve
    item.LUTData = np.asarray(curve, dtype="<u2").tobytes()
    path = dicom_writer(tmp_path / "lut.dcm", pixels=pixels, PhotometricInterpretation=photometric)
    ds = dcmread(path)
    ds.VOILUTSequence = [item]
    ds.save_as(path)
    ref = apply_voi_lut(dcmread(path).pixel_array, dcmread(path), prefer_lut=True) / 4095.0
    if photometric == "MONOCHROME1":
        ref = 1.0 - ref  # medval shows high values bright
    p = io.Pipeline([io.Window(voi_lut=True)])
    got = io.DicomDataset([path], ["c"], pipeline=p)[0]["image"].numpy()[0]
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert len(np.unique(got)) > 10  # the curve, not a constant
