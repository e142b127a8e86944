"""predict(mc_samples=T): a case's samples do not depend on how the cases are batched."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset

from medval import InputError
from medval.inference import predict

N = 64
T = 5


class HeadDrop(nn.Module):
    """Conv + BatchNorm backbone; dropout before the last layer (the head is cached)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(6, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class MidDrop(nn.Module):
    """Dropout2d in the middle of a conv net, alpha dropout and a dropout called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop2d = nn.Dropout2d(0.3)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.alpha = nn.AlphaDropout(0.2)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop2d(functional.relu(self.bn(self.conv1(x))))
        h = self.alpha(functional.relu(self.conv2(h)).mean((2, 3)))
        return self.fc(self.drop(self.drop(h)))


class Cases(Dataset[dict[str, Any]]):
    def __init__(self, x: torch.Tensor, ids: list[str]) -> None:
        self.x, self.ids = x, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.x[i], "case_id": self.ids[i]}


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(N, 1, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def ids() -> list[str]:
    return [f"case{i:03d}" for i in range(N)]


def _dict_batches(x: torch.Tensor, ids: list[str], size: int) -> list[dict[str, Any]]:
    return [
        {"image": x[i : i + size], "case_id": ids[i : i + size]} for i in range(0, len(ids), size)
    ]


def _by_id(preds: Any) -> dict[str, np.ndarray]:
    """MC samples (S, K) of each case, by case id."""
    return {c: preds.mc_probabilities[:, i] for i, c in enumerate(preds.case_ids)}


def _assert_same(a: Any, b: Any) -> None:
    sa, sb = _by_id(a), _by_id(b)
    assert sa.keys() == sb.keys()
    for c in sa:
        np.testing.assert_allclose(sa[c], sb[c], rtol=0, atol=1e-6, err_msg=c)


@pytest.mark.parametrize("model_cls", [HeadDrop, MidDrop])
@pytest.mark.parametrize("head", [None, False])
def test_samples_do_not_depend_on_batch_size_order_or_chunk(
    images: torch.Tensor, ids: list[str], model_cls: type[nn.Module], head: bool | None
) -> None:
    model = model_cls()
    ref = predict(model, _dict_batches(images, ids, N), mc_samples=T, seed=4, head=False)
    assert ref.mc_probabilities is not None and np.ptp(ref.mc_probabilities, axis=0).max() > 0
    for size, chunk in ((1, None), (7, None), (64, None), (7, 1), (64, 3)):
        batches = _dict_batches(images, ids, size)
        got = predict(model, batches, mc_samples=T, seed=4, head=head, mc_chunk=chunk)
        _assert_same(got, ref)
    order = np.random.default_rng(0).permutation(N)
    shuffled = _dict_batches(images[order], [ids[i] for i in order], 7)
    got = predict(model, shuffled, mc_samples=T, seed=4, head=head, mc_chunk=2)
    assert list(got.case_ids) == [ids[i] for i in order]
    _assert_same(got, ref)


def test_ids_from_every_source_key_the_same_masks(images: torch.Tensor, ids: list[str]) -> None:
    model = MidDrop()
    ref = predict(model, _dict_batches(images, ids, 10), mc_samples=T)
    plain = list(torch.split(images, 9))
    _assert_same(predict(model, plain, case_ids=ids, mc_samples=T), ref)

    class Loader(list):  # type: ignore[type-arg]
        dataset = type("D", (), {"case_ids": ids})()

    _assert_same(predict(model, Loader(torch.split(images, 13)), mc_samples=T), ref)
    # without ids, cases are keyed by position: still independent of the batch size
    a = predict(model, plain, mc_samples=T)
    b = predict(model, list(torch.split(images, 1)), mc_samples=T)
    np.testing.assert_allclose(a.mc_probabilities, b.mc_probabilities, atol=1e-6)  # type: ignore[arg-type]


def test_workers_do_not_change_the_samples(images: torch.Tensor, ids: list[str]) -> None:
    model, data = HeadDrop(), Cases(images, ids)
    one = predict(model, DataLoader(data, batch_size=16), mc_samples=T, seed=2)
    two = predict(model, DataLoader(data, batch_size=5, num_workers=2), mc_samples=T, seed=2)
    _assert_same(one, two)


def test_seed_members_and_augmentations_get_their_own_masks(
    images: torch.Tensor, ids: list[str]
) -> None:
    model = MidDrop()
    twin = copy.deepcopy(model)
    batches = _dict_batches(images, ids, 16)
    a = predict(model, batches, mc_samples=T, seed=0).mc_probabilities
    b = predict(model, batches, mc_samples=T, seed=1).mc_probabilities
    assert a is not None and b is not None and not np.allclose(a, b)
    both = predict([model, twin], batches, mc_samples=T, seed=0).mc_probabilities
    assert both is not None and both.shape == (2 * T, N, 3)
    np.testing.assert_allclose(both[:T], a, atol=1e-6)  # member 0 as alone
    assert not np.allclose(both[:T], both[T:])  # identical weights, other masks
    same = [lambda x: x, lambda x: x]
    aug = predict(model, batches, mc_samples=T, tta=same).mc_probabilities
    assert aug is not None and not np.allclose(aug[:T], aug[T:])


def test_ensemble_and_tta_are_batch_invariant(images: torch.Tensor, ids: list[str]) -> None:
    models = [HeadDrop(), MidDrop()]
    a = predict(models, _dict_batches(images, ids, 64), mc_samples=3, tta="hflip")
    b = predict(models, _dict_batches(images, ids, 7), mc_samples=3, tta="hflip", mc_chunk=1)
    assert a.mc_probabilities is not None and a.mc_probabilities.shape == (12, N, 3)
    _assert_same(a, b)


class BatchLast(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 4)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x.flatten(1)).T  # (features, batch): the batch is not first
        return self.fc2(self.drop(h).T)


def test_dropout_input_without_batch_first_is_an_input_error(images: torch.Tensor) -> None:
    with pytest.raises(InputError, match=r"'drop' got an input of shape \(4, 30\).*batch as the"):
        predict(BatchLast(), list(torch.split(images, 10)), mc_samples=3, head=False)
    predict(BatchLast(), list(torch.split(images, 10)))  # deterministic runs are fine
