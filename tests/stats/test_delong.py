"""DeLong against a direct O(n^2) implementation and against R's pROC."""

from __future__ import annotations

import csv
from pathlib import Path

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


# --- R pROC on its aSAH data (tests/data/aSAH.csv) ---------------------------
# Expected values are pROC's own, printed to 15 digits in xrobin/pROC
# tests/testthat/: test-ci.auc.R (ci.auc of ndka), test-var.R, test-cov.R,
# test-roc.test.R and helper-deLongPlacementsCpp-expected.R (theta = AUC).

ASAH = Path(__file__).resolve().parents[1] / "data" / "aSAH.csv"
PROC_AUC = {"s100b": 0.731368563685637, "wfns": 0.823678861788618, "ndka": 0.611957994579946}
PROC_VAR = {"s100b": 0.00266868245717244, "wfns": 0.00146991470882363, "ndka": 0.0031908105493913}
PROC_COV = {
    ("wfns", "ndka"): -0.000532967856762438,
    ("ndka", "s100b"): -0.000756164938056579,
    ("s100b", "wfns"): 0.00119615567376754,
}
PROC_CI_AUC_NDKA = (0.501244999271703, 0.611957994579946, 0.722670989888189)
# roc.test(r1, r2) (paired DeLong): Z, p, conf.int of AUC1 - AUC2
PROC_ROC_TEST = {
    ("wfns", "s100b"): (
        2.20898359144091,
        0.0271757822291882,
        0.0104061769564846,
        0.174214419249478,
    ),
    ("wfns", "ndka"): (
        2.79777591868904,
        0.00514557970691098,
        0.0634011709339876,
        0.3600405634833566,
    ),
    ("ndka", "s100b"): (
        -1.39077002573558,
        0.164295175223054,
        -0.2876917446341914,
        0.0488706064228094,
    ),
}
# medval's logit-scale interval before the scale option existed: it must not move.
LOGIT_BEFORE = {
    "s100b": (0.6192169389927088, 0.8200857499134733),
    "wfns": (0.735764096647305, 0.886841844332612),
    "ndka": (0.4973305656210147, 0.715404233940336),
}


@pytest.fixture(scope="module")
def asah() -> dict[str, np.ndarray]:
    with ASAH.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    data = {k: np.array([float(r[k]) for r in rows]) for k in ("wfns", "s100b", "ndka")}
    data["y"] = np.array([{"Good": 0, "Poor": 1}[r["outcome"]] for r in rows])
    return data


