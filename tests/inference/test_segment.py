"""segment(): slice-wise and patch-wise inference, streaming MC-dropout voxel uncertainty."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from medval import InputError
from medval.inference import segment
from medval.inference._masks import CaseMasks, case_keys


class Net(nn.Module):
    """Tiny conv net: channel dropout in the middle, element-wise dropout before the head."""

    def __init__(self, dims: int = 2, classes: int = 3, batchnorm: bool = False) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.a = conv(1, 6, 3, padding=1)
        self.bn = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(6) if batchnorm else None
        self.drop = (nn.Dropout2d if dims == 2 else nn.Dropout3d)(0.3)
        self.fine = nn.Dropout(0.2)
        self.b = conv(6, classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        if self.bn is not None:
            h = self.bn(h)
        return self.b(self.fine(self.drop(torch.relu(h))))


class PerRow(Net):
    """The same net, convolving each batch row alone: its outputs do not depend on the batch.

    Torch's CPU convolutions round differently for different batch sizes; this
    model removes that, so what remains is segment's own batch dependence.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([torch.relu(self.a(r[None])) for r in x])
        h = self.fine(self.drop(h))
        return torch.cat([self.b(r[None]) for r in h])


def _net(cls: type[Net] = Net, seed: int = 0, **kw: Any) -> Net:
    torch.manual_seed(seed)  # parameters only: segment itself never touches the global RNG
    return cls(**kw).eval()


@pytest.fixture
def vol() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(5, 12, 10)).astype(np.float32)


FIELDS = ("probabilities", "mc_mean", "entropy", "aleatoric", "epistemic")
MAPS = ("entropy", "aleatoric", "epistemic")
F16_STEP = 2.0**-11  # float16's relative rounding step (10 stored mantissa bits)
FULL: dict[str, Any] = {"keep_mc_mean": True, "map_dtype": "float32"}  # every output, float32


def _same(a: Any, b: Any) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in FIELDS)


# --- the deterministic pass -------------------------------------------------------------


def test_2d_equals_the_model_on_each_slice(vol: np.ndarray) -> None:
    model = _net()
    out = segment(model, vol, batch_size=1)
    assert out.probabilities.shape == (3, *vol.shape)
    assert out.probabilities.dtype == np.float32
    assert out.mc_mean is None and out.entropy is None and out.n_samples == 0
    with torch.no_grad():
        for z in range(vol.shape[0]):
            one = torch.softmax(model(torch.from_numpy(vol[z])[None, None]), 1)[0].numpy()
            np.testing.assert_array_equal(out.probabilities[:, z], one)
    batched = segment(model, vol, batch_size=4).probabilities
    np.testing.assert_allclose(batched, out.probabilities, atol=1e-6, rtol=0)


def test_sigmoid_single_channel_gives_background_and_foreground(vol: np.ndarray) -> None:
    model = _net(classes=1)
    out = segment(model, vol, output="sigmoid", mc_samples=3, case_id="c", keep_mc_mean=True)
    assert out.probabilities.shape == (2, *vol.shape)
    np.testing.assert_allclose(out.probabilities.sum(0), 1.0, atol=1e-6)
    with torch.no_grad():
        logit = model(torch.from_numpy(vol)[:, None])[:, 0].numpy()
    np.testing.assert_allclose(out.probabilities[1], 1 / (1 + np.exp(-logit)), atol=1e-6)
    assert out.mc_mean is not None
    np.testing.assert_allclose(out.mc_mean.sum(0), 1.0, atol=1e-6)


def test_probabilities_output_is_taken_as_it_is(vol: np.ndarray) -> None:
    model = _net()
    soft = nn.Sequential(model, nn.Softmax(dim=1))
    a = segment(model, vol, mc_samples=2, case_id="x", **FULL)
    b = segment(soft, vol, output="probabilities", mc_samples=2, case_id="x", **FULL)
    for k in FIELDS:  # nn.Softmax over the batch rounds differently: not bitwise
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), atol=1e-6, rtol=0)


def test_batchnorm_stays_in_eval_and_modes_are_restored(vol: np.ndarray) -> None:
    model = _net(batchnorm=True)
    assert model.bn is not None
    model.bn.running_mean.fill_(0.3)
    model.bn.running_var.fill_(2.0)
    seen: list[bool] = []
    for m in model.modules():
        if m is not model:
            m.register_forward_pre_hook(lambda m, _a: seen.append(m.training))
    model.train()
    out = segment(model, vol, mc_samples=2)
    assert seen and not any(seen)  # BatchNorm in eval; dropout acts through masks, in eval
    assert all(m.training for m in model.modules())
    model.eval()
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(vol)[:, None]), 1).numpy()
    np.testing.assert_allclose(out.probabilities, ref.transpose(1, 0, 2, 3), atol=1e-6)


