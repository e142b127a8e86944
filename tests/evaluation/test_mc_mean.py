"""The MC mean's metrics sit beside the deployed model's headline and never replace it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from medval import Predictions, evaluate

from .conftest import synthetic


def _deployed_and_mc(
    rng: np.random.Generator, n: int = 400, t: int = 10
) -> tuple[Predictions, pd.DataFrame]:
    """A deterministic pass that differs from the mean of its dropout samples."""
    _, cohort = synthetic(21, n=n)
    ids = cohort.index.to_numpy()
    y = cohort["label"].to_numpy()
    z = rng.normal(size=n) + 1.5 * (2 * y - 1)
    zs = z[None] + rng.normal(size=(t, n)) * rng.uniform(0.2, 2.5, n)[None]
    mc1 = 1 / (1 + np.exp(-zs))
    mc = np.stack([1 - mc1, mc1], axis=-1)
    deployed = 1 / (1 + np.exp(-z))
    p = np.c_[1 - deployed, deployed]
    return Predictions(ids, p, mc_probabilities=mc, class_names=("neg", "pos")), cohort


def test_mc_mean_metrics_beside_an_unchanged_headline(rng: np.random.Generator) -> None:
    preds, cohort = _deployed_and_mc(rng)
    r = evaluate(preds, cohort, n_resamples=200, seed=3)
    assert preds.mc_probabilities is not None
    mean = preds.mc_probabilities.mean(axis=0)[:, 1]
    deployed = preds.probabilities[:, 1]
    split = cohort.loc[preds.case_ids, "split"].to_numpy()
    y = cohort.loc[preds.case_ids, "label"].to_numpy()
    threshold = r["operating_point.threshold"]
    for name, prefix in (("internal", ""), ("external", "split.external.")):
        m = split == name
        head = r[f"{prefix}discrimination.auroc"].value
        mc_auc = r[f"{prefix}uncertainty.mc_mean.auroc"].value
        assert head == pytest.approx(roc_auc_score(y[m], deployed[m]))
        assert mc_auc == pytest.approx(roc_auc_score(y[m], mean[m]))
        assert mc_auc != pytest.approx(head, abs=1e-6)  # two different predictors
        diff = r[f"{prefix}uncertainty.mc_mean.auroc_difference"]
        assert diff.value == pytest.approx(mc_auc - head)
        assert diff.low is not None and diff.low <= diff.value <= diff.high
        assert diff.method.endswith("paired")
        sens = r[f"{prefix}uncertainty.mc_mean.sensitivity"].value
        assert sens == pytest.approx(np.mean(mean[m & (y == 1)] >= threshold))
        spec = r[f"{prefix}uncertainty.mc_mean.specificity"].value
        assert spec == pytest.approx(np.mean(mean[m & (y == 0)] < threshold))
    # The headline is the deployed model's, with or without the samples.
    bare = Predictions(preds.case_ids, preds.probabilities, class_names=preds.class_names)
    plain = evaluate(bare, cohort, n_resamples=200, seed=3)
    headline = {k: v for k, v in r.estimates.items() if "uncertainty." not in k}
    assert headline == plain.estimates
    keys = plain.keys()
    assert not any("mc_mean" in k for k in keys)


def test_no_mc_mean_metrics_for_a_multiclass_task() -> None:
    preds, cohort = synthetic(22, k=3)
    r = evaluate(preds, cohort, n_resamples=200, small_cell=5)
    assert "uncertainty.mc_error" in r
    keys = r.keys()
    assert not any("mc_mean" in k for k in keys)
