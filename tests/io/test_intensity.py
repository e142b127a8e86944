"""input_statistics: pooled pixel summaries of the preprocessed inputs per split and scanner."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from medval import io
from medval._errors import InputError

WriteDicom = Callable[..., pathlib.Path]


@pytest.fixture
def dataset(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> io.DicomDataset:
    paths = [
        dicom_writer(tmp_path / f"{i}.dcm", pixels=np.arange(16, dtype=np.int16).reshape(4, 4) * i)
        for i in range(1, 6)
    ]
    return io.DicomDataset(paths, [f"c{i}" for i in range(1, 6)], window=(50.0, 100.0))


def _hand(images: list[np.ndarray]) -> dict[str, float]:
    v = np.concatenate([im.ravel() for im in images])
    return {"mean": v.mean(), "sd": v.std(), "p1": np.percentile(v, 1),
            "p50": np.percentile(v, 50), "p99": np.percentile(v, 99)}  # fmt: skip


def test_groups_and_numbers_by_hand(dataset: io.DicomDataset) -> None:
    cohort = pd.DataFrame(
        {"split": ["internal", "internal", "external", "external", "external"],
         "manufacturer": ["GE", "GE", "Siemens", "Siemens", None],
         "model_name": ["A", "A", "B", "B", "B"]},
        index=pd.Index(dataset.case_ids, name="case_id"),
    )  # fmt: skip
    rows = io.input_statistics(dataset, cohort, seed=0)
    images = [np.clip(np.arange(16.0).reshape(4, 4) * i / 100.0, 0, 1) for i in range(1, 6)]
    assert [(r["by"], r["group"], r["n_cases"]) for r in rows] == [
        ("all", "all", 5), ("split", "external", 3), ("split", "internal", 2),
        ("scanner", "GE A", 2), ("scanner", "Siemens B", 2), ("scanner", "unknown B", 1),
    ]  # fmt: skip
    members = {"all": [0, 1, 2, 3, 4], "external": [2, 3, 4], "GE A": [0, 1]}
    for row in rows:
        if row["group"] in members:
            hand = _hand([images[i] for i in members[row["group"]]])
            for key, value in hand.items():
                assert row[key] == pytest.approx(value, abs=1e-6), (row["group"], key)


def test_the_sample_is_seeded_and_capped(dataset: io.DicomDataset) -> None:
    a = io.input_statistics(dataset, seed=3, max_images=2)
    assert a == io.input_statistics(dataset, seed=3, max_images=2)
    assert [(r["by"], r["n_cases"], r["n_sampled"]) for r in a] == [("all", 5, 2)]
    means = {io.input_statistics(dataset, seed=s, max_images=2)[0]["mean"] for s in range(8)}
    assert len(means) > 1  # the seed picks the sample
    with pytest.raises(InputError, match="max_images must be >= 1"):
        io.input_statistics(dataset, max_images=0)


def test_per_channel_statistics_by_hand(tmp_path: pathlib.Path, dicom_writer: WriteDicom) -> None:
    paths = [
        dicom_writer(tmp_path / f"{i}.dcm", pixels=np.arange(16, dtype=np.int16).reshape(4, 4) * i)
        for i in range(1, 4)
    ]
    pipeline = io.Pipeline([io.Window(center=50.0, width=100.0), io.Channels(3),
                            io.Normalize("imagenet")])  # fmt: skip
    dataset = io.DicomDataset(paths, ["a", "b", "c"], pipeline=pipeline)
    row = io.input_statistics(dataset)[0]
    stacked = np.stack([dataset[i]["image"].numpy().astype(np.float64) for i in range(3)])
    np.testing.assert_allclose(row["channel_mean"], stacked.mean(axis=(0, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(row["channel_sd"], stacked.std(axis=(0, 2, 3)), atol=1e-6)
    assert row["mean"] == pytest.approx(stacked.mean(), abs=1e-6)
    # ImageNet's per-channel constants make the channels differ.
    assert len({round(m, 3) for m in row["channel_mean"]}) == 3