# --- the running sums against T stored samples ------------------------------------------


def _stored_samples(model: nn.Module, vol: np.ndarray, t: int, seed: int, case: str) -> np.ndarray:
    """(T, C, z, y, x) float64: each slice's sample drawn by hand with its documented key."""
    masks = CaseMasks(model)
    out = np.empty((t, 3, *vol.shape))
    with torch.no_grad():
        for z in range(vol.shape[0]):
            keys = case_keys(seed, [f"{case}\x00slice {z} window (0, 0)"])
            for s in range(t):
                with masks.active(keys, (0, 0)) as begin:
                    begin(s, 1)
                    logits = model(torch.from_numpy(vol[z])[None, None])
                out[s, :, z] = torch.softmax(logits, 1)[0].double().numpy()
    return out


def test_running_sums_equal_the_stored_samples(vol: np.ndarray) -> None:
    model, t = _net(), 6
    out = segment(model, vol, mc_samples=t, seed=5, case_id="p01", batch_size=2, **FULL)
    samples = _stored_samples(model, vol, t, 5, "p01")
    assert np.ptp(samples, axis=0).max() > 0.05  # dropout acted
    mean = samples.mean(0)
    entropy = scipy.stats.entropy(mean, axis=0)
    aleatoric = scipy.stats.entropy(samples, axis=1).mean(0)
    assert out.mc_mean is not None and out.entropy is not None
    assert out.aleatoric is not None and out.epistemic is not None
    assert all(getattr(out, k).dtype == np.float32 for k in (*MAPS, "mc_mean"))
    np.testing.assert_allclose(out.mc_mean, mean, atol=1e-6)
    np.testing.assert_allclose(out.entropy, entropy, atol=1e-5)
    np.testing.assert_allclose(out.aleatoric, aleatoric, atol=1e-5)
    np.testing.assert_allclose(out.epistemic, np.maximum(entropy - aleatoric, 0), atol=1e-5)
    assert (out.epistemic >= 0).all()
    assert out.epistemic.max() > 1e-3
    np.testing.assert_allclose(out.entropy, out.aleatoric + out.epistemic, atol=1e-6)
    assert out.n_samples == t and out.seed == 5


def test_float16_maps_are_within_the_documented_bound(vol: np.ndarray) -> None:
    model, t = _net(), 6
    out = segment(model, vol, mc_samples=t, seed=5, case_id="p01", batch_size=2)
    assert out.mc_mean is None and out.probabilities.dtype == np.float32
    samples = _stored_samples(model, vol, t, 5, "p01")
    entropy = scipy.stats.entropy(samples.mean(0), axis=0)
    aleatoric = scipy.stats.entropy(samples, axis=1).mean(0)
    bound = np.log(3) * F16_STEP + 1e-5  # the rounding, and float32's own error as above
    for k, ref in (
        ("entropy", entropy),
        ("aleatoric", aleatoric),
        ("epistemic", np.maximum(entropy - aleatoric, 0)),
    ):
        got = getattr(out, k)
        assert got.dtype == np.float16 and got.shape == vol.shape
        err = np.abs(got.astype(np.float64) - ref)
        assert err.max() <= bound, (k, err.max())
        assert err.max() > 1e-6  # float16 rounding did happen: the test is not float32's
    assert out.epistemic is not None and (out.epistemic >= 0).all()
    # the three maps round independently: their identity holds to three roundings
    assert out.entropy is not None and out.aleatoric is not None
    gap = out.entropy.astype(np.float64) - out.aleatoric - out.epistemic
    assert np.abs(gap).max() <= 3 * np.log(3) * F16_STEP


def test_multilabel_sigmoid_entropy_is_the_sum_of_binary_entropies(vol: np.ndarray) -> None:
    model, t = _net(classes=3), 4
    out = segment(model, vol, output="sigmoid", mc_samples=t, case_id="m", map_dtype="float32")
    assert out.probabilities.shape == (3, *vol.shape)
    samples = np.empty((t, 3, *vol.shape))
    masks = CaseMasks(model)
    with torch.no_grad():
        for z in range(vol.shape[0]):
            keys = case_keys(0, [f"m\x00slice {z} window (0, 0)"])
            for s in range(t):
                with masks.active(keys, (0, 0)) as begin:
                    begin(s, 1)
                    samples[s, :, z] = torch.sigmoid(model(torch.from_numpy(vol[z])[None, None]))[0]

    def binary(p: np.ndarray) -> np.ndarray:
        return scipy.stats.entropy(np.stack([p, 1 - p]), axis=0)

    assert out.entropy is not None and out.aleatoric is not None
    np.testing.assert_allclose(out.entropy, binary(samples.mean(0)).sum(0), atol=1e-5)
    np.testing.assert_allclose(out.aleatoric, binary(samples).sum(1).mean(0), atol=1e-5)


