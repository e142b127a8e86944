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
    coverage_difference,
    coverage_report,
    domain_likelihood_ratios,
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
    with pytest.raises(NotCalibratedError, match=r"calibrate\(probabilities, labels, weights\)"):
        WeightedConformalClassifier().predict_sets(pt, ratio(xt))


def sets_cov(sets: np.ndarray, y: np.ndarray) -> float:
    return float(sets[np.arange(y.shape[0]), y].mean())


def test_coverage_difference_matches_newcombe_1998() -> None:
    # Newcombe (1998), Stat Med 17:873-890, Table II example (a), method 10
    est = coverage_difference(56, 70, 48, 80, ci_level=0.95)
    assert est.value == pytest.approx(0.2)
    assert est.low == pytest.approx(0.0524, abs=1e-4)
    assert est.high == pytest.approx(0.3339, abs=1e-4)
    assert est.method == "newcombe-wilson"
    # bounded by [-1, 1] at the edges
    edge = coverage_difference(10, 10, 0, 10)
    assert edge.value == 1.0
    assert edge.high == 1.0
    with pytest.raises(InputError, match="cases on both sides"):
        coverage_difference(0, 0, 5, 10)


def _shifted(
    rng: np.random.Generator, n: int, mu: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # a confident model whose labels turn noisy where x is large
    x = rng.normal(mu, 1.0, n)
    p1 = 1 / (1 + np.exp(-4 * rng.normal(size=n)))
    q = np.where(x < 0.5, p1, 0.3 * p1 + 0.35)
    y = (rng.random(n) < q).astype(int)
    return x, np.column_stack([1 - p1, p1]), y


def test_domain_classifier_recovers_the_gaussian_likelihood_ratio(
    rng: np.random.Generator,
) -> None:
    xc, _, _ = _shifted(rng, 4000, 0.0)
    xt, _, _ = _shifted(rng, 2000, 1.0)
    w_cal, w_target = domain_likelihood_ratios(xc, xt, random_state=0)
    # N(1, 1) / N(0, 1) = exp(x - 1/2): the log ratio is linear in x
    true = np.r_[xc, xt] - 0.5
    got = np.log(np.r_[w_cal, w_target])
    assert np.corrcoef(true, got)[0, 1] > 0.99
    assert np.median(np.abs(got - true)) < 0.1
    # no shift: ratios near 1 and an effective sample size near n
    w0, _ = domain_likelihood_ratios(xc[:2000], xc[2000:], random_state=0)
    assert effective_sample_size(w0) > 0.95 * 2000


def test_weighted_classifier_with_estimated_ratios_restores_coverage(
    rng: np.random.Generator,
) -> None:
    xc, pc, yc = _shifted(rng, 4000, 0.0)
    xt, pt, yt = _shifted(rng, 4000, 1.0)
    w_cal, w_target = domain_likelihood_ratios(xc, xt, random_state=1)
    weighted = WeightedConformalClassifier("lac").calibrate(pc, yc, w_cal)
    assert sets_cov(weighted.predict_sets(pt, w_target), yt) >= 0.9 - 0.015
    assert weighted.effective_sample_size_ < 4000


def test_domain_classifier_errors() -> None:
    x = np.zeros((10, 2))
    with pytest.raises(InputError, match="same features"):
        domain_likelihood_ratios(x, np.zeros((10, 3)))
    with pytest.raises(InputError, match="n_folds must be an integer >= 2"):
        domain_likelihood_ratios(x, x, n_folds=1)
    with pytest.raises(InputError, match="at least n_folds=5 cases"):
        domain_likelihood_ratios(x, x[:3])
    with pytest.raises(InputError, match="NaN"):
        domain_likelihood_ratios(np.full((10, 2), np.nan), x)
    with pytest.raises(InputError, match=r"shape \(n, d\)"):
        domain_likelihood_ratios(np.zeros((0, 2)), x)
    with pytest.raises(InputError, match="l2"):
        domain_likelihood_ratios(x, x, l2=-1.0)
    with pytest.raises(InputError, match="sample sizes"):
        likelihood_ratios_from_domain_probs([0.5], 0, 1)


def test_weighted_errors(rng: np.random.Generator) -> None:
    s = rng.random(20)
    with pytest.raises(InputError, match=r"calibration_weights must have shape \(20,\)"):
        weighted_quantile_threshold(s, np.ones(5), test_weight=1.0)
    with pytest.raises(InputError, match="test_weight must be finite and non-negative"):
        weighted_quantile_threshold(s, np.ones(20), test_weight=-1.0)
    with pytest.raises(InputError, match="sum to 0"):
        weighted_quantile_threshold(s, np.zeros(20), test_weight=1.0)
    with pytest.raises(InputError, match="needs lambda_reg and k_reg"):
        WeightedConformalClassifier("raps")
    with pytest.raises(InputError, match="'aps' and 'raps' only"):
        WeightedConformalClassifier("lac", randomized=True)
    with pytest.raises(InputError, match="confidence_level"):
        WeightedConformalClassifier(confidence_level=1.0)
    p = np.full((20, 2), 0.5)
    y = np.arange(20) % 2
    with pytest.raises(InputError, match=r"weights must be \(20,\) finite non-negative"):
        WeightedConformalClassifier().calibrate(p, y, np.ones(3))
    clf = WeightedConformalClassifier().calibrate(p, y, np.ones(20))
    with pytest.raises(InputError, match="3 classes; calibration had 2"):
        clf.predict_sets(np.full((2, 3), 1 / 3), np.ones(2))
    with pytest.raises(InputError, match=r"weights must have shape \(2,\)"):
        clf.predict_sets(p[:2], np.ones(3))


def test_risk_control_threshold_errors() -> None:
    lam = np.array([0.0, 0.5, 1.0])
    ok = np.zeros((4, 3))
    with pytest.raises(InputError, match=r"G = len\(lambdas\)"):
        risk_control_threshold(ok, lam[:2], target=0.1)
    with pytest.raises(InputError, match="empty"):
        risk_control_threshold(np.zeros((0, 3)), lam, target=0.1)
    with pytest.raises(InputError, match=r"in \[0, 1\]"):
        risk_control_threshold(ok + 2, lam, target=0.1)
    with pytest.raises(InputError, match="strictly increasing"):
        risk_control_threshold(ok, lam[::-1], target=0.1)
    with pytest.raises(InputError, match=r"shape \(n,\)"):
        conformal_risk_control([0.1, 0.2], [1], target=0.1)
    with pytest.raises(InputError, match="NaN"):
        conformal_risk_control([np.nan, 0.2], [1, 1], target=0.1)


def test_risk_control_of_a_generic_bounded_loss_over_splits(rng: np.random.Generator) -> None:
    # a set-valued loss in [0, 1]: share of a case's 3 findings missed by the
    # rule "report findings with score >= 1 - lambda" (non-increasing in lambda)
    scores = rng.random((20_000, 3)) ** 0.5
    lam = np.linspace(0.0, 1.0, 101)
    target = 0.2
    risks = []
    for _ in range(200):
        perm = rng.permutation(scores.shape[0])
        cal, test = scores[perm[:300]], scores[perm[300:2300]]
        losses = (cal[:, :, None] < 1 - lam).mean(axis=1)
        idx, bound = risk_control_threshold(losses, lam, target=target)
        assert bound[idx] <= target
        risks.append((test < 1 - lam[idx]).mean())
    risk = np.asarray(risks)
    assert risk.mean() <= target + 4 * risk.std(ddof=1) / np.sqrt(risk.size)
