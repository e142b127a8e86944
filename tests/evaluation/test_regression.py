"""evaluate() on regression predictions: the sections, their keys, and what is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

from medval import InputError, RegressionPredictions, SpecError, evaluate


def _cohort_and_predictions(
    n: int = 600, seed: int = 0, *, sigma: bool = True, mc: int = 0
) -> tuple[pd.DataFrame, RegressionPredictions]:
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:04d}" for i in range(n)])
    scanner = rng.choice(["A", "B", "C"], n)
    split = np.where(scanner == "C", "external",
                     rng.choice(["calibration", "internal"], n))  # fmt: skip
    y = rng.uniform(12, 216, n)
    noise_sd = np.where(scanner == "B", 12.0, 6.0)
    pred = y + rng.normal(0, noise_sd)
    cohort = pd.DataFrame(
        {"split": split, "manufacturer": scanner, "sex": rng.choice(["F", "M"], n),
         "patient_key": [f"p{i // 2}" for i in range(n)], "label": y},
        index=pd.Index(ids, name="case_id"),
    )  # fmt: skip
    mc_values = None
    if mc:
        mc_values = pred + rng.normal(0, 2.0, (mc, n))
    preds = RegressionPredictions(
        ids, pred, variances=noise_sd**2 if sigma else None, mc_values=mc_values,
        mc_variances=None if mc_values is None else np.broadcast_to(noise_sd**2, (mc, n)),
        unit="months",
    )  # fmt: skip
    return cohort, preds


def test_the_regression_sections_run_and_agree_with_scikit_learn() -> None:
    cohort, preds = _cohort_and_predictions(mc=8)
    r = evaluate(preds, cohort, n_resamples=200, seed=1, interval_mondrian="manufacturer")
    assert r.values["task.kind"] == "regression" and r.values["task.unit"] == "months"
    assert set(r.values["evaluation.sections"]) >= {
        "cohort", "regression", "regression_intervals", "regression_uncertainty",
    }  # fmt: skip
    m = (cohort["split"] == "internal").to_numpy()
    y, p = cohort["label"].to_numpy()[m], preds.values[m]
    assert r["regression.mae"].value == pytest.approx(mean_absolute_error(y, p), rel=1e-12)
    assert r["regression.rmse"].value == pytest.approx(root_mean_squared_error(y, p), rel=1e-12)
    assert r["regression.mae"].low < r["regression.mae"].value < r["regression.mae"].high
    assert r["split.external.regression.mae"].value > 0
    ba = r["regression.agreement.loa_high"].value - r["regression.agreement.bias"].value
    assert ba == pytest.approx(r.values["regression.agreement"]["multiplier"]
                               * r.values["regression.agreement"]["sd"], rel=1e-9)  # fmt: skip
    # Mondrian intervals by scanner: each calibrated scanner near the target; C falls back.
    assert r.values["regression.interval.score"] == "normalized"
    assert "C" in r.values["split.external.regression.interval.fallback_groups"]
    rows = r.tables["regression.interval.by_group"]
    by = {(row["column"], row["group"]): row for row in rows}
    assert 0.8 < by[("manufacturer", "B")]["coverage"]["value"] <= 1.0
    d = r.values["regression.uncertainty.decomposition"]
    assert d["total"] == pytest.approx(d["epistemic"] + d["aleatoric"], rel=1e-12)
    assert d["epistemic"] == pytest.approx(4.0, rel=0.3)  # the MC spread's variance
    # Scanner B is twice as noisy: the worst group by MAE.
    assert r.values["subgroup.manufacturer.worst_mae_group"] in ("B",)
    assert (
        r["subgroup.manufacturer=B.regression.mae"].value
        > r["subgroup.manufacturer=A.regression.mae"].value
    )
    assert {row["split"] for row in r.tables["cohort.table1"]} >= {"internal", "external"}
    assert "label_mean" in r.tables["cohort.table1"][0]


def test_without_sigma_the_intervals_are_absolute_and_the_uncertainty_section_says_why() -> None:
    cohort, preds = _cohort_and_predictions(sigma=False)
    r = evaluate(preds, cohort, n_resamples=100)
    assert r.values["regression.interval.score"] == "absolute"
    skipped = {row["section"]: row for row in r.tables["evaluation.skipped"]}
    assert "variance head" in skipped["regression_uncertainty"]["reason"]
    with pytest.raises(InputError, match="needs the model's sigma"):
        evaluate(preds, cohort, n_resamples=100, interval_score="normalized")


def test_labels_come_from_the_predictions_or_a_numeric_cohort_column() -> None:
    cohort, preds = _cohort_and_predictions(n=200)
    with pytest.raises(InputError, match="'label' column holds"):
        evaluate(preds, cohort.assign(label=["x"] * len(cohort)), n_resamples=100)
    with pytest.raises(InputError, match="without labels"):
        evaluate(preds, cohort.drop(columns="label"), n_resamples=100)
    same = evaluate(preds.with_labels(cohort["label"].to_numpy()), cohort.drop(columns="label"),
                    n_resamples=100)  # fmt: skip
    other = evaluate(preds, cohort, n_resamples=100)
    assert same["regression.mae"].value == other["regression.mae"].value


def test_a_mondrian_column_the_cohort_lacks_is_a_spec_error() -> None:
    cohort, preds = _cohort_and_predictions(n=200)
    with pytest.raises(SpecError, match="interval_mondrian"):
        evaluate(preds, cohort, n_resamples=100, interval_mondrian="scanner")
