"""Headline probabilities come from the deterministic pass, whatever mc_samples is.

The model that will be deployed runs with dropout off; its probabilities must
not move when MC-dropout samples are drawn for the uncertainty analyses
(they did: the MC mean replaced them, costing up to 0.17 AUROC on a real model).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import medval
from medval.demo import make_model


@pytest.fixture(scope="module")
def batch() -> tuple[torch.nn.Module, list[torch.Tensor], list[str]]:
    torch.manual_seed(0)
    model = make_model()
    x = torch.randn(12, 1, 64, 64)
    return model, [x[:5], x[5:]], [f"c{i}" for i in range(12)]


@pytest.mark.parametrize("head", [None, False])
def test_probabilities_do_not_depend_on_mc_samples(
    batch: tuple[torch.nn.Module, list[torch.Tensor], list[str]], head: bool | None
) -> None:
    model, loader, ids = batch
    plain = medval.predict(model, loader, case_ids=ids)
    for t in (1, 4, 20):
        mc = medval.predict(model, loader, case_ids=ids, mc_samples=t, head=head)
        assert mc.mc_probabilities is not None and mc.mc_probabilities.shape[0] == t
        np.testing.assert_allclose(mc.probabilities, plain.probabilities, atol=1e-7, rtol=0)
    # The samples differ from the deployed pass: their mean is not the headline.
    assert np.abs(mc.mc_probabilities.mean(axis=0) - mc.probabilities).max() > 1e-3


def test_an_ensemble_with_tta_averages_the_deterministic_passes(
    batch: tuple[torch.nn.Module, list[torch.Tensor], list[str]],
) -> None:
    model, loader, ids = batch
    torch.manual_seed(1)
    other = make_model()
    expected = np.mean(
        [
            medval.predict(m, [t(x) for x in loader], case_ids=ids).probabilities
            for m in (model, other)
            for t in (lambda z: z, lambda z: torch.flip(z, dims=[-1]))
        ],
        axis=0,
    )
    got = medval.predict([model, other], loader, case_ids=ids, mc_samples=3, tta="hflip")
    np.testing.assert_allclose(got.probabilities, expected, atol=1e-7, rtol=0)
    assert got.mc_probabilities is not None and got.mc_probabilities.shape[0] == 2 * 2 * 3
