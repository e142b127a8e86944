"""predict(): deterministic runs, MC dropout, head caching, TTA, ensembles, embeddings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional

from medval import InputError
from medval.inference import predict


class Net(nn.Module):
    """Conv + BatchNorm backbone, dropout only in the classifier head."""

    def __init__(self, k: int = 3, head_dropout: bool = True) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        layers: list[nn.Module] = [nn.Dropout(0.5)] if head_dropout else []
        self.fc = nn.Sequential(*layers, nn.Linear(6, k))
        self.backbone_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.backbone_calls += 1
        return self.fc(self.features(x))


class DeepDrop(nn.Module):
    """Dropout throughout: no head to cache."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout2d(0.3)
        self.fc = nn.Linear(4, 2)
        self.drop2 = nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(functional.relu(self.bn(self.conv(x)))).mean((2, 3))
        return self.fc(self.drop2(h))


class FunctionalDrop(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(functional.dropout(x.flatten(1)[:, :4], 0.5, training=self.training))


class ChainNet(nn.Module):
    """Dropout and classifier are siblings called in a custom forward (like the demo's)."""

    def __init__(self, gap: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(6, 3)
        self.gap = gap  # a functional step between dropout and fc: the chain is not cacheable
        self.backbone_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.backbone_calls += 1
        h = self.drop(self.pool(self.features(x)).flatten(1))
        return self.fc(2 * h if self.gap else h)


class _Boom(nn.Module):
    """Raises while the dropout before it carries medval's mask hooks (i.e. while sampling)."""

    def __init__(self, drop: nn.Module) -> None:
        super().__init__()
        self.watch = [drop]  # a list, so that it is not registered twice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.watch[0]._forward_hooks:
            raise RuntimeError("boom")
        return x


class FailingHead(Net):
    def __init__(self) -> None:
        super().__init__()
        drop = self.fc[0]
        self.fc = nn.Sequential(drop, _Boom(drop), self.fc[1])


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(24, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _batches(x: torch.Tensor, size: int = 10) -> list[torch.Tensor]:
    return list(torch.split(x, size))


def test_deterministic_matches_manual(images: torch.Tensor) -> None:
    model = Net().eval()
    preds = predict(model, _batches(images))
    with torch.no_grad():
        expected = torch.softmax(model(images), 1).double().numpy()
    np.testing.assert_allclose(preds.probabilities, expected, atol=1e-6)
    assert preds.mc_probabilities is None


def test_binary_single_logit(images: torch.Tensor) -> None:
    preds = predict(Net(k=1), _batches(images))
    assert preds.probabilities.shape == (24, 2)


def test_case_ids_sources(images: torch.Tensor) -> None:
    dict_batches = [
        {"image": b, "case_id": [f"c{i}_{j}" for j in range(len(b))]}
        for i, b in enumerate(_batches(images))
    ]
    assert predict(Net(), dict_batches).case_ids[0] == "c0_0"

    class Loader(list):  # type: ignore[type-arg]
        dataset = type("D", (), {"case_ids": [f"d{i}" for i in range(24)]})()

    assert predict(Net(), Loader(_batches(images))).case_ids[-1] == "d23"
    given = [f"g{i}" for i in range(24)]
    assert list(predict(Net(), _batches(images), case_ids=given).case_ids) == given
    with pytest.raises(InputError, match="3 ids"):
        predict(Net(), _batches(images), case_ids=["a", "b", "c"])


def test_mc_shapes_mean_and_seed(images: torch.Tensor) -> None:
    net = Net()
    a = predict(net, [(b, 0) for b in _batches(images)], mc_samples=9, seed=5)
    assert a.mc_probabilities is not None and a.mc_probabilities.shape == (9, 24, 3)
    # The headline probabilities are the deterministic pass (the deployed model),
    # not the samples' mean.
    deployed = predict(net, [(b, 0) for b in _batches(images)])
    np.testing.assert_allclose(a.probabilities, deployed.probabilities, atol=1e-7, rtol=0)
    assert np.ptp(a.mc_probabilities, axis=0).max() > 0
    model = Net()
    b = predict(model, _batches(images), mc_samples=9, seed=5)
    c = predict(model, _batches(images), mc_samples=9, seed=6)
    assert not np.allclose(b.mc_probabilities, c.mc_probabilities)  # type: ignore[arg-type]


def test_mc_does_not_touch_global_rng(images: torch.Tensor) -> None:
    model = Net()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    predict(model, _batches(images), mc_samples=4, seed=0)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("chunk", [1, 4, None])
def test_head_caching_equals_naive(images: torch.Tensor, chunk: int | None) -> None:
    model = Net()
    calls0 = model.backbone_calls
    cached = predict(model, _batches(images), mc_samples=7, seed=1, mc_chunk=chunk)
    # one backbone pass per batch (the first doubles as the probe), never T
    assert model.backbone_calls - calls0 == 3
    naive = predict(model, _batches(images), mc_samples=7, seed=1, mc_chunk=chunk, head=False)
    np.testing.assert_allclose(cached.mc_probabilities, naive.mc_probabilities, atol=1e-6)  # type: ignore[arg-type]
    named = predict(model, _batches(images), mc_samples=7, seed=1, mc_chunk=chunk, head="fc")
    np.testing.assert_allclose(named.mc_probabilities, naive.mc_probabilities, atol=1e-6)  # type: ignore[arg-type]


def test_sequential_tail_is_cached(images: torch.Tensor) -> None:
    seq = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(4, 2),
    )
    a = predict(seq, _batches(images), mc_samples=5, seed=2, embeddings=True)
    b = predict(seq, _batches(images), mc_samples=5, seed=2, head=False)
    np.testing.assert_allclose(a.mc_probabilities, b.mc_probabilities, atol=1e-6)  # type: ignore[arg-type]
    assert a.embeddings is not None and a.embeddings.shape == (24, 4)


@pytest.mark.parametrize("chunk", [1, None])
def test_chain_head_is_detected_and_equals_naive(images: torch.Tensor, chunk: int | None) -> None:
    model = ChainNet()
    calls0 = model.backbone_calls
    cached = predict(model, _batches(images), mc_samples=4, seed=3, mc_chunk=chunk)
    assert model.backbone_calls - calls0 == 3  # backbone once per batch
    naive = predict(model, _batches(images), mc_samples=4, seed=3, mc_chunk=chunk, head=False)
    np.testing.assert_allclose(cached.mc_probabilities, naive.mc_probabilities, atol=1e-6)  # type: ignore[arg-type]
    named = predict(
        model, _batches(images), mc_samples=4, seed=3, mc_chunk=chunk, head=["drop", "fc"]
    )
    np.testing.assert_allclose(named.mc_probabilities, naive.mc_probabilities, atol=1e-6)  # type: ignore[arg-type]


def test_chain_with_a_step_in_between_is_not_cached(images: torch.Tensor) -> None:
    model = ChainNet(gap=True)
    calls0 = model.backbone_calls
    auto = predict(model, _batches(images), mc_samples=4, seed=3, mc_chunk=1)
    # probe, then per batch the deterministic pass and T sampled passes
    assert model.backbone_calls - calls0 == 1 + 3 * (1 + 4)
    naive = predict(model, _batches(images), mc_samples=4, seed=3, mc_chunk=1, head=False)
    np.testing.assert_allclose(auto.mc_probabilities, naive.mc_probabilities, atol=1e-6)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="cannot be cached"):
        predict(model, _batches(images), mc_samples=2, head=["drop", "fc"])


def test_embeddings_from_the_backbone_with_head_caching(images: torch.Tensor) -> None:
    model = Net()
    with torch.no_grad():
        expected = model.eval().features(images).numpy()
    for name in ("features.4", "fc", "fc.1"):
        preds = predict(model, _batches(images), mc_samples=3, embeddings=name)
        assert preds.embeddings is not None, name
        np.testing.assert_allclose(preds.embeddings, expected, atol=1e-6)
    chain = ChainNet()
    with torch.no_grad():
        pooled = chain.eval().pool(chain.features(images)).flatten(1).numpy()
    # the input of "pool" is the feature map, flattened
    preds = predict(chain, _batches(images), mc_samples=3, embeddings="pool")
    with torch.no_grad():
        fmap = chain.eval().features(images).flatten(1).numpy()
    np.testing.assert_allclose(preds.embeddings, fmap, atol=1e-6)  # type: ignore[arg-type]
    preds = predict(chain, _batches(images), mc_samples=3, embeddings=True)
    np.testing.assert_allclose(preds.embeddings, pooled, atol=1e-6)  # type: ignore[arg-type]


@pytest.mark.parametrize("model_cls", [Net, DeepDrop, ChainNet])
@pytest.mark.parametrize("head", [None, False])
def test_batchnorm_stats_and_flags_survive_train_mode(
    images: torch.Tensor, model_cls: type[nn.Module], head: bool | None
) -> None:
    model = model_cls()
    model.train()  # BatchNorm in training mode would update its running stats
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    before = {n: m.training for n, m in model.named_modules()}
    preds = predict(model, _batches(images), mc_samples=5, head=head)
    assert {n: m.training for n, m in model.named_modules()} == before
    for k, v in model.state_dict().items():
        assert torch.equal(v, stats[k]), k
    assert np.ptp(preds.mc_probabilities, axis=0).max() > 0  # type: ignore[arg-type]
    det = predict(model, _batches(images))
    with torch.no_grad():
        expected = torch.softmax(model.eval()(images), 1).double().numpy()
    np.testing.assert_allclose(det.probabilities, expected, atol=1e-6)


def test_batchnorm_and_modes_untouched(images: torch.Tensor) -> None:
    model = DeepDrop()
    model.train()
    model.bn.eval()
    before = {n: m.training for n, m in model.named_modules()}
    stats = {k: v.clone() for k, v in model.bn.state_dict().items()}
    preds = predict(model, _batches(images), mc_samples=6)
    assert {n: m.training for n, m in model.named_modules()} == before
    for k, v in model.bn.state_dict().items():
        assert torch.equal(v, stats[k]), k
    assert np.ptp(preds.mc_probabilities, axis=0).max() > 0  # type: ignore[arg-type]


def test_modes_restored_after_exception(images: torch.Tensor) -> None:
    model = Net()
    model.train()
    before = {n: m.training for n, m in model.named_modules()}
    with pytest.raises(InputError, match=r"torch\.Tensor"):
        predict(model, [images[:4], "not a tensor"], mc_samples=3)
    assert {n: m.training for n, m in model.named_modules()} == before


@pytest.mark.parametrize("head", [None, False])
def test_modes_restored_after_exception_while_sampling(
    images: torch.Tensor, head: bool | None
) -> None:
    model = FailingHead()
    model.features.train()
    before = {n: m.training for n, m in model.named_modules()}
    with pytest.raises(RuntimeError, match="boom"):
        predict(model, _batches(images), mc_samples=3, head=head)
    assert {n: m.training for n, m in model.named_modules()} == before
    assert not any(m._forward_hooks for m in model.modules())  # mask hooks removed


def test_warns_without_dropout(images: torch.Tensor) -> None:
    with pytest.warns(UserWarning, match="no dropout module"):
        preds = predict(Net(head_dropout=False), _batches(images), mc_samples=3)
    assert np.ptp(preds.mc_probabilities, axis=0).max() == 0  # type: ignore[arg-type]


def test_warns_functional_dropout_does_not_vary(images: torch.Tensor) -> None:
    model = FunctionalDrop()
    model.extra = nn.Dropout(0.5)  # registered but unused: samples cannot vary
    with pytest.warns(UserWarning, match="identical"):
        predict(model, _batches(images), mc_samples=3)


def test_warns_per_member_and_under_tta(images: torch.Tensor) -> None:
    silent = FunctionalDrop()
    silent.extra = nn.Dropout(0.5)
    wide = nn.Sequential(nn.Flatten(), nn.Linear(64, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    with pytest.warns(UserWarning, match="ensemble member 1's 3 MC samples are identical"):
        predict([wide, silent], _batches(images), mc_samples=3)
    # flips differ, the dropout samples of each flip do not
    with pytest.warns(UserWarning, match="identical"):
        predict(silent, _batches(images), mc_samples=3, tta="hflip")
    with pytest.warns(UserWarning, match=r"ensemble members \[1\] have no dropout"):
        predict(
            [wide, nn.Sequential(nn.Flatten(), nn.Linear(64, 2))], _batches(images), mc_samples=2
        )


def test_ensemble_and_tta(images: torch.Tensor) -> None:
    models = [Net().eval(), Net().eval()]
    ens = predict(models, _batches(images))
    assert ens.mc_probabilities is not None and ens.mc_probabilities.shape == (2, 24, 3)
    tta = predict(models[0], _batches(images), tta="flips")
    assert tta.mc_probabilities is not None and tta.mc_probabilities.shape == (4, 24, 3)
    with torch.no_grad():
        flipped = torch.softmax(models[0](torch.flip(images, (-1,))), 1).numpy()
    np.testing.assert_allclose(tta.mc_probabilities[1], flipped, atol=1e-6)
    both = predict(models, _batches(images), tta="hflip", mc_samples=3)
    assert both.mc_probabilities is not None and both.mc_probabilities.shape == (12, 24, 3)


def test_embeddings_deterministic(images: torch.Tensor) -> None:
    model = Net()
    a = predict(model, _batches(images), embeddings=True)
    b = predict(model, _batches(images), embeddings="fc", mc_samples=4)
    with torch.no_grad():
        expected = model.eval().features(images).numpy()
    np.testing.assert_allclose(a.embeddings, expected, atol=1e-6)  # type: ignore[arg-type]
    np.testing.assert_allclose(b.embeddings, expected, atol=1e-6)  # type: ignore[arg-type]


def test_option_errors(images: torch.Tensor) -> None:
    with pytest.raises(InputError, match="mc_samples"):
        predict(Net(), _batches(images), mc_samples=-1)
    with pytest.raises(InputError, match="unknown tta"):
        predict(Net(), _batches(images), tta="rotate")
    with pytest.raises(InputError, match="no submodule"):
        predict(Net(), _batches(images), mc_samples=2, head="classifier")
    with pytest.raises(InputError, match="every dropout module"):
        predict(DeepDrop(), _batches(images), mc_samples=2, head="fc")
    with pytest.raises(InputError, match="no batches"):
        predict(Net(), [])
    with pytest.raises(InputError, match=r"nn\.Linear"):
        predict(nn.Sequential(nn.Flatten()), _batches(images), embeddings=True)
    with pytest.raises(InputError, match="mc_chunk"):
        predict(Net(), _batches(images), mc_samples=2, mc_chunk=0)
    with pytest.raises(InputError, match="every dropout module"):
        predict(ChainNet(), _batches(images), mc_samples=2, head=["fc"])
    with pytest.raises(InputError, match="cannot be cached"):
        predict(ChainNet(), _batches(images), mc_samples=2, head=["drop"])
    with pytest.raises(InputError, match="list of submodule names"):
        predict(ChainNet(), _batches(images), mc_samples=2, head=[3])  # type: ignore[list-item]


def test_device_auto_is_cpu(images: torch.Tensor) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preds = predict(Net(), _batches(images), device=None)
    assert preds.n_cases == 24
