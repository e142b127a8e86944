"""The segmentation demo's U-Net, its shipped weights and their recipe."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from medval import InputError
from medval.demo import (
    SEG_WINDOW,
    SegNet,
    load_segmenter_recipe,
    make_segmenter,
    segmenter_reference_scores,
    shipped_segmenter,
    shipped_segmenter_weights,
    train_segmenter,
    window_volume,
)
from medval.demo._unet import _augment_intensity


@pytest.fixture(scope="module")
def model() -> SegNet:
    net: SegNet = shipped_segmenter()
    return net


def test_recipe_names_the_shipped_file_and_its_digest() -> None:
    recipe = load_segmenter_recipe()
    path = shipped_segmenter_weights()
    assert path.name == recipe["weights_file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recipe["weights_sha256"]
    for key in ("train_seed", "epochs", "batch_size", "lr", "architecture", "training_data"):
        assert key in recipe, key
    assert recipe["training_data"]["sites"] == ["site-a", "site-b"]  # site C stays unseen
    assert recipe["training_data"]["seed"] != recipe["expected"]["cohort"]["seed"]
    assert tuple(recipe["window"]) == SEG_WINDOW
    assert path.stat().st_size < 1024 * 1024


def test_shipped_model_shape_and_dropout(model: SegNet) -> None:
    assert not model.training
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout2d)]
    assert len(dropouts) == 3 and all(d.p == pytest.approx(0.2) for d in dropouts)
    x = torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (3, 2, 64, 64)
        assert torch.equal(out, model(x))  # eval: deterministic
        model.train()
        try:
            torch.manual_seed(0)
            a, b = model(x), model(x)
        finally:
            model.eval()
    assert not torch.equal(a, b)  # MC dropout samples differ


def test_reference_numbers_reproduce(model: SegNet) -> None:
    expected = load_segmenter_recipe()["expected"]
    got = segmenter_reference_scores(model, **expected["cohort"])
    for key, value in expected["values"].items():
        # Inference moves logits by ~1e-6 between CPUs; a handful of border
        # voxels may flip, far inside these tolerances.
        tol = 0.01 * max(abs(value), 1.0) if key.startswith("lesion_voxels") else 0.01
        assert math.isclose(got[key], value, abs_tol=tol), (key, got[key], value)
    # The demo's story: decent inside, worse on the unseen scanner.
    values = expected["values"]
    assert 0.55 < values["dice.internal"] < 0.9
    assert values["dice.external"] < values["dice.internal"] - 0.05
    assert values["healthy_with_fp.internal"] <= 0.5


def test_window_volume_matches_hand_values() -> None:
    hu = np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0])
    np.testing.assert_allclose(window_volume(hu), [0.0, 0.0, 0.5, 1.0, 1.0])
    assert window_volume(hu).dtype == np.float32


def test_make_segmenter_is_fixed_and_leaves_the_global_rng() -> None:
    state = torch.random.get_rng_state()
    a, b = make_segmenter(), make_segmenter()
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_training_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    vols, masks = [], []
    for _ in range(2):
        m = np.zeros((4, 16, 16), np.uint8)
        m[1:3, 4:10, 5:11] = 1
        vols.append(np.where(m == 1, 200.0, -50.0) + rng.normal(0, 5, m.shape))
        masks.append(m)
    state = torch.random.get_rng_state()
    kw = {"seed": 3, "epochs": 2, "batch_size": 4, "base": 4, "lr": 1e-2}
    m1, log1 = train_segmenter(vols, masks, **kw)  # type: ignore[arg-type]
    m2, log2 = train_segmenter(vols, masks, **kw)  # type: ignore[arg-type]
    assert torch.equal(torch.random.get_rng_state(), state)
    assert log1.epoch_losses == log2.epoch_losses and len(log1.epoch_losses) == 2
    assert log1.n_volumes == 2 and log1.n_slices_per_epoch == 8
    for p, q in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    assert not m1.training


def test_training_input_errors() -> None:
    vol, mask = np.zeros((2, 16, 16)), np.zeros((2, 16, 16), np.uint8)
    with pytest.raises(InputError, match="equal length"):
        train_segmenter([vol], [], seed=0, epochs=1)
    with pytest.raises(InputError, match=r"volume 0 must be \(z, y, x\)"):
        train_segmenter([vol], [mask[:, :8]], seed=0, epochs=1)
    with pytest.raises(InputError, match="mask 0 must hold only labels 0 and 1"):
        train_segmenter([vol], [mask + 2], seed=0, epochs=1)
    with pytest.raises(InputError, match="epochs must be a positive int"):
        train_segmenter([vol], [mask], seed=0, epochs=0)
    with pytest.raises(InputError, match="seed must be a non-negative int"):
        train_segmenter([vol], [mask], seed=-1, epochs=1)
    with pytest.raises(InputError, match="lr must be positive"):
        train_segmenter([vol], [mask], seed=0, epochs=1, lr=0.0)
    with pytest.raises(InputError, match="one in-plane shape"):
        train_segmenter([vol, np.zeros((2, 8, 8))], [mask, np.zeros((2, 8, 8))], seed=0, epochs=1)
    with pytest.raises(InputError, match="negative_ratio must be non-negative"):
        train_segmenter([vol], [mask], seed=0, epochs=1, negative_ratio=-1.0)
    with pytest.raises(InputError, match=r"scale_range must be a \(low, high\) pair"):
        train_segmenter([vol], [mask], seed=0, epochs=1, scale_range=(1.1, 0.9))
    with pytest.raises(InputError, match=r"noise_range_hu must be a \(low, high\) pair"):
        train_segmenter([vol], [mask], seed=0, epochs=1, noise_range_hu=(-1.0, 2.0))
    with pytest.raises(InputError, match=r"offset_range_hu must be a \(low, high\) pair"):
        train_segmenter([vol], [mask], seed=0, epochs=1, offset_range_hu=(0.0,))
    with pytest.raises(InputError, match="base must be a positive int"):
        SegNet(base=0)
    with pytest.raises(InputError, match=r"dropout must be in \[0, 1\)"):
        SegNet(dropout=1.0)


def test_factory_default_is_the_shipped_architecture() -> None:
    arch = load_segmenter_recipe()["architecture"]
    model = make_segmenter()
    assert (model.base, model.dropout) == (arch["base"], arch["dropout"])
    state = torch.load(shipped_segmenter_weights(), weights_only=True)
    model.load_state_dict(state)  # same keys and shapes


def test_intensity_augmentation_matches_hand_values() -> None:
    # Windowed values of -1000 (air), 40 and 140 HU; -100 HU fat sits at 0.15.
    x = torch.tensor([0.0, 0.5, 0.75, 0.15]).view(1, 1, 1, 4)
    gen = torch.Generator().manual_seed(0)
    out = _augment_intensity(x, gen, (0.5, 0.5), (40.0, 40.0), (0.0, 0.0))
    # HU' = 0.5 (HU - 40) + 40 + 40: 40 -> 80, 140 -> 130, -100 -> 10; air stays.
    expected = [0.0, (80 + 160) / 400, (130 + 160) / 400, (10 + 160) / 400]
    torch.testing.assert_close(out.flatten(), torch.tensor(expected))
    big = torch.full((2, 1, 64, 64), 0.5)
    noisy = _augment_intensity(big, gen, (1.0, 1.0), (0.0, 0.0), (20.0, 20.0))
    assert float((noisy - 0.5).std()) == pytest.approx(20.0 / 400, rel=0.05)
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0


def test_augmented_training_is_deterministic_and_differs() -> None:
    rng = np.random.default_rng(1)
    m = np.zeros((4, 16, 16), np.uint8)
    m[1:3, 4:10, 5:11] = 1
    vols, masks = [np.where(m == 1, 120.0, 40.0) + rng.normal(0, 5, m.shape)], [m]
    kw = {"seed": 3, "epochs": 2, "batch_size": 4, "base": 4, "lr": 1e-2, "negative_ratio": 0.5}
    aug = {"scale_range": (0.9, 1.05), "offset_range_hu": (-10.0, 15.0), "noise_range_hu": (0, 10)}
    _, log1 = train_segmenter(vols, masks, **kw, **aug)  # type: ignore[arg-type]
    _, log2 = train_segmenter(vols, masks, **kw, **aug)  # type: ignore[arg-type]
    _, plain = train_segmenter(vols, masks, **kw)  # type: ignore[arg-type]
    assert log1.epoch_losses == log2.epoch_losses
    assert log1.epoch_losses != plain.epoch_losses
    # 2 lesion slices; negatives: max(0.5 * 2, batch 4) capped at the 2 there are.
    assert log1.n_slices_per_epoch == 4
