"""The demo's shipped weights, their recipe, and a cohort that is the same on every machine."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medval.demo import load_recipe, make_model, shipped_weights, write_cohort

# SHA-256 over the sorted lines "relative path<TAB>sha256(file bytes)" of every
# file `write_cohort(seed=0)` writes (DICOM files, junk files, labels.csv).
# Measured with numpy's SIMD dispatch on (AVX2) and off (baseline only); a
# change here means the demo data changed, on purpose or not.
COHORT_SEED0_SHA256 = "1e51b4564a06440b118a12ebdac83f72b0669b254985e484dea81ffe7e24557a"


def _tree_sha256(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        h.update(f"{path.relative_to(root).as_posix()}\t{digest}\n".encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def cohort_seed0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohort0")
    write_cohort(root, seed=0)
    return root


def test_cohort_is_bit_identical_to_the_recorded_manifest(cohort_seed0: Path) -> None:
    assert _tree_sha256(cohort_seed0) == COHORT_SEED0_SHA256


def test_recipe_names_the_shipped_file_and_its_digest() -> None:
    recipe = load_recipe()
    path = shipped_weights()
    assert path.name == recipe["weights_file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recipe["weights_sha256"]
    for key in ("cohort_seed", "train_seed", "epochs", "batch_size", "lr", "augment"):
        assert key in recipe, key
    assert path.stat().st_size < 64 * 1024  # tens of KiB, as package data


def test_shipped_weights_load_without_pickle_and_discriminate(cohort_seed0: Path) -> None:
    from medval import io

    model = make_model()
    model.load_state_dict(torch.load(shipped_weights(), weights_only=True))
    model.eval()
    data = io.load_cohort(
        cohort_seed0 / "dicom", cohort_seed0 / "labels.csv", class_names=["no lesion", "lesion"]
    )
    cohort = data.cohort
    ids = list(cohort.index[cohort["split"].isin(["internal", "external"])])
    dataset = io.DicomDataset([data.paths[c] for c in ids], ids, window=(40.0, 400.0), size=64)
    x = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    with torch.no_grad():
        score = model(x).squeeze(1).numpy()
    y = cohort.loc[ids, "label"].to_numpy()
    internal = (cohort.loc[ids, "split"] == "internal").to_numpy()
    from sklearn.metrics import roc_auc_score

    # The shipped model's own figures, far from 0.5 and from each other: the
    # demo's story (good inside, worse on the unseen scanner) holds here.
    assert roc_auc_score(y[internal], score[internal]) > 0.88
    assert roc_auc_score(y[~internal], score[~internal]) < 0.78


def test_demo_copies_the_shipped_weights(demo_run: Path) -> None:
    assert (demo_run / "model.pt").read_bytes() == shipped_weights().read_bytes()
    result = json.loads((demo_run / "result.json").read_text(encoding="utf-8"))
    assert result["provenance"]["model_sha256"] == load_recipe()["weights_sha256"]


def test_demo_train_retrains_with_the_recipe(tmp_path: Path) -> None:
    from medval.run import run_demo

    calls: list[dict[str, object]] = []

    def trainer(model: torch.nn.Module, dataset: object, labels: np.ndarray, **kw: object) -> None:
        calls.append({"n": len(labels), **kw})
        with torch.no_grad():  # a stand-in for training: any change of the weights
            model.head.bias.add_(0.5)  # type: ignore[operator]

    outcome = run_demo(tmp_path / "d", train=True, trainer=trainer, quiet=True)
    recipe = load_recipe()
    (call,) = calls
    assert call["seed"] == recipe["train_seed"] and call["epochs"] == recipe["epochs"]
    assert call["lr"] == recipe["lr"] and call["batch_size"] == recipe["batch_size"]
    assert (tmp_path / "d" / "model.pt").read_bytes() != shipped_weights().read_bytes()
    assert outcome.result.provenance["model_sha256"] != recipe["weights_sha256"]


def test_demo_reproduces_the_recorded_numbers(demo_run: Path) -> None:
    # The recording machine's figures, reproduced here within medval diff's
    # tolerance: inference alone moves them by about 1e-7.
    from medval.diff import DEFAULT_TOLERANCE, within

    expected = load_recipe()["expected_demo"]["values"]
    estimates = json.loads((demo_run / "result.json").read_text(encoding="utf-8"))["estimates"]
    for key, value in expected.items():
        assert within(estimates[key]["value"], value, DEFAULT_TOLERANCE), key
