from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist
from scipy.stats import ks_2samp, kstest

from medval._errors import InputError
from medval.shift import bbsd_ks, mmd_test


def _mmd_reference(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-cdist(a, b, "sqeuclidean") / (2 * sigma**2))

    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * k(x, y).mean()
    )


def test_mmd_statistic_matches_direct_formula(rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(40, 3)), rng.normal(0.3, 1, size=(30, 3))
    out = mmd_test(x, y, n_permutations=50)
    sigma = float(np.median(pdist(np.vstack([x, y]))))
    assert out["bandwidth"] == pytest.approx(sigma)
    assert out["statistic"] == pytest.approx(_mmd_reference(x, y, sigma))
    fixed = mmd_test(x, y, n_permutations=50, bandwidth=2.0)
    assert fixed["statistic"] == pytest.approx(_mmd_reference(x, y, 2.0))
    lin = mmd_test(x, y, kernel="linear", n_permutations=10)
    xx, yy = x @ x.T, y @ y.T
    direct = (
        (xx.sum() - np.trace(xx)) / (40 * 39) + (yy.sum() - np.trace(yy)) / (30 * 29)
        - 2 * (x @ y.T).mean()
    )  # fmt: skip
    assert lin["statistic"] == pytest.approx(direct)
    assert out["seed"] == 0 and out["n_permutations"] == 50
    assert mmd_test(x, y, n_permutations=50) == out  # reproducible from the seed


def test_mmd_null_p_values_are_uniform() -> None:
    rng = np.random.default_rng(3)
    p = [
        mmd_test(rng.normal(size=(40, 4)), rng.normal(size=(40, 4)), n_permutations=99,
                 random_state=rng)["p_value"]
        for _ in range(200)
    ]  # fmt: skip
    assert kstest(p, "uniform").pvalue > 0.01
    assert np.mean(np.array(p) <= 0.05) <= 0.09


def test_mmd_power_under_mean_shift() -> None:
    rng = np.random.default_rng(4)
    rejections = [
        mmd_test(rng.normal(size=(100, 8)), rng.normal(0.4, 1, size=(100, 8)),
                 n_permutations=200, random_state=rng)["p_value"] <= 0.05
        for _ in range(20)
    ]  # fmt: skip
    assert np.mean(rejections) >= 0.9


def test_mmd_errors(rng: np.random.Generator) -> None:
    x = rng.normal(size=(10, 2))
    with pytest.raises(InputError, match="features"):
        mmd_test(x, rng.normal(size=(10, 3)))
    with pytest.raises(InputError, match="Unknown kernel 'poly'; valid"):
        mmd_test(x, x, kernel="poly")
    with pytest.raises(InputError, match="bandwidth"):
        mmd_test(x, x, bandwidth=-1.0)
    with pytest.raises(InputError, match="n_permutations"):
        mmd_test(x, x, n_permutations=0)
    with pytest.raises(InputError, match="NaN"):
        mmd_test(np.full((3, 2), np.nan), x)
    with pytest.raises(InputError, match=r"shape \(n, d\)"):
        mmd_test(x[:1], x)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_bbsd_matches_scipy_and_detects_shift(rng: np.random.Generator) -> None:
    a = _softmax(rng.normal(size=(300, 3)))
    b = _softmax(rng.normal(size=(300, 3)) + np.array([0.8, 0.0, 0.0]))
    out = bbsd_ks(a, b)
    ref = [ks_2samp(a[:, j], b[:, j]) for j in range(3)]
    assert out["p_values"] == pytest.approx([r.pvalue for r in ref])
    assert out["statistics"] == pytest.approx([r.statistic for r in ref])
    assert out["p_value"] == pytest.approx(min(1.0, 3 * min(r.pvalue for r in ref)))
    assert out["shift_detected"]


def test_bbsd_false_alarm_rate() -> None:
    rng = np.random.default_rng(9)
    alarms = [
        bbsd_ks(_softmax(rng.normal(size=(150, 4))), _softmax(rng.normal(size=(150, 4))))[
            "shift_detected"
        ]
        for _ in range(300)
    ]
    assert np.mean(alarms) <= 0.05 + 0.03


def test_bbsd_errors(rng: np.random.Generator) -> None:
    with pytest.raises(InputError, match="classes"):
        bbsd_ks(rng.random((5, 2)), rng.random((5, 3)))
    with pytest.raises(InputError, match="confidence_level"):
        bbsd_ks(rng.random((5, 2)), rng.random((5, 2)), confidence_level=5)