def test_identical_passes_have_exactly_zero_epistemic_uncertainty(vol: np.ndarray) -> None:
    model = _net()
    model.drop.p = 0.0
    model.fine.p = 0.0
    for kw in ({}, FULL):
        out = segment(model, vol, mc_samples=7, case_id="same", **kw)
        assert out.epistemic is not None
        assert (out.epistemic == 0).all()
        np.testing.assert_array_equal(out.aleatoric, out.entropy)
    np.testing.assert_array_equal(out.mc_mean, out.probabilities)


def test_memory_does_not_grow_with_the_number_of_samples() -> None:
    vol = np.random.default_rng(0).normal(size=(16, 48, 48)).astype(np.float32)
    model = _net()

    def peak(t: int, **kw: Any) -> int:
        tracemalloc.start()
        segment(model, vol, mc_samples=t, batch_size=2, **kw)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(2), peak(12)
    sample = 3 * vol.size * 4  # one (C, z, y, x) float32 sample volume; storing all T takes 12
    results = (3 * 4 + 3 * 2) * vol.size  # probabilities float32, three float16 maps
    assert large <= 1.05 * small + 65536
    # beyond the results: the slab's sums and the masks' hashing blocks (0.5 MB, fixed)
    assert large - results < 3 * sample
    # float32 maps and the MC mean: (2C + 3) float32 volumes, 18 bytes a voxel more
    assert peak(2, **FULL) - small >= 0.95 * 18 * vol.size


# --- reproducibility --------------------------------------------------------------------


def test_same_seed_and_case_give_the_same_bits_whatever_the_batch(vol: np.ndarray) -> None:
    model = _net(PerRow)
    runs = [
        segment(model, vol, mc_samples=4, seed=2, case_id="a", batch_size=b, keep_mc_mean=True)
        for b in (1, 3, 8)
    ]
    assert runs[0].mc_mean is not None
    assert all(_same(runs[0], r) for r in runs[1:])
    # a usual conv net: the masks are the same, torch's kernels round per batch size
    plain = [
        segment(_net(), vol, mc_samples=4, seed=2, case_id="a", batch_size=b, **FULL)
        for b in (1, 8)
    ]
    for k in FIELDS:
        np.testing.assert_allclose(getattr(plain[0], k), getattr(plain[1], k), atol=1e-6, rtol=0)


def test_3d_patches_give_the_same_bits_however_batched(vol: np.ndarray) -> None:
    model = _net(PerRow, dims=3)
    runs = [
        segment(
            model, vol, mode="3d", patch_size=(4, 6, 6), mc_samples=2, case_id="v", batch_size=b
        )
        for b in (1, 7)
    ]
    assert all(_same(runs[0], r) for r in runs[1:])
    assert runs[0].epistemic is not None and runs[0].epistemic.max() > 1e-3


def test_masks_depend_on_case_seed_and_slice() -> None:
    model = _net()
    vol = np.repeat(np.random.default_rng(1).normal(size=(1, 8, 8)), 3, 0).astype(np.float32)
    a = segment(model, vol, mc_samples=3, seed=0, case_id="a", keep_mc_mean=True)
    assert a.mc_mean is not None
    np.testing.assert_array_equal(a.probabilities[:, 0], a.probabilities[:, 1])
    assert not np.array_equal(a.mc_mean[:, 0], a.mc_mean[:, 1])  # each slice its own masks
    for other in (
        segment(model, vol, mc_samples=3, seed=0, case_id="b", keep_mc_mean=True),
        segment(model, vol, mc_samples=3, seed=1, case_id="a", keep_mc_mean=True),
    ):
        np.testing.assert_array_equal(other.probabilities, a.probabilities)
        assert not np.array_equal(other.mc_mean, a.mc_mean)
    assert _same(a, segment(model, vol, mc_samples=3, seed=0, case_id="a", keep_mc_mean=True))


