"""Decomposition identities, bounds and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy

from medval import InputError, Predictions
from medval.uncertainty import decompose, decompose_regression


def _mc(rng: np.random.Generator, t: int, n: int, k: int, scale: float = 2.0) -> np.ndarray:
    z = rng.normal(size=(t, n, k)) * scale
    return np.exp(z) / np.exp(z).sum(-1, keepdims=True)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("measure", ["entropy", "variance"])
def test_identity_and_bounds(seed: int, measure: str) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    mc = _mc(rng, int(rng.integers(1, 20)), 50, k, scale=float(rng.uniform(0.1, 5)))
    d = decompose(mc, measure=measure)
    np.testing.assert_allclose(d.total, d.aleatoric + d.epistemic, atol=1e-12)
    upper = np.log(k) if measure == "entropy" else 1 - 1 / k
    for part in (d.total, d.aleatoric, d.epistemic):
        assert part.shape == (50,)
        assert np.all(part >= 0) and np.all(part <= upper + 1e-12)


def test_entropy_matches_scipy() -> None:
    mc = _mc(np.random.default_rng(1), 8, 10, 3)
    d = decompose(mc)
    np.testing.assert_allclose(d.total, entropy(mc.mean(0), axis=-1))
    np.testing.assert_allclose(d.aleatoric, entropy(mc, axis=-1).mean(0))


def test_epistemic_zero_when_samples_agree() -> None:
    one = _mc(np.random.default_rng(2), 1, 30, 4)
    d = decompose(np.repeat(one, 10, axis=0))
    np.testing.assert_array_equal(d.epistemic, 0.0)
    v = decompose(np.repeat(one, 10, axis=0), measure="variance")
    np.testing.assert_allclose(v.epistemic, 0.0, atol=1e-15)


def test_maximal_disagreement() -> None:
    # Two confident samples that disagree: aleatoric 0, epistemic log 2.
    mc = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    d = decompose(mc)
    assert d.aleatoric[0] == pytest.approx(0.0)
    assert d.epistemic[0] == pytest.approx(np.log(2))


def test_from_predictions() -> None:
    mc = _mc(np.random.default_rng(3), 5, 4, 2)
    preds = Predictions(case_ids=list("abcd"), probabilities=mc.mean(0), mc_probabilities=mc)
    np.testing.assert_allclose(decompose(preds).total, decompose(mc).total)
    with pytest.raises(InputError, match="no Monte Carlo"):
        decompose(Predictions(case_ids=list("abcd"), probabilities=mc.mean(0)))


def test_regression() -> None:
    rng = np.random.default_rng(4)
    mu, lv = rng.normal(size=(6, 9)), rng.normal(size=(6, 9))
    d = decompose_regression(mu, lv)
    np.testing.assert_allclose(d.aleatoric, np.exp(lv).mean(0))
    np.testing.assert_allclose(d.epistemic, mu.var(0))
    np.testing.assert_allclose(d.total, d.aleatoric + d.epistemic)
    with pytest.raises(InputError, match=r"shape \(T, n\)"):
        decompose_regression(mu, lv[:, :3])


def test_errors() -> None:
    with pytest.raises(InputError, match="unknown measure"):
        decompose(np.full((2, 3, 2), 0.5), measure="gini")
    with pytest.raises(InputError, match=r"shape \(T, n, K\)"):
        decompose(np.full((3, 2), 0.5))
    with pytest.raises(InputError, match="never logits"):
        decompose(np.full((2, 3, 2), 2.0))
    with pytest.raises(InputError, match="sum to 1"):
        decompose(np.full((2, 3, 2), 0.2))
