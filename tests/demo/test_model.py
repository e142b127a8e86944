"""Tests of the demo CNN and its training loop (medval.demo.make_model / train)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from medval import InputError
from medval.demo import DemoNet, TrainingLog, make_model, train, write_cohort


class _Images(torch.utils.data.Dataset[dict[str, object]]):
    """In-memory dataset with the io.DicomDataset contract."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict[str, object]:
        return {"image": self.images[i], "case_id": f"c{i:05d}"}


class _Stream(torch.utils.data.IterableDataset[dict[str, object]]):
    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __iter__(self):  # type: ignore[no-untyped-def]
        for i, image in enumerate(self.images):
            yield {"image": image, "case_id": f"c{i:05d}"}


@pytest.fixture
def tiny() -> tuple[_Images, np.ndarray]:
    gen = torch.Generator().manual_seed(11)
    images = torch.rand(20, 1, 32, 32, generator=gen)
    labels = np.array([0, 1] * 10)
    images[labels == 1, :, 12:18, 12:18] += 0.5
    return _Images(images), labels


def test_output_shape_and_dropout() -> None:
    model = make_model()
    assert isinstance(model, DemoNet)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert [d.p for d in dropouts] == [0.3]
    x = torch.rand(5, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        out = model(x)
        assert out.shape == (5, 1)
        assert out.dtype == torch.float32
        assert torch.equal(out, model(x))
    model.train()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.random.manual_seed(0)
        samples = torch.stack([model(x) for _ in range(4)])
    assert not torch.allclose(samples[0], samples[1])


def test_make_model_is_reproducible() -> None:
    before = torch.random.get_rng_state()
    first, second = make_model().state_dict(), make_model().state_dict()
    assert torch.equal(before, torch.random.get_rng_state())
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_training_is_deterministic(tiny: tuple[_Images, np.ndarray]) -> None:
    dataset, labels = tiny
    states = []
    for _ in range(2):
        model = make_model()
        before = torch.random.get_rng_state()
        log = train(model, dataset, labels, seed=5, epochs=3, batch_size=8)
        assert torch.equal(before, torch.random.get_rng_state())  # global RNG untouched
        states.append(model.state_dict())
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    assert isinstance(log, TrainingLog)
    assert (log.seed, log.epochs, log.batch_size, log.n_train) == (5, 3, 8, 20)
    assert len(log.epoch_losses) == 3
    assert log.final_loss == log.epoch_losses[-1]
    assert np.isfinite(log.epoch_losses).all()
    assert not model.training


def test_different_seed_differs(tiny: tuple[_Images, np.ndarray]) -> None:
    dataset, labels = tiny
    weights = []
    for seed in (0, 1):
        model = make_model()
        train(model, dataset, labels, seed=seed, epochs=2, batch_size=8)
        weights.append(model.head.weight.detach().clone())
    assert not torch.equal(weights[0], weights[1])


def test_iterable_and_list_datasets_match(tiny: tuple[_Images, np.ndarray]) -> None:
    dataset, labels = tiny
    heads = []
    for data in (dataset, _Stream(dataset.images), [dataset[i] for i in range(len(dataset))]):
        model = make_model()
        train(model, data, labels.tolist(), seed=2, epochs=2, augment=False)
        heads.append(model.head.weight.detach().clone())
    assert torch.equal(heads[0], heads[1])
    assert torch.equal(heads[0], heads[2])


def test_learns_an_easy_task(tiny: tuple[_Images, np.ndarray]) -> None:
    dataset, labels = tiny
    model = make_model()
    log = train(model, dataset, labels, seed=0, epochs=30, batch_size=10, lr=1e-2)
    assert log.final_loss < log.epoch_losses[0]
    with torch.no_grad():
        scores = model(dataset.images).squeeze(1).numpy()
    assert roc_auc_score(labels, scores) > 0.9


def test_progress_bar_goes_to_stderr(
    tiny: tuple[_Images, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    dataset, labels = tiny
    train(make_model(), dataset, labels, epochs=1, progress=True)
    captured = capsys.readouterr()
    assert "train" in captured.err
    assert captured.out == ""


def test_bad_inputs(tiny: tuple[_Images, np.ndarray]) -> None:
    dataset, labels = tiny
    model = make_model()
    with pytest.raises(InputError, match=r"labels must have shape \(20,\)"):
        train(model, dataset, labels[:5])
    with pytest.raises(InputError, match=r"labels must be 0 or 1.*\[2\]"):
        train(model, dataset, np.where(labels == 1, 2, 0))
    with pytest.raises(InputError, match="dataset is empty"):
        train(model, [], [])
    with pytest.raises(InputError, match=r"item 0 must be a dict with an 'image' tensor"):
        train(model, [{"pixels": torch.zeros(1, 8, 8)}], [0])
    with pytest.raises(InputError, match=r"item 1 must be .*got torch.Size\(\[8, 8\]\)"):
        train(model, [{"image": torch.zeros(1, 8, 8)}, {"image": torch.zeros(8, 8)}], [0, 1])
    with pytest.raises(InputError, match="images differ in shape"):
        train(model, [{"image": torch.zeros(1, 8, 8)}, {"image": torch.zeros(1, 9, 9)}], [0, 1])
    with pytest.raises(InputError, match="epochs must be a positive int"):
        train(model, dataset, labels, epochs=0)
    with pytest.raises(InputError, match="batch_size must be a positive int"):
        train(model, dataset, labels, batch_size=2.5)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="lr must be positive"):
        train(model, dataset, labels, lr=0.0)


def _load_windowed(
    root: Path, window: tuple[float, float]
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Read pixels with pydicom: rescale to HU, then window linearly to [0, 1]."""
    with (root / "labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    center, width = window
    images = []
    for r in rows:
        ds = pydicom.dcmread(root / "dicom" / r["file"])
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        images.append(np.clip((hu - (center - width / 2)) / width, 0.0, 1.0))
    x = torch.from_numpy(np.stack(images).astype(np.float32)).unsqueeze(1)
    return x, np.array([int(r["label"]) for r in rows]), np.array([r["split"] for r in rows])


@pytest.mark.slow
def test_recipe_on_the_demo_cohort(tmp_path: Path) -> None:
    info = write_cohort(tmp_path, seed=0)
    x, y, split = _load_windowed(tmp_path, info.window)
    train_mask = split == "train"
    model = make_model()
    train(model, _Images(x[train_mask]), y[train_mask], seed=0)
    with torch.no_grad():
        scores = model(x).squeeze(1).numpy()
    internal = roc_auc_score(y[split == "internal"], scores[split == "internal"])
    external = roc_auc_score(y[split == "external"], scores[split == "external"])
    assert internal > 0.8
    assert external < internal