def test_the_global_torch_generator_is_untouched(vol: np.ndarray) -> None:
    class Noisy(Net):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + 0.01 * torch.rand_like(x)

    model = _net(Noisy)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = segment(model, vol, mc_samples=2)
    assert torch.equal(torch.get_rng_state(), before)
    assert _same(a, segment(model, vol, mc_samples=2))  # seeded inside fork_rng


# --- errors -----------------------------------------------------------------------------


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.drop = nn.Linear(1, 3), nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(x.mean((2, 3))))


class Halves(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Constant(nn.Module):
    def __init__(self, value: float, kind: str = "tensor") -> None:
        super().__init__()
        self.value, self.kind = value, kind
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> Any:
        out = torch.full((x.shape[0], 2, *x.shape[2:]), self.value)
        return {"out": out} if self.kind == "dict" else out


@pytest.mark.parametrize(
    ("volume", "match"),
    [
        (np.zeros((4, 4)), r"3-D array \(z, y, x\); got shape \(4, 4\)"),
        (np.zeros((1, 2, 4, 4)), r"got shape \(1, 2, 4, 4\)\. Drop a channel axis"),
        (np.zeros((0, 4, 4)), "non-empty 3-D array"),
        (np.zeros((2, 4, 4), dtype=complex), "real numbers; got dtype complex128"),
        (np.zeros((2, 4, 4), dtype=bool), "real numbers; got dtype bool"),
        (np.where(np.arange(32).reshape(2, 4, 4) == 9, np.nan, 0.0), r"1 non-finite.*\(0, 2, 1\)"),
        (np.full((2, 4, 4), 1e39), "32 non-finite values .* beyond float32"),
    ],
)
def test_bad_volumes_are_refused(volume: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        segment(_net(), volume)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "2.5d"}, "mode must be '2d'"),
        ({"output": "logits"}, "output must be 'softmax', 'sigmoid' or 'probabilities'"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1; got 0"),
        ({"mc_samples": -1}, "mc_samples must be an integer >= 0; got -1"),
        ({"mc_samples": True}, "mc_samples must be an integer >= 0; got True"),
        ({"seed": 1.5}, "seed must be an integer; got 1.5"),
        ({"case_id": 7}, "case_id must be a string"),
        ({"patch_size": (4, 4, 4)}, r"patch_size must be 2 positive integers"),
        ({"mode": "3d", "patch_size": (4, 4)}, r"patch_size must be 3 positive integers"),
        ({"overlap": 1.0}, r"overlap must be a number in \[0, 1\)"),
        ({"device": "nonsense"}, "is not a torch device"),
        ({"keep_mc_mean": 1}, "keep_mc_mean must be True or False; got 1"),
        ({"map_dtype": "float64"}, "map_dtype must be 'float16' .* or 'float32'; got 'float64'"),
        ({"map_dtype": np.float16}, "map_dtype must be 'float16'"),
    ],
)
def test_bad_options_are_refused(vol: np.ndarray, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        segment(_net(), vol, **kwargs)


def test_a_model_without_dropout_cannot_be_sampled(vol: np.ndarray) -> None:
    with pytest.raises(
        InputError, match="model has no dropout layers; MC dropout would give T identical passes"
    ):
        segment(nn.Conv2d(1, 2, 3, padding=1), vol, mc_samples=3)
    with pytest.raises(InputError, match=r"model must be a torch\.nn\.Module; got function"):
        segment(lambda x: x, vol)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "kwargs", "match"),
    [
        (Net(dims=2), {"mode": "3d"}, r"failed on its first batch, of shape \(1, 1, 5, 12, 10\)"),
        (Net(dims=3), {"batch_size": 2}, "A 2D model needs mode='2d' and a 3D model mode='3d'"),
        (Classifier(), {}, r"got \(5, 3\)\. A 2D model needs mode='2d'.*a classifier"),
        (Halves(), {}, r"\(5, C, 12, 10\) for the input \(5, 1, 12, 10\); got \(5, 2, 6, 5\)"),
        (Net(classes=1), {}, "output='softmax' needs C >= 2 channels.*output='sigmoid'"),
        (Constant(0.7), {"output": "probabilities"}, "sum to 1 over the channels"),
        (Constant(-0.1), {"output": "probabilities"}, r"values in \[0, 1\]"),
        (
            Constant(float("nan")),
            {},
            "model output for slice 0, window at \\(0, 0\\) is not finite",
        ),
        (Constant(1.0, "dict"), {}, "the model returned dict; expected a tensor"),
    ],
)
def test_bad_models_are_named(
    vol: np.ndarray, model: nn.Module, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(InputError, match=match):
        segment(model, vol, **kwargs)
