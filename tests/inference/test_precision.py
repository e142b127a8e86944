"""Mixed precision: autocast in predict, probabilities in float32, the float32 comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medval import InputError
from medval.inference import (
    PRECISIONS,
    check_precision,
    compare_precision,
    predict,
    predict_regression,
)
from medval.inference._sampler import to_probabilities


def _net(k: int = 3) -> nn.Module:
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(0.3), nn.Linear(8, k),
    )  # fmt: skip
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return net


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(20, 1, 16, 16, generator=torch.Generator().manual_seed(3))


def test_bfloat16_is_autocast_with_float32_softmax(x: torch.Tensor) -> None:
    """Same numbers as plain torch: autocast forward, then softmax of the float32 logits."""
    net = _net().eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = net(x)
    assert logits.dtype == torch.bfloat16
    want = torch.softmax(logits.float(), dim=1).double().numpy()
    got = predict(net, [x[:7], x[7:]], precision="bfloat16")
    np.testing.assert_allclose(got.probabilities, want, rtol=0, atol=1e-7)
    full = predict(net, [x], precision="float32")
    assert np.abs(full.probabilities - got.probabilities).max() > 1e-6  # autocast did act
    assert got.probabilities.dtype == np.float64
    np.testing.assert_allclose(got.probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_mc_dropout_under_bfloat16_keeps_the_per_case_masks(x: torch.Tensor) -> None:
    net = _net()
    a = predict(net, [x], mc_samples=5, precision="bfloat16", seed=2)
    b = predict(net, [x[:3], x[3:11], x[11:]], mc_samples=5, precision="bfloat16", seed=2)
    assert a.mc_probabilities is not None and b.mc_probabilities is not None
    np.testing.assert_allclose(a.mc_probabilities, b.mc_probabilities, rtol=0, atol=1e-6)
    full = predict(net, [x], mc_samples=5, seed=2)
    assert full.mc_probabilities is not None
    assert np.abs(full.mc_probabilities - a.mc_probabilities).max() < 0.05


def test_outputs_reach_softmax_in_float32() -> None:
    logits = torch.tensor([[80.0, 0.0], [0.0, 0.3]], dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for kind in ("logits", "sigmoid", "probabilities", "identity"):
            out = logits[:, :1] if kind == "sigmoid" else logits
            assert to_probabilities(out, kind).dtype == torch.float32  # type: ignore[arg-type]


def test_regression_heads_run_in_bfloat16(x: torch.Tensor) -> None:
    net = _net(k=2)
    low = predict_regression(net, [x], output="mean_log_variance", precision="bfloat16")
    full = predict_regression(net, [x], output="mean_log_variance")
    assert low.values.dtype == np.float64
    assert 0 < np.abs(low.values - full.values).max() < 0.02 * np.abs(full.values).max()


@pytest.mark.parametrize(
    ("precision", "device", "message"),
    [
        ("half", "cpu", r"precision must be one of \['float32', 'bfloat16', 'float16'\]"),
        ("float16", "cpu", r"'float16' needs a CUDA device .* use precision='bfloat16'"),
        ("bfloat16", "meta", r"runs under torch\.autocast on CPU or CUDA; the device is 'meta'"),
    ],
)
def test_precisions_a_device_cannot_run_are_refused(
    precision: str, device: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        check_precision(precision, torch.device(device))


def test_predict_refuses_float16_on_the_cpu_before_any_pass(x: torch.Tensor) -> None:
    class Counting(nn.Module):
        calls = 0

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            Counting.calls += 1
            return t.flatten(1)[:, :2]

    with pytest.raises(InputError, match="needs a CUDA device"):
        predict(Counting(), [x], precision="float16", device="cpu")
    assert Counting.calls == 0
    check_precision("float32", torch.device("meta"))  # float32 runs anywhere
    assert PRECISIONS == ("float32", "bfloat16", "float16")


# --- compare_precision ---------------------------------------------------------------------


def test_comparison_of_probabilities_at_a_threshold_and_by_argmax() -> None:
    ref = np.array([[0.7, 0.3], [0.45, 0.55], [0.2, 0.8], [0.5, 0.5]])
    low = np.array([[0.69, 0.31], [0.52, 0.48], [0.2, 0.8], [0.49, 0.51]])
    check = compare_precision(ref, low, precision="bfloat16", tolerance=0.1, threshold=0.5)
    assert check.max_abs_difference == pytest.approx(0.07)
    assert check.decisions_changed == 1  # case 1 falls below 0.5; case 3 stays >= 0.5
    assert check.passed and check.cases == 4 and check.threshold == 0.5
    by_argmax = compare_precision(ref, low, precision="bfloat16", tolerance=0.05)
    assert by_argmax.decisions_changed == 2 and not by_argmax.passed  # ties go to class 0
    assert by_argmax.threshold is None
    assert by_argmax.as_dict() == {
        "precision": "bfloat16", "cases": 4, "max_abs_difference": pytest.approx(0.07),
        "decisions_changed": 2, "threshold": None, "tolerance": 0.05, "passed": False,
    }  # fmt: skip


def test_comparison_of_regression_values_is_a_share_of_the_scale() -> None:
    check = compare_precision(
        [10.0, 120.0, 200.0], [10.5, 119.0, 200.0], precision="float16", tolerance=0.01,
        scale=240.0,
    )  # fmt: skip
    assert check.max_abs_difference == pytest.approx(1.0 / 240.0)
    assert check.decisions_changed is None and check.passed


@pytest.mark.parametrize(
    ("ref", "low", "kw", "message"),
    [
        (np.ones((3, 2)), np.ones((2, 2)), {}, r"same n >= 1 cases.*\(3, 2\) and \(2, 2\)"),
        (np.ones((0, 2)), np.ones((0, 2)), {}, "same n >= 1 cases"),
        (np.ones(3), np.array([1, np.nan, 1]), {}, "must be finite"),
        (np.ones(3), np.ones(3), {"tolerance": 0.0}, "tolerance and scale must be > 0"),
        (np.ones(3), np.ones(3), {"scale": -1.0}, "tolerance and scale must be > 0"),
    ],
)
def test_bad_comparisons_are_refused(
    ref: np.ndarray, low: np.ndarray, kw: dict[str, float], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        compare_precision(ref, low, precision="bfloat16", **{"tolerance": 0.01, **kw})
