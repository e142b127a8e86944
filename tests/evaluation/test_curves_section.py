"""ROC band, PR curve, confusion matrix and failure tables, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from medval._result import ValidationResult
from medval.evaluation._curves import curve_tables, failure_tables


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


def _band(y: np.ndarray, s: np.ndarray, clusters: np.ndarray | None, seed: int) -> list[dict]:
    r = ValidationResult()
    curve_tables(r, "", y, s, clusters, threshold=0.5, confidence_level=0.95, seed=seed)
    return list(r.tables["curves.roc"])


def test_equal_seeds_give_equal_bands(rng: np.random.Generator) -> None:
    y, s, clusters = _data(rng)
    assert _band(y, s, clusters, 7) == _band(y, s, clusters, 7)
    assert _band(y, s, clusters, 7) != _band(y, s, clusters, 8)
    # the point curve does not depend on the seed, only the band does
    assert [p["tpr"] for p in _band(y, s, None, 7)] == [p["tpr"] for p in _band(y, s, None, 8)]


_MU = 1.2


def _binormal(seed: int, clustered: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    gen = np.random.default_rng(seed)
    if not clustered:
        y = (gen.random(300) < 0.4).astype(np.int64)
        return y, _MU * y + gen.normal(size=300), None
    images = gen.integers(1, 5, size=150)
    pid = np.repeat(np.arange(150), images)
    y = (gen.random(150) < 0.4).astype(np.int64)[pid]
    effect = gen.normal(scale=np.sqrt(0.5), size=150)[pid]
    return y, _MU * y + effect + gen.normal(scale=np.sqrt(0.5), size=pid.size), pid


def _coverage(roc: list[dict]) -> float:
    """Share of grid points with 0.05 <= FPR <= 0.95 whose band holds the true TPR."""
    from scipy.stats import norm

    f = np.array([p["fpr"] for p in roc])
    true = norm.sf(norm.isf(np.clip(f, 1e-12, 1.0)) - _MU)
    low, high = np.array([p["low"] for p in roc]), np.array([p["high"] for p in roc])
    inside = (f >= 0.05) & (f <= 0.95)
    return float(((low <= true) & (true <= high))[inside].mean())


@pytest.mark.parametrize("clustered", [False, True])
def test_band_covers_the_true_roc_at_about_its_level(clustered: bool) -> None:
    # Binormal data: negatives N(0, 1), positives N(mu, 1) per image, so the
    # true ROC is TPR(f) = 1 - Phi(Phi^-1(1 - f) - mu). Clustered: 150 patients
    # with 1-4 images, disease per patient and a shared patient effect (half the
    # variance), so a patient's images are correlated but the marginal ROC is
    # the same. Over 40 seeds we count how often the 95% pointwise band holds
    # the true TPR at the grid points with 0.05 <= FPR <= 0.95. A percentile
    # band of an interpolated empirical ROC covers a little under its level:
    # about 0.93 unclustered and 0.91 clustered here (the draws are fixed, so
    # this is deterministic). The bound [0.85, 0.99] is generous: it catches a
    # broken band (far too narrow or too wide), not a slightly different one.
    coverage = [_coverage(_band(*_binormal(seed, clustered), seed)) for seed in range(40)]
    assert 0.85 <= np.mean(coverage) <= 0.99
    if clustered:
        # The same data without patient keys: images resampled as if
        # independent, the band is too narrow and covers less (about 0.84).
        naive = [_coverage(_band(*_binormal(seed, True)[:2], None, seed)) for seed in range(40)]
        assert np.mean(naive) < np.mean(coverage) - 0.03
