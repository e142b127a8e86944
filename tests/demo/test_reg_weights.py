"""The bone-age demo's shipped regressor, its recipe, and its numbers on the demo cohort."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import norm

from medval.demo import (
    REG_PREPROCESS,
    RegCohortInfo,
    load_regression_recipe,
    make_regressor,
    regressor_predictions,
    regressor_reference_scores,
    score_regressor_predictions,
    shipped_regressor,
    train_regression_recipe,
    write_regression_cohort,
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> RegCohortInfo:
    recipe = load_regression_recipe()["expected"]["cohort"]
    return write_regression_cohort(
        tmp_path_factory.mktemp("reg-demo"),
        seed=recipe["seed"],
        n_patients=tuple(recipe["n_patients"]),
    )


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    net = make_regressor()
    net.load_state_dict(torch.load(shipped_regressor(), weights_only=True, map_location="cpu"))
    return net.eval()


@pytest.fixture(scope="module")
def predictions(model: torch.nn.Module, cohort: RegCohortInfo) -> dict[str, Any]:
    return regressor_predictions(model, cohort.root)


def test_recipe_names_the_shipped_file_and_its_digest() -> None:
    recipe = load_regression_recipe()
    path = shipped_regressor()
    assert path.name == recipe["weights_file"] == "regressor.pt"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recipe["weights_sha256"]
    assert path.stat().st_size < 500 * 1024
    for key in ("train_seed", "epochs", "warmup_epochs", "batch_size", "lr", "beta",
                "augment_ranges", "architecture", "training_data", "trained_on"):  # fmt: skip
        assert key in recipe, key
    assert recipe["preprocess"] == [dict(s) for s in REG_PREPROCESS]
    # The training cohort is its own draw, and site C (external) is never seen.
    assert recipe["training_data"]["seed"] != recipe["expected"]["cohort"]["seed"]
    assert recipe["training_data"]["n_patients"][2] == 0


def _tree_sha256(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        h.update(f"{path.relative_to(root).as_posix()}\t{digest}\n".encode())
    return h.hexdigest()


def test_demo_cohort_is_the_recorded_one(cohort: RegCohortInfo) -> None:
    expected = load_regression_recipe()["expected"]["cohort"]
    labels = (cohort.root / "labels.csv").read_bytes()
    # Labels come from numpy's PCG64 draws only: the same bytes on every machine.
    assert hashlib.sha256(labels).hexdigest() == expected["labels_sha256"]
    # Pixels too, here and on the recording machine (SIMD dispatch on and off).
    assert _tree_sha256(cohort.root) == expected["tree_sha256"]
    counts = cohort.split_counts
    assert 140 <= counts["calibration"] <= 160 and 140 <= counts["internal"] <= 160
    assert 90 <= counts["external"] <= 115
    assert cohort.n_images - cohort.n_patients >= 50  # patients with two images
    assert 0.2 < len(cohort.degraded) / cohort.n_images < 0.45


def test_shipped_weights_load_without_pickle(model: torch.nn.Module) -> None:
    state = torch.load(shipped_regressor(), weights_only=True)
    assert set(state) == set(make_regressor().state_dict())
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_shipped_model_reproduces_the_recorded_numbers(predictions: dict[str, Any]) -> None:
    expected = load_regression_recipe()["expected"]["values"]
    got = score_regressor_predictions(predictions)
    assert set(got) == set(expected)
    # Inference moves outputs by ~1e-6 months between CPUs.
    assert math.isclose(got["mae.internal"], expected["mae.internal"], abs_tol=1e-4)
    for key, value in expected.items():
        assert math.isclose(got[key], value, abs_tol=1e-4), (key, got[key], value)


def test_the_demo_story_holds(predictions: dict[str, Any], cohort: RegCohortInfo) -> None:
    from scipy.stats import spearmanr

    values = load_regression_recipe()["expected"]["values"]
    # Good inside: far better than predicting the mean (MAE of that: ~0.8 SD).
    assert values["mae.internal"] < 0.2 * values["label_sd.internal"]
    # Worse on the unseen scanner, yet better than the mean.
    assert values["mae.internal"] * 2 < values["mae.external"] < 0.6 * values["label_sd.external"]
    # The variance head ranks the errors.
    assert values["spearman_sigma_error.internal"] > 0.2
    internal = predictions["split"] == "internal"
    sigma = np.exp(0.5 * predictions["log_variance"][internal])
    error = np.abs(predictions["mean"] - predictions["label"])[internal]
    assert spearmanr(sigma, error)[0] > 0.2
    # Degraded images: larger errors and larger predicted sigma.
    degraded = np.isin(predictions["case_id"][internal], list(cohort.degraded))
    assert error[degraded].mean() > 1.5 * error[~degraded].mean()
    assert sigma[degraded].mean() > 1.3 * sigma[~degraded].mean()


def test_scores_by_hand(tmp_path: Path) -> None:
    class Constant(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[100.0, 2.0 * math.log(10.0)]]).expand(x.shape[0], 2)

    info = write_regression_cohort(tmp_path, seed=4, n_patients=(2, 2, 2))
    scores = regressor_reference_scores(Constant(), info.root)
    labels = pd.read_csv(info.root / "labels.csv")
    internal = labels.loc[labels["split"] == "internal", "label"].to_numpy()
    e = 100.0 - internal
    assert scores["mae.internal"] == pytest.approx(np.mean(np.abs(e)))
    assert scores["bias.internal"] == pytest.approx(np.mean(e))
    assert scores["sigma_mean.internal"] == pytest.approx(10.0)
    nll = -np.mean(norm.logpdf(internal, loc=100.0, scale=10.0))
    assert scores["nll.internal"] == pytest.approx(nll)
    assert math.isnan(scores["spearman_sigma_error.internal"])  # constant sigma ranks nothing


def test_mc_dropout_spreads_the_mean(model: torch.nn.Module, cohort: RegCohortInfo) -> None:
    from medval.demo import regression_pipeline
    from medval.io import DicomDataset

    files = sorted((cohort.root / "dicom" / "site-a").rglob("*.dcm"))[:8]
    dataset = DicomDataset(files, [f.stem for f in files], pipeline=regression_pipeline())
    x = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    model.dropout.train()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            samples = torch.stack([model(x)[:, 0] for _ in range(10)])
    finally:
        model.eval()
    spread = samples.std(0)
    assert (spread > 0.05).all() and (spread < 20).all()


def test_recipe_training_is_deterministic(tmp_path: Path) -> None:
    recipe = load_regression_recipe()
    small = {**recipe, "epochs": 2, "warmup_epochs": 1,
             "training_data": {"seed": 5, "n_patients": [4, 4, 0]}}  # fmt: skip
    first, log = train_regression_recipe(small)
    second, again = train_regression_recipe(small)
    assert log == again and log.n_train >= 8
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name
