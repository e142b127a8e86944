"""Coverage of AUROC intervals by simulation (binormal model, known AUROC).

Scores of negatives ~ N(0, 1), positives ~ N(mu, 1): the true AUROC is
Phi(mu / sqrt(2)). In the clustered scenario each patient contributes four
images sharing a patient effect (intra-patient correlation rho), so the
image-level marginal model is unchanged but images are not independent.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from medval.stats import bootstrap_ci, delong_ci, threshold_metric_ci

MU = 1.2
TRUE_AUC = float(norm.cdf(MU / np.sqrt(2)))
REPLICATES = 1000


def _independent(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat([0, 1], n // 2)
    return y, rng.normal(size=n) + MU * y


def _clustered(
    rng: np.random.Generator, patients: int, images: int, rho: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    status = np.repeat([0, 1], patients // 2)
    u = rng.normal(size=patients) * np.sqrt(rho)
    clusters = np.repeat(np.arange(patients), images)
    y = status[clusters]
    s = MU * y + u[clusters] + rng.normal(size=clusters.size) * np.sqrt(1 - rho)
    return y, s, clusters


def _covers(est_low: float | None, est_high: float | None) -> bool:
    assert est_low is not None and est_high is not None
    return est_low <= TRUE_AUC <= est_high


@pytest.mark.slow
def test_bootstrap_bca_coverage_independent_cases() -> None:
    rng = np.random.default_rng(20261122)
    hits = 0
    for _ in range(REPLICATES):
        y, s = _independent(rng, 200)
        est = bootstrap_ci("auroc", y, s, n_resamples=1000, random_state=rng)
        hits += _covers(est.low, est.high)
    coverage = hits / REPLICATES
    print(f"\nBCa bootstrap, independent cases: coverage {coverage:.3f}")
    assert 0.93 <= coverage <= 0.97


def test_delong_logit_coverage() -> None:
    rng = np.random.default_rng(7)
    hits = 0
    reps = 1000
    for _ in range(reps):
        y, s = _independent(rng, 100)
        est = delong_ci(y, s)
        hits += _covers(est.low, est.high)
    coverage = hits / reps
    print(f"\nDeLong (logit), n=100: coverage {coverage:.3f}")
    assert 0.93 <= coverage <= 0.97


@pytest.mark.slow
def test_clustered_bootstrap_covers_and_plain_under_covers() -> None:
    rng = np.random.default_rng(4)
    hits_clustered = hits_plain = 0
    widths_clustered, widths_plain = [], []
    for _ in range(REPLICATES):
        y, s, clusters = _clustered(rng, 100, 4, rho=0.6)
        seed = int(rng.integers(2**31))
        c = bootstrap_ci("auroc", y, s, clusters=clusters, n_resamples=1000, random_state=seed)
        p = bootstrap_ci("auroc", y, s, n_resamples=1000, random_state=seed)
        hits_clustered += _covers(c.low, c.high)
        hits_plain += _covers(p.low, p.high)
        widths_clustered.append(c.high - c.low)  # type: ignore[operator]
        widths_plain.append(p.high - p.low)  # type: ignore[operator]
    cov_c, cov_p = hits_clustered / REPLICATES, hits_plain / REPLICATES
    ratio = float(np.mean(widths_clustered) / np.mean(widths_plain))
    print(
        f"\npatient-clustered: coverage {cov_c:.3f}; image-level: coverage {cov_p:.3f}; "
        f"width ratio {ratio:.2f}"
    )
    assert 0.93 <= cov_c <= 0.97
    assert cov_p < 0.88  # image-level resampling is too narrow with correlated images
    assert ratio > 1.3


def test_clustered_sensitivity_interval_covers() -> None:
    # Diseased patients only; 4 correlated images each; true per-image
    # sensitivity at threshold t is Phi(MU - t) since var(u) + var(e) = 1.
    rng = np.random.default_rng(12)
    t, rho, patients, reps = 0.6, 0.6, 60, 1000
    truth = float(norm.cdf(MU - t))
    hits_c = hits_w = 0
    for _ in range(reps):
        clusters = np.repeat(np.arange(patients), 4)
        u = rng.normal(size=patients) * np.sqrt(rho)
        s = MU + u[clusters] + rng.normal(size=clusters.size) * np.sqrt(1 - rho)
        y = np.ones(clusters.size, dtype=np.int64)
        c = threshold_metric_ci("sensitivity", y, s, threshold=t, clusters=clusters)
        w = threshold_metric_ci("sensitivity", y, s, threshold=t)
        hits_c += _covers_value(c.low, c.high, truth)
        hits_w += _covers_value(w.low, w.high, truth)
    print(
        f"\nsensitivity, 4 images/patient: clustered Wilson {hits_c / reps:.3f}, "
        f"plain Wilson {hits_w / reps:.3f}"
    )
    assert 0.93 <= hits_c / reps <= 0.97
    assert hits_w / reps < 0.92


def _covers_value(low: float | None, high: float | None, value: float) -> bool:
    assert low is not None and high is not None
    return low <= value <= high
