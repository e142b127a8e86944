"""Closed-form Dirichlet (evidential) decomposition against Monte Carlo and exact cases.

The reference is numpy's Dirichlet sampler, not the formula under test. Note
that ``scipy.stats.dirichlet(alpha).entropy()`` is the differential entropy of
the Dirichlet itself, a different quantity from the expected entropy of the
categorical E[H(p)] computed here; it is not used as a reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import ArrayLike
from scipy import special

from medval import InputError, Predictions
from medval.uncertainty import Decomposition, decompose, dirichlet_decompose, dirichlet_vacuity

ALPHAS = [
    [1.0, 1.0],
    [0.5, 2.0, 3.0],
    [0.2, 0.3, 0.4, 0.1],
    [10.0, 20.0, 5.0],
    [3.0, 3.0, 3.0, 3.0, 3.0],
    [1.0, 1.0, 50.0],
]


def _entropy_rows(p: np.ndarray) -> np.ndarray:
    return np.asarray(-np.sum(special.xlogy(p, p), axis=-1))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_matches_monte_carlo_dirichlet_draws(alpha: list[float]) -> None:
    a = np.asarray(alpha)
    draws = np.random.default_rng(7).dirichlet(a, size=200_000)
    h = _entropy_rows(draws)
    expected_entropy = h.mean()
    mutual_information = _entropy_rows(draws.mean(axis=0)) - expected_entropy
    tol = 4 * h.std() / np.sqrt(h.size) + 2e-4  # 4 standard errors (+ the bias of H[mean])
    d = dirichlet_decompose(a[None])
    assert isinstance(d, Decomposition)
    assert d.measure == "dirichlet_entropy" and d.n_samples == 0
    np.testing.assert_allclose(d.aleatoric, [expected_entropy], atol=tol)
    np.testing.assert_allclose(d.epistemic, [mutual_information], atol=tol)
    np.testing.assert_allclose(d.total, [_entropy_rows(a / a.sum())], rtol=1e-12)
    # The Monte Carlo decomposition of the same draws agrees too.
    mc = decompose(draws[:, None, :])
    np.testing.assert_allclose(d.aleatoric, mc.aleatoric, atol=tol)
    np.testing.assert_allclose(d.epistemic, mc.epistemic, atol=tol)


def test_exact_values() -> None:
    # alpha = (1, 1): p ~ Uniform(0, 1), E[H] = 2 * int_0^1 -p log p dp = 1/2.
    d = dirichlet_decompose([[1.0, 1.0]])
    np.testing.assert_allclose(d.total, [np.log(2)], rtol=1e-14)
    np.testing.assert_allclose(d.aleatoric, [0.5], rtol=1e-14)
    np.testing.assert_allclose(d.epistemic, [np.log(2) - 0.5], rtol=1e-13)
    # Symmetric alpha = (a, ..., a): E[H] = psi(K a + 1) - psi(a + 1); all ones gives H_K - 1.
    for k in (2, 3, 7):
        for a in (0.1, 1.0, 4.0):
            d = dirichlet_decompose(np.full((1, k), a))
            expected = special.digamma(k * a + 1) - special.digamma(a + 1)
            np.testing.assert_allclose(d.aleatoric, [expected], rtol=1e-12)
            np.testing.assert_allclose(d.total, [np.log(k)], rtol=1e-12)
        harmonic = sum(1 / j for j in range(1, k + 1))
        np.testing.assert_allclose(dirichlet_decompose(np.ones((1, k))).aleatoric, [harmonic - 1])


@pytest.mark.parametrize("k", [2, 3, 10])
def test_epistemic_vanishes_for_large_equal_alpha(k: int) -> None:
    scales = np.array([1.0, 10.0, 1e3, 1e6])
    alpha = scales[:, None] * np.ones((1, k))
    d = dirichlet_decompose(alpha)
    assert np.all(np.diff(d.epistemic) < 0)
    # Mutual information = E[KL(p || mean)] ~ (K - 1) / (2 (S + 1)) for large S.
    s = alpha.sum(axis=1)
    np.testing.assert_allclose(d.epistemic[-1], (k - 1) / (2 * (s[-1] + 1)), rtol=1e-4)
    assert d.epistemic[-1] < 1e-5
    np.testing.assert_allclose(d.aleatoric[-1], np.log(k), atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_identity_bounds_and_invariance(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    alpha = np.exp(rng.normal(scale=3.0, size=(60, k)))
    d = dirichlet_decompose(alpha)
    np.testing.assert_allclose(d.total, d.aleatoric + d.epistemic, atol=1e-12)
    for part in (d.total, d.aleatoric, d.epistemic):
        assert part.shape == (60,)
        assert np.all(part >= 0) and np.all(part <= np.log(k) + 1e-12)
    rows, cols = rng.permutation(60), rng.permutation(k)
    e = dirichlet_decompose(alpha[rows][:, cols])
    np.testing.assert_allclose(e.aleatoric, d.aleatoric[rows], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(e.epistemic, d.epistemic[rows], rtol=1e-9, atol=1e-15)
    # Scaling alpha up (more evidence, same mean) lowers the epistemic part only.
    more = dirichlet_decompose(alpha * 10)
    np.testing.assert_allclose(more.total, d.total, rtol=1e-12, atol=1e-15)
    assert np.all(more.epistemic <= d.epistemic + 1e-15)


def test_vacuity() -> None:
    np.testing.assert_allclose(dirichlet_vacuity(np.ones((4, 3))), np.ones(4))
    evidence = np.array([[0.0, 0.0], [8.0, 0.0], [30.0, 60.0]])
    np.testing.assert_allclose(dirichlet_vacuity(evidence + 1), [1.0, 0.2, 2 / 92])
    out = dirichlet_vacuity([[0.5, 0.5, 0.5]])
    assert out.dtype == np.float64 and out.shape == (1,)
    np.testing.assert_allclose(out, [2.0])


def test_predictions_carry_alpha() -> None:
    alpha = np.array([[1.0, 3.0], [5.0, 5.0], [0.5, 9.5]])
    preds = Predictions.from_dirichlet(["a", "b", "c"], alpha)
    for got, want in (
        (dirichlet_decompose(preds).epistemic, dirichlet_decompose(alpha).epistemic),
        (dirichlet_vacuity(preds), dirichlet_vacuity(alpha)),
    ):
        np.testing.assert_array_equal(got, want)
    plain = Predictions(np.array(["a", "b", "c"]), alpha / alpha.sum(1, keepdims=True))
    for fn in (dirichlet_decompose, dirichlet_vacuity):
        with pytest.raises(InputError, match=r"no Dirichlet concentrations.*from_dirichlet"):
            fn(plain)


@pytest.mark.parametrize(
    ("alpha", "match"),
    [
        ([1.0, 2.0], r"shape \(n, K\) with K >= 2.*got \(2,\)"),
        ([[1.0], [2.0]], r"K >= 2.*got \(2, 1\)"),
        ([[1, 1], [1, 1], [2, 2], [0.0, 3.0]], r"positive Dirichlet.*evidence \+ 1.*<= 0 in row 3"),
        ([[1, 1], [-0.5, 2.0]], r"<= 0 in row 1.*Add 1 to raw evidence"),
        ([[1, 1], [np.nan, 2.0]], r"NaN, infinite or overflowing value in row 1"),
        ([[np.inf, 2.0]], r"NaN, infinite"),
        ([[1e308, 1e308]], r"overflowing value in row 0"),
    ],
)
def test_invalid_alpha(alpha: ArrayLike, match: str) -> None:
    with pytest.raises(InputError, match=match):
        dirichlet_decompose(alpha)
    with pytest.raises(InputError, match=match):
        dirichlet_vacuity(alpha)
