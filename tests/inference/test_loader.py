"""DICOM decoding in loader workers: the dataset pickles, and any number of workers scores alike."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from medval.inference import make_loader, predict
from medval.io import DicomDataset, Pipeline


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DicomDataset:
    """The demo's DICOM files (12 readable images), windowed and resized as the demo's spec."""
    from medval.demo import write_cohort

    root = tmp_path_factory.mktemp("loader") / "cohort"
    write_cohort(root, seed=0, n_patients=(2, 2, 2))
    labels = pd.read_csv(root / "labels.csv")
    return DicomDataset(
        [root / "dicom" / f for f in labels["file"]],
        labels["case_id"].tolist(),
        pipeline=Pipeline.legacy((40.0, 400.0), (32, 32)),
    )


def test_the_dataset_pickles_for_worker_processes(dataset: DicomDataset) -> None:
    copy = pickle.loads(pickle.dumps(dataset))
    for i in (0, len(dataset) - 1):
        a, b = dataset[i], copy[i]
        assert a["case_id"] == b["case_id"]
        assert torch.equal(a["image"], b["image"])


def test_two_workers_give_the_predictions_of_none(dataset: DicomDataset) -> None:
    from medval.demo import make_model

    model = make_model()
    runs = [
        predict(model, make_loader(dataset, batch_size=5, device="cpu", workers=w), mc_samples=3)
        for w in (0, 2)
    ]
    np.testing.assert_array_equal(runs[0].case_ids, dataset.case_ids)
    np.testing.assert_array_equal(runs[1].case_ids, runs[0].case_ids)
    np.testing.assert_array_equal(runs[1].probabilities, runs[0].probabilities)
    assert runs[0].mc_probabilities is not None and runs[1].mc_probabilities is not None
    np.testing.assert_array_equal(runs[1].mc_probabilities, runs[0].mc_probabilities)
