"""Out-of-memory halving: a batch that does not fit runs in halves, with the same outputs.

The modules below raise ``torch.OutOfMemoryError`` (what CUDA raises) when a
forward sees more rows than they allow, so the halving runs on the CPU.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from medval import InputError
from medval.inference import BatchLimit, predict, predict_regression

_SAME_ATOL = 1e-6  # float32 rounding of identical inputs in differently sized batches


class Picky(nn.Module):
    """The identity, but 'out of memory' above ``most`` rows (``None``: never)."""

    def __init__(self, most: int | None) -> None:
        super().__init__()
        self.most = most
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(int(x.shape[0]))
        if self.most is not None and x.shape[0] > self.most:
            raise torch.OutOfMemoryError(f"CUDA out of memory (simulated: {x.shape[0]} rows)")
        return x


class Net(nn.Module):
    """A backbone, then a dropout head; ``Picky`` guards the input, the head or the output.

    ``tail_most`` fails after the last Linear has run, so its input (the
    embedding) was already recorded for the piece that then fails.
    """

    def __init__(
        self, backbone_most: int | None, head_most: int | None = None, tail_most: int | None = None
    ) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.gate = Picky(backbone_most)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU())
        self.head = nn.Sequential(
            nn.Dropout(0.4), Picky(head_most), nn.Linear(8, 3), Picky(tail_most)
        )
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.gate(x)))


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(37, 1, 4, 4, generator=torch.Generator().manual_seed(1))


def _batches(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    return [x[i : i + size] for i in range(0, x.shape[0], size)]


@pytest.mark.parametrize("where", ["input", "output"])
@pytest.mark.parametrize("mc_samples", [0, 6])
def test_halved_batches_give_the_same_outputs_and_record_the_halvings(
    images: torch.Tensor, mc_samples: int, where: str
) -> None:
    plain = predict(Net(None), _batches(images, 16), mc_samples=mc_samples, embeddings=True)
    limit = BatchLimit()
    net = Net(5) if where == "input" else Net(None, tail_most=5)
    halved = predict(
        net, _batches(images, 16), mc_samples=mc_samples, embeddings=True, batch_limit=limit
    )
    # 16 does not fit, nor 8; 4 does, and every later batch starts at 4.
    assert limit.halvings == [(16, 8), (8, 4)]
    assert limit.size == 4
    picky = net.gate if where == "input" else net.head[3]
    assert max(c for c in picky.calls if c <= 5) == 4  # type: ignore[union-attr, operator]
    assert limit.summary() == {
        "out_of_memory_halvings": 2,
        "batch_size_before_halving": 16,
        "batch_size_after_halving": 4,
    }
    np.testing.assert_array_equal(halved.case_ids, plain.case_ids)
    np.testing.assert_allclose(halved.probabilities, plain.probabilities, atol=_SAME_ATOL, rtol=0)
    assert halved.embeddings is not None and plain.embeddings is not None
    assert halved.embeddings.shape == plain.embeddings.shape == (37, 8)  # the failed ones dropped
    np.testing.assert_allclose(halved.embeddings, plain.embeddings, atol=_SAME_ATOL, rtol=0)
    if mc_samples:
        assert halved.mc_probabilities is not None and plain.mc_probabilities is not None
        np.testing.assert_allclose(
            halved.mc_probabilities, plain.mc_probabilities, atol=_SAME_ATOL, rtol=0
        )


def test_mc_chunks_halve_first_then_the_batch(images: torch.Tensor) -> None:
    """The head sees samples x cases rows: the MC chunk halves to 1, then the batch halves."""
    plain = predict(Net(None), _batches(images, 8), mc_samples=5, mc_chunk=5)
    limit = BatchLimit()
    net = Net(None, head_most=3)
    halved = predict(net, _batches(images, 8), mc_samples=5, mc_chunk=5, batch_limit=limit)
    assert limit.halvings == [(8, 4), (4, 2)]  # one sample of 8 or 4 cases is over 3 rows
    assert max(net.head[1].calls[-20:]) <= 3  # type: ignore[index, union-attr]
    assert halved.mc_probabilities is not None and plain.mc_probabilities is not None
    np.testing.assert_allclose(
        halved.mc_probabilities, plain.mc_probabilities, atol=_SAME_ATOL, rtol=0
    )
    np.testing.assert_allclose(halved.probabilities, plain.probabilities, atol=_SAME_ATOL, rtol=0)


def test_a_given_limit_starts_below_the_loader_batch(images: torch.Tensor) -> None:
    limit = BatchLimit(size=3)
    net = Net(3)
    predict(net, _batches(images, 16), batch_limit=limit)
    assert limit.halvings == [] and max(net.gate.calls) == 3


def test_regression_shares_the_halving(images: torch.Tensor) -> None:
    plain = predict_regression(Net(None), _batches(images, 16), output="quantiles",
                               quantile_levels=(0.1, 0.5, 0.9))  # fmt: skip
    limit = BatchLimit()
    halved = predict_regression(Net(8), _batches(images, 16), output="quantiles",
                                quantile_levels=(0.1, 0.5, 0.9), batch_limit=limit)  # fmt: skip
    assert limit.halvings == [(16, 8)]
    assert halved.quantiles is not None and plain.quantiles is not None
    np.testing.assert_allclose(halved.quantiles, plain.quantiles, atol=_SAME_ATOL, rtol=0)


def test_without_a_record_the_halving_warns(images: torch.Tensor) -> None:
    match = r"out of memory: batches were halved 2 times, from 16 to 4"
    with pytest.warns(UserWarning, match=match):
        predict(Net(5), _batches(images, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict(Net(5), _batches(images, 16), batch_limit=BatchLimit())


def test_one_case_that_does_not_fit_is_a_clear_error(images: torch.Tensor) -> None:
    limit = BatchLimit()
    match = r"out of memory on a single case \(batches were halved from 16 cases down to 1\)"
    with pytest.raises(InputError, match=match) as exc:
        predict(Net(0), _batches(images, 16), batch_limit=limit)
    assert isinstance(exc.value.__cause__, torch.OutOfMemoryError)
    assert [t for t, _ in limit.halvings] == [16, 8, 4, 2]


def test_a_probe_that_runs_out_of_memory_still_caches_the_head(images: torch.Tensor) -> None:
    """The head probe on the first batch fails; it is tried again on the halves."""
    net = Net(5)
    calls = []
    original = net.features.forward
    net.features.forward = lambda x: calls.append(x.shape[0]) or original(x)  # type: ignore[method-assign]
    predict(net, _batches(images, 16), mc_samples=4, batch_limit=BatchLimit())
    # With the head cached, the backbone runs once per piece (plus the probe's replay).
    assert sum(calls) <= 37 + 8
