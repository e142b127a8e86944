"""predict_regression(): heads, MC dropout keyed per case, the variance decomposition's parts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from medval import InputError, RegressionPredictions
from medval.gate import REGRESSION_OUTPUTS as SPEC_OUTPUTS
from medval.inference import REGRESSION_OUTPUTS, predict_regression


class Head(nn.Module):
    """Linear features, dropout, then ``width`` outputs."""

    def __init__(self, width: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU())
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(8, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.body(x)))


def _loader(n: int = 12, batch: int = 5) -> DataLoader[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(1)
    return DataLoader(TensorDataset(torch.randn(n, 1, 4, 4, generator=g)), batch_size=batch)


def _ids(n: int = 12) -> list[str]:
    return [f"c{i}" for i in range(n)]


def test_the_spec_and_the_runner_declare_the_same_outputs() -> None:
    assert tuple(REGRESSION_OUTPUTS) == SPEC_OUTPUTS


def test_a_mean_and_log_variance_head_gives_the_deterministic_pass_and_exp_of_its_log() -> None:
    model = Head(2)
    p = predict_regression(model, _loader(), output="mean_log_variance", case_ids=_ids())
    x = torch.cat([b[0] for b in _loader()])
    with torch.no_grad():
        want = model.eval()(x).double().numpy()
    np.testing.assert_allclose(p.values, want[:, 0], rtol=1e-6)
    np.testing.assert_allclose(p.variances, np.exp(want[:, 1]), rtol=1e-5)
    assert p.mc_values is None and p.sigma() is not None
    np.testing.assert_allclose(p.sigma(), np.exp(want[:, 1] / 2), rtol=1e-5)


def test_mc_samples_do_not_depend_on_the_batch_size_and_the_decomposition_adds_up() -> None:
    model = Head(2)
    a = predict_regression(model, _loader(batch=5), output="mean_log_variance",
                           case_ids=_ids(), mc_samples=7, seed=3)  # fmt: skip
    b = predict_regression(model, _loader(batch=12), output="mean_log_variance",
                           case_ids=_ids(), mc_samples=7, seed=3)  # fmt: skip
    assert a.mc_values is not None and a.mc_variances is not None
    assert a.mc_values.shape == (7, 12)
    np.testing.assert_allclose(a.mc_values, b.mc_values, rtol=1e-5, atol=1e-6)
    assert a.mc_values.std(axis=0).min() > 0  # dropout acted
    # sigma² is the mixture's variance: the MC means' variance plus the mean predicted variance.
    total = a.mc_values.var(axis=0) + a.mc_variances.mean(axis=0)
    np.testing.assert_allclose(a.sigma() ** 2, total, rtol=1e-12)


def test_quantile_heads_keep_their_levels_and_take_the_middle_column_as_the_value() -> None:
    p = predict_regression(Head(3), _loader(), output="quantiles",
                           quantile_levels=(0.05, 0.5, 0.95), case_ids=_ids())  # fmt: skip
    assert p.quantiles is not None and p.quantiles.shape == (12, 3)
    np.testing.assert_array_equal(p.values, p.quantiles[:, 1])
    assert p.quantile_levels == (0.05, 0.5, 0.95)


def test_a_plain_mean_head_has_no_sigma_without_mc_dropout() -> None:
    p = predict_regression(Head(1), _loader(), output="mean", case_ids=_ids())
    assert p.variances is None and p.sigma() is None


@pytest.mark.parametrize(
    ("width", "output", "match"),
    [
        (1, "mean_log_variance", r"2 column\(s\); the model returns 1"),
        (2, "mean", r"1 column\(s\); the model returns 2"),
        (2, "logits", "output must be one of"),
    ],
)
def test_a_head_of_another_shape_is_refused_with_the_declared_output(
    width: int, output: str, match: str
) -> None:
    with pytest.raises(InputError, match=match):
        predict_regression(Head(width), _loader(), output=output, case_ids=_ids())


def test_a_variance_head_giving_a_negative_variance_names_the_case() -> None:
    model = Head(2)
    with torch.no_grad():
        model.out.bias[1] = -100.0  # variances far below zero for every case
    with pytest.raises(InputError, match="predicted variance of case 'c0'"):
        predict_regression(model, _loader(), output="mean_variance", case_ids=_ids())


def test_regression_predictions_check_themselves() -> None:
    ids = ["a", "b"]
    with pytest.raises(InputError, match="values must be finite"):
        RegressionPredictions(ids, [1.0, np.nan])
    with pytest.raises(InputError, match="variances must be > 0"):
        RegressionPredictions(ids, [1.0, 2.0], variances=[1.0, 0.0])
    with pytest.raises(InputError, match="strictly increasing"):
        RegressionPredictions(
            ids, [1.0, 2.0], quantiles=[[0, 1], [1, 2]], quantile_levels=(0.9, 0.1)
        )
    with pytest.raises(InputError, match="unique"):
        RegressionPredictions(["a", "a"], [1.0, 2.0])
    with pytest.raises(InputError, match=r"mc_values must have shape \(T, 2\)"):
        RegressionPredictions(ids, [1.0, 2.0], mc_values=[1.0, 2.0])
    p = RegressionPredictions(ids, [1.0, 2.0], labels=[1.5, 2.5], variances=[1.0, 4.0])
    q = p.subset(np.array([False, True]))
    assert q.case_ids.tolist() == ["b"] and q.variances.tolist() == [4.0]
    assert q.labels is not None and q.labels.tolist() == [2.5]
