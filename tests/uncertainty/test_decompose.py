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


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("measure", ["entropy", "variance"])
def test_invariant_to_sample_class_and_case_order(seed: int, measure: str) -> None:
    rng = np.random.default_rng(100 + seed)
    t, n, k = int(rng.integers(2, 12)), 40, int(rng.integers(2, 6))
    mc = _mc(rng, t, n, k, scale=float(rng.uniform(0.5, 4)))
    d = decompose(mc, measure=measure)
    cases = rng.permutation(n)
    shuffled = mc[rng.permutation(t)][:, cases][:, :, rng.permutation(k)]
    e = decompose(shuffled, measure=measure)
    for part in ("total", "aleatoric", "epistemic"):
        np.testing.assert_allclose(getattr(e, part), getattr(d, part)[cases], atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_mutual_information_at_most_log_t(seed: int) -> None:
    # I(y; theta) <= H(theta) = log T for T equally weighted samples.
    rng = np.random.default_rng(200 + seed)
    t = int(rng.integers(2, 4))
    d = decompose(_mc(rng, t, 60, 6, scale=10.0))
    assert np.all(d.epistemic <= np.log(t) + 1e-12)


def test_agreeing_samples_give_zero_epistemic_for_every_case_mixture() -> None:
    # Half the cases agree across samples, half do not: zero exactly where they agree.
    rng = np.random.default_rng(300)
    mc = _mc(rng, 6, 20, 3)
    mc[:, :10] = mc[:1, :10]
    for measure in ("entropy", "variance"):
        d = decompose(mc, measure=measure)
        np.testing.assert_array_equal(d.epistemic[:10], 0.0)
        assert np.all(d.epistemic[10:] > 0)
        np.testing.assert_allclose(d.aleatoric[:10], d.total[:10])


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
    with pytest.raises(InputError, match="NaN"):
        decompose_regression(mu, np.full_like(lv, np.nan))
    same = decompose_regression(np.repeat(mu[:1], 6, axis=0), lv)
    np.testing.assert_array_equal(same.epistemic, 0.0)
    np.testing.assert_allclose(same.total, same.aleatoric)


def test_errors() -> None:
    with pytest.raises(InputError, match="unknown measure"):
        decompose(np.full((2, 3, 2), 0.5), measure="gini")
    with pytest.raises(InputError, match=r"shape \(T, n, K\)"):
        decompose(np.full((3, 2), 0.5))
    with pytest.raises(InputError, match="never logits"):
        decompose(np.full((2, 3, 2), 2.0))
    with pytest.raises(InputError, match="sum to 1"):
        decompose(np.full((2, 3, 2), 0.2))
    with pytest.raises(InputError, match="NaN"):
        decompose(np.full((2, 3, 2), np.nan))


def test_predictive_entropy_matches_scipy() -> None:
    from scipy.stats import entropy

    from medval.uncertainty import predictive_entropy

    p = np.array([[0.2, 0.8], [1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(predictive_entropy(p), entropy(p, axis=1))
