from __future__ import annotations

import numpy as np
import pytest
import torch

import medval
from medval import InputError
from medval.conformal import ConformalClassifier


def _model() -> torch.nn.Module:
    m = torch.nn.Linear(4, 3)
    with torch.no_grad():
        m.weight.copy_(torch.arange(12, dtype=torch.float32).reshape(3, 4) / 10 - 0.5)
        m.bias.zero_()
    return m


def test_wrap_gives_the_same_sets_as_the_conformal_classifier(rng: np.random.Generator) -> None:
    model = _model()
    x_cal = torch.as_tensor(rng.normal(size=(300, 4)), dtype=torch.float32)
    cal = medval.predict(model, [x_cal], class_names=("a", "b", "c"))
    cal = cal.with_labels(rng.integers(0, 3, size=300))
    wrapped = medval.wrap(model, cal, method="lac", confidence_level=0.8)
    x = torch.as_tensor(rng.normal(size=(50, 4)), dtype=torch.float32)
    out = wrapped(x)
    ref = ConformalClassifier("lac", confidence_level=0.8, random_state=0)
    expected = ref.calibrate(cal.probabilities, cal.labels).predict_sets(out.probabilities)
    np.testing.assert_array_equal(out.sets, expected)
    np.testing.assert_array_equal(out.refer, expected.sum(axis=1) != 1)
    assert out.labels()[0] == tuple(np.array(["a", "b", "c"])[expected[0]])
    assert model.training  # modes restored (Linear starts in train mode)


def test_wrap_needs_labels(rng: np.random.Generator) -> None:
    cal = medval.predict(_model(), [torch.zeros(5, 4)])
    with pytest.raises(InputError, match="need labels"):
        medval.wrap(_model(), cal)
