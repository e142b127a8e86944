"""Referral curves, AURC and error AUROC against direct computations and scikit-learn."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medval import InputError
from medval.uncertainty import (
    aurc,
    compare_uncertainty_measures,
    recommended_referral_fraction,
    referral_curve,
    uncertainty_error_auroc,
)


def _binary(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q = rng.uniform(size=n)
    y = (rng.uniform(size=n) < q).astype(int)
    u = 0.5 - np.abs(q - 0.5) + rng.normal(scale=0.05, size=n)
    return np.column_stack([1 - q, q]), y, u


def test_referral_curve_matches_direct_subsets() -> None:
    p, y, u = _binary(np.random.default_rng(0), 300)
    curve = referral_curve(p, y, u, fractions=[0.0, 0.1, 0.3])
    for i, f in enumerate([0.0, 0.1, 0.3]):
        keep = np.argsort(-u)[int(f * 300) :]
        pred = p[keep].argmax(1)
        assert curve["referred_fraction"][i] == pytest.approx(f)
        assert curve["accuracy"][i] == pytest.approx(np.mean(pred == y[keep]))
        pos = y[keep] == 1
        assert curve["sensitivity"][i] == pytest.approx(np.mean(pred[pos] == 1))
        assert curve["specificity"][i] == pytest.approx(np.mean(pred[~pos] == 0))
        assert curve["auroc"][i] == pytest.approx(roc_auc_score(y[keep], p[keep, 1]))
    assert curve["accuracy"][2] > curve["accuracy"][0]


def test_referral_curve_at_an_operating_threshold() -> None:
    p, y, u = _binary(np.random.default_rng(10), 300)
    curve = referral_curve(p, y, u, fractions=[0.0, 0.2], threshold=0.3)
    for i, f in enumerate([0.0, 0.2]):
        keep = np.argsort(-u)[int(f * 300) :]
        pred = (p[keep, 1] >= 0.3).astype(int)
        pos = y[keep] == 1
        assert curve["accuracy"][i] == pytest.approx(np.mean(pred == y[keep]))
        assert curve["sensitivity"][i] == pytest.approx(np.mean(pred[pos] == 1))
        assert curve["specificity"][i] == pytest.approx(np.mean(pred[~pos] == 0))
    rec = recommended_referral_fraction(p, y, u, target_sensitivity=0.97, threshold=0.3)
    keep = u < rec["threshold"]
    pos = keep & (y == 1)
    assert np.mean(p[pos, 1] >= 0.3) == pytest.approx(rec["retained_sensitivity"])
    assert rec["retained_sensitivity"] >= 0.97
    with pytest.raises(InputError, match="binary"):
        referral_curve(np.full((2, 3), 1 / 3), np.array([0, 1]), np.zeros(2), threshold=0.5)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        referral_curve(p, y, u, threshold=1.5)


def test_referral_ties_are_referred_together() -> None:
    p, y, _ = _binary(np.random.default_rng(1), 10)
    u = np.array([3, 3, 3, 2, 2, 1, 1, 1, 1, 1], dtype=float)
    curve = referral_curve(p, y, u, fractions=[0.2, 0.3, 0.5])
    np.testing.assert_allclose(curve["referred_fraction"], [0.0, 0.3, 0.5])
    np.testing.assert_allclose(curve["threshold"], [np.inf, 3.0, 2.0])


def test_aurc_brute_force_over_tie_orders() -> None:
    rng = np.random.default_rng(2)
    p = rng.dirichlet([1, 1, 1], size=7)
    y = rng.integers(0, 3, size=7)
    u = np.array([1, 1, 2, 2, 2, 3, 0], dtype=float)
    err = (p.argmax(1) != y).astype(float)
    groups = [np.flatnonzero(u == v) for v in np.unique(u)]
    values = []
    for perms in itertools.product(*[itertools.permutations(g) for g in groups]):
        order = np.concatenate(perms).astype(int)
        values.append(np.mean(np.cumsum(err[order]) / np.arange(1, 8)))
    res = aurc(p, y, u)
    assert res["aurc"] == pytest.approx(np.mean(values))
    oracle = np.mean(np.cumsum(np.sort(err)) / np.arange(1, 8))
    assert res["eaurc"] == pytest.approx(np.mean(values) - oracle)
    assert res["eaurc"] >= 0


def test_error_auroc_matches_sklearn() -> None:
    p, y, u = _binary(np.random.default_rng(3), 400)
    err = p.argmax(1) != y
    assert uncertainty_error_auroc(p, y, u) == pytest.approx(roc_auc_score(err, u))
    with pytest.raises(InputError, match="not estimable"):
        uncertainty_error_auroc(p, p.argmax(1), u)


def test_recommended_referral_fraction() -> None:
    p, y, u = _binary(np.random.default_rng(4), 500)
    rec = recommended_referral_fraction(p, y, u, target_sensitivity=0.9)
    assert rec["retained_sensitivity"] >= 0.9
    keep = u < rec["threshold"]
    assert np.mean(keep) == pytest.approx(1 - rec["fraction"])
    # one case fewer referred would miss the target (minimality)
    curve = referral_curve(p, y, u, fractions=np.arange(0, rec["fraction"], 0.002))
    assert np.all(np.nan_to_num(curve["sensitivity"]) < 0.9)
    none = recommended_referral_fraction(p, y, u, target_sensitivity=1.0, max_fraction=0.01)
    assert none["fraction"] is None and "no referral" in none["reason"]
    # K > 2: the decision is the most probable class; a threshold needs a binary task.
    with pytest.raises(InputError, match="binary"):
        recommended_referral_fraction(
            np.full((2, 3), 1 / 3), np.array([0, 1]), np.zeros(2), threshold=0.5
        )
    with pytest.raises(InputError, match=r"positive_class must be a class index 0\.\.2"):
        recommended_referral_fraction(
            np.full((2, 3), 1 / 3), np.array([0, 1]), np.zeros(2), positive_class=3
        )


def test_compare_measures() -> None:
    p, y, u = _binary(np.random.default_rng(5), 200)
    noise = np.random.default_rng(6).normal(size=200)
    out = compare_uncertainty_measures(p, y, {"good": u, "random": noise})
    assert out["good"]["error_auroc"] > out["random"]["error_auroc"]  # type: ignore[operator]
    assert out["good"]["aurc"] < out["random"]["aurc"]  # type: ignore[operator]


def test_errors() -> None:
    p, y, u = _binary(np.random.default_rng(7), 10)
    with pytest.raises(InputError, match="uncertainty must have shape"):
        aurc(p, y, u[:5])
    with pytest.raises(InputError, match="NaN"):
        aurc(p, y, np.full(10, np.nan))
    with pytest.raises(InputError, match="fractions"):
        referral_curve(p, y, u, fractions=[1.2])
    with pytest.raises(InputError, match="labels"):
        aurc(p, y + 5, u)
