"""A synthetic validation result for the checklist tests (no demo run, no torch)."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from medval import Predictions, ValidationResult, evaluate

# split -> (manufacturer, model_name, kVp, signal strength)
SITES = {
    "train": ("Aster", "AX-1", 120.0, 2.5),
    "calibration": ("Aster", "AX-1", 120.0, 2.5),
    "internal": ("Aster", "AX-1", 120.0, 2.5),
    "external": ("Cygnus", "CY-9", 140.0, 0.4),
}


def synthetic(
    seed: int, *, n_patients: int = 320, splits: tuple[str, ...] = tuple(SITES), shared: int = 0
) -> tuple[Predictions, pd.DataFrame]:
    """Two images per patient over ``splits``; the external scanner has weak signal.

    ``shared`` train patients reappear in the internal split (a leak).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        split = splits[p % len(splits)]
        sick = int(rng.random() < 0.4)
        rows += [{"patient": p, "split": split, "label": sick, "img": i} for i in range(2)]
    train = [p for p in range(n_patients) if splits[p % len(splits)] == "train"]
    rows += [{"patient": p, "split": "internal", "label": 0, "img": 9} for p in train[:shared]]
    frame = pd.DataFrame(rows)
    n = len(frame)
    site = [SITES[s] for s in frame["split"]]
    signal = np.array([s[3] for s in site])
    logit = rng.normal(size=n) + signal * frame["label"].to_numpy() - signal / 2
    score = 1 / (1 + np.exp(-logit))
    ids = [f"case-{i:05d}" for i in range(n)]
    patients = frame["patient"].to_numpy()
    cohort = pd.DataFrame(
        {
            "case_id": ids,
            "patient_key": [f"pk-{p}" for p in patients],
            "study_key": [f"st-{p}-{i}" for p, i in zip(patients, frame["img"], strict=True)],
            "split": frame["split"].to_numpy(),
            "label": frame["label"].to_numpy(),
            "manufacturer": [s[0] for s in site],
            "model_name": [s[1] for s in site],
            "kvp": [s[2] for s in site],
            "sex": np.where(patients // 4 % 2 == 0, "F", "M"),
            "age_band": np.where(patients % 5 == 0, "75-89", "40-59"),
        }
    ).set_index("case_id")
    # Eight noisy "MC" passes around the score, for the uncertainty keys.
    jitter = rng.normal(scale=0.3, size=(8, n))
    mc_pos = 1 / (1 + np.exp(-(logit[None, :] + jitter)))
    mc = np.stack([1 - mc_pos, mc_pos], axis=-1)
    probs = mc.mean(axis=0)
    del score
    preds = Predictions(ids, probs, mc_probabilities=mc, class_names=("negative", "positive"))
    return preds, cohort


def as_run(preds: Predictions, cohort: pd.DataFrame) -> ValidationResult:
    """Evaluate with the file scan (flow, exclusions) and add what `medval validate` records."""
    from medval._provenance import package_versions, platform_summary

    exclusion = types.SimpleNamespace(file="site-9/x.dcm", reason="not a DICOM file")
    data = types.SimpleNamespace(
        cohort=cohort, exclusions=[exclusion], n_files=len(cohort) + 1,
        manifest_sha256="ab" * 32, deid_summary={}, paths={},
    )  # fmt: skip
    result = evaluate(preds, data, n_resamples=200, seed=0, small_cell=20)
    result.provenance.update(
        {
            "model_file": "model.pt",
            "model_sha256": "cd" * 32,
            "model_kind": "state_dict",
            "versions": package_versions(),
            "platform": platform_summary(),
            "device": "cpu",
        }
    )
    return result


def run_evaluate(preds: Predictions, cohort: pd.DataFrame) -> ValidationResult:
    return evaluate(preds, cohort, n_resamples=200, seed=0, small_cell=20)


@pytest.fixture(scope="session")
def synthetic_run() -> tuple[ValidationResult, pd.DataFrame]:
    """A result with internal and external splits, recorded as a run would."""
    preds, cohort = synthetic(5)
    return as_run(preds, cohort), cohort


@pytest.fixture(scope="session")
def leaky_single_split() -> ValidationResult:
    """One test split, and ten training patients copied into it."""
    preds, cohort = synthetic(7, splits=("train", "calibration", "internal"), shared=10)
    return run_evaluate(preds, cohort)
