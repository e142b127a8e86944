"""Multi-label (sigmoid) heads: one finding validated as a binary task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medval._errors import InputError
from medval._types import Predictions
from medval.inference import predict
from medval.io._outputs import select_output


class MultiLabel(torch.nn.Module):
    """Five independent findings from 4 features."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _loader(x: torch.Tensor) -> list[dict[str, object]]:
    ids = [f"c{i}" for i in range(len(x))]
    return [{"image": x[:6], "case_id": ids[:6]}, {"image": x[6:], "case_id": ids[6:]}]


def test_one_column_of_a_multilabel_head_through_a_sigmoid() -> None:
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    model = MultiLabel().eval()
    with torch.no_grad():
        logits = model(x).numpy().astype(np.float64)
    picked = select_output(model, key=None, index=None, name="m.pt", column=3)
    preds = predict(picked, _loader(x), output="sigmoid")
    ref = 1.0 / (1.0 + np.exp(-logits[:, 3]))  # scipy-free reference: the logistic function
    np.testing.assert_allclose(preds.probabilities[:, 1], ref, atol=1e-6)
    np.testing.assert_allclose(preds.probabilities.sum(axis=1), 1.0, atol=1e-6)
    py = Predictions.from_sigmoid(preds.case_ids, logits, column=3)
    np.testing.assert_allclose(py.probabilities, preds.probabilities, atol=1e-6)


def test_a_multilabel_head_without_a_column_is_refused() -> None:
    x = torch.randn(10, 4)
    with pytest.raises(
        InputError, match=r"returns 5 \(a multi-label head\).*label_column = 0\.\.4"
    ):
        predict(MultiLabel().eval(), _loader(x), output="sigmoid")
    picked = select_output(MultiLabel(), key=None, index=None, name="m.pt", column=7)
    with pytest.raises(InputError, match=r"label_column = 7 but model 'm.pt' returns 5 label"):
        predict(picked.eval(), _loader(x), output="sigmoid")
    with pytest.raises(InputError, match=r"pass column= \(0\.\.4\)"):
        Predictions.from_sigmoid(["a"], np.zeros((1, 5)))


def test_from_sigmoid_is_stable_for_large_logits() -> None:
    p = Predictions.from_sigmoid(["a", "b"], np.array([[800.0, 0.0], [-800.0, 0.0]]), column=0)
    np.testing.assert_allclose(p.probabilities, [[0.0, 1.0], [1.0, 0.0]])
