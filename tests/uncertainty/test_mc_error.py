"""Monte Carlo error: the jackknife SE against repeated independent draws of T samples.

Each case's samples come from a known Dirichlet, so the measures' T -> infinity
values are exact (:func:`dirichlet_decompose`) and the sampling spread of
the finite-T values can be measured by drawing T samples many times over.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy

from medval import InputError
from medval.uncertainty import (
    decompose,
    dirichlet_decompose,
    mc_error,
    mc_standard_errors,
)

PARTS = ("total", "aleatoric", "epistemic")
NICE = {m * 10**e for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8) for e in range(5)}


def _alpha(rng: np.random.Generator, n: int = 80, k: int = 3) -> np.ndarray:
    """Per-case Dirichlet concentrations: varied means, from diffuse (3) to tight (60)."""
    logits = rng.normal(size=(n, k)) * 1.5
    mean = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    strength = np.exp(rng.uniform(np.log(3.0), np.log(60.0), n))
    return mean * strength[:, None] + 0.05


def _draw(rng: np.random.Generator, alpha: np.ndarray, t: int) -> np.ndarray:
    """T independent samples per case, shape (T, n, K)."""
    g = rng.standard_gamma(np.broadcast_to(alpha, (t, *alpha.shape)))
    return g / g.sum(axis=-1, keepdims=True)


def _repeat(
    rng: np.random.Generator, alpha: np.ndarray, t: int, repeats: int, measure: str = "entropy"
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per repeat: the measures, their estimated SE, and the estimated SE of the case mean."""
    values: dict[str, list[np.ndarray]] = {p: [] for p in PARTS}
    ses: dict[str, list[np.ndarray]] = {p: [] for p in PARTS}
    mean_ses: dict[str, list[float]] = {p: [] for p in PARTS}
    for _ in range(repeats):
        mc = _draw(rng, alpha, t)
        d, e = decompose(mc, measure=measure), mc_standard_errors(mc, measure=measure)
        for p in PARTS:
            values[p].append(getattr(d, p))
            ses[p].append(e.se[p])
            mean_ses[p].append(e.mean_se[p])
    return (
        {p: np.array(v) for p, v in values.items()},
        {p: np.array(v) for p, v in ses.items()},
        {p: np.array(v) for p, v in mean_ses.items()},
    )


@pytest.mark.parametrize("measure", ["entropy", "variance"])
@pytest.mark.parametrize("t", [10, 30])
def test_estimated_se_matches_the_spread_over_repeated_draws(
    rng: np.random.Generator, measure: str, t: int
) -> None:
    alpha = _alpha(rng)
    values, ses, mean_ses = _repeat(rng, alpha, t, repeats=300, measure=measure)
    for p in PARTS:
        empirical = values[p].std(axis=0, ddof=1)
        estimated = np.sqrt(np.mean(ses[p] ** 2, axis=0))
        ratio = estimated / empirical
        # Per case: the jackknife is right on typical cases and errs on the large side
        # (Efron-Stein), a little more for the mutual information at T = 10.
        assert 0.93 < np.median(ratio) < 1.12, (p, np.median(ratio))
        assert np.quantile(ratio, 0.1) > 0.85 and np.quantile(ratio, 0.9) < 1.25, p
        # The mean over the cases, what the report shows.
        mean_ratio = np.sqrt(np.mean(mean_ses[p] ** 2)) / values[p].mean(axis=1).std(ddof=1)
        assert 0.85 < mean_ratio < 1.2, (p, mean_ratio)


def test_aleatoric_se_is_the_standard_error_of_a_mean(rng: np.random.Generator) -> None:
    mc = _draw(rng, _alpha(rng, n=30), 12)
    per_sample = entropy(mc, axis=2)  # (T, n), scipy's entropy in nats
    expected = per_sample.std(axis=0, ddof=1) / np.sqrt(12)
    e = mc_standard_errors(mc)
    np.testing.assert_allclose(e.se["aleatoric"], expected, rtol=1e-10)
    assert np.all(e.bias["aleatoric"] == 0.0) and e.mean_bias["aleatoric"] == 0.0


