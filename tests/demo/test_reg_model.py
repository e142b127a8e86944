"""The bone-age demo's RegNet, its preprocessing as a spec, and its training loop."""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from typing import Any

import numpy as np
import pytest
import torch

from medval import InputError
from medval.demo import (
    REG_PREPROCESS,
    RegNet,
    make_regressor,
    regression_pipeline,
    regression_spec_fields,
    train_regressor,
)
from medval.demo._regnet import AUGMENT_RANGES, LABEL_CENTER, LABEL_SCALE, _augment, _beta_nll
from medval.gate import preprocess_steps
from medval.io import Pipeline


def _template() -> str:
    return (
        resources.files("medval.demo").joinpath("regression_spec.toml.template").read_text("utf-8")
    )


def _spec() -> dict[str, Any]:
    text = _template().format(name="medval.toml", seed=0, **regression_spec_fields())
    return tomllib.loads(text)


def test_factory_is_deterministic_and_leaves_the_global_rng() -> None:
    state = torch.random.get_rng_state()
    a, b = make_regressor(), make_regressor()
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    assert isinstance(a.dropout, torch.nn.Dropout) and a.dropout.p == pytest.approx(0.1)
    # The dropout feeds the head directly (MC dropout samples the head's input).
    assert list(a.children())[-2:] == [a.dropout, a.head]


def test_output_is_mean_and_log_variance_in_months() -> None:
    model = make_regressor().eval()
    x = torch.rand(4, 1, 64, 64)
    with torch.no_grad():
        out, z = model(x), model.standardised(x)
        assert torch.equal(out, model(x))  # eval: deterministic
    assert out.shape == (4, 2)
    torch.testing.assert_close(out[:, 0], LABEL_CENTER + LABEL_SCALE * z[:, 0])
    torch.testing.assert_close(out[:, 1], z[:, 1] + 2.0 * math.log(LABEL_SCALE))
    assert "affine" not in model.state_dict()  # the mapping is code, not weights
    model.dropout.train()
    with torch.no_grad():
        torch.manual_seed(0)
        assert not torch.equal(model(x), model(x))  # MC-dropout samples differ


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": 0}, "width must be a positive int"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_architecture(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        RegNet(**kwargs)


def test_pipeline_is_the_declared_steps() -> None:
    described = [s for s in regression_pipeline().describe() if not s.get("implicit")]
    assert described == [dict(s) for s in REG_PREPROCESS]
    assert regression_pipeline().warnings == []  # normalisation declared


def test_spec_template_declares_the_training_preprocessing() -> None:
    spec = _spec()
    steps = preprocess_steps(spec["preprocess"])
    assert steps == [dict(s) for s in REG_PREPROCESS]
    from_spec = Pipeline.from_steps(steps)
    image = np.random.default_rng(0).uniform(0, 4095, size=(80, 80))
    assert np.array_equal(from_spec(image), regression_pipeline()(image))


def test_spec_template_keys() -> None:
    spec = _spec()
    assert spec["task"] == {"type": "regression", "name": "bone age", "unit": "months",
                            "range": [0, 240]}  # fmt: skip
    assert spec["model"] == {"file": "regressor.pt", "factory": "medval.demo:make_regressor",
                             "output": "mean_log_variance", "mc_samples": 10}  # fmt: skip
    assert spec["analysis"]["test_splits"] == ["internal", "external"]
    assert spec["analysis"]["calibration_split"] == "calibration"
    assert spec["analysis"]["n_resamples"] == 1000
    assert spec["regression"] == {"interval": "normalized", "confidence_level": 0.9,
                                  "mondrian": "manufacturer"}  # fmt: skip
    assert spec["shift"]["subgroup_columns"] == ["manufacturer", "sex", "age_band"]
    keys = {c["key"]: c for c in spec["criteria"]}
    assert set(keys) == {"regression.mae", "regression.interval.coverage",
                         "split.external.regression.mae",
                         "split.external.regression.interval.by_group"}  # fmt: skip
    per_scanner = keys["split.external.regression.interval.by_group"]
    assert (per_scanner["column"], per_scanner["field"]) == ("manufacturer", "coverage")
    assert keys["split.external.regression.mae"]["severity"] == "warn"
    assert keys["regression.interval.coverage"]["threshold"] == 0.8


