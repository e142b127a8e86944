"""Sample-size planners: closed forms, a published example, and simulation at the planned n.

The acceptance: at the planned design, >= 2,000 simulated studies meet the
target within 2 percentage points (coverage of ``estimate +/- planned
half-width``, or the power of medval's non-inferiority verdict).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from medval._errors import InputError
from medval.stats import (
    SampleSize,
    auroc_sample_size,
    auroc_variance,
    design_effect,
    noninferiority_power,
    noninferiority_sample_size,
    sensitivity_sample_size,
    specificity_sample_size,
    subgroup_sample_size,
    wilson_half_width,
)

Z95 = stats.norm.ppf(0.975)


def _bvn(h: float, rho: float) -> float:
    """P(Z1 < h, Z2 < h), by scipy's multivariate normal (independent of the code's Owen T)."""
    cov = [[1.0, rho], [rho, 1.0]]
    return float(stats.multivariate_normal(mean=[0, 0], cov=cov).cdf([h, h]))


def _placement_correlation(auroc: float, rho: float) -> float:
    """Correlation of two placement values whose latent binormal scores correlate ``rho``.

    Two images (or two models' scores of one case) X1, X2 ~ N(mu, 1) with
    correlation rho, each placed against an independent negative: the
    differences have correlation rho / 2, so the covariance is
    Phi2(d, d; rho/2) - A^2 with d = Phi^-1(A); rho = 1 gives the variance.
    """
    d, a2 = stats.norm.ppf(auroc), auroc**2
    return (_bvn(d, rho / 2) - a2) / (_bvn(d, 0.5) - a2)


def _aurocs(pos: NDArray[np.float64], neg: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise Mann-Whitney AUROC of (R, n1) positive and (R, n0) negative scores."""
    n1, n0 = pos.shape[1], neg.shape[1]
    ranks = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _binormal(
    rng: np.random.Generator, reps: int, k: int, m: int, mu: float, icc: float
) -> NDArray[np.float64]:
    """(reps, k*m) scores: k patients of m images, latent intra-patient correlation icc."""
    patient = rng.standard_normal((reps, k, 1)) * math.sqrt(icc)
    image = rng.standard_normal((reps, k, m)) * math.sqrt(1 - icc)
    return (mu + patient + image).reshape(reps, k * m)


def _auroc_coverage(plan: SampleSize, auroc: float, latent_icc: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    m, reps = plan.images_per_patient, 3000
    mu = math.sqrt(2) * stats.norm.ppf(auroc)
    pos = _binormal(rng, reps, plan.n_positive // m, m, mu, latent_icc)
    neg = _binormal(rng, reps, plan.n_negative // m, m, 0.0, latent_icc)
    return float(np.mean(np.abs(_aurocs(pos, neg) - auroc) <= plan.target))


# --- closed forms and published values ------------------------------------------


def test_hanley_mcneil_is_exact_for_exponential_scores() -> None:
    # Q1 = A/(2-A), Q2 = 2A^2/(1+A) are the exact moments when both classes'
    # scores are exponential (Hanley & McNeil 1982): P(X > Y) = l0 / (l0 + l1).
    a, n1, n0, reps = 0.8, 30, 40, 20_000
    rng = np.random.default_rng(0)
    pos = rng.exponential(a / (1 - a), size=(reps, n1))
    neg = rng.exponential(1.0, size=(reps, n0))
    simulated = float(np.var(_aurocs(pos, neg), ddof=1))
    assert simulated == pytest.approx(auroc_variance(a, n1, n0, method="hanley-mcneil"), rel=0.03)


def test_binormal_variance_matches_exact_q1() -> None:
    a, n1, n0 = 0.8, 40, 60
    q = _bvn(stats.norm.ppf(a), 0.5)  # Q1 = Q2 in the equal-variance binormal model
    want = (a * (1 - a) + (n1 - 1) * (q - a * a) + (n0 - 1) * (q - a * a)) / (n1 * n0)
    assert auroc_variance(a, n1, n0) == pytest.approx(want, rel=1e-4)
    # At A = 0.5 both models give Q1 = Q2 = 1/3.
    for method in ("binormal", "hanley-mcneil"):
        assert auroc_variance(0.5, 10, 10, method=method) == pytest.approx(
            (0.25 + 18 * (1 / 3 - 0.25)) / 100
        )


@pytest.mark.parametrize(("p", "n"), [(0.9, 141), (0.8, 246), (0.5, 30)])
def test_wilson_half_width_matches_scipy(p: float, n: int) -> None:
    # At an integer count x = p n the half-width is scipy's Wilson interval's.
    x = round(p * n)
    ci = stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_half_width(x / n, n) == pytest.approx((ci.high - ci.low) / 2, rel=1e-9)


def test_sensitivity_plan_is_the_smallest() -> None:
    plan = sensitivity_sample_size(0.9, prevalence=0.2, half_width=0.05)
    assert plan.n_positive == 141  # first n with Wilson half-width <= 0.05 at p = 0.9
    assert wilson_half_width(0.9, 140) > 0.05 >= wilson_half_width(0.9, 141) == plan.achieved
    assert plan.n_positive / plan.n_cases == pytest.approx(0.2, abs=1 / plan.n_cases)
    spec = specificity_sample_size(0.8, prevalence=0.2, half_width=0.05)
    assert wilson_half_width(0.8, spec.n_negative - 1) > 0.05 >= spec.achieved


def test_design_effect_and_clustered_plan() -> None:
    assert design_effect(3, 0.3) == pytest.approx(1.6)
    assert design_effect(1, 0.9) == 1.0
    one = sensitivity_sample_size(0.9, prevalence=0.5, half_width=0.05)
    three = sensitivity_sample_size(
        0.9, prevalence=0.5, half_width=0.05, images_per_patient=3, icc=0.3
    )
    assert three.n_cases == 3 * three.n_patients
    # n / DE effective images: about 1.6 x the independent images
    assert three.n_positive / 1.6 == pytest.approx(one.n_positive, abs=3)


def test_auroc_plan_is_the_smallest() -> None:
    plan = auroc_sample_size(0.85, prevalence=0.2, half_width=0.05)
    assert plan.achieved <= 0.05
    k = plan.n_patients - 1
    n1 = round(k * 0.2)
    assert Z95 * math.sqrt(auroc_variance(0.85, n1, k - n1)) > 0.05
    assert plan.to_dict()["assumptions"] == {"auroc": 0.85, "prevalence": 0.2, "icc": 0.0}


def test_noninferiority_closed_form() -> None:
    a, r, n1, n0 = 0.85, 0.5, 60, 140
    v = auroc_variance(a, n1, n0)
    want = stats.norm.cdf(0.05 / math.sqrt(2 * v * (1 - r)) - Z95)
    got = noninferiority_power(a, 200, prevalence=0.3, margin=0.05, correlation=r)
    assert got == pytest.approx(want, rel=1e-9)
    plan = noninferiority_sample_size(a, prevalence=0.3, margin=0.05, correlation=r)
    assert (
        plan.achieved
        >= 0.8
        > noninferiority_power(a, plan.n_patients - 1, prevalence=0.3, margin=0.05, correlation=r)
    )


def test_subgroup_total_covers_every_floor() -> None:
    plans = {
        "GE": auroc_sample_size(0.80, prevalence=0.2, half_width=0.07),
        "Siemens": auroc_sample_size(0.90, prevalence=0.3, half_width=0.07),
    }
    shares = {"GE": 0.3, "Siemens": 0.7}
    total = subgroup_sample_size(plans, shares)
    for g, plan in plans.items():
        assert math.floor(total.n_patients * shares[g] + 1e-9) >= plan.n_patients
    assert total.binding == "GE"
    assert total.n_patients == math.ceil(plans["GE"].n_patients / 0.3)
    assert total.to_dict()["subgroups"]["GE"]["n_cases"] == plans["GE"].n_cases


# --- errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: auroc_sample_size(1.2, prevalence=0.2, half_width=0.05), r"auroc=1\.2"),
        (lambda: auroc_sample_size(0.8, prevalence=0.0, half_width=0.05), "prevalence=0.0"),
        (lambda: auroc_sample_size(0.8, prevalence=0.2, half_width=0.6), "half_width=0.6"),
        (lambda: auroc_variance(0.8, 10, 10, method="exp"), "valid methods"),  # type: ignore[arg-type]
        (lambda: auroc_variance(0.8, 0, 10), "n_positive=0"),
        (lambda: design_effect(0, 0.1), "images_per_patient=0"),
        (lambda: design_effect(2, 1.5), "icc=1.5"),
        (lambda: sensitivity_sample_size(1.0, prevalence=0.2, half_width=0.05), "sensitivity"),
        (
            lambda: sensitivity_sample_size(0.9, prevalence=0.2, half_width=1e-6),
            "no design under",
        ),
        (
            lambda: noninferiority_sample_size(0.8, prevalence=0.2, margin=0.05, difference=-0.05),
            "difference > -margin",
        ),
        (
            lambda: noninferiority_sample_size(0.8, prevalence=0.2, margin=0.05, correlation=1.0),
            "correlation=1.0",
        ),
        (lambda: noninferiority_power(0.8, 1, prevalence=0.2, margin=0.05), "n_patients=1"),
        (
            lambda: noninferiority_sample_size(0.8, prevalence=0.2, margin=0.05, power=1.0),
            "power=1.0",
        ),
        (lambda: subgroup_sample_size({}, {}), "same, non-empty"),
        (
            lambda: subgroup_sample_size(
                {"a": auroc_sample_size(0.8, prevalence=0.2, half_width=0.1)}, {"a": 0.0}
            ),
            "share of 'a'",
        ),
    ],
)
def test_errors(call: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        call()  # type: ignore[operator]


# --- the acceptance: simulation at the planned n --------------------------------


@pytest.mark.parametrize(("auroc", "prevalence"), [(0.85, 0.2), (0.75, 0.4)])
def test_auroc_plan_reaches_its_coverage(auroc: float, prevalence: float) -> None:
    plan = auroc_sample_size(auroc, prevalence=prevalence, half_width=0.05)
    coverage = _auroc_coverage(plan, auroc, 0.0, seed=1)
    assert abs(coverage - 0.95) <= 0.02, coverage


def test_hanley_mcneil_is_conservative_under_binormal_scores() -> None:
    # Exponential-score Q1, Q2 overstate the binormal variance at high AUROC:
    # the plan over-covers, which is why "binormal" is the default.
    plan = auroc_sample_size(0.9, prevalence=0.2, half_width=0.05, method="hanley-mcneil")
    coverage = _auroc_coverage(plan, 0.9, 0.0, seed=2)
    assert coverage > 0.97


def test_clustered_auroc_plan_reaches_its_coverage() -> None:
    latent = 0.3
    icc = _placement_correlation(0.85, latent)  # the placement-value ICC the planner takes
    plan = auroc_sample_size(0.85, prevalence=0.3, half_width=0.05, images_per_patient=3, icc=icc)
    coverage = _auroc_coverage(plan, 0.85, latent, seed=3)
    assert abs(coverage - 0.95) <= 0.02, coverage


def _proportion_coverage(n: int, p: float, h: float, m: int, icc: float, seed: int) -> float:
    """Coverage of p_hat +/- h over n/m patients of m images (beta-binomial, indicator ICC)."""
    rng = np.random.default_rng(seed)
    reps, k = 20_000, n // m
    if icc > 0:
        s = (1 - icc) / icc  # beta(a, b) with a + b = s gives ICC 1/(1+s)
        p_patient = rng.beta(p * s, (1 - p) * s, size=(reps, k))
        hits = rng.binomial(m, p_patient).sum(axis=1)
    else:
        hits = rng.binomial(n, p, size=reps)
    return float(np.mean(np.abs(hits / n - p) <= h + 1e-12))


@pytest.mark.parametrize(("value", "half_width"), [(0.9, 0.05), (0.8, 0.04), (0.7, 0.05)])
def test_sensitivity_plan_reaches_its_coverage(value: float, half_width: float) -> None:
    plan = sensitivity_sample_size(value, prevalence=0.2, half_width=half_width)
    coverage = _proportion_coverage(plan.n_positive, value, half_width, 1, 0.0, seed=4)
    assert abs(coverage - 0.95) <= 0.02, coverage


def test_clustered_specificity_plan_reaches_its_coverage() -> None:
    plan = specificity_sample_size(
        0.8, prevalence=0.3, half_width=0.04, images_per_patient=3, icc=0.2
    )
    coverage = _proportion_coverage(plan.n_negative, 0.8, 0.04, 3, 0.2, seed=5)
    assert abs(coverage - 0.95) <= 0.02, coverage


def _delong_paired_verdicts(
    pos: NDArray[np.float64], neg: NDArray[np.float64], margin: float
) -> NDArray[np.bool_]:
    """Non-inferior verdicts, (2, R, n) scores of two models -> (R,), DeLong's covariance."""
    n1, n0 = pos.shape[2], neg.shape[2]
    both = np.concatenate([pos, neg], axis=2)
    r_all = stats.rankdata(both, axis=2)
    v10 = (r_all[..., :n1] - stats.rankdata(pos, axis=2)) / n0
    v01 = 1.0 - (r_all[..., n1:] - stats.rankdata(neg, axis=2)) / n1
    auc = v10.mean(axis=2)
    d10, d01 = v10[0] - v10[1], v01[0] - v01[1]  # candidate minus baseline placements
    var = d10.var(axis=1, ddof=1) / n1 + d01.var(axis=1, ddof=1) / n0
    return (auc[0] - auc[1] + margin) / np.sqrt(var) > Z95


@pytest.mark.parametrize(("score_rho", "difference"), [(0.6, 0.0), (0.3, 0.02)])
def test_noninferiority_plan_reaches_its_power(score_rho: float, difference: float) -> None:
    base = 0.85
    # Equal AUROCs: the estimates' correlation is the placement correlation at
    # score correlation rho (large-n limit); with a difference it is close to it.
    r = _placement_correlation(base, score_rho)
    plan = noninferiority_sample_size(
        base, prevalence=0.3, margin=0.05, power=0.8, difference=difference, correlation=r
    )
    rng = np.random.default_rng(6)
    reps = 3000
    mus = np.sqrt(2) * stats.norm.ppf([base + difference, base])[:, None, None]
    cov = [[1.0, score_rho], [score_rho, 1.0]]

    def draw(n: int) -> NDArray[np.float64]:
        return np.moveaxis(rng.multivariate_normal([0, 0], cov, size=(reps, n)), 2, 0)

    pos, neg = draw(plan.n_positive) + mus, draw(plan.n_negative)
    power = float(np.mean(_delong_paired_verdicts(pos, neg, 0.05)))
    assert abs(power - 0.8) <= 0.02, power
    # the AUROC correlation given to the planner is the simulated one
    auc = np.stack([_aurocs(pos[i], neg[i]) for i in range(2)])
    assert np.corrcoef(auc)[0, 1] == pytest.approx(r, abs=0.05)


def test_subgroup_plan_reaches_every_floor() -> None:
    plans = {
        "GE": auroc_sample_size(0.80, prevalence=0.2, half_width=0.06),
        "Siemens": auroc_sample_size(0.90, prevalence=0.3, half_width=0.06),
    }
    total = subgroup_sample_size(plans, {"GE": 0.3, "Siemens": 0.7})
    # The binding subgroup, allocated its share of the total, covers as planned.
    ge = auroc_sample_size(0.80, prevalence=0.2, half_width=0.06)
    k = math.floor(total.n_patients * 0.3 + 1e-9)
    assert k >= ge.n_patients
    coverage = _auroc_coverage(total.subgroups["GE"], 0.80, 0.0, seed=7)
    assert abs(coverage - 0.95) <= 0.02, coverage
