"""evaluate() on a three-class task, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

from medval import Predictions, evaluate
from medval.report import render_html

CLASSES = ("normal", "benign", "malignant")


@pytest.fixture(scope="module")
def data() -> tuple[Predictions, pd.DataFrame]:
    rng = np.random.default_rng(12)
    n = 1200
    patient = np.arange(n) // 2
    y = rng.integers(0, 3, size=n // 2)[patient]
    split = np.array(["calibration", "internal", "external"])[patient % 3]
    signal = np.where(split == "external", 0.8, 2.0)[:, None]  # the external scanner is worse
    logits = rng.normal(size=(n, 3)) + signal * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    maker = np.where(split == "external", "Cygnus", "Aster")
    ids = [f"c{i}" for i in range(n)]
    cohort = pd.DataFrame(
        {"case_id": ids, "patient_key": [f"p{q}" for q in patient], "split": split,
         "label": y, "manufacturer": maker, "sex": np.where(patient % 2, "F", "M")}
    ).set_index("case_id")  # fmt: skip
    return Predictions(ids, p, class_names=CLASSES), cohort


def test_multiclass_metrics_match_sklearn(data: tuple[Predictions, pd.DataFrame]) -> None:
    preds, cohort = data
    r = evaluate(preds, cohort, n_resamples=200, seed=0, positive_class=2)
    internal = (cohort["split"] == "internal").to_numpy()
    y, p = cohort["label"].to_numpy()[internal], preds.probabilities[internal]
    assert r["task.kind"] == "multiclass"
    macro = r["discrimination.auroc"]
    assert macro.value == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert macro.low < macro.value < macro.high and "clustered" in macro.method
    for j, name in enumerate(CLASSES):
        assert r[f"discrimination.auroc.{name}"].value == pytest.approx(
            roc_auc_score(y == j, p[:, j])
        )
    decision = p.argmax(axis=1)
    assert r["operating_point.accuracy"].value == pytest.approx(accuracy_score(y, decision))
    recall = recall_score(y, decision, average=None)
    precision = precision_score(y, decision, average=None)
    for j, name in enumerate(CLASSES):
        assert r[f"operating_point.sensitivity.{name}"].value == pytest.approx(recall[j])
        assert r[f"operating_point.ppv.{name}"].value == pytest.approx(precision[j])
    assert r["cohort.class_counts"] == {name: int((y == j).sum()) for j, name in enumerate(CLASSES)}


def test_multiclass_conformal_calibration_shift_and_report(
    data: tuple[Predictions, pd.DataFrame],
) -> None:
    preds, cohort = data
    r = evaluate(preds, cohort, n_resamples=200, seed=0)
    assert r["conformal.coverage"].value is not None
    assert {row["group"] for row in r["conformal.by_class"]} == set(CLASSES)
    assert "triage.threshold" not in r.values
    assert "top-label" in r["calibration.bins"]
    assert r["calibration.ece"].value is not None
    assert "split.external.shift.drift_share" in r.values
    assert r["split.external.shift.estimated_accuracy"].value is not None
    scope = cohort["split"].isin(["internal", "external"]).to_numpy()
    y, p = cohort["label"].to_numpy(), preds.probabilities
    for maker in ("Aster", "Cygnus"):
        m = scope & (cohort["manufacturer"] == maker).to_numpy()
        est = r[f"subgroup.manufacturer={maker}.auroc"]
        assert est.value == pytest.approx(roc_auc_score(y[m], p[m], multi_class="ovr"))
        assert est.low < est.value < est.high and est.seed == 0
        acc = r[f"subgroup.manufacturer={maker}.accuracy"]
        assert acc.value == pytest.approx(accuracy_score(y[m], p[m].argmax(axis=1)))
    assert r["subgroup.manufacturer.worst_auroc"] == "Cygnus"
    assert r["subgroup.overall.auroc"].value == pytest.approx(
        roc_auc_score(y[scope], p[scope], multi_class="ovr")
    )
    html = render_html(r, result_sha256="0" * 64, generated_at="T")
    assert "malignant" in html and 'id="conformal"' in html
