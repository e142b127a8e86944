from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy
from sklearn.metrics import brier_score_loss, log_loss

from medval import Predictions, evaluate
from medval.calibration import TemperatureScaler


def _data(rng: np.random.Generator, n: int = 600, t: int = 8) -> tuple[Predictions, pd.DataFrame]:
    patients = np.arange(n) // 2
    y = (rng.random(n // 2) < 0.4).astype(int)[patients]
    split = np.array(["calibration", "internal", "external"])[patients % 3]
    # External cases get noisier MC samples: more epistemic uncertainty.
    spread = np.where(split == "external", 1.5, 0.3)
    z = rng.normal(size=n) + 2 * y - 1
    zs = z[None] + rng.normal(size=(t, n)) * spread[None]
    mc1 = 1 / (1 + np.exp(-zs))
    mc = np.stack([1 - mc1, mc1], axis=-1)
    ids = [f"c{i:04d}" for i in range(n)]
    cohort = pd.DataFrame(
        {
            "case_id": ids,
            "patient_key": [f"p{k}" for k in patients],
            "split": split,
            "label": y,
            "manufacturer": np.where(split == "external", "C", "A"),
        }
    ).set_index("case_id")
    preds = Predictions(ids, mc.mean(axis=0), mc_probabilities=mc, class_names=("neg", "pos"))
    return preds, cohort


def test_calibration_keys_match_references(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    r = evaluate(preds, cohort, n_resamples=200)
    y = cohort["label"].to_numpy()
    p = preds.probabilities
    internal = (cohort["split"] == "internal").to_numpy()
    cal = (cohort["split"] == "calibration").to_numpy()
    assert r["calibration.brier"] == pytest.approx(brier_score_loss(y[internal], p[internal, 1]))
    assert r["calibration.nll"] == pytest.approx(log_loss(y[internal], p[internal]))
    t = TemperatureScaler().fit(np.log(p[cal]), y[cal]).temperature_
    assert r["calibration.temperature"] == pytest.approx(t)
    assert sum(b["count"] for b in r["calibration.reliability"]) == internal.sum()
    assert r["calibration.ece"].method
    assert "split.external.calibration.after.brier" in r


def test_uncertainty_by_split_and_referral(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    r = evaluate(preds, cohort, n_resamples=200)
    mc = preds.mc_probabilities
    assert mc is not None
    internal = (cohort["split"] == "internal").to_numpy()
    total = entropy(mc.mean(axis=0), axis=1)
    aleatoric = entropy(mc, axis=2).mean(axis=0)
    assert r["uncertainty.total_mean"] == pytest.approx(total[internal].mean())
    assert r["uncertainty.epistemic_mean"] == pytest.approx((total - aleatoric)[internal].mean())
    assert r["split.external.uncertainty.epistemic_mean"] > r["uncertainty.epistemic_mean"]
    assert r["split.external.uncertainty.epistemic_higher_p"] < 1e-6
    rows = r["uncertainty.referral"]
    assert {row["measure"] for row in rows} == {"total", "epistemic", "aleatoric"}
    assert rows[0]["referred"] == 0.0
    groups = {(g["split"], g["group"]) for g in r["uncertainty.by_group"]}
    assert groups == {("internal", "A"), ("external", "C")}


def test_no_mc_samples_no_uncertainty_section(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    plain = Predictions(preds.case_ids, preds.probabilities, class_names=preds.class_names)
    r = evaluate(plain, cohort, n_resamples=200)
    assert "uncertainty.total_mean" not in r
    assert "calibration.brier" in r