def _toy(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(n, 1, 64, 64)).astype(np.float32)
    return images, 60.0 + 100.0 * images.mean(axis=(1, 2, 3))


def test_training_is_deterministic_and_leaves_the_global_rng() -> None:
    images, targets = _toy()
    state = torch.random.get_rng_state()
    logs, weights = [], []
    for _ in range(2):
        model = make_regressor()
        logs.append(train_regressor(model, images, targets, seed=3, epochs=2, warmup_epochs=1,
                                    batch_size=8))  # fmt: skip
        weights.append(model.state_dict())
        assert not model.training
    assert torch.equal(torch.random.get_rng_state(), state)
    assert logs[0] == logs[1]
    assert len(logs[0].epoch_losses) == 2 and logs[0].n_train == 24
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
    other = make_regressor()
    train_regressor(other, images, targets, seed=4, epochs=2, warmup_epochs=1, batch_size=8)
    assert not torch.equal(other.head.weight, weights[0]["head.weight"])


def test_beta_nll_matches_torch_gaussian_nll() -> None:
    rng = np.random.default_rng(1)
    z = torch.tensor(rng.normal(size=(50, 2)), dtype=torch.float64, requires_grad=True)
    y = torch.tensor(rng.normal(size=50), dtype=torch.float64)
    reference = torch.nn.GaussianNLLLoss(eps=0.0)(z[:, 0], y, torch.exp(z[:, 1]))
    torch.testing.assert_close(_beta_nll(z, y, 0.0), reference)
    # beta > 0 rescales each case's loss by its (detached) variance ** beta.
    loss = _beta_nll(z, y, 0.5)
    loss.backward()
    assert z.grad is not None
    var = torch.exp(z[:, 1]).detach()
    torch.testing.assert_close(z.grad[:, 0], var**0.5 * (z[:, 0] - y).detach() / var / 50)


def test_augment_share_zero_only_mirrors() -> None:
    x = torch.rand(6, 1, 64, 64)
    out = _augment(x, torch.Generator().manual_seed(0), AUGMENT_RANGES, 0.0)
    for i in range(6):
        assert torch.allclose(out[i], x[i], atol=1e-6) or torch.allclose(
            out[i], x[i].flip(-1), atol=1e-6
        )
    changed = _augment(x, torch.Generator().manual_seed(0), AUGMENT_RANGES, 1.0)
    assert all(not torch.allclose(changed[i], x[i], atol=1e-3) for i in range(6))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be a positive int"),
        ({"batch_size": 1.5}, "batch_size must be a positive int"),
        ({"epochs": 2, "warmup_epochs": 2}, r"warmup_epochs must be an int in \[0, epochs\)"),
        ({"lr": 0.0}, "lr must be > 0 and beta >= 0"),
        ({"beta": -1.0}, "lr must be > 0 and beta >= 0"),
        ({"augment_share": 2.0}, r"augment_share must be in \[0, 1\]"),
        ({"augment_ranges": {"gamma": (1.0, 1.0)}}, "augment_ranges must have the keys"),
    ],
)
def test_bad_training_settings(kwargs: dict[str, object], match: str) -> None:
    images, targets = _toy(4)
    with pytest.raises(InputError, match=match):
        train_regressor(make_regressor(), images, targets, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("images", "targets", "match"),
    [
        (np.zeros((3, 64, 64)), np.zeros(3), r"images must have shape \(n, 1, H, W\)"),
        (np.zeros((3, 1, 64, 64)), np.zeros(2), r"targets must have shape \(3,\)"),
        (np.zeros((2, 1, 64, 64)), np.array([1.0, np.nan]), "targets must be finite"),
    ],
)
def test_bad_training_data(images: np.ndarray, targets: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        train_regressor(make_regressor(), images, targets)
