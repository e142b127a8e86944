"""Thresholdout (Dwork et al. 2015): mechanism, noise scales, bound, acceptance simulation."""

from __future__ import annotations

import copy
import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from medval._errors import BudgetExhaustedError, InputError, MedvalError
from medval.stats import (
    Thresholdout,
    simulate_adaptive_gating,
    thresholdout_bound,
    thresholdout_parameters,
)

SIGMA = 0.01


def test_reference_answer_when_close_and_no_budget_spent() -> None:
    mech = Thresholdout(0.2, 0.001, 3, random_state=0)
    for i in range(50):
        a = mech.answer(0.71, 0.70)
        assert a.value == 0.70
        assert not a.overfitting_detected
        assert a.budget_left == 3
        assert a.n_queries == i + 1


def test_noisy_holdout_answer_when_far_and_budget_decrements() -> None:
    mech = Thresholdout(0.05, 0.001, 3, random_state=1)
    answers = [mech.answer(0.5, 0.9) for _ in range(3)]
    assert [a.overfitting_detected for a in answers] == [True] * 3
    assert [a.budget_left for a in answers] == [2, 1, 0]
    for a in answers:
        assert a.value != 0.5 and abs(a.value - 0.5) < 0.02  # holdout + Lap(0.001)
    with pytest.raises(BudgetExhaustedError, match=r"spent its budget of 3 .* after 3 queries"):
        mech.answer(0.5, 0.5)


def test_exhausted_budget_is_a_medval_runtime_error() -> None:
    mech = Thresholdout(0.0, 0.001, 1, random_state=2)
    mech.answer(0.0, 1.0)
    with pytest.raises(RuntimeError, match="fresh test set"):
        mech.answer(0.4, 0.4)
    assert issubclass(BudgetExhaustedError, MedvalError)


def test_cached_key_returns_first_answer_without_spending() -> None:
    mech = Thresholdout(0.05, 0.001, 2, random_state=3)
    first = mech.answer(0.5, 0.9, key="model-a/auroc")
    again = mech.answer(0.5, 0.9, key="model-a/auroc")
    assert again.value == first.value and again.budget_left == 1 and again.n_queries == 1
    with pytest.raises(InputError, match=r"answered before .* use a new key"):
        mech.answer(0.6, 0.9, key="model-a/auroc")


def test_state_round_trip_gives_identical_answers() -> None:
    g = np.random.default_rng(5)
    a = Thresholdout(0.03, 0.01, 500, random_state=g)
    for h, r in [(0.6, 0.62), (0.5, 0.7), (0.55, 0.56)]:
        a.answer(h, r, key=f"{h}-{r}")
    state = json.loads(json.dumps(a.to_dict()))
    b = Thresholdout.from_dict(state, random_state=copy.deepcopy(g))
    assert b.to_dict() == a.to_dict()
    queries = np.random.default_rng(6).uniform(0.4, 0.8, (200, 2))
    for h, r in queries:
        assert a.answer(h, r) == b.answer(h, r)
    assert b.answer(0.5, 0.7, key="0.5-0.7") == a.answer(0.5, 0.7, key="0.5-0.7")


