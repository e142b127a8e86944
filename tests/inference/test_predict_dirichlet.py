"""predict(output="dirichlet"): evidential heads whose output is Dirichlet concentrations."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from medval import InputError
from medval.inference import predict
from medval.uncertainty import dirichlet_decompose


class _Plus(nn.Module):
    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c


class Evidential(nn.Module):
    """Backbone + dropout head returning softplus evidence + 1 (the head is cacheable).

    ``normalise=True`` divides alpha by its sum after the head (then not cacheable).
    """

    def __init__(self, k: int = 3, normalise: bool = False) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(8, k), nn.Softplus(), _Plus(1.0))
        self.normalise = normalise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.head(self.features(x))
        return alpha / alpha.sum(1, keepdim=True) if self.normalise else alpha


class Fixed(nn.Module):
    """Returns ``fn(x)``: outputs chosen by the test."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn
        self.lin = nn.Linear(1, 1)  # a parameter, so the model has a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(24, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _batches(x: torch.Tensor, size: int = 10) -> list[torch.Tensor]:
    return list(torch.split(x, size))


def test_probabilities_are_the_dirichlet_mean(images: torch.Tensor) -> None:
    model = Evidential().eval()
    preds = predict(
        model, _batches(images), output="dirichlet", case_ids=[f"c{i}" for i in range(24)]
    )
    with torch.no_grad():
        alpha = model(images).double().numpy()
    np.testing.assert_allclose(preds.probabilities, alpha / alpha.sum(1, keepdims=True), atol=1e-6)
    assert preds.mc_probabilities is None and preds.concentrations is not None
    np.testing.assert_allclose(preds.concentrations, alpha, rtol=1e-6)
    d = dirichlet_decompose(preds)
    np.testing.assert_allclose(d.epistemic, dirichlet_decompose(alpha).epistemic, atol=1e-6)
    assert np.all(d.epistemic > 0)


def test_binary_head_has_two_columns(images: torch.Tensor) -> None:
    preds = predict(Evidential(k=2), _batches(images), output="dirichlet")
    assert preds.probabilities.shape == (24, 2)


@pytest.mark.parametrize("head", [None, False])
def test_mc_samples_are_each_passes_dirichlet_mean(images: torch.Tensor, head: bool | None) -> None:
    # The same network normalising its own alpha, declared as probabilities, draws
    # the same dropout masks: each MC sample must be that pass's Dirichlet mean.
    a = predict(Evidential(), _batches(images), output="dirichlet", mc_samples=6, head=head)
    same = Evidential(normalise=True)
    b = predict(same, _batches(images), output="probabilities", mc_samples=6, head=head)
    assert a.mc_probabilities is not None and b.mc_probabilities is not None
    assert a.mc_probabilities.shape == (6, 24, 3)
    assert np.ptp(a.mc_probabilities, axis=0).max() > 0
    np.testing.assert_allclose(a.mc_probabilities, b.mc_probabilities, atol=1e-6)
    # The headline is the deterministic pass's Dirichlet mean (the deployed model).
    deployed = predict(Evidential(), _batches(images), output="dirichlet", head=head)
    np.testing.assert_allclose(a.probabilities, deployed.probabilities, atol=1e-7, rtol=0)
    assert a.concentrations is None  # T Dirichlets, not one: decompose(a) applies instead


def test_ensemble_and_tta_keep_no_single_dirichlet(images: torch.Tensor) -> None:
    preds = predict(
        [Evidential(), Evidential(k=3)], _batches(images), output="dirichlet", tta="hflip"
    )
    assert preds.mc_probabilities is not None and preds.mc_probabilities.shape == (4, 24, 3)
    assert preds.concentrations is None


def test_zero_evidence_without_plus_one_is_refused(images: torch.Tensor) -> None:
    zeros = Fixed(lambda x: torch.relu(x.flatten(1)[:, :3]))  # ReLU evidence: exact zeros
    ids = [f"case{i}" for i in range(24)]
    first = int(np.argwhere(images.flatten(1)[:, :3].numpy() <= 0)[0][0])
    with pytest.raises(InputError, match=rf"output=\"dirichlet\".*evidence \+ 1.*'case{first}'"):
        predict(zeros, _batches(images), output="dirichlet", case_ids=ids)
    plus_one = Fixed(lambda x: torch.relu(x.flatten(1)[:, :3]) + 1)
    preds = predict(plus_one, _batches(images), output="dirichlet")
    assert preds.concentrations is not None and preds.concentrations.min() >= 1.0


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda x: x.flatten(1)[:, :3], r"positive, finite Dirichlet.*output=\"logits\""),
        (lambda x: x.flatten(1)[:, :3].abs() / 0.0, r"has inf in"),
        (lambda x: x.flatten(1)[:, :1].abs() + 1, r"\(batch, K\).*K >= 2; got shape \(10, 1\)"),
        (lambda x: x.flatten(1)[:, 0].abs() + 1, r"K >= 2; got shape \(10,\)"),
    ],
)
def test_invalid_outputs(
    images: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], match: str
) -> None:
    with pytest.raises(InputError, match=match):
        predict(Fixed(fn), _batches(images), output="dirichlet")


def test_single_column_refused_with_mc_and_head_caching(images: torch.Tensor) -> None:
    with pytest.raises(InputError, match=r"K >= 2; got shape"):
        predict(Evidential(k=1), _batches(images), output="dirichlet", mc_samples=3)
    model = Evidential()
    predict(model, _batches(images), output="dirichlet", mc_samples=2)
    assert not model._forward_hooks  # the shape check's hook is removed afterwards


def test_unknown_output_lists_dirichlet(images: torch.Tensor) -> None:
    with pytest.raises(
        InputError, match=r"'logits', 'probabilities', 'dirichlet' or 'sigmoid'; got 'evidence'"
    ):
        predict(Evidential(), _batches(images), output="evidence")  # type: ignore[arg-type]
