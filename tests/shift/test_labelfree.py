from __future__ import annotations

import numpy as np
import pytest

from medval._errors import InputError
from medval.shift import ASSUMPTIONS, estimate_performance


def test_expected_confusion_matrix(rng: np.random.Generator) -> None:
    p = rng.beta(2, 2, 500)
    out = estimate_performance(p, threshold=0.4)
    pred = p >= 0.4
    cm = out["expected_confusion"]
    assert cm["tp"] == pytest.approx(p[pred].sum())
    assert cm["fp"] == pytest.approx((1 - p[pred]).sum())
    assert cm["fn"] == pytest.approx(p[~pred].sum())
    assert sum(cm.values()) == pytest.approx(500)
    assert out["accuracy"]["value"] == pytest.approx((cm["tp"] + cm["tn"]) / 500)
    assert out["sensitivity"] == pytest.approx(cm["tp"] / (cm["tp"] + cm["fn"]))
    assert out["assumptions"] == list(ASSUMPTIONS)
    two = estimate_performance(np.c_[1 - p, p], threshold=0.4)
    assert two["accuracy"] == out["accuracy"]


def test_interval_covers_realised_accuracy() -> None:
    # Under calibration, labels ~ Bernoulli(p): the interval should cover ~95 %.
    rng = np.random.default_rng(2)
    p = rng.beta(0.7, 0.7, 400)
    out = estimate_performance(p)
    lo, hi = out["accuracy"]["low"], out["accuracy"]["high"]
    hits = []
    for _ in range(1000):
        y = rng.random(400) < p
        hits.append(lo <= np.mean((p >= 0.5) == y) <= hi)
    assert 0.93 <= np.mean(hits) <= 0.97


def test_multiclass_accuracy(rng: np.random.Generator) -> None:
    p = rng.dirichlet([1, 1, 1], 100)
    out = estimate_performance(p)
    assert out["accuracy"]["value"] == pytest.approx(p.max(axis=1).mean())
    assert "expected_confusion" not in out and out["threshold"] is None


def test_positive_class_picks_the_column(rng: np.random.Generator) -> None:
    p = rng.beta(2, 2, 300)
    one = estimate_performance(p, threshold=0.4)
    zero = estimate_performance(np.c_[p, 1 - p], threshold=0.4, positive_class=0)
    assert zero["accuracy"] == one["accuracy"]
    assert zero["expected_confusion"] == pytest.approx(one["expected_confusion"])


def test_decisions_made_elsewhere(rng: np.random.Generator) -> None:
    # Recalibrated probabilities, decisions taken on the model's own scale.
    p = rng.beta(2, 2, 300)
    called = rng.random(300) < 0.5
    out = estimate_performance(np.c_[1 - p, p], decisions=called)
    assert out["accuracy"]["value"] == pytest.approx(np.where(called, p, 1 - p).mean())
    assert out["expected_confusion"]["tp"] == pytest.approx(p[called].sum())
    assert out["threshold"] is None
    q = rng.dirichlet([1, 1, 1], 100)
    pred = rng.integers(0, 3, 100)
    multi = estimate_performance(q, decisions=pred)
    assert multi["accuracy"]["value"] == pytest.approx(q[np.arange(100), pred].mean())


def test_errors() -> None:
    with pytest.raises(InputError, match=r"positive_class must be 0 or 1 for \(n, 2\) .*got 2"):
        estimate_performance(np.array([[0.2, 0.8]]), positive_class=2)
    with pytest.raises(InputError, match=r"decisions must have shape \(2,\)"):
        estimate_performance(np.array([0.2, 0.7]), decisions=[True])
    with pytest.raises(InputError, match=r"decisions must be class indices 0\.\.2"):
        estimate_performance(np.array([[0.2, 0.3, 0.5]]), decisions=[3])
    with pytest.raises(InputError, match="not logits"):
        estimate_performance(np.array([0.2, 1.5]))
    with pytest.raises(InputError, match="shape"):
        estimate_performance(np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="threshold"):
        estimate_performance(np.array([0.2]), threshold=float("inf"))
