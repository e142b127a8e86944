from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medval import InputError, Predictions, SpecError, evaluate
from medval._result import ValidationResult
from medval.conformal import (
    ConformalClassifier,
    WeightedConformalClassifier,
    conformal_risk_control,
    coverage_difference,
    coverage_report,
    domain_likelihood_ratios,
)
from medval.evaluation._conformal import conformal_section


def _data(rng: np.random.Generator, n: int = 900) -> tuple[Predictions, pd.DataFrame]:
    patients = np.arange(n) // 3
    y = (rng.random(n // 3) < 0.4).astype(int)[patients]
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 2 * y - 0.8)))
    split = np.array(["calibration", "internal", "external"])[patients % 3]
    site = np.where(split == "external", "C", np.where(patients % 2 == 0, "A", "B"))
    ids = [f"c{i:04d}" for i in range(n)]
    cohort = pd.DataFrame(
        {
            "case_id": ids,
            "patient_key": [f"p{k}" for k in patients],
            "split": split,
            "label": y,
            "manufacturer": site,
        }
    ).set_index("case_id")
    return Predictions(ids, np.c_[1 - score, score], class_names=("neg", "pos")), cohort


def test_conformal_keys_match_a_direct_computation(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    r = evaluate(
        preds,
        cohort,
        n_resamples=200,
        seed=4,
        conformal_level=0.85,
        conformal_temperature=False,
    )
    y = cohort["label"].to_numpy()
    cal = (cohort["split"] == "calibration").to_numpy()
    internal = (cohort["split"] == "internal").to_numpy()
    cp = ConformalClassifier("aps", confidence_level=0.85, random_state=4)
    sets = cp.calibrate(preds.probabilities[cal], y[cal]).predict_sets(
        preds.probabilities[internal], case_ids=preds.case_ids[internal]
    )
    covered = sets[np.arange(sets.shape[0]), y[internal]]
    assert r["conformal.coverage"].value == pytest.approx(covered.mean())
    assert r["conformal.coverage"].method == "clopper-pearson"
    assert r["conformal.mean_set_size"] == pytest.approx(sets.sum(axis=1).mean())
    assert r["conformal.referral_rate"] == pytest.approx((sets.sum(axis=1) != 1).mean())
    groups = {row["group"] for row in r["conformal.by_group"] if row["column"] == "manufacturer"}
    assert groups == {"A", "B"}
    risk = conformal_risk_control(preds.probabilities[cal, 1], y[cal], target=0.05)
    assert r["triage.threshold"] == pytest.approx(risk.threshold_)
    s = preds.probabilities[:, 1]
    pos = internal & (y == 1)
    assert r["triage.sensitivity"].value == pytest.approx((s[pos] >= risk.threshold_).mean())


def test_temperature_half_by_default(rng: np.random.Generator) -> None:
    from medval.evaluation._conformal import temperature_for_conformal

    preds, cohort = _data(rng)
    r = evaluate(preds, cohort, n_resamples=200, seed=4)
    y = cohort["label"].to_numpy()
    split = cohort["split"].to_numpy()
    out = temperature_for_conformal(
        preds.probabilities, y, split, cohort["patient_key"].to_numpy(),
        calibration_split="calibration", seed=4,
    )  # fmt: skip
    assert out is not None
    scaled, new_splits, info = out
    assert r["conformal.temperature"] == pytest.approx(info["conformal.temperature"])
    cal, internal = new_splits == "calibration", split == "internal"
    assert r["conformal.n_calibration"] == int(cal.sum()) < int((split == "calibration").sum())
    cp = ConformalClassifier("aps", random_state=4)
    sets = cp.calibrate(scaled[cal], y[cal]).predict_sets(
        scaled[internal], case_ids=preds.case_ids[internal]
    )
    assert r["conformal.mean_set_size"] == pytest.approx(sets.sum(axis=1).mean())
    # The triage threshold is reported on the model's own scale: same flagged cases.
    risk = conformal_risk_control(scaled[cal, 1], y[cal], target=0.05)
    raw = preds.probabilities[internal, 1] >= r["triage.threshold"] - 1e-12
    assert (raw == (scaled[internal, 1] >= risk.threshold_)).all()
    assert r["triage.threshold_scaled"] == pytest.approx(risk.threshold_)


def test_patient_overlap_between_calibration_and_test_is_an_error(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng, 300)
    cohort.loc[cohort.index[3], "patient_key"] = "p0"  # patient 1 is internal
    with pytest.raises(InputError, match="p0"):
        evaluate(preds, cohort, n_resamples=200)
    r = evaluate(preds, cohort, n_resamples=200, conformal=False, triage_max_fnr=None)
    assert "conformal.coverage" not in r


def test_mondrian_by_class_and_by_column(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    y = cohort["label"].to_numpy()
    cal = (cohort["split"] == "calibration").to_numpy()
    internal = (cohort["split"] == "internal").to_numpy()
    r = evaluate(
        preds,
        cohort,
        n_resamples=200,
        conformal_mondrian="class",
        seed=2,
        conformal_temperature=False,
    )
    cp = ConformalClassifier(
        "aps", groups="class", random_state=2, min_group_size_policy="marginal"
    )
    sets = cp.calibrate(preds.probabilities[cal], y[cal]).predict_sets(
        preds.probabilities[internal], case_ids=preds.case_ids[internal]
    )
    assert r["conformal.mondrian"] == "class"
    assert r["conformal.thresholds"] == {"neg": cp.quantiles_[0], "pos": cp.quantiles_[1]}
    assert r["conformal.min_group_size"] == 9  # ceil((n + 1) 0.9) <= n  <=>  n >= 9
    assert r["conformal.mean_set_size"] == pytest.approx(sets.sum(axis=1).mean())
    # External scanner C never appears in calibration: Mondrian cannot cover it.
    with pytest.raises(InputError, match="C"):
        evaluate(preds, cohort, n_resamples=200, conformal_mondrian="manufacturer")
    r = evaluate(
        preds, cohort, n_resamples=200, conformal_mondrian="manufacturer", test_splits=["internal"]
    )
    assert r["conformal.mondrian"] == "manufacturer"
    with pytest.raises(SpecError, match="conformal_mondrian = 'scanner' is not 'class' or a coh"):
        evaluate(preds, cohort, n_resamples=200, conformal_mondrian="scanner")


def test_split_comparison_size_strata_and_flags(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    r = evaluate(preds, cohort, n_resamples=200, seed=4, conformal_temperature=False)
    y = cohort["label"].to_numpy()
    split = cohort["split"].to_numpy()
    cp = ConformalClassifier("aps", random_state=4)
    cp.calibrate(preds.probabilities[split == "calibration"], y[split == "calibration"])
    hits = {}
    for name in ("internal", "external"):
        sets = cp.predict_sets(
            preds.probabilities[split == name], case_ids=preds.case_ids[split == name]
        )
        covered = sets[np.arange(sets.shape[0]), y[split == name]]
        hits[name] = (int(covered.sum()), covered.size)
        rep = coverage_report(sets, y[split == name], confidence_level=0.9)
        prefix = "" if name == "internal" else "split.external."
        strata = {row["group"]: row for row in r[f"{prefix}conformal.by_set_size"]}
        assert set(strata) == {str(k) for k in rep["by_set_size"]}
        for k, cell in rep["by_set_size"].items():
            assert strata[str(k)]["coverage"] == cell["coverage"].value
            assert strata[str(k)]["n"] == cell["n"]
        assert isinstance(r[f"{prefix}conformal.flagged_groups"], list)
    by_split = {row["split"]: row for row in r["conformal.by_split"]}
    assert list(by_split) == ["internal", "external"]
    assert by_split["external"]["coverage"] == pytest.approx(
        hits["external"][0] / hits["external"][1]
    )
    diff = coverage_difference(*hits["external"], *hits["internal"], ci_level=0.95)
    assert r["split.external.conformal.coverage_difference"] == diff
    assert by_split["external"]["difference"] == pytest.approx(diff.value)
    assert r["conformal.randomized"] is True


def test_weighted_conformal_keys_from_embeddings(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    y = cohort["label"].to_numpy()
    split = cohort["split"].to_numpy()
    # the external site's embeddings are shifted
    emb = rng.normal(size=(y.size, 3)) + (split == "external")[:, None] * np.array([1.0, 0, 0])
    result = ValidationResult()
    conformal_section(
        result,
        preds.probabilities,
        y,
        y,
        split,
        calibration_split="calibration",
        test_splits=["internal", "external"],
        class_names=preds.class_names,
        groups={},
        patients=cohort["patient_key"].to_numpy(),
        method="lac",
        mondrian=None,
        confidence_level=0.9,
        triage_max_fnr=None,
        positive_class=1,
        ci_level=0.95,
        seed=5,
        embeddings=emb,
    )
    cal, ext = split == "calibration", split == "external"
    w_cal, w_ext = domain_likelihood_ratios(emb[cal], emb[ext], random_state=5)
    sets = (
        WeightedConformalClassifier("lac", random_state=5)
        .calibrate(preds.probabilities[cal], y[cal], w_cal)
        .predict_sets(preds.probabilities[ext], w_ext)
    )
    covered = sets[np.arange(sets.shape[0]), y[ext]]
    key = "split.external.conformal.weighted"
    assert result.estimates[f"{key}.coverage"].value == pytest.approx(covered.mean())
    assert result.values[f"{key}.mean_set_size"] == pytest.approx(sets.sum(axis=1).mean())
    ess = result.values[f"{key}.effective_sample_size"]
    assert 0 < ess < cal.sum()
    assert result.values[f"{key}.small_ess"] == (ess < 100)
    assert "effective sample size" in result.values[f"{key}.caveat"]
    # internal cases resemble the calibration ones: ESS close to n
    internal_ess = result.values["conformal.weighted.effective_sample_size"]
    assert internal_ess > 0.9 * cal.sum()