def test_bias_estimate_matches_the_plug_in_bias(rng: np.random.Generator) -> None:
    alpha = _alpha(rng)
    truth = dirichlet_decompose(alpha)
    t, repeats = 8, 400
    totals, biases = [], []
    for _ in range(repeats):
        mc = _draw(rng, alpha, t)
        totals.append(decompose(mc).total)
        biases.append(mc_standard_errors(mc).bias["total"])
    empirical = np.mean(totals, axis=0) - truth.total  # (n,)
    estimated = np.mean(biases, axis=0)
    # The entropy of the mean is biased low (Jensen); clearly so at T = 8.
    assert empirical.mean() < -5 * empirical.std() / np.sqrt(empirical.size)
    assert estimated.mean() == pytest.approx(empirical.mean(), rel=0.1)
    # Bias-corrected totals sit closer to the truth than the plug-in ones.
    corrected = np.mean(np.array(totals) - np.array(biases), axis=0) - truth.total
    assert np.abs(corrected).mean() < 0.5 * np.abs(empirical).mean()


def test_se_shrinks_as_one_over_sqrt_t(rng: np.random.Generator) -> None:
    alpha = _alpha(rng, n=400)
    small = mc_standard_errors(_draw(rng, alpha, 10))
    large = mc_standard_errors(_draw(rng, alpha, 40))
    for p in PARTS:
        ratio = np.sqrt(np.mean(small.se[p] ** 2)) / np.sqrt(np.mean(large.se[p] ** 2))
        assert ratio == pytest.approx(2.0, rel=0.12), p


def test_mean_se_follows_samples_shared_by_all_cases(rng: np.random.Generator) -> None:
    """Ensemble-like samples (one shift per t for every case) move the case mean together."""
    n, t = 200, 20
    base = rng.normal(size=(n, 2)) * 1.5

    def draw() -> np.ndarray:
        z = base[None] + rng.normal(size=(t, 1, 2)) * 0.4 + rng.normal(size=(t, n, 2)) * 0.2
        return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)

    means, estimated, independent = [], [], []
    for _ in range(300):
        mc = draw()
        e = mc_standard_errors(mc)
        means.append(decompose(mc).total.mean())
        estimated.append(e.mean_se["total"])
        independent.append(np.sqrt(np.sum(e.se["total"] ** 2)) / n)
    empirical = np.std(means, ddof=1)
    # The jackknife errs on the large side for this non-linear mean (Efron-Stein).
    assert 0.92 < np.sqrt(np.mean(np.square(estimated))) / empirical < 1.2
    # Treating the cases as independent would understate it several times over.
    assert np.sqrt(np.mean(np.square(independent))) < 0.5 * empirical


def _empirical_relative_error(
    rng: np.random.Generator, alpha: np.ndarray, t: int, repeats: int
) -> dict[str, float]:
    """rms over cases of the measure's SD across repeats / SD of its exact values."""
    values, _, _ = _repeat(rng, alpha, t, repeats)
    truth = dirichlet_decompose(alpha)
    return {
        p: float(np.sqrt(np.mean(values[p].var(axis=0, ddof=1))) / getattr(truth, p).std(ddof=1))
        for p in PARTS
    }


def test_the_recommended_t_reaches_the_tolerance(rng: np.random.Generator) -> None:
    alpha, t, tolerance = _alpha(rng, n=150), 10, 0.25
    out = mc_error(_draw(rng, alpha, t), tolerance=tolerance)
    recommended = out["recommended_samples"]
    assert out["too_small"] and recommended > t
    assert out["limiting_measure"] == "epistemic"
    before = _empirical_relative_error(rng, alpha, t, repeats=100)
    after = _empirical_relative_error(rng, alpha, recommended, repeats=100)
    assert before["epistemic"] > tolerance
    assert max(after.values()) <= tolerance, after
    # ... and not by a wide margin: the recommendation is not needlessly large.
    assert after["epistemic"] > 0.5 * tolerance, after


