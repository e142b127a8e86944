from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from medval import InputError, Predictions, SpecError, evaluate


def _data(rng: np.random.Generator, n: int = 600) -> tuple[Predictions, pd.DataFrame]:
    patients = rng.integers(0, n // 3, size=n)
    sick = rng.random(n // 3) < 0.4
    y = sick[patients].astype(int)
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 0.5)))
    split = np.where(
        patients % 3 == 0, "calibration", np.where(patients % 3 == 1, "internal", "external")
    )
    ids = [f"c{i:04d}" for i in range(n)]
    cohort = pd.DataFrame(
        {"case_id": ids, "patient_key": [f"p{k}" for k in patients], "split": split, "label": y}
    ).set_index("case_id")
    preds = Predictions(ids, np.c_[1 - score, score], class_names=("neg", "pos"))
    return preds, cohort


def test_metrics_match_sklearn_and_threshold_comes_from_calibration(
    rng: np.random.Generator,
) -> None:
    preds, cohort = _data(rng)
    r = evaluate(preds, cohort, n_resamples=300, seed=3)
    y = cohort["label"].to_numpy()
    s = preds.probabilities[:, 1]
    internal = (cohort["split"] == "internal").to_numpy()
    assert r["discrimination.auroc"].value == pytest.approx(roc_auc_score(y[internal], s[internal]))
    ext = (cohort["split"] == "external").to_numpy()
    assert r["split.external.discrimination.auroc"].value == pytest.approx(
        roc_auc_score(y[ext], s[ext])
    )
    # Youden's J on the calibration split, recomputed with scikit-learn.
    cal = (cohort["split"] == "calibration").to_numpy()
    fpr, tpr, thr = roc_curve(y[cal], s[cal])
    best = thr[np.argmax(tpr - fpr)]
    t = r["operating_point.threshold"]
    pred_t, pred_best = s[cal] >= t, s[cal] >= best
    j = lambda p: p[y[cal] == 1].mean() - p[y[cal] == 0].mean()  # noqa: E731
    assert j(pred_t) == pytest.approx(j(pred_best))
    sens = r["operating_point.sensitivity"]
    assert sens.value == pytest.approx((s[internal & (y == 1)] >= t).mean())
    assert r["evaluation.clustered_by"] == "patient"
    assert r["cohort.n_patients"] == cohort.loc[internal, "patient_key"].nunique()
    assert "calibration" not in r["evaluation.splits"]


def test_same_seed_same_numbers(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    a = evaluate(preds, cohort, n_resamples=200, seed=7).to_json()
    b = evaluate(preds, cohort, n_resamples=200, seed=7).to_json()
    assert a == b


def test_progress_bar_goes_to_stderr_and_changes_no_number(
    rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    preds, cohort = _data(rng, 300)
    quiet = evaluate(preds, cohort, n_resamples=100, seed=7, progress=False).to_json()
    assert "evaluate" not in capsys.readouterr().err
    shown = evaluate(preds, cohort, n_resamples=100, seed=7, progress=True).to_json()
    assert shown == quiet
    captured = capsys.readouterr()
    assert captured.out == ""
    for block in (
        "discrimination and operating point",
        "ROC and PR curves, confusion matrix",
        "conformal prediction sets and triage",
        "calibration",
        "subgroups, drift and leakage",
        "failure analysis",
    ):
        assert f"evaluate: {block}" in captured.err


def test_without_cohort_everything_is_one_split(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng, 200)
    r = evaluate(preds.with_labels(cohort["label"].to_numpy()), n_resamples=200)
    assert r["evaluation.splits"] == ["all"]
    assert r["operating_point.threshold"] == 0.5
    assert r["evaluation.clustered_by"] == "case"


def test_errors(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng, 60)
    with pytest.raises(InputError, match="no labels"):
        evaluate(preds)
    with pytest.raises(SpecError, match=r"test_splits\[0\] = 'nope' is not a split"):
        evaluate(preds, cohort, test_splits=["nope"])
    three = Predictions(["a", "b"], [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], labels=[0, 2])
    with pytest.raises(InputError, match=r"positive_class must be a class index 0\.\.2; got 3"):
        evaluate(three, positive_class=3)


def test_every_registry_metric_carries_a_clustered_interval(rng: np.random.Generator) -> None:
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        balanced_accuracy_score,
        f1_score,
    )

    preds, cohort = _data(rng)
    r = evaluate(preds, cohort, n_resamples=300, seed=1, conformal=False)
    internal = (cohort["split"] == "internal").to_numpy()
    y, s = cohort["label"].to_numpy()[internal], preds.probabilities[internal, 1]
    pred = (s >= r["operating_point.threshold"]).astype(int)
    for key, want in [
        ("discrimination.auprc", average_precision_score(y, s)),
        ("operating_point.accuracy", accuracy_score(y, pred)),
        ("operating_point.balanced_accuracy", balanced_accuracy_score(y, pred)),
        ("operating_point.f1", f1_score(y, pred)),
    ]:
        est = r[key]
        assert est.value == pytest.approx(want), key
        assert est.low <= est.value <= est.high and est.seed == 1
        assert "clustered" in est.method, (key, est.method)


def test_positive_class_zero_mirrors_positive_class_one(rng: np.random.Generator) -> None:
    # The same task with the classes swapped: every number must stay the same.
    preds, cohort = _data(rng)
    flipped = Predictions(preds.case_ids, preds.probabilities[:, ::-1], class_names=("pos", "neg"))
    mirrored = cohort.assign(label=1 - cohort["label"])
    a = evaluate(preds, cohort, n_resamples=200, seed=5)
    b = evaluate(flipped, mirrored, positive_class=0, n_resamples=200, seed=5)
    assert b["task.positive_class"] == "pos"
    for key, est in a.estimates.items():
        other = b.estimates[key]
        assert (other.value, other.low, other.high) == pytest.approx(
            (est.value, est.low, est.high), rel=1e-9, abs=1e-12
        ), key
    for key, value in a.values.items():
        if key != "task.class_names":
            want = pytest.approx(value) if isinstance(value, float) else value
            assert b.values[key] == want, key
    by_group = lambda rows: sorted(rows, key=lambda row: row["group"])  # noqa: E731
    for key, rows in a.tables.items():
        if key.endswith("conformal.by_class"):  # rows in class order
            assert by_group(b.tables[key]) == by_group(rows), key
        else:
            assert b.tables[key] == rows, key
    # Triage flags a minority, not nearly every case.
    assert a["triage.flagged_rate"] < 0.9


def test_every_case_id_is_checked_against_the_cohort(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng, 60)
    short = cohort.drop(index=["c0010", "c0042", "c0059"])
    match = r"3 case ids have predictions but no row in the cohort \(e\.g\. \['c0010', 'c0042'"
    with pytest.raises(InputError, match=match):
        evaluate(preds, short, n_resamples=200)
    # Labels from the predictions: the cohort must still hold every case.
    labelled = preds.with_labels(cohort["label"].to_numpy())
    with pytest.raises(InputError, match=match):
        evaluate(labelled, short, n_resamples=200)
