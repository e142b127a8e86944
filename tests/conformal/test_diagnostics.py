"""coverage_report, Clopper-Pearson, patient disjointness, risk control, weighted conformal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from medval._errors import InputError, NotCalibratedError
from medval._types import Estimate
from medval.conformal import (
    ConformalClassifier,
    WeightedConformalClassifier,
    check_disjoint_patients,
    clopper_pearson,
    conformal_risk_control,
    coverage_report,
    effective_sample_size,
    likelihood_ratios_from_domain_probs,
    risk_control_threshold,
    weighted_quantile_threshold,
)


def test_clopper_pearson_matches_scipy() -> None:
    est = clopper_pearson(87, 100, ci_level=0.95)
    ref = stats.binomtest(87, 100).proportion_ci(confidence_level=0.95, method="exact")
    assert est.value == pytest.approx(0.87)
    assert est.low == pytest.approx(ref.low, rel=1e-9)
    assert est.high == pytest.approx(ref.high, rel=1e-9)
    assert est.method == "clopper-pearson"
    assert clopper_pearson(0, 10).low == 0.0
    assert clopper_pearson(10, 10).high == 1.0
    assert clopper_pearson(0, 0).value is None


def test_coverage_report_counts_and_flags() -> None:
    # 4 classes; class 3 is never covered (its 50 sets are empty)
    y = np.repeat(np.arange(4), 50)
    sets = np.zeros((200, 4), dtype=bool)
    sets[np.arange(200), y] = y != 3
    sets[:20, :] = True  # 20 full sets (class 0)
    g = np.array(["site-a", "site-b"] * 100)
    rep = coverage_report(sets, y, groups=g, confidence_level=0.9)
    assert isinstance(rep["coverage"], Estimate)
    assert rep["coverage"].value == pytest.approx(150 / 200)
    assert rep["n"] == 200
    assert rep["empty_rate"] == pytest.approx(50 / 200)
    assert rep["singleton_rate"] == pytest.approx(130 / 200)
    assert rep["mean_set_size"] == pytest.approx((20 * 4 + 130) / 200)
    assert rep["per_class"][3]["flag"]
    assert rep["per_class"][3]["direction"] == "under"
    # the CI of a fully covered class (50/50) lies above 0.9: flagged "over"
    assert rep["flagged_classes"] == [0, 1, 2, 3]
    assert rep["per_class"][0]["direction"] == "over"
    assert rep["per_class"][0]["coverage"].value == 1.0
    assert set(rep["per_group"]) == {"site-a", "site-b"}
    assert rep["by_set_size"][4]["coverage"].value == 1.0
    assert rep["by_set_size"][0]["coverage"].value == 0.0


def test_coverage_report_errors() -> None:
    with pytest.raises(InputError, match="boolean"):
        coverage_report(np.zeros((3, 2)), np.zeros(3, dtype=int))
    with pytest.raises(InputError, match=r"0\.\.1"):
        coverage_report(np.zeros((3, 2), dtype=bool), np.array([0, 1, 2]))


def test_check_disjoint_patients() -> None:
    check_disjoint_patients(["p1", "p2"], ["p3"])
    with pytest.raises(InputError, match=r"2 patient\(s\).*'p2'"):
        check_disjoint_patients(["p1", "p2", "p4"], ["p2", "p3", "p4"])


def test_risk_control_closed_form_matches_grid_rule(rng: np.random.Generator) -> None:
    s = rng.random(300)
    y = (rng.random(300) < 0.4).astype(int)
    res = conformal_risk_control(s, y, target=0.1)
    pos = s[y == 1]
    grid = np.sort(np.concatenate([[0.0], pos, [np.inf]]))
    # lambda indexes "1 - threshold": losses non-increasing along -grid
    lam = -grid[::-1]
    losses = (pos[:, None] < -lam[None, :]).astype(float)
    idx, bound = risk_control_threshold(losses, lam, target=0.1)
    assert res.threshold_ == pytest.approx(-lam[idx])
    assert res.risk_bound <= 0.1
    assert res.feasible
    assert res.calibration_fnr == pytest.approx(np.mean(pos < res.threshold_))
    assert bound[idx] <= 0.1


def test_risk_control_errors_and_infeasible() -> None:
    with pytest.raises(InputError, match="no positive"):
        conformal_risk_control([0.1, 0.2], [0, 0], target=0.1)
    with pytest.raises(InputError, match=r"0 \(negative\) or 1"):
        conformal_risk_control([0.1, 0.2], [0, 2], target=0.1)
    with pytest.raises(InputError, match="target"):
        conformal_risk_control([0.1], [1], target=1.5)
    res = conformal_risk_control([0.3, 0.9], [1, 1], target=0.1)
    assert not res.feasible
    assert res.threshold_ == 0.0


def test_weighted_quantile_with_equal_weights_is_split_conformal(rng: np.random.Generator) -> None:
    s = rng.random(199)
    t, info = weighted_quantile_threshold(s, np.ones(199), test_weight=1.0, confidence_level=0.9)
    assert t[0] == np.sort(s)[179]  # ceil(200 * 0.9) = 180th smallest
    assert info.effective_sample_size == pytest.approx(199)
    assert not info.small_ess
    # heavy weights on few cases shrink the ESS and raise the flag
    w = np.ones(199)
    w[:3] = 1000.0
    assert effective_sample_size(w) < 5
    assert weighted_quantile_threshold(s, w, test_weight=1.0)[1].small_ess


def test_likelihood_ratios_from_domain_probs() -> None:
    w = likelihood_ratios_from_domain_probs([0.5, 0.8], n_calibration=100, n_target=50)
    np.testing.assert_allclose(w, [2.0, 8.0])
    with pytest.raises(InputError, match="probabilities"):
        likelihood_ratios_from_domain_probs([1.5], 1, 1)


def test_weighted_classifier_restores_coverage_under_shift(rng: np.random.Generator) -> None:
    # covariate x ~ N(0,1) at calibration, N(1,1) in the target; the model is
    # confident everywhere but its labels turn noisy where x is large
    def draw(n: int, mu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = rng.normal(mu, 1.0, n)
        p1 = 1 / (1 + np.exp(-4 * rng.normal(size=n)))
        q = np.where(x < 0.5, p1, 0.3 * p1 + 0.35)
        y = (rng.random(n) < q).astype(int)
        return x, np.column_stack([1 - p1, p1]), y

    xc, pc, yc = draw(4000, 0.0)
    xt, pt, yt = draw(4000, 1.0)
    ratio = lambda x: np.exp(x - 0.5)  # noqa: E731  N(1,1)/N(0,1)
    plain = ConformalClassifier("lac").calibrate(pc, yc).predict_sets(pt)
    weighted = WeightedConformalClassifier("lac").calibrate(pc, yc, ratio(xc))
    sets = weighted.predict_sets(pt, ratio(xt))
    cov_plain = sets_cov(plain, yt)
    cov_w = sets_cov(sets, yt)
    assert cov_w >= 0.9 - 0.015
    assert cov_plain < 0.9 - 0.02  # unweighted sets under-cover the shifted target
    assert weighted.effective_sample_size_ < 4000
    with pytest.raises(NotCalibratedError):
        WeightedConformalClassifier().predict_sets(pt, ratio(xt))


def sets_cov(sets: np.ndarray, y: np.ndarray) -> float:
    return float(sets[np.arange(y.shape[0]), y].mean())
