"""ROC band, PR curve, confusion matrix and failure tables, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from medval._eval_curves import curve_tables, failure_tables
from medval._result import ValidationResult


def _data(rng: np.random.Generator, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    clusters = rng.integers(0, n // 2, size=n)
    y = (rng.random(n // 2) < 0.35)[clusters].astype(np.int64)
    s = np.round(1 / (1 + np.exp(-(rng.normal(size=n) + 1.4 * y - 0.5))), 2)  # ties
    return y, s, clusters


def test_roc_pr_and_confusion_match_sklearn(rng: np.random.Generator) -> None:
    y, s, clusters = _data(rng)
    r = ValidationResult()
    curve_tables(r, "", y, s, clusters, threshold=0.5, confidence_level=0.95, seed=3)
    roc = r.tables["curves.roc"]
    fpr, tpr, _ = roc_curve(y, s)
    grid = np.array([p["fpr"] for p in roc])
    np.testing.assert_allclose([p["tpr"] for p in roc], np.interp(grid, fpr, tpr), atol=1e-12)
    assert all(p["low"] <= p["tpr"] + 1e-9 and p["tpr"] <= p["high"] + 1e-9 for p in roc)
    assert np.mean([p["high"] - p["low"] for p in roc]) > 0.02
    assert "patient-clustered" in r["curves.roc_band"] and "seed 3" in r["curves.roc_band"]
    precision, recall, _ = precision_recall_curve(y, s)
    for point in r.tables["curves.pr"]:
        want = precision[recall >= point["recall"] - 1e-12].max()
        assert point["precision"] == pytest.approx(want)
    tn, fp, fn, tp = confusion_matrix(y, (s >= 0.5).astype(int)).ravel()
    assert r["operating_point.confusion"] == {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def test_band_is_reproducible_and_wider_when_clustered(rng: np.random.Generator) -> None:
    y, s, _ = _data(rng)
    # Every patient's images duplicated 4 times: the clustered band must widen.
    y4, s4 = np.repeat(y, 4), np.repeat(s, 4)
    c4 = np.repeat(np.arange(y.size), 4)
    widths = []
    for clusters in (None, c4):
        a, b = ValidationResult(), ValidationResult()
        for res in (a, b):
            curve_tables(res, "", y4, s4, clusters, threshold=0.5, confidence_level=0.95, seed=1)
        assert a.tables["curves.roc"] == b.tables["curves.roc"]
        widths.append(np.mean([p["high"] - p["low"] for p in a.tables["curves.roc"]]))
    assert widths[1] > 1.5 * widths[0]


def test_one_class_gives_confusion_only() -> None:
    r = ValidationResult()
    y, s = np.zeros(20, dtype=np.int64), np.linspace(0, 1, 20)
    curve_tables(r, "x.", y, s, None, threshold=0.5, confidence_level=0.95, seed=0)
    assert r["x.operating_point.confusion"]["fp"] == 10
    assert "x.curves.roc" not in r.tables


def test_failure_tables_count_every_error(rng: np.random.Generator) -> None:
    y, s, _ = _data(rng)
    site = np.where(np.arange(y.size) % 3 == 0, "A", "B").astype(object)
    site[:5] = "tiny"
    unc = rng.random(y.size)
    r = ValidationResult()
    failure_tables(r, "", y, s, threshold=0.5, groups={"site": site}, uncertainty=unc, min_cell=11)
    rows = {row["value"]: row for row in r.tables["failure.by_group"]}
    assert rows["tiny"]["suppressed"] and "false_negatives" not in rows["tiny"]
    pred = s >= 0.5
    for v in ("A", "B"):
        m = site == v
        assert rows[v]["false_negatives"] == int((~pred & (y == 1) & m).sum())
        assert rows[v]["false_positives"] == int((pred & (y == 0) & m).sum())
    quart = r.tables["failure.by_uncertainty"]
    assert sum(q["n"] for q in quart) == y.size
    assert sum(q["false_negatives"] + q["false_positives"] for q in quart) == int((pred != y).sum())


def test_band_does_not_depend_on_how_patients_are_named(rng: np.random.Generator) -> None:
    # Pseudonyms change with the salt; the resampling must not.
    y, s, clusters = _data(rng)
    renamed = np.array([f"pt-{(c * 7919) % 1009:04d}" for c in clusters])
    a, b = ValidationResult(), ValidationResult()
    curve_tables(a, "", y, s, clusters, threshold=0.5, confidence_level=0.95, seed=2)
    curve_tables(b, "", y, s, renamed, threshold=0.5, confidence_level=0.95, seed=2)
    assert a.tables["curves.roc"] == b.tables["curves.roc"]
