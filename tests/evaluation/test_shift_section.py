"""Subgroups, drift, leakage and cohort tables inside evaluate()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from medval import Predictions, evaluate

SCANNERS = {"internal": ("Aster", "AX-1"), "external": ("Cygnus", "CY-9")}


def _cohort(
    rng: np.random.Generator, *, n_patients: int = 300, shared: int = 0
) -> tuple[Predictions, pd.DataFrame]:
    """Two images per patient; the 'external' scanner has weaker signal and other kVp.

    ``shared`` patients of the train split reappear in the internal split (a leak).
    """
    rows = []
    roles = np.array(["train", "calibration", "internal", "external"])
    for p in range(n_patients):
        split = roles[p % 4]
        sick = rng.random() < 0.4
        for i in range(2):
            rows.append({"patient": p, "split": split, "label": int(sick), "img": i})
    for p in range(shared):
        rows.append({"patient": 4 * p, "split": "internal", "label": 0, "img": 9})
    frame = pd.DataFrame(rows)
    n = len(frame)
    ext = (frame["split"] == "external").to_numpy()
    signal = np.where(ext, 0.5, 2.5)
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + signal * frame["label"] - signal / 2)))
    ids = [f"c{i:05d}" for i in range(n)]
    cohort = pd.DataFrame(
        {
            "case_id": ids,
            "patient_key": [f"pk{p}" for p in frame["patient"]],
            "study_key": [
                f"st{p}-{i}" for p, i in zip(frame["patient"], frame["img"], strict=True)
            ],
            "split": frame["split"].to_numpy(),
            "label": frame["label"].to_numpy(),
            "manufacturer": np.where(ext, "Cygnus", "Aster"),
            "model_name": np.where(ext, "CY-9", "AX-1"),
            "kvp": np.where(ext, 140.0, 120.0),
            "sex": np.where(frame["patient"].to_numpy() // 4 % 2 == 0, "F", "M"),
            "age_band": np.where(frame["patient"].to_numpy() % 7 == 0, "90+", "40-59"),
        }
    ).set_index("case_id")
    preds = Predictions(ids, np.c_[1 - score, score], class_names=("neg", "pos"))
    return preds, cohort


@pytest.fixture(scope="module")
def shifted() -> tuple[Predictions, pd.DataFrame, object]:
    preds, cohort = _cohort(np.random.default_rng(11))
    result = evaluate(preds, cohort, n_resamples=300, seed=0, conformal=False, small_cell=50)
    return preds, cohort, result


def test_subgroup_auroc_matches_sklearn_and_worst_is_the_external_scanner(shifted) -> None:
    preds, cohort, r = shifted
    scope = cohort["split"].isin(["internal", "external"]).to_numpy()
    y, s = cohort["label"].to_numpy(), preds.probabilities[:, 1]
    for maker in ("Aster", "Cygnus"):
        m = scope & (cohort["manufacturer"] == maker).to_numpy()
        est = r[f"subgroup.manufacturer={maker}.auroc"]
        assert est.value == pytest.approx(roc_auc_score(y[m], s[m]))
        assert est.low < est.value < est.high
    assert r["subgroup.manufacturer.worst_auroc"] == "Cygnus"
    assert r["subgroup.scope"] == ["internal", "external"]
    assert r["subgroup.overall.auroc"].value == pytest.approx(roc_auc_score(y[scope], s[scope]))
    rows = r.tables["subgroup.manufacturer"]
    assert {row["value"] for row in rows} == {"Aster", "Cygnus"}
    assert all(row["patients"] * 2 == row["n"] for row in rows)


def test_small_cells_are_suppressed_and_fail_closed(shifted) -> None:
    _, _, r = shifted
    est = r["subgroup.age_band=90+.auroc"]
    assert est.value is None and "suppressed" in est.reason
    assert r["subgroup.age_band=40-59.auroc"].value is not None


def test_intersections_have_rows(shifted) -> None:
    _, _, r = shifted
    assert "subgroup.manufacturer\u00d7sex=Cygnus\u00d7F.auroc" in r.estimates


def test_external_split_drifts_on_scanner_columns(shifted) -> None:
    _, _, r = shifted
    assert r["shift.reference_split"] == "internal"
    assert r["split.external.shift.drifted"] is True
    drifted = {c["column"] for c in r.tables["split.external.shift.drift"] if c["drifted"]}
    assert {"manufacturer", "model_name", "kvp"} <= drifted
    assert "sex" not in drifted  # same sex mix on both splits
    assert r["shift.drift_share"] == r["split.external.shift.drift_share"] > 0
    assert 0.0 <= r["split.external.shift.bbsd_p_value"] <= 1.0


def test_label_free_estimate_is_next_to_the_observed_accuracy(shifted) -> None:
    _, _, r = shifted
    est = r["split.external.shift.estimated_accuracy"]
    obs = r["split.external.shift.observed_accuracy"]
    assert est.method == "cbpe" and obs.method == "wilson"
    assert est.n == obs.n == r["split.external.cohort.n_cases"]
    assert r["shift.label_free_assumptions"]


def test_observed_accuracy_is_the_operating_point_accuracy(shifted) -> None:
    # The threshold lives on the model's probability scale, not the temperature-scaled one.
    _, _, r = shifted
    assert r["calibration.temperature"] != pytest.approx(1.0, abs=0.05)
    obs = r["split.external.shift.observed_accuracy"]
    assert obs.value == pytest.approx(r["split.external.operating_point.accuracy"].value)


def test_no_leak_then_a_planted_leak_is_found(shifted) -> None:
    _, _, r = shifted
    assert r["leakage.checked"] is True and r["leakage.leak"] is False
    preds, cohort = _cohort(np.random.default_rng(11), shared=3)
    leaky = evaluate(preds, cohort, n_resamples=200, conformal=False, shift=True)
    assert leaky["leakage.leak"] is True
    assert leaky["leakage.patient_key.n_overlap"] == 3
    assert leaky["leakage.reference_splits"] == ["calibration", "train"]


def test_cohort_tables(shifted) -> None:
    _, cohort, r = shifted
    table1 = {row["split"]: row for row in r.tables["cohort.table1"]}
    assert table1["external"]["n_cases"] == int((cohort["split"] == "external").sum())
    assert table1["internal"]["manufacturer"] == {"Aster": table1["internal"]["n_cases"]}
    protocols = {row["manufacturer"]: row for row in r.tables["cohort.acquisition"]}
    assert protocols["Cygnus"]["kvp"] == "140" and protocols["Aster"]["kvp"] == "120"


def test_shift_off_and_without_cohort(rng: np.random.Generator) -> None:
    preds, cohort = _cohort(rng, n_patients=120)
    r = evaluate(preds, cohort, n_resamples=200, conformal=False, shift=False)
    assert not any(k.startswith(("subgroup.", "shift.", "leakage.")) for k in r.values)
    labelled = Predictions(
        preds.case_ids, preds.probabilities, labels=cohort["label"].to_numpy(),
        class_names=preds.class_names,
    )  # fmt: skip
    bare = evaluate(labelled, n_resamples=200, conformal=False)
    assert "subgroup.columns" not in bare.values
