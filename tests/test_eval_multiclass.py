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
    logits = rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    split = np.array(["calibration", "internal", "external"])[patient % 3]
    maker = np.where(split == "external", "Cygnus", "Aster")
    ids = [f"c{i}" for i in range(n)]
    cohort = pd.DataFrame(
        {"case_id": ids, "patient_key": [f"p{q}" for q in patient], "split": split,
         "label": y, "manufacturer": maker, "sex": np.where(patient % 2, "F", "M")}
    ).set_index("case_id")  # fmt: skip
    return Predictions(ids, p, class_names=CLASSES), cohort


def test_multiclass_metrics_match_sklearn(data: tuple[Predictions, pd.DataFrame]) -> None:
    preds, cohort = data
    r = evaluate(preds, cohort, n_resamples=200, random_state=0, positive_class=2)
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
    assert r["cohort.class_counts"] == {
        name: int((y == j).sum()) for j, name in enumerate(CLASSES)
    }


def test_multiclass_conformal_calibration_shift_and_report(
    data: tuple[Predictions, pd.DataFrame],
) -> None:
    preds, cohort = data
    r = evaluate(preds, cohort, n_resamples=200, random_state=0)
    assert r["conformal.coverage"].value is not None
    assert {row["group"] for row in r["conformal.by_class"]} == set(CLASSES)
    assert "triage.threshold" not in r.values
    assert "top-label" in r["calibration.bins"]
    assert r["calibration.ece"].value is not None
    assert "split.external.shift.drift_share" in r.values
    assert r["split.external.shift.estimated_accuracy"].value is not None
    assert not any(k.startswith("subgroup.") and k != "subgroup.scope" for k in r.values)
    html = render_html(r, result_sha256="0" * 64, generated_at="T")
    assert "malignant" in html and 'id="conformal"' in html