def _loop_variance(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """AUC and DeLong variance from placement values, with plain loops only."""
    cases = [float(v) for v, c in zip(s, y, strict=True) if c == 1]
    controls = [float(v) for v, c in zip(s, y, strict=True) if c == 0]
    m, n = len(cases), len(controls)

    def psi(x: float, z: float) -> float:
        return 1.0 if x > z else 0.5 if x == z else 0.0

    v10 = [sum(psi(x, z) for z in controls) / n for x in cases]
    v01 = [sum(psi(x, z) for x in cases) / m for z in controls]
    auc = sum(v10) / m
    s10 = sum((v - auc) ** 2 for v in v10) / (m - 1)
    s01 = sum((v - auc) ** 2 for v in v01) / (n - 1)
    return auc, s10 / m + s01 / n


def test_asah_fixture_is_procs_data(asah: dict[str, np.ndarray]) -> None:
    assert asah["y"].shape == (113,) and int(asah["y"].sum()) == 41
    names = ("s100b", "wfns", "ndka")
    aucs, cov = delong_covariance(asah["y"], np.stack([asah[k] for k in names]))
    np.testing.assert_allclose(aucs, [PROC_AUC[k] for k in names], rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.diag(cov), [PROC_VAR[k] for k in names], rtol=1e-12)
    for (a, b), expected in PROC_COV.items():
        assert cov[names.index(a), names.index(b)] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", ["s100b", "wfns", "ndka"])
def test_variance_equals_plain_loops(asah: dict[str, np.ndarray], name: str) -> None:
    auc, var = _loop_variance(asah["y"], asah[name])
    aucs, cov = delong_covariance(asah["y"], asah[name])
    assert aucs[0] == pytest.approx(auc, abs=1e-12)
    assert cov[0, 0] == pytest.approx(var, abs=1e-12, rel=1e-12)


def test_auc_scale_reproduces_proc_ci_auc(asah: dict[str, np.ndarray]) -> None:
    est = delong_ci(asah["y"], asah["ndka"], scale="auc")
    np.testing.assert_allclose([est.low, est.value, est.high], PROC_CI_AUC_NDKA, rtol=0, atol=1e-12)
    assert est.method == "delong-wald" and est.confidence_level == 0.95


@pytest.mark.parametrize("name", ["s100b", "wfns", "ndka"])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_auc_scale_is_procs_formula(asah: dict[str, np.ndarray], name: str, level: float) -> None:
    # pROC's ci_auc_delong: qnorm(c(a/2, 1 - a/2), mean = AUC, sd = sqrt(var)),
    # fed with pROC's own AUC and variance and, independently, with plain loops.
    q = norm.ppf(0.5 + level / 2)
    expected = (
        PROC_AUC[name] - q * PROC_VAR[name] ** 0.5,
        PROC_AUC[name] + q * PROC_VAR[name] ** 0.5,
    )
    est = delong_ci(asah["y"], asah[name], confidence_level=level, scale="auc")
    np.testing.assert_allclose([est.low, est.high], expected, rtol=0, atol=1e-12)
    auc, var = _loop_variance(asah["y"], asah[name])
    np.testing.assert_allclose(
        [est.low, est.high], [auc - q * var**0.5, auc + q * var**0.5], atol=1e-12
    )


def test_auc_scale_matches_published_s100b(asah: dict[str, np.ndarray]) -> None:
    # roc(aSAH$outcome, aSAH$s100b, ci = TRUE): "AUC 0.7314, 95% CI: 0.6301-0.8326 (DeLong)"
    est = delong_ci(asah["y"], asah["s100b"], scale="auc")
    np.testing.assert_allclose([est.value, est.low, est.high], [0.7314, 0.6301, 0.8326], atol=5e-5)


@pytest.mark.parametrize("pair", list(PROC_ROC_TEST))
def test_delong_test_reproduces_proc_roc_test(
    asah: dict[str, np.ndarray], pair: tuple[str, str]
) -> None:
    z, p, low, high = PROC_ROC_TEST[pair]
    res = delong_test(asah["y"], asah[pair[0]], asah[pair[1]])
    assert res.statistic == pytest.approx(z, rel=1e-12)
    assert res.p_value == pytest.approx(p, rel=1e-12)
    assert res.difference.low == pytest.approx(low, abs=1e-14)
    assert res.difference.high == pytest.approx(high, abs=1e-14)


@pytest.mark.parametrize("name", ["s100b", "wfns", "ndka"])
def test_logit_default_is_unchanged(asah: dict[str, np.ndarray], name: str) -> None:
    default = delong_ci(asah["y"], asah[name])
    assert default == delong_ci(asah["y"], asah[name], scale="logit")
    assert default == auroc_ci(asah["y"], asah[name])
    assert default.method == "delong-logit"
    np.testing.assert_allclose([default.low, default.high], LOGIT_BEFORE[name], rtol=0, atol=1e-14)


def test_auc_scale_is_symmetric_logit_is_not(asah: dict[str, np.ndarray]) -> None:
    wald = delong_ci(asah["y"], asah["s100b"], scale="auc")
    assert wald.value is not None and wald.low is not None and wald.high is not None
    assert wald.high - wald.value == pytest.approx(wald.value - wald.low, abs=1e-15)
    lgt = delong_ci(asah["y"], asah["s100b"])
    assert lgt.value is not None and lgt.low is not None and lgt.high is not None
    # pulled towards 0.5: longer below than above for an AUROC above 0.5
    assert (lgt.value - lgt.low) - (lgt.high - lgt.value) > 0.01


def test_scales_agree_to_first_order_near_half(rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, 20000)
    s = rng.normal(size=20000) + 0.05 * y
    wald = delong_ci(y, s, scale="auc")
    lgt = delong_ci(y, s)
    assert wald.value is not None and wald.high is not None and wald.low is not None
    assert abs(wald.value - 0.5) < 0.03
    half = wald.high - wald.value
    # the delta method is exact to first order: bounds differ by O(half**2)
    assert lgt.low == pytest.approx(wald.low, abs=half**2)
    assert lgt.high == pytest.approx(wald.high, abs=half**2)


def test_auc_scale_clips_to_unit_interval_like_proc() -> None:
    y = np.array([0] * 10 + [1] * 10)
    s = np.r_[np.arange(10.0), 3.5, np.arange(10.0, 19.0)]
    aucs, cov = delong_covariance(y, s)
    assert aucs[0] + norm.ppf(0.975) * np.sqrt(cov[0, 0]) > 1.0  # would over-shoot
    top = delong_ci(y, s, scale="auc")
    assert top.value == pytest.approx(0.94) and top.high == 1.0
    assert top.low == pytest.approx(0.94 - norm.ppf(0.975) * np.sqrt(cov[0, 0]))
    bottom = delong_ci(y, -s, scale="auc")
    assert bottom.value == pytest.approx(0.06) and bottom.low == 0.0
    assert bottom.high == pytest.approx(0.06 + norm.ppf(0.975) * np.sqrt(cov[0, 0]))


def test_auc_scale_zero_variance_has_reason() -> None:
    y = np.array([0] * 10 + [1] * 10)
    est = delong_ci(y, y + 0.0, scale="auc")
    assert est.value == 1.0 and est.low is None and est.method == "delong-wald"
    assert "variance is zero" in (est.reason or "")


def test_auroc_ci_threads_scale(paired: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    y, a, _ = paired
    est = auroc_ci(y, a, scale="auc", confidence_level=0.9)
    assert est == delong_ci(y, a, scale="auc", confidence_level=0.9)
    assert est.method == "delong-wald"
    se = float(np.sqrt(_direct_cov(y, a[None, :])))
    auc = roc_auc_score(y, a)
    assert est.low == pytest.approx(auc - norm.ppf(0.95) * se, abs=1e-12)
    assert est.high == pytest.approx(auc + norm.ppf(0.95) * se, abs=1e-12)


@pytest.mark.parametrize("bad", ["wald", "AUC", "", None, 1])
def test_unknown_scale_lists_valid_ones(
    paired: tuple[np.ndarray, np.ndarray, np.ndarray], bad: object
) -> None:
    y, a, _ = paired
    with pytest.raises(InputError, match=r"scale .*valid: logit, auc"):
        delong_ci(y, a, scale=bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"scale .*valid: logit, auc"):
        auroc_ci(y, a, scale=bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"scale .*valid: logit, auc"):
        auroc_ci(y, a, clusters=np.arange(250) // 2, scale=bad)  # type: ignore[arg-type]