@pytest.mark.parametrize("t", [10, 30])
def test_estimated_relative_error_agrees_with_the_empirical_one(
    rng: np.random.Generator, t: int
) -> None:
    alpha = _alpha(rng, n=150)
    empirical = _empirical_relative_error(rng, alpha, t, repeats=100)
    estimates = [mc_error(_draw(rng, alpha, t))["measures"] for _ in range(40)]
    for p in PARTS:
        typical = np.median([e[p]["relative_error"] for e in estimates])
        assert typical == pytest.approx(empirical[p], rel=0.12), (p, typical, empirical[p])


def test_summary_fields_and_round_recommendation(rng: np.random.Generator) -> None:
    out = mc_error(_draw(rng, _alpha(rng), 20), measure="variance", tolerance=0.1)
    assert out["n_samples"] == 20 and out["n_cases"] == 80 and out["measure"] == "variance"
    assert out["criterion"].startswith("rms per-case")
    needs = [s["needed_samples"] for s in out["measures"].values()]
    assert out["recommended_samples"] in NICE
    assert max(needs) <= out["recommended_samples"] < 1.5 * max(needs)
    for s in out["measures"].values():
        assert s["relative_error"] == pytest.approx(s["se_rms"] / s["spread"])
        assert s["relative_error"] < s["relative_error_upper"] < 1.5 * s["relative_error"]
        need = 20 * (s["relative_error_upper"] / 0.1) ** 2
        assert s["needed_samples"] == pytest.approx(need, abs=1)
        assert s["se_median"] <= s["se_rms"] * 1.5


def test_order_of_samples_and_cases_does_not_matter(rng: np.random.Generator) -> None:
    mc = _draw(rng, _alpha(rng, n=40), 9)
    cases = rng.permutation(40)
    a = mc_standard_errors(mc)
    b = mc_standard_errors(mc[rng.permutation(9)][:, cases])
    for p in PARTS:
        np.testing.assert_allclose(b.se[p], a.se[p][cases], atol=1e-12)
        np.testing.assert_allclose(b.bias[p], a.bias[p][cases], atol=1e-12)
        assert b.mean_se[p] == pytest.approx(a.mean_se[p], abs=1e-12)


def test_agreeing_samples_have_no_error_and_need_no_more(rng: np.random.Generator) -> None:
    p = rng.dirichlet([1.0, 1.0, 1.0], size=50)
    mc = np.repeat(p[None], 5, axis=0)
    e = mc_standard_errors(mc)
    for part in PARTS:
        np.testing.assert_allclose(e.se[part], 0.0, atol=1e-12)
        np.testing.assert_allclose(e.bias[part], 0.0, atol=1e-12)
    out = mc_error(mc)
    assert not out["too_small"] and out["recommended_samples"] <= 5


def test_noise_without_spread_is_never_judged_good_enough(rng: np.random.Generator) -> None:
    # Every case has the same distribution: the measures differ only by MC noise,
    # so the estimated spread is about 0 (None when not above the noise).
    alpha = np.tile([2.0, 2.0], (60, 1))
    out = mc_error(_draw(rng, alpha, 5))
    for s in out["measures"].values():
        assert s["relative_error"] is None or s["relative_error"] > 1.0
    assert out["too_small"]
    # Exactly no spread at all: nothing to extrapolate from.
    flat = mc_error(_draw(rng, alpha[:1], 5).repeat(60, axis=1))
    assert all(s["spread"] is None for s in flat["measures"].values())
    assert flat["recommended_samples"] is None and flat["too_small"]


def test_errors_name_the_problem(rng: np.random.Generator) -> None:
    mc = _draw(rng, _alpha(rng, n=10), 4)
    with pytest.raises(InputError, match="T >= 2"):
        mc_standard_errors(mc[:1])
    with pytest.raises(InputError, match="unknown measure 'gini'"):
        mc_error(mc, measure="gini")
    for bad in (0.0, 1.0, True, -0.1):
        with pytest.raises(InputError, match=r"tolerance must be in \(0, 1\)"):
            mc_error(mc, tolerance=bad)
    with pytest.raises(InputError, match="sum to 1"):
        mc_error(mc * 0.5)
