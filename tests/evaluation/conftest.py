"""Small synthetic cohorts for the evaluation core's tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from medval import Predictions


def synthetic(
    seed: int,
    *,
    k: int = 2,
    n: int = 400,
    splits: tuple[str, ...] = ("calibration", "internal", "external"),
    mc: bool = True,
) -> tuple[Predictions, pd.DataFrame]:
    """Two images per patient, each patient in one split; MC samples optional."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:04d}" for i in range(n)])
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    samples = None
    if mc:
        samples = np.clip(p[None] + rng.normal(scale=0.03, size=(6, n, k)), 1e-6, None)
        samples /= samples.sum(axis=2, keepdims=True)
        p = samples.mean(axis=0)
    cohort = pd.DataFrame(
        {
            "split": np.repeat(rng.choice(list(splits), n // 2), 2),
            "label": labels,
            "patient_key": [f"p{i // 2}" for i in range(n)],
            "manufacturer": rng.choice(["Aster", "Borealis"], n),
            "sex": rng.choice(["F", "M"], n),
        },
        index=pd.Index(ids, name="case_id"),
    )
    names = tuple(f"class {i}" for i in range(k))
    return Predictions(ids, p, mc_probabilities=samples, class_names=names), cohort
