from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from medval import Predictions, evaluate
from medval._result import ValidationResult
from medval.calibration import TemperatureScaler, ece, ece_ci, mce
from medval.evaluation._calibration import calibration_section, fit_temperature
from medval.evaluation._uncertainty import uncertainty_section
from medval.uncertainty import mc_error


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
    # The conformal set size joins the MC measures when sets were calibrated.
    assert {row["measure"] for row in rows} == {"total", "epistemic", "aleatoric", "set_size"}
    assert rows[0]["referred"] == 0.0
    groups = {(g["split"], g["group"]) for g in r["uncertainty.by_group"]}
    assert groups == {("internal", "A"), ("external", "C")}


def test_no_mc_samples_no_uncertainty_section(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    plain = Predictions(preds.case_ids, preds.probabilities, class_names=preds.class_names)
    r = evaluate(plain, cohort, n_resamples=200)
    assert "uncertainty.total_mean" not in r
    assert "calibration.brier" in r


def _arrays(
    preds: Predictions, cohort: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    assert preds.mc_probabilities is not None
    y = cohort["label"].reindex(list(preds.case_ids)).to_numpy().astype(np.int64)
    splits = cohort["split"].reindex(list(preds.case_ids)).to_numpy()
    return preds.mc_probabilities, preds.probabilities, y, splits


def test_error_auroc_per_measure_and_set_size(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    mc, p, y, splits = _arrays(preds, cohort)
    sizes = rng.integers(1, 3, size=y.size).astype(float)
    r = ValidationResult()
    uncertainty_section(
        r, mc, p, y, splits, test_splits=["internal", "external"], groups={}, set_sizes=sizes
    )
    assert r["uncertainty.measures"] == ["total", "epistemic", "aleatoric", "set_size"]
    internal = splits == "internal"
    err = p[internal].argmax(1) != y[internal]
    d = entropy(mc.mean(axis=0), axis=1) - entropy(mc, axis=2).mean(axis=0)
    assert r["uncertainty.epistemic.error_auroc"] == pytest.approx(roc_auc_score(err, d[internal]))
    assert r["uncertainty.set_size.error_auroc"] == pytest.approx(
        roc_auc_score(err, sizes[internal])
    )
    assert {row["measure"] for row in r["uncertainty.referral"]} == set(r["uncertainty.measures"])
    assert "split.external.uncertainty.set_size.aurc" in r


def test_referral_chosen_on_calibration_and_applied_to_tests(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    mc, p, y, splits = _arrays(preds, cohort)
    r = ValidationResult()
    uncertainty_section(
        r,
        mc,
        p,
        y,
        splits,
        test_splits=["internal", "external"],
        groups={},
        target_sensitivity=0.9,
        threshold=0.6,
        calibration_split="calibration",
    )
    total = entropy(mc.mean(axis=0), axis=1)
    rec = r["uncertainty.referral_for_sensitivity"]
    assert rec["chosen_on"] == "calibration"
    cal = splits == "calibration"
    cut = rec["uncertainty_cutoff"]
    assert cut is not None  # this target needs a referral on the calibration split
    keep_cal = cal & (total < cut) & (y == 1)
    assert np.mean(p[keep_cal, 1] >= 0.6) >= 0.9  # the target holds where it was chosen
    for name, prefix in (("internal", ""), ("external", "split.external.")):
        got = r[f"{prefix}uncertainty.referral_for_sensitivity"]
        mask = splits == name
        assert got["uncertainty_cutoff"] == cut
        assert got["fraction"] == pytest.approx(np.mean(total[mask] >= cut))
        keep = mask & (total < cut) & (y == 1)
        assert got["retained_sensitivity"] == pytest.approx(np.mean(p[keep, 1] >= 0.6))
    rows = [x for x in r["uncertainty.referral"] if x["measure"] == "total"]
    internal = splits == "internal"
    pos = internal & (y == 1)
    assert rows[0]["sensitivity"] == pytest.approx(np.mean(p[pos, 1] >= 0.6))


def test_calibration_extra_keys_and_saturated_probabilities(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    _, p, y, splits = _arrays(preds, cohort)
    p = p.copy()
    p[:5] = [[0.0, 1.0]] * 5  # saturated float32 sigmoids: log(0) must not break the fit
    r = ValidationResult()
    calibration_section(
        r,
        p,
        y,
        splits,
        calibration_split="calibration",
        test_splits=["internal"],
        confidence_level=0.95,
        n_resamples=50,
        seed=0,
        positive_class=1,
    )
    internal = splits == "internal"
    assert r["calibration.mce"] == pytest.approx(
        mce(p[internal], y[internal], n_bins=10, binning="equal_mass", target="positive")
    )
    assert r["calibration.ece_equal_width"] == pytest.approx(
        ece(p[internal], y[internal], n_bins=10, target="positive")
    )
    assert np.isfinite(r["calibration.temperature"])
    assert "calibration.after.debiased_l2" in r
    scaler = fit_temperature(p, y, splits, "calibration")
    assert scaler is not None and scaler.temperature_ == r["calibration.temperature"]
    assert fit_temperature(p, y, splits, None) is None


def test_referral_needing_no_referral_stays_json_safe(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    mc, p, y, splits = _arrays(preds, cohort)
    r = ValidationResult()
    uncertainty_section(
        r,
        mc,
        p,
        y,
        splits,
        test_splits=["internal"],
        groups={},
        target_sensitivity=0.01,
        calibration_split="calibration",
    )
    rec = r["uncertainty.referral_for_sensitivity"]
    assert rec["fraction"] == 0.0 and rec["uncertainty_cutoff"] is None


def test_calibration_ece_interval_resamples_patients(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    _, p, y, splits = _arrays(preds, cohort)
    patients = np.arange(y.size) // 3
    kw = {
        "calibration_split": None,
        "test_splits": ["internal"],
        "confidence_level": 0.95,
        "n_resamples": 50,
        "seed": 0,
        "positive_class": 1,
    }
    plain, clustered = ValidationResult(), ValidationResult()
    calibration_section(plain, p, y, splits, **kw)
    calibration_section(clustered, p, y, splits, clusters=patients, **kw)
    internal = splits == "internal"
    expected = ece_ci(
        p[internal],
        y[internal],
        n_bins=10,
        binning="equal_mass",
        target="positive",
        n_resamples=50,
        clusters=patients[internal],
        random_state=0,
    )
    assert clustered["calibration.ece"] == expected
    assert expected.method == "bootstrap-percentile-clustered"
    assert plain["calibration.ece"].method == "bootstrap-percentile"


def test_mc_error_per_split_with_a_warning_naming_the_fix(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng, t=8)
    mc, p, y, splits = _arrays(preds, cohort)
    r = ValidationResult()
    uncertainty_section(r, mc, p, y, splits, test_splits=["internal", "external"], groups={})
    for name, prefix in (("internal", ""), ("external", "split.external.")):
        got = r[f"{prefix}uncertainty.mc_error"]
        expected = mc_error(mc[:, splits == name])
        assert got["measures"] == expected["measures"] and got["n_samples"] == 8
        assert got["too_small"] and got["recommended_samples"] > 8
    (warning,) = r["uncertainty.warnings"]
    keys = [k for k in r.values if k.endswith("uncertainty.mc_error")]
    assert keys == ["uncertainty.mc_error", "split.external.uncertainty.mc_error"]
    worst = max(r[k]["recommended_samples"] for k in keys)
    assert "T = 8" in warning and f"T >= {worst}" in warning
    assert "[model] mc_samples" in warning


def test_enough_mc_samples_give_no_warning(rng: np.random.Generator) -> None:
    n, t = 300, 800
    y = rng.integers(0, 2, n)
    z = rng.normal(size=n) + 2 * y - 1
    # Cases differ widely in how much the samples disagree: the measures have spread.
    zs = z[None] + rng.normal(size=(t, n)) * rng.uniform(0.05, 2.0, n)[None]
    mc = np.stack([1 / (1 + np.exp(zs)), 1 / (1 + np.exp(-zs))], axis=-1)
    splits = np.array(["internal"] * n)
    r = ValidationResult()
    uncertainty_section(r, mc, mc.mean(axis=0), y, splits, test_splits=["internal"], groups={})
    e = r["uncertainty.mc_error"]
    assert not e["too_small"] and e["recommended_samples"] <= t
    assert max(s["relative_error"] for s in e["measures"].values()) < 0.1
    assert r["uncertainty.warnings"] == []


def test_one_mc_sample_has_no_error_estimate_and_says_so(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    mc, p, y, splits = _arrays(preds, cohort)
    r = ValidationResult()
    uncertainty_section(r, mc[:1], p, y, splits, test_splits=["internal"], groups={})
    assert r["uncertainty.mc_error"] is None
    (warning,) = r["uncertainty.warnings"]
    assert "T = 1" in warning and "[model] mc_samples" in warning
