"""Holm and Benjamini-Hochberg adjusted p-values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from medval._errors import InputError
from medval.stats import benjamini_hochberg, holm


def _holm_loop(p: np.ndarray) -> np.ndarray:
    m = len(p)
    order = np.argsort(p)
    out = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bh_equals_scipy(seed: int) -> None:
    p = np.random.default_rng(seed).random(40) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p), rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holm_equals_loop(seed: int) -> None:
    p = np.random.default_rng(seed).random(25) ** 3
    np.testing.assert_allclose(holm(p), _holm_loop(p), rtol=1e-12)


def test_known_values() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])


def test_rejects_bad_p_values() -> None:
    with pytest.raises(InputError, match=r"finite numbers in \[0, 1\]"):
        holm([0.1, np.nan])
    with pytest.raises(InputError, match="must be 1-D"):
        benjamini_hochberg([[0.1]])
