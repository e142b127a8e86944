"""DeLong against a direct O(n^2) implementation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from medval._errors import InputError
from medval.stats import auroc_ci, delong_ci, delong_covariance, delong_test


def _psi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def _direct_cov(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """DeLong et al. (1988) eqs. 4-7 with explicit pairwise kernels."""
    v10, v01 = [], []
    for s in scores:
        k = _psi(s[y == 1], s[y == 0])
        v10.append(k.mean(1))
        v01.append(k.mean(0))
    n1, n0 = int(y.sum()), int((1 - y).sum())
    return np.cov(np.array(v10)) / n1 + np.cov(np.array(v01)) / n0


@pytest.fixture
def paired() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    y = rng.integers(0, 2, 250)
    a = np.round(rng.normal(size=250) + 1.0 * y, 1)
    b = np.round(0.6 * a + rng.normal(size=250) * 0.8 + 0.3 * y, 1)
    return y, a, b


def test_covariance_equals_direct(paired: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    y, a, b = paired
    aucs, cov = delong_covariance(y, np.stack([a, b]))
    np.testing.assert_allclose(aucs, [roc_auc_score(y, a), roc_auc_score(y, b)], atol=1e-12)
    np.testing.assert_allclose(cov, _direct_cov(y, np.stack([a, b])), rtol=1e-10)


def test_delong_ci_is_logit_wald(paired: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    y, a, _ = paired
    est = delong_ci(y, a, confidence_level=0.9)
    auc = roc_auc_score(y, a)
    se = np.sqrt(_direct_cov(y, a[None, :]))
    half = norm.ppf(0.95) * float(se) / (auc * (1 - auc))
    assert est.value == pytest.approx(auc)
    assert est.low == pytest.approx(expit(logit(auc) - half))
    assert est.high == pytest.approx(expit(logit(auc) + half))
    assert est.method == "delong-logit" and est.confidence_level == 0.9


def test_delong_test_matches_direct(paired: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    y, a, b = paired
    res = delong_test(y, a, b)
    cov = _direct_cov(y, np.stack([a, b]))
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = roc_auc_score(y, a) - roc_auc_score(y, b)
    assert res.difference.value == pytest.approx(diff)
    assert res.statistic == pytest.approx(diff / se)
    assert res.p_value == pytest.approx(2 * norm.sf(abs(diff / se)))
    assert res.difference.low == pytest.approx(diff - norm.ppf(0.975) * se)


def test_identical_models_have_no_test(paired: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    y, a, _ = paired
    res = delong_test(y, a, a)
    assert res.p_value == 1.0 and res.difference.low is None


def test_perfect_separation_has_reason() -> None:
    y = np.array([0] * 10 + [1] * 10)
    est = delong_ci(y, y + 0.0)
    assert est.value == 1.0 and est.low is None
    assert "variance is zero" in (est.reason or "")


def test_one_class_and_too_few() -> None:
    assert delong_ci(np.ones(12, dtype=int), np.arange(12.0)).value is None
    small = delong_ci(np.array([0, 1, 0, 1, 1]), np.array([0.1, 0.5, 0.3, 0.4, 0.9]))
    assert small.low is None and "too few" in (small.reason or "")
    with pytest.raises(InputError, match="at least 2 positive and 2 negative"):
        delong_covariance(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.3]))


def test_auroc_ci_default_and_clustered(
    paired: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    y, a, _ = paired
    assert auroc_ci(y, a).method == "delong-logit"
    est = auroc_ci(y, a, clusters=np.arange(250) // 2, n_resamples=300, random_state=0)
    assert est.method == "bootstrap-bca-clustered" and est.seed == 0


def test_delong_matches_bootstrap_se_at_large_n() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 4000)
    s = rng.normal(size=4000) + y
    d = delong_ci(y, s)
    from medval.stats import bootstrap_ci

    b = bootstrap_ci("auroc", y, s, method="percentile", n_resamples=2000, random_state=0)
    assert d.low == pytest.approx(b.low, abs=0.003)
    assert d.high == pytest.approx(b.high, abs=0.003)
