"""Fixtures for the shift tests: the demo cohort, read once, and scores on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medval.demo import write_cohort

    root = tmp_path_factory.mktemp("shift-demo")
    write_cohort(root, seed=0)
    return root


@pytest.fixture(scope="session")
def demo_cohort(demo_dir: Path) -> Any:
    """The demo cohort frame plus synthetic model outputs that degrade on site 3."""
    from medval.io import load_cohort

    data = load_cohort(
        demo_dir / "dicom", demo_dir / "labels.csv", class_names=("no lesion", "lesion")
    )
    frame = data.cohort.copy()
    rng = np.random.default_rng(7)
    y = frame["label"].to_numpy()
    external = (frame["split"] == "external").to_numpy()
    signal = np.where(external, 0.4, 2.5)  # the external scanner hides the lesion
    logit = signal * (y - 0.5) + rng.normal(0.0, 1.0, len(frame)) - np.where(external, 0.8, 0.0)
    p = 1.0 / (1.0 + np.exp(-logit))
    frame["score"] = p
    q = np.clip(np.stack([1.0 - p, p], axis=1), 1e-12, 1.0)
    frame["max_probability"] = q.max(axis=1)
    frame["entropy"] = -(q * np.log(q)).sum(axis=1)
    return frame