def test_from_dict_rejects_bad_states() -> None:
    state = Thresholdout(0.03, 0.01, 5, random_state=0).to_dict()
    with pytest.raises(InputError, match="must have the keys"):
        Thresholdout.from_dict({**state, "extra": 1})
    with pytest.raises(InputError, match="exceeds the budget"):
        Thresholdout.from_dict({**state, "budget_left": 6})
    with pytest.raises(InputError, match="must be 'thresholdout'"):
        Thresholdout.from_dict({**state, "method": "ladder"})
    with pytest.raises(InputError, match="threshold_offset"):
        Thresholdout.from_dict({**state, "threshold_offset": math.nan})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": -0.1, "noise_scale": 0.01, "budget": 5}, "threshold must be"),
        ({"threshold": 0.1, "noise_scale": 0.0, "budget": 5}, "noise_scale must be"),
        ({"threshold": 0.1, "noise_scale": 0.01, "budget": 0}, r"budget must be an int >= 1"),
        ({"threshold": 0.1, "noise_scale": 0.01, "budget": 2.5}, r"budget must be an int"),
    ],
)
def test_constructor_rejects_bad_parameters(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        Thresholdout(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [1.2, -0.1, math.nan, "x"])
def test_answer_rejects_values_outside_unit_interval(value: object) -> None:
    mech = Thresholdout(0.1, 0.01, 5, random_state=0)
    with pytest.raises(InputError, match=r"holdout_value must be .*\[0, 1\]"):
        mech.answer(value, 0.5)  # type: ignore[arg-type]


def test_threshold_noise_is_laplace_2sigma() -> None:
    offsets = [Thresholdout(0.0, SIGMA, 1, random_state=s).threshold_offset_ for s in range(4000)]
    assert stats.kstest(offsets, stats.laplace(scale=2 * SIGMA).cdf).pvalue > 0.01
    assert stats.kstest(offsets, stats.laplace(scale=SIGMA).cdf).pvalue < 1e-6


def test_answer_noise_is_laplace_sigma() -> None:
    mech = Thresholdout(0.0, SIGMA, 5000, random_state=8)
    xi = [mech.answer(1.0, 0.0).value - 1.0 for _ in range(4000)]  # always detected
    assert stats.kstest(xi, stats.laplace(scale=SIGMA).cdf).pvalue > 0.01
    assert stats.kstest(xi, stats.laplace(scale=2 * SIGMA).cdf).pvalue < 1e-6


def test_comparison_noise_is_laplace_4sigma() -> None:
    # Detection happens iff eta < gap - T - gamma; with gamma read from the state,
    # the detection rate must match the Lap(4 sigma) CDF (binomial z-test).
    gap, n = 0.03, 6000
    gammas, hits = np.empty(n), np.empty(n, dtype=bool)
    for s in range(n):
        mech = Thresholdout(0.02, SIGMA, 1, random_state=10_000 + s)
        gammas[s] = mech.threshold_offset_
        hits[s] = mech.answer(0.5 + gap, 0.5).overfitting_detected
    for scale, agrees in ((4 * SIGMA, True), (SIGMA, False), (8 * SIGMA, False)):
        p = stats.laplace(scale=scale).cdf(gap - 0.02 - gammas)
        z = (hits.sum() - p.sum()) / math.sqrt(np.sum(p * (1 - p)))
        assert (abs(z) < 4) == agrees, (scale, z)


def _by_hand(n: int, B: int, m: int, cl: float, T: float, sigma: float) -> float:
    beta = 1 - cl
    t = math.log(2 * (m + 2 * B + 1) / beta)
    eps = max(2 * B / (sigma * n), math.sqrt(math.log(12 * m / beta) / n))
    return T + 6 * sigma * t + 2 * eps


def test_bound_matches_hand_computation() -> None:
    # n = 10^6, B = 10, m = 1000, 95%, the paper's T = 4/sqrt(n), sigma = 1/sqrt(n):
    # t = ln(2 * 1021 / 0.05) = 10.617, eps = max(0.02, 0.00353) = 0.02.
    got = thresholdout_bound(
        10**6, budget=10, n_queries=1000, confidence_level=0.95, threshold=0.004, noise_scale=0.001
    )
    assert got == pytest.approx(0.004 + 6 * 0.001 * math.log(40840) + 0.04, rel=1e-12)
    assert got == pytest.approx(_by_hand(10**6, 10, 1000, 0.95, 0.004, 0.001), rel=1e-12)
    T, sigma = thresholdout_parameters(10**6, budget=10, n_queries=1000)
    tau = thresholdout_bound(10**6, budget=10, n_queries=1000)
    assert pytest.approx(0.75 * tau, rel=1e-12) == T  # T = 3 tau / 4 (Theorem 25)
    assert tau == pytest.approx(_by_hand(10**6, 10, 1000, 0.95, T, sigma), rel=1e-12)
    # sigma minimises the noise part: nudging it either way makes the bound worse
    for f in (0.9, 1.1):
        assert _by_hand(10**6, 10, 1000, 0.95, 0, sigma * f) > _by_hand(
            10**6, 10, 1000, 0.95, 0, sigma
        )


def test_bound_is_monotone() -> None:
    taus_n = [thresholdout_bound(n, budget=20, n_queries=500) for n in (10**4, 10**5, 10**6, 10**7)]
    assert all(a > b for a, b in itertools.pairwise(taus_n))
    taus_b = [thresholdout_bound(10**6, budget=b, n_queries=500) for b in (1, 10, 100, 1000)]
    assert all(a < b for a, b in itertools.pairwise(taus_b))
    taus_m = [thresholdout_bound(10**6, budget=10, n_queries=m) for m in (10, 10**3, 10**5)]
    assert all(a < b for a, b in itertools.pairwise(taus_m))


def test_bound_rejects_bad_arguments() -> None:
    with pytest.raises(InputError, match="or neither"):
        thresholdout_bound(1000, budget=5, n_queries=10, threshold=0.04)
    with pytest.raises(InputError, match=r"confidence_level must be in \(0, 1\)"):
        thresholdout_bound(1000, budget=5, n_queries=10, confidence_level=0.05 * 20)
    with pytest.raises(InputError, match=r"n_queries must be an int >= 1"):
        thresholdout_parameters(1000, budget=5, n_queries=0)


def test_simulation_rejects_bad_checkpoints() -> None:
    with pytest.raises(InputError, match="checkpoints must be candidate sizes"):
        simulate_adaptive_gating(100, 50, checkpoints=(10, 60), n_repeats=2, random_state=0)


def test_acceptance_plain_holdout_drifts_thresholdout_does_not() -> None:
    """Issue 19: adaptive tuning inflates the plain holdout, not the reusable one."""
    res = simulate_adaptive_gating(
        1000, 1000, checkpoints=(10, 20, 50, 100, 150), n_repeats=20, random_state=2015
    )
    s = res.summary()
    drift = s["plain_mean"] - res.true_value
    k50 = list(res.checkpoints).index(50)
    assert drift[k50] > 0.05 and drift[k50] > 3 * s["plain_se"][k50]
    assert np.all(drift > 0.02) and np.all(drift > 3 * s["plain_se"])
    # Thresholdout: no answer refused, mean within 0.015 of the truth once the
    # candidate's training accuracy is far above the test set (k >= 50) ...
    assert not np.isnan(res.thresholdout).any()
    thr_err = s["thresholdout_mean"] - res.true_value
    assert np.all(np.abs(thr_err[k50:]) < 0.015)
    assert np.all(thr_err[k50:] < drift[k50:] / 4)
    # ... and every answer within T plus noise and sampling allowance of the truth.
    T, sigma, n = res.setting["threshold"], res.setting["noise_scale"], res.setting["n"]
    assert T is not None and sigma is not None and n is not None
    allowance = T + 16 * sigma + 4 * 0.5 / math.sqrt(n)
    assert np.all(np.abs(res.thresholdout - res.true_value) < allowance)
    assert np.all(res.detections < res.setting["budget"])
